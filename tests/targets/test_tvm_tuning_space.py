"""MetaSchedule's search starts from ncc's default schedules
(ncc.targets.tvm.tuning.design_space): each default's tunable form (tile
sizes as samples) replays to exactly the default, stays correct under the
decisions the tile-size mutator makes, sits in the search's design space
beside MetaSchedule's own. That a tuning run leaves it measured in the tuning
database, where the search's initial population is drawn from:
test_tvm_schedules.py."""

import numpy as np
import pytest
import tvm
from test_tvm_int8_schedules import conv_module
from test_tvm_schedules import _pipeline, _run, conv_graph, host_target
from tvm import s_tir
from tvm_kernels import with_scheduled

from ncc.targets.tvm import schedules as S

RNG = np.random.default_rng(0)


def _fp32(*shape):
    mod, shapes = conv_graph(*shape)
    return mod, RNG.standard_normal(shapes[0]).astype("float32")


def _int8(ic, oc, size, k):
    weight = RNG.integers(-64, 64, (oc, ic, k, k)).astype(np.int8)
    data = RNG.integers(0, 256, (1, ic, size, size)).astype("uint8")
    return conv_module(data.shape, "uint8", weight, 1, k // 2, 0, 1), data


CASES = {  # the rule and the strategy each case reaches
    "direct x-vector": lambda: _fp32(1, 16, 16, 16, 32, 3, 1, 1, 1, 1),
    "direct oc-vector, stride 2": lambda: _fp32(1, 16, 8, 8, 64, 3, 2, 1, 1, 1),
    "depthwise rows": lambda: _fp32(1, 24, 16, 16, 24, 3, 1, 1, 1, 24),
    "int8 channels": lambda: _int8(64, 64, 8, 3),
    "int8 pixels": lambda: _int8(16, 32, 16, 1),
}


def _conv_kernels(mod):
    return [(gv, func) for gv, func in mod.functions_items()
            if isinstance(func, tvm.tirx.PrimFunc) and "conv2d" in gv.name_hint]


def _run_with(mod, target, scheduled, data):
    return _run(with_scheduled(mod, target, scheduled), target, [data])


@pytest.mark.parametrize("case", CASES)
def test_the_tunable_default_replays_to_the_default(case):
    target = host_target()
    mod, _ = CASES[case]()
    for _gv, func in _conv_kernels(_pipeline(mod, target)):
        plain, rule = S.schedule_for(func, target)
        tunable, same_rule = S.schedule_for(func, target, tunable=True)
        assert same_rule == rule
        assert any(inst.kind.name == "SamplePerfectTile" for inst in tunable.trace.insts)
        tvm.ir.assert_structural_equal(plain.mod, tunable.mod)


@pytest.mark.parametrize("case", CASES)
def test_other_tile_decisions_compute_the_same(case):
    """Each sampled tile at its extremes (inner 1, inner = the whole loop) computes what the unscheduled kernel does."""
    target = host_target()
    mod, data = CASES[case]()
    mod = _pipeline(mod, target)
    expected = _run(mod, target, [data])
    for gv, func in _conv_kernels(mod):
        trace = S.schedule_for(func, target, tunable=True)[0].trace
        samples = [inst for inst in trace.insts if inst.kind.name == "SamplePerfectTile"]
        for extreme in (0, 1):
            changed = trace
            for inst in samples:
                extent = int(np.prod([int(v) for v in trace.decisions[inst]]))
                changed = changed.with_decision(inst, [1, extent] if extreme else [extent, 1], remove_postproc=True)
            sch = s_tir.Schedule(func)
            changed.apply_to_schedule(sch, remove_postproc=True)
            got = _run_with(mod, target, {gv: sch.mod["main"]}, data)
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_the_search_space_holds_metaschedules_own_and_ncc_schedule():
    from tvm.s_tir import meta_schedule as ms

    from ncc.targets.tvm.tuning import _register_cpu_intrinsics, design_space

    target = host_target()
    mod, _ = CASES["direct x-vector"]()
    (_gv, func), = _conv_kernels(_pipeline(mod, target))
    _register_cpu_intrinsics()
    context = ms.TuneContext(mod=tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target=target,
                             space_generator=design_space(target), search_strategy="replay-trace", task_name="conv")
    spaces = context.generate_design_space()
    ours = [sch for sch in spaces if S.SCHEDULE_ATTR in sch.get(sch.get_sblock("root")).annotations]
    assert len(ours) == 1 and len(spaces) > 1
    # MetaSchedule's postprocessors pass ncc's schedule by (they would pack its packed weights again)
    (postproc,) = context.space_generator.postprocs
    assert postproc.apply(ours[0])


def test_kernels_whose_repack_pads_channels_are_not_searched():
    """MetaSchedule cannot read the arguments of a kernel whose weight repack zero-pads its input
    channels (3 channels in VNNI's blocks of 4): tuning leaves it to its default instead of
    stopping; whole blocks are searched."""
    from ncc.targets.tvm.tuning import searchable

    target = host_target("icelake-server")  # (scheduled only, not run)
    found = {}
    for ic in (3, 64):
        mod, _ = _int8(ic, 64, 8, 3)
        (_gv, func), = _conv_kernels(_pipeline(mod, target))
        found[ic] = searchable(func.with_attr("global_symbol", "main"), target)
    assert found == {3: False, 64: True}
