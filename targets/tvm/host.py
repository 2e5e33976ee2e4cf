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
    spec = {"kind": "llvm", "mtriple": f"{platform.machine()}-linux-gnu",
            "mcpu": codegen.llvm_get_system_cpu(), "num-cores": len(os.sched_getaffinity(0))}
    if _has_avx512(spec):
        # LLVM's default for Intel's AVX-512 server cores is to prefer 256-bit vectors, so every
        # vector wider than 8 lanes that the schedules write outside an intrinsic (the int8
        # kernels' 32-lane requantize, the residual add) is split into ymm halves: a 1x1 int8 conv
        # with its residual add 0.22 -> 0.13 ms with 512-bit vectors (Xeon, Emerald Rapids)
        spec["mattr"] = ["-prefer-256-bit"]
    return TvmMachine(spec)


def _has_avx512(spec) -> bool:
    import tvm

    from .schedules._common import has_feature, is_x86

    target = tvm.target.Target(spec)
    return is_x86(target) and has_feature(target, "avx512f")
