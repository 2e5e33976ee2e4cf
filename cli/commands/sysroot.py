"""`ncc sysroot`: prepare the sysroot a target's harness is cross-built against here."""

from pathlib import Path

import click

from ncc.cli.options import debug_option
from ncc.core.errors import UsageError
from ncc.targets import TARGETS, get_target


def _offering() -> list[str]:
    return sorted(t.name for t in TARGETS if t.harness is not None and t.harness.sysroot is not None)


@click.command("sysroot")
@click.argument("target", metavar="TARGET")
@click.option("--cache", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the sysroot under DIR/sysroot (default: $NCC_CACHE, else ~/.cache/ncc).")
@click.option("--force", is_flag=True, help="Download and unpack it again even if it is cached.")
@debug_option
def command(target, cache, force):
    """Download the board runtime TARGET's harness links against (for zcu104:
    Debian's arm64 builds of Vitis AI 2.5's VART and XIR and their
    dependencies), unpack it into a sysroot once, and print its path, for
    `make SYSROOT=PATH CXX=aarch64-linux-gnu-g++` in a bundle's harness/ and
    `qemu-aarch64 -L PATH`. Nothing is installed on this machine."""
    found = get_target(target)
    if found.harness is None or found.harness.sysroot is None:
        raise UsageError(f"target {found.name} has no sysroot to prepare (targets with one: {', '.join(_offering())})")
    click.echo(found.harness.sysroot(cache=str(cache) if cache else None, force=force))
