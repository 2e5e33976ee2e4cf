"""ncc's own default (untuned) CPU schedules for the TVM targets, in the
style of dlight: one rule per kernel family, matched on the TIR of each fused
PrimFunc, applied to every kernel the tuning database does not cover.

Order in a build (ncc.targets.tvm.build.apply_schedules):

    MetaScheduleApplyDatabase      tuned kernels (marked tirx.is_scheduled)
    default_schedule_pass(target)  every other kernel: the first rule that matches
    SplitLayoutRewritePreproc      the weight repacks the rules ask for ...
    FoldConstant                   ... folded into the constants at compile time

Rules read the vector width and core count from the target (AVX-512 16 fp32
lanes, AVX2 8, 128-bit NEON 4; "num-cores"). A scheduled kernel carries
`ncc.schedule` = the rule's name. Tuning starts from these schedules: with
`tunable=True` a rule's tile sizes are MetaSchedule samples whose decisions
are the defaults (its design space beside MetaSchedule's own), each default
is measured and committed to the tuning database the search draws its first
candidates from, and a build keeps the default wherever no candidate measured
faster (ncc.targets.tvm.tuning).
"""

import logging

import tvm
from tvm import tirx

from .conv2d import Conv2dNCHW1x1, Conv2dNCHWDirect, Conv2dNCHWGrouped
from .conv2d_int8 import Conv2dInt8
from .dense import DenseMatmul
from .dense_int8 import DenseInt8
from .fallback import GenericReduction, Injective
from .pool import Pool2D

SCHEDULE_ATTR = "ncc.schedule"
IS_SCHEDULED_ATTRS = ("tirx.is_scheduled", "tir.is_scheduled")
_LOG = logging.getLogger("ncc.targets.tvm.schedules")

# the first rule that returns a schedule wins; the integer rules match only int8/uint8 kernels,
# the float ones only float32
RULES = [
    Conv2dInt8(),
    DenseInt8(),
    Conv2dNCHWDirect(),
    Conv2dNCHW1x1(),
    Conv2dNCHWGrouped(),
    DenseMatmul(),
    Pool2D(),
    Injective(),
    GenericReduction(),
]


def _is_scheduled(func) -> bool:
    attrs = func.attrs
    return attrs is not None and any(key in attrs and bool(attrs[key]) for key in IS_SCHEDULED_ATTRS)


def schedule_for(func, target, rules=None, tunable=False):
    """(Schedule, rule name) of the first rule that schedules `func`, or None.
    A rule that raises counts as not matching (logged): the kernel then keeps
    TVM's own loop nest, which is slow but correct. Tunable: the rule's tile
    sizes are MetaSchedule samples whose decisions are the defaults (a design
    space for tuning; replayed as is, it is the default schedule)."""
    for rule in RULES if rules is None else rules:
        try:
            sch = rule.apply(func, target, tunable)
        except Exception as err:  # noqa: BLE001 - any failure of a rule is a non-match
            _LOG.debug("schedule rule %s failed on a kernel: %s", rule, err)
            continue
        if sch is not None:
            return (sch[0] if isinstance(sch, (list, tuple)) else sch), getattr(rule, "name", type(rule).__name__)
    return None


def default_schedule_pass(target, rules=None) -> tvm.transform.Pass:
    """A module pass scheduling every PrimFunc not scheduled yet with the first matching rule."""

    @tvm.transform.module_pass(opt_level=0, name="ncc.DefaultCPUSchedule")
    def schedule(mod, _ctx):
        updates = {}
        for gv, func in mod.functions_items():
            if not isinstance(func, tirx.PrimFunc) or _is_scheduled(func):
                continue
            own = func.attrs.get("target", None) if func.attrs is not None else None
            scheduled = schedule_for(func, own if own is not None else target, rules)
            if scheduled is not None:
                sch, name = scheduled
                updates[gv] = sch.mod["main"].with_attr("tirx.is_scheduled", True).with_attr(SCHEDULE_ATTR, name)
        for gv, func in updates.items():
            mod[gv] = func
        return mod

    return schedule


def kernel_schedules(mod) -> dict:
    """{kernel: the default rule that scheduled it, or None} for the kernels
    no tuning record scheduled (those are left out)."""
    report = {}
    for gv, func in mod.functions_items():
        if not isinstance(func, tirx.PrimFunc):
            continue
        if func.attrs is not None and SCHEDULE_ATTR in func.attrs:
            report[gv.name_hint] = str(func.attrs[SCHEDULE_ATTR])
        elif not _is_scheduled(func):
            report[gv.name_hint] = None
    return report
