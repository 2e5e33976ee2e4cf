"""host: this machine's CPU, compiled with TVM for exactly this CPU, so every
claim about the TVM flow can be measured here."""

import functools
import os
import platform

from ncc.targets.tvm.build import TvmMachine
from ncc.targets.tvm.target import TvmTarget


class HostTarget(TvmTarget):
    name = "host"
    aliases = ("native", "cpu")
    description = "this machine's CPU, compiled with TVM (Relax), with a C++ timing harness"
    measurable_here = True

    def machine(self) -> TvmMachine:
        return _host_machine()


@functools.cache
def _host_machine() -> TvmMachine:
    from tvm.target import codegen

    # "mcpu": "native" is not resolved by TVM (LLVM falls back to generic), and
    # the system triple TVM reports is its build's (x86_64-conda-linux-gnu)
    return TvmMachine({"kind": "llvm", "mtriple": f"{platform.machine()}-linux-gnu",
                       "mcpu": codegen.llvm_get_system_cpu(), "num-cores": len(os.sched_getaffinity(0))})
