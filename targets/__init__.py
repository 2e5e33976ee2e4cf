"""The target registry: adding a board is one module and one line here."""

from ncc.compiler.errors import UsageError
from ncc.targets.cortex_a72 import CortexA72Target
from ncc.targets.host import HostTarget
from ncc.targets.onnxruntime import OnnxRuntimeTarget
from ncc.targets.xavier import XavierTarget
from ncc.targets.zcu104 import Zcu104Target

TARGETS = [HostTarget(), CortexA72Target(), OnnxRuntimeTarget(), XavierTarget(), Zcu104Target()]


def target_names() -> list[str]:
    return sorted(t.name for t in TARGETS)


def get_target(name: str):
    for target in TARGETS:
        if name == target.name or name in target.aliases:
            return target
    raise UsageError(f"unknown target '{name}' (known: {', '.join(target_names())})")
