"""What a target is: a registry entry that names a board, declares its own
passes and options, picks its harness kind and emits its bundle.

A target's options are a frozen dataclass of `TargetOptions` whose fields are
declared with `option(...)`: each field is also its command-line flag, so the
dataclass is the click option group too, and every command that compiles
(`ncc compile`, `ncc sweep`) offers the same flags.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import click
import onnx

from ncc.core.errors import UsageError


def option(default, *flags, **click_settings):
    """A TargetOptions field and its flag: option(0, "--tune-trials", type=..., help=...)."""
    return field(default=default, metadata={"flags": flags, "click": click_settings})


@dataclass(frozen=True)
class TargetOptions:
    applies_to: ClassVar[str] = ""  # for errors: "TensorRT targets (xavier)"

    def check(self) -> None:
        """Raise UsageError for a combination of values that makes no sense."""

    @classmethod
    def params(cls) -> list:
        """The click options of this group, one per field."""
        params = []
        for spec in dataclasses.fields(cls):
            settings = dict(spec.metadata["click"])
            if not settings.get("is_flag"):
                settings.setdefault("default", None)
            params.append(click.Option([*spec.metadata["flags"], spec.name], **settings))
        return params

    @classmethod
    def flag(cls, name: str) -> str:
        return next(spec.metadata["flags"][0] for spec in dataclasses.fields(cls) if spec.name == name)

    @classmethod
    def given(cls, values: dict) -> dict:
        """The fields of `values` (command-line values or API keywords) that are set."""
        defaults = {spec.name: spec.default for spec in dataclasses.fields(cls)}
        return {name: value for name, value in values.items()
                if name in defaults and value is not None and value != defaults[name]}

    @classmethod
    def build(cls, values: dict) -> "TargetOptions":
        options = cls(**cls.given(values))
        options.check()
        return options

    def for_manifest(self) -> dict:
        return dataclasses.asdict(self)

    def dependencies(self) -> list[str]:
        """Files and folders the compile reads through these options (for --depfile)."""
        return []


@dataclass(frozen=True)
class NoOptions(TargetOptions):
    pass


@dataclass
class EmitResult:
    board_steps: list[str] = field(default_factory=list)  # what must still happen on the board
    harness: dict = field(default_factory=dict)  # the manifest's harness entry (Harness.entry)
    info: dict = field(default_factory=dict)  # target facts for the manifest


class Target:
    name: str = ""
    aliases: tuple = ()
    description: str = ""
    channel_multiple: int = 1  # preferred multiple for channel widths
    quant_flavor: str = "generic"  # int8 scheme for --quant-flavor auto (ncc.passes.quant_flavors)
    measurable_here: bool = False  # its bundles' harness runs on this machine (ncc bench, sweep, --deadline-ms)
    options_type: type = NoOptions  # its TargetOptions dataclass
    harness = None  # the runtime_harness.harnesses.Harness its bundles ship

    def passes(self, options) -> dict:
        """Passes this target adds, by pipeline phase (ncc.compiler.pipeline.PHASES)."""
        return {}

    def check_supported(self, model: onnx.ModelProto) -> None:
        """Raise CompileError naming the first nodes this target cannot run."""

    def emit(self, model: onnx.ModelProto, bundle, options) -> EmitResult:
        """Add the bundle's files through `bundle` (a ncc.core.bundle.BundleWriter);
        `options` is the CompileOptions, `options.target_options` this target's."""
        raise NotImplementedError


def listing(items: list, shown: int = 3) -> str:
    """The first few of `items`, and how many more: for one-line errors."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"{', '.join(items[:shown])}{more}"


def refuse_foreign(target, values: dict, option_types) -> None:
    """UsageError when `values` set options of a group `target` does not take."""
    for group in option_types:
        given = group.given(values)
        if given and group is not target.options_type:
            flags = [group.flag(name) for name in given]
            raise UsageError(f"{' and '.join(flags)} apply only to {group.applies_to}")
