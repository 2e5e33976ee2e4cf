"""The `ncc` command: a click group whose subcommands live in ncc.cli.commands.

Every NccError becomes one line on stderr and its exit code; anything else is
an internal error, shown as one line unless --debug asks for the traceback.
"""

import io
import os
import sys
import traceback
import warnings

import click

from ncc.compiler import __version__
from ncc.core.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, NccError
from ncc.core.interrupts import interrupts_as_exceptions
from ncc.cli.options import debug_option, is_debug


class NccGroup(click.Group):
    """Runs in non-standalone mode so every failure, click's usage errors
    included, ends as one line on stderr and a documented exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            with interrupts_as_exceptions(), warnings.catch_warnings():
                # numpy's overflow/NaN warnings (e.g. on a model with NaN weights) are noise before
                # the one line that says what is wrong
                warnings.simplefilter("ignore", RuntimeWarning)
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as err:
            click.echo(f"ncc: error: {' '.join(err.format_message().split())}", err=True)
            code = err.exit_code
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("ncc: interrupted", err=True)
            _silence_stderr()
            code = EXIT_INTERRUPTED
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NccError as err:
            _report(ctx, f"ncc: error: {err}")
            ctx.exit(err.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException,
                KeyboardInterrupt):
            raise
        except Exception as err:  # a bug in ncc, not the user's mistake
            _report(ctx, f"ncc: internal error: {type(err).__name__}: {err}"
                         " (rerun with --debug for the traceback)")
            ctx.exit(EXIT_INTERNAL)


def _silence_stderr():
    """After the one `interrupted` line, native libraries that were stopped
    half-way would complain while they are torn down (TVM: "BlockBuilder
    destroyed with remaining blocks"); that is not the user's to read."""
    sys.stderr.flush()
    try:
        stderr = sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):  # not a real stream (click's CliRunner)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stderr)
    os.close(devnull)


def _report(ctx, line):
    if is_debug(ctx):
        traceback.print_exc()
    click.echo(" ".join(line.split()), err=True)


@click.group(cls=NccGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ncc", message="%(prog)s %(version)s")
@debug_option
def main():
    """ncc compiles ONNX CNNs for real-time embedded boards: it rescales
    channels, folds and fuses, quantizes, and emits a bundle with the
    deployable artifact, a timing harness and a manifest."""


def _register():
    from ncc.cli.commands import bench, compile, eval, inspect, profile, run, sweep, sysroot, train, zoo

    for module in (compile, inspect, profile, zoo, train, eval, bench, run, sweep, sysroot):
        main.add_command(module.command)


_register()

if __name__ == "__main__":
    sys.exit(main())
