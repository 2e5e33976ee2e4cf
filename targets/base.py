"""What a target is: a registry entry that names a board and emits its bundle."""

import hashlib
import os
from dataclasses import dataclass, field

import onnx


@dataclass(frozen=True)
class Artifact:
    path: str  # relative to the bundle
    kind: str  # model, harness, script, ...
    description: str

    def describe(self, bundle_dir) -> dict:
        full = os.path.join(bundle_dir, self.path)
        with open(full, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        return {"path": self.path, "kind": self.kind, "description": self.description,
                "bytes": os.path.getsize(full), "sha256": digest}


@dataclass
class EmitResult:
    artifacts: list[Artifact]
    board_steps: list[str] = field(default_factory=list)  # what must still happen on the board
    harness: dict = field(default_factory=dict)  # how `ncc bench` runs the bundle: kind, entry
    info: dict = field(default_factory=dict)  # target facts for the manifest


class Target:
    name: str = ""
    aliases: tuple = ()
    description: str = ""
    channel_multiple: int = 1  # preferred multiple for channel widths
    quant_flavor: str = "generic"  # int8 scheme for --quant-flavor auto (ncc.passes.quant_flavors)
    measurable_here: bool = False  # its bundles' harness runs on this machine (ncc bench, sweep, --deadline-ms)
    batchnorm_as_depthwise: bool = False  # BatchNorms no layer absorbs become 1x1 depthwise convolutions

    def passes(self, options) -> list:
        """Passes this target needs after the generic pipeline."""
        return []

    def check_supported(self, model: onnx.ModelProto) -> None:
        """Raise CompileError naming the first nodes this target cannot run."""

    def emit(self, model: onnx.ModelProto, bundle_dir: str, options) -> EmitResult:
        raise NotImplementedError


def listing(items: list, shown: int = 3) -> str:
    """The first few of `items`, and how many more: for one-line errors."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"{', '.join(items[:shown])}{more}"
