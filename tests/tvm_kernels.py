"""Building Relax modules whose PrimFuncs a test scheduled itself, as ncc's build does after its schedules."""

import tvm
from tvm import relax


def host_target(mcpu=None, cores=2):
    """An x86 target for this machine's CPU (or `mcpu`: scheduled for, run only where this CPU has its features)."""
    return tvm.target.Target({"kind": "llvm", "mtriple": "x86_64-linux-gnu",
                              "mcpu": mcpu or tvm.target.codegen.llvm_get_system_cpu(), "num-cores": cores})


def fold_weight_repacks(mod, target):
    """The weight repacks the schedules ask for, split out and folded into the constants."""
    with target:
        return relax.transform.FoldConstant()(relax.transform.SplitLayoutRewritePreproc()(mod))


def with_scheduled(mod, target, scheduled: dict):
    """`mod` with {global var: scheduled PrimFunc} swapped in (marked scheduled), its weights repacked."""
    mod = tvm.IRModule(dict(mod.functions_items()))
    for gv, func in scheduled.items():
        mod[gv] = func.with_attr("tirx.is_scheduled", True)
    return fold_weight_repacks(mod, target)
