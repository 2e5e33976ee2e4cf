"""The command-line options of kernel tuning for the TVM targets (MetaSchedule),
passed on as `tuning`: the CompileOptions fields given on the command line."""

import functools
import re

import click

from ncc.compiler.errors import UsageError

_HOST_PORT = re.compile(r"^(?P<host>[^:\s]+):(?P<port>\d{1,5})$")


def tuning_options(func):
    @click.option("--tune-trials", type=click.IntRange(min=0), default=0, metavar="N",
                  help="Tune the kernels with N measured candidates in all (MetaSchedule) into the tuning "
                       "database first; 0 applies what the database already holds.  [default: 0]")
    @click.option("--tuning-db", type=click.Path(file_okay=False, path_type=str), metavar="DIR",
                  help="Tuning database folder, kept and reused by later compiles "
                       "[default: $NCC_CACHE or ~/.cache/ncc, then tuning/ARCH-CPU].")
    @click.option("--rpc-tracker", metavar="HOST:PORT",
                  help="Measure tuning candidates on the boards of this RPC tracker (with --rpc-key).")
    @click.option("--rpc-key", metavar="KEY", help="The tracker's key for the board.")
    @functools.wraps(func)
    def wrapper(*args, tune_trials, tuning_db, rpc_tracker, rpc_key, **kwargs):
        if bool(rpc_tracker) != bool(rpc_key):
            raise UsageError("--rpc-tracker and --rpc-key go together")
        if rpc_tracker and not _HOST_PORT.match(rpc_tracker):
            raise UsageError(f"bad --rpc-tracker '{rpc_tracker}': expected HOST:PORT, e.g. 127.0.0.1:9190")
        if rpc_tracker and not tune_trials:
            raise UsageError("--rpc-tracker is used only with --tune-trials N")
        tuning = {"tune_trials": tune_trials, "tuning_db": tuning_db, "rpc_tracker": rpc_tracker, "rpc_key": rpc_key}
        return func(*args, tuning=tuning, **kwargs)

    return wrapper
