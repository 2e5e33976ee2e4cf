"""The target registry: adding a board is one module and one line here."""

from ncc.compiler.errors import UsageError
from ncc.targets.host import HostTarget

TARGETS = [HostTarget()]


def target_names() -> list[str]:
    return sorted(t.name for t in TARGETS)


def get_target(name: str):
    for target in TARGETS:
        if name == target.name or name in target.aliases:
            return target
    raise UsageError(f"unknown target '{name}' (known: {', '.join(target_names())})")
