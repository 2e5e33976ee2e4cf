"""The TVM targets' own options: kernel tuning with MetaSchedule."""

import os
import re
from dataclasses import dataclass

import click

from ncc.core.errors import UsageError
from ncc.targets.base import TargetOptions, option

_HOST_PORT = re.compile(r"^(?P<host>[^:\s]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class TvmOptions(TargetOptions):
    applies_to = "TVM targets (host, cortex-a72)"

    tune_trials: int = option(
        0, "--tune-trials", type=click.IntRange(min=0), metavar="N",
        help="Tune the kernels with N measured candidates in all (MetaSchedule) into the tuning database first; "
             "0 applies what the database already holds.  [default: 0]")
    tuning_db: str | None = option(
        None, "--tuning-db", type=click.Path(file_okay=False, path_type=str), metavar="DIR",
        help="Tuning database folder, kept and reused by later compiles "
             "[default: $NCC_CACHE or ~/.cache/ncc, then tuning/ARCH-CPU].")
    rpc_tracker: str | None = option(
        None, "--rpc-tracker", metavar="HOST:PORT",
        help="Measure tuning candidates on the boards of this RPC tracker (with --rpc-key).")
    rpc_key: str | None = option(None, "--rpc-key", metavar="KEY", help="The tracker's key for the board.")

    def check(self):
        if bool(self.rpc_tracker) != bool(self.rpc_key):
            raise UsageError("--rpc-tracker and --rpc-key go together")
        if self.rpc_tracker and not _HOST_PORT.match(self.rpc_tracker):
            raise UsageError(f"bad --rpc-tracker '{self.rpc_tracker}': expected HOST:PORT, e.g. 127.0.0.1:9190")
        if self.rpc_tracker and not self.tune_trials:
            raise UsageError("--rpc-tracker is used only with --tune-trials N")

    def for_manifest(self) -> dict:
        recorded = super().for_manifest()
        if self.tuning_db:
            recorded["tuning_db"] = os.path.basename(os.path.normpath(self.tuning_db))
        return recorded

    def dependencies(self) -> list[str]:
        return [self.tuning_db] if self.tuning_db else []
