"""The target registry: adding a board is one module (or subpackage) and one
line in TARGETS."""

from ncc.core.errors import UsageError
from ncc.targets.onnxruntime import OnnxRuntimeTarget
from ncc.targets.tvm.cortex_a72 import CortexA72Target
from ncc.targets.tvm.host import HostTarget
from ncc.targets.xavier.target import XavierTarget
from ncc.targets.zcu104.target import Zcu104Target

TARGETS = [HostTarget(), CortexA72Target(), OnnxRuntimeTarget(), XavierTarget(), Zcu104Target()]


def target_names() -> list[str]:
    return sorted(t.name for t in TARGETS)


def get_target(name: str):
    for target in TARGETS:
        if name == target.name or name in target.aliases:
            return target
    raise UsageError(f"unknown target '{name}' (known: {', '.join(target_names())})")


def option_names() -> set:
    """The field names of every registered target's options (the keywords they take)."""
    from dataclasses import fields

    return {spec.name for group in option_types() for spec in fields(group)}


def option_types() -> list:
    """Every registered target's options dataclass, once each, in registry order."""
    seen = []
    for target in TARGETS:
        if target.options_type not in seen:
            seen.append(target.options_type)
    return seen
