"""ncc's default CPU schedules (ncc.targets.tvm.schedules), rule by rule: each
rule on small shapes (strided, padded, dilated, grouped, depthwise, sizes that
are no multiple of the vector width) against the unscheduled TIR, on this
host (AVX-512), with AVX2's 8 lanes, and compiled for the Cortex-A72; and
the compiled zoo bundles' convolution kernels use the target's vector FMAs.
The whole networks against ONNX Runtime: test_tvm_targets.py (fp32) and
test_tvm_int8.py (int8)."""

import re
import shutil
import subprocess

import numpy as np
import pytest
import tvm
from ncc.targets.tvm import schedules as S
from tvm import relax
from tvm_kernels import fold_weight_repacks, host_target

RNG = np.random.default_rng(0)


def a72_target():
    from ncc.targets.tvm.cortex_a72 import A72

    return tvm.target.Target(A72.spec)


def avx2_target():
    return tvm.target.Target({"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "haswell", "num-cores": 2})


def _pipeline(mod, target):
    with target:
        return tvm.transform.Sequential([
            relax.transform.DecomposeOpsForInference(), relax.transform.CanonicalizeBindings(),
            relax.get_pipeline("zero"), relax.transform.AttachAttrLayoutFreeBuffers()])(mod)


def _schedule(mod, target):
    with target:
        mod = S.default_schedule_pass(target)(mod)
        rep = {kernel: str(mod[kernel].attrs[S.SCHEDULE_ATTR]) if S.SCHEDULE_ATTR in (mod[kernel].attrs or {})
               else None for kernel in [gv.name_hint for gv, f in mod.functions_items()
                                        if isinstance(f, tvm.tirx.PrimFunc)]}
    return fold_weight_repacks(mod, target), rep


def _run(mod, target, inputs):
    ex = relax.build(mod, target)
    vm = relax.VirtualMachine(ex, tvm.cpu())
    return vm["main"](*[tvm.runtime.tensor(a) for a in inputs]).numpy()


def _graph(in_shapes, body, dtype="float32"):
    bb = relax.BlockBuilder()
    xs = [relax.Var(f"x{i}", relax.TensorType(s, dtype)) for i, s in enumerate(in_shapes)]
    with bb.function("main", xs):
        with bb.dataflow():
            out = bb.emit_output(body(bb, *xs))
        bb.emit_func_output(out)
    return bb.get()


def _c(a):
    return relax.const(np.asarray(a, dtype="float32"))


def check(mod, in_shapes, expect_rules, target=None, tol=1e-4):
    target = target or host_target()
    mod = _pipeline(mod, target)
    inputs = [RNG.standard_normal(s).astype("float32") for s in in_shapes]
    ref = _run(mod, target, inputs)
    smod, rep = _schedule(mod, target)
    got = _run(smod, target, inputs)
    used = set(v for v in rep.values() if v)
    for r in expect_rules:
        assert r in used, (r, rep)
    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-6)
    assert err < tol, (err, rep)
    return rep


def conv_graph(N, C, H, W, K, k, stride=1, pad=0, dil=1, groups=1, relu=True, residual=False):
    wt = RNG.standard_normal((K, C // groups, k, k)).astype("float32") * 0.2
    b = RNG.standard_normal((1, K, 1, 1)).astype("float32")

    def body(bb, x, *rest):
        y = bb.emit(relax.op.nn.conv2d(x, _c(wt), strides=stride, padding=pad, dilation=dil, groups=groups))
        y = bb.emit(relax.op.add(y, _c(b)))
        if residual:
            y = bb.emit(relax.op.add(y, rest[0]))
        if relu:
            y = bb.emit(relax.op.nn.relu(y))
        return y

    OH = (H + 2 * pad - dil * (k - 1) - 1) // stride + 1
    OW = (W + 2 * pad - dil * (k - 1) - 1) // stride + 1
    shapes = [(N, C, H, W)] + ([(N, K, OH, OW)] if residual else [])
    return _graph(shapes, body), shapes


CONV_CASES = [
    # N, C, H, W, K, k, stride, pad, dil, groups, expected rule
    (1, 5, 7, 9, 32, 3, 1, 1, 1, 1, "conv2d-nchw-direct"),
    (1, 3, 15, 15, 16, 3, 2, 1, 1, 1, "conv2d-nchw-direct"),
    (1, 8, 11, 13, 20, 3, 1, 0, 1, 1, "conv2d-nchw-direct"),  # K not a multiple of 16
    (1, 6, 12, 12, 10, 3, 1, 1, 1, 1, "conv2d-nchw-direct"),  # K=10 -> width-vector path
    (1, 4, 13, 13, 16, 5, 1, 2, 2, 1, "conv2d-nchw-direct"),  # dilated 5x5
    (1, 5, 6, 16, 24, 3, 1, 1, 1, 1, "conv2d-nchw-direct"),  # OW multiple of 16 -> x-vector kernel
    (1, 3, 4, 32, 14, 3, 1, 1, 1, 1, "conv2d-nchw-direct"),
    (1, 9, 3, 32, 12, 1, 1, 0, 1, 1, "conv2d-nchw-1x1"),
    (1, 6, 4, 4, 64, 3, 1, 1, 1, 1, "conv2d-nchw-direct"),  # small spatial: whole plane in registers
    (1, 6, 2, 2, 64, 1, 1, 0, 1, 1, "conv2d-nchw-1x1"),
    (1, 9, 8, 8, 24, 1, 1, 0, 1, 1, "conv2d-nchw-1x1"),  # flattened-plane 1x1 (OH*OW % 16 == 0)
    (1, 5, 4, 12, 20, 1, 1, 0, 1, 1, "conv2d-nchw-1x1"),
    (2, 7, 9, 9, 24, 1, 1, 0, 1, 1, "conv2d-nchw-1x1"),
    (1, 16, 9, 9, 48, 1, 2, 0, 1, 1, "conv2d-nchw-1x1"),  # strided 1x1
    (1, 13, 5, 7, 7, 1, 1, 0, 1, 1, "conv2d-nchw-1x1"),  # odd everything
    (1, 24, 9, 11, 24, 3, 1, 1, 1, 24, "conv2d-nchw-depthwise-grouped"),
    (1, 24, 17, 17, 24, 3, 2, 1, 1, 24, "conv2d-nchw-depthwise-grouped"),  # stride 2, odd padded width
    (1, 16, 32, 32, 16, 3, 2, 1, 1, 16, "conv2d-nchw-depthwise-grouped"),  # stride 2, even padded width
    (1, 8, 20, 20, 8, 5, 1, 2, 1, 8, "conv2d-nchw-depthwise-grouped"),  # 5x5, each channel padded in place
    (1, 16, 8, 8, 32, 3, 1, 1, 1, 4, "conv2d-nchw-depthwise-grouped"),  # grouped
    (1, 12, 6, 7, 12, 3, 1, 1, 1, 3, "conv2d-nchw-depthwise-grouped"),
    (1, 32, 8, 8, 32, 3, 1, 1, 1, 32, "conv2d-nchw-depthwise-grouped"),  # small map: channels in the lanes
    (1, 48, 8, 8, 48, 3, 2, 1, 1, 48, "conv2d-nchw-depthwise-grouped"),  # ... stride 2, 4x4 out
    (1, 16, 5, 5, 16, 5, 1, 2, 1, 16, "conv2d-nchw-depthwise-grouped"),  # ... 5x5 window
    (1, 16, 6, 6, 16, 3, 1, 0, 1, 16, "conv2d-nchw-depthwise-grouped"),  # ... no padding (copied blocked)
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"{c[-1]}-{i}" for i, c in enumerate(CONV_CASES)])
def test_conv(case):
    N, C, H, W, K, k, s, p, d, g, rule = case
    mod, shapes = conv_graph(N, C, H, W, K, k, s, p, d, g)
    check(mod, shapes, [rule])


@pytest.mark.parametrize("channels,width,stride,in_lanes", [
    (32, 8, 1, True), (48, 8, 2, True), (32, 15, 1, True),
    (32, 16, 1, False),  # wide enough for rows in the lanes
    (24, 8, 1, False),   # channels not a multiple of the 16 lanes
])
def test_small_map_depthwise_puts_channels_in_the_lanes(channels, width, stride, in_lanes):
    from ncc.targets.tvm.schedules.conv2d import match_conv2d_nchw, schedule_depthwise_channels

    mod, _ = conv_graph(1, channels, width, width, channels, 3, stride, 1, 1, channels)
    target = tvm.target.Target({"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "skylake-avx512"})
    mod = _pipeline(mod, target)
    func = next(f for gv, f in mod.functions_items() if "conv2d" in gv.name_hint)
    sch = tvm.s_tir.Schedule(func)
    assert schedule_depthwise_channels(sch, match_conv2d_nchw(sch), target) == in_lanes


def test_conv_residual_no_relu():
    mod, shapes = conv_graph(1, 8, 8, 8, 16, 3, 1, 1, residual=True, relu=False)
    check(mod, shapes, ["conv2d-nchw-direct"])


@pytest.mark.parametrize("triple,mcpu,bits,regs", [
    ("x86_64", "haswell", 256, 16), ("x86_64", "znver3", 256, 16), ("x86_64", "skylake-avx512", 512, 32),
    ("x86_64", "x86-64", 128, 16), ("aarch64", "cortex-a72", 128, 32)])
def test_vector_width_is_what_the_cpu_has(triple, mcpu, bits, regs):
    """TVM 0.27's llvm_get_vector_width says 512 for AVX2-only CPUs; tiles made for 16 lanes and
    32 registers spilled there (fp32 convs at a third of their speed on Zen 3)."""
    from ncc.targets.tvm.schedules._common import lanes, num_vregs

    target = tvm.target.Target({"kind": "llvm", "mtriple": f"{triple}-linux-gnu", "mcpu": mcpu})
    assert (lanes(target), num_vregs(target)) == (bits // 32, regs)


def avx512_target():
    return tvm.target.Target({"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "skylake-avx512", "num-cores": 2})


@pytest.mark.parametrize("target_of", [host_target, avx2_target, avx512_target], ids=["host", "avx2", "avx512"])
@pytest.mark.parametrize("k,channels", [(1, 24), (1, 13), (3, 8)])
def test_input_copy_of_a_1x1_conv(target_of, k, channels):
    """A 1x1 conv's zero "padding" is a plain copy of its input. With 32 vector registers (AVX-512)
    the conv reads its input itself; with 16 (AVX2) the copy stays, and as a 32 x 32 float32 map's
    channel planes are 4 KB apart, it writes them 16 elements further apart, exactly (1x1s with
    and without whole vector blocks). A 3x3's padded planes are 34 x 34: its pad stays as it is.
    (The AVX-512 target is only scheduled here; host runs whichever this CPU has.)"""
    from ncc.targets.tvm.schedules._common import num_vregs

    mod, shapes = conv_graph(1, channels, 32, 32, 48, k, 1, k // 2)
    target = target_of()
    if target_of is not avx512_target:
        check(mod, shapes, ["conv2d-nchw-1x1" if k == 1 else "conv2d-nchw-direct"], target=target)
    smod, _ = _schedule(_pipeline(mod, target), target)
    scripts = [f.script() for f in smod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    convs = [script for script in scripts if "conv2d_nchw" in script]
    inlined = k == 1 and num_vregs(target) > 16
    assert [('sblock("pad_temp")' in script) for script in convs] == [not inlined]
    assert [("buffer_dim_align" in script) for script in convs] == [k == 1 and not inlined]


@pytest.mark.parametrize("tgt", ["avx2", "a72"])
def test_conv_other_targets(tgt):
    """AVX2 (8 lanes, 16 registers) runs on this host and is checked numerically; A72 only compiles."""
    target = avx2_target() if tgt == "avx2" else a72_target()
    if tgt == "avx2":
        for case in [(1, 8, 10, 10, 32, 3, 1, 1), (1, 8, 6, 16, 24, 3, 1, 1), (1, 16, 9, 9, 48, 1, 2, 0),
                     (1, 24, 9, 11, 24, 3, 1, 1, 1, 24)]:
            mod, shapes = conv_graph(*case)
            check(mod, shapes, [], target=target)
        return
    mod, shapes = conv_graph(1, 8, 10, 10, 32, 3, 1, 1)
    mod = _pipeline(mod, target)
    smod, rep = _schedule(mod, target)
    assert "conv2d-nchw-direct" in rep.values()
    relax.build(smod, target)


@pytest.mark.parametrize("M,K,N,transposed", [(1, 37, 19, False), (3, 64, 100, False), (1, 512, 10, False), (2, 33, 70, True)])
def test_dense(M, K, N, transposed):
    wt = RNG.standard_normal((N, K) if transposed else (K, N)).astype("float32")
    b = RNG.standard_normal((N,)).astype("float32")

    def body(bb, x):
        w = _c(wt)
        if transposed:
            y = bb.emit(relax.op.linear(x, w, _c(b)))
        else:
            y = bb.emit(relax.op.add(relax.op.matmul(x, w), _c(b)))
        return y

    check(_graph([(M, K)], body), [(M, K)], ["dense-matmul"])


@pytest.mark.parametrize("kind", ["max3s2p1", "max2", "avg2", "avg3p1", "global"])
def test_pool(kind):
    shape = (1, 12, 13, 15)

    def body(bb, x):
        if kind == "max3s2p1":
            return bb.emit(relax.op.nn.max_pool2d(x, pool_size=3, strides=2, padding=1))
        if kind == "max2":
            return bb.emit(relax.op.nn.max_pool2d(x, pool_size=2, strides=2))
        if kind == "avg2":
            return bb.emit(relax.op.nn.avg_pool2d(x, pool_size=2, strides=2))
        if kind == "avg3p1":
            return bb.emit(relax.op.nn.avg_pool2d(x, pool_size=3, strides=1, padding=1, count_include_pad=False))
        return bb.emit(relax.op.mean(x, axis=[2, 3], keepdims=True))

    rep = check(_graph([shape], body), [shape], [])
    assert all(v is not None for v in rep.values()), rep
    assert "pool2d" in rep.values() or "reduction-generic" in rep.values(), rep


def test_injective_and_reduction():
    shape = (3, 17, 19)

    def body(bb, x):
        y = bb.emit(relax.op.nn.relu(relax.op.add(x, _c(RNG.standard_normal((19,))))))
        y = bb.emit(relax.op.nn.softmax(y, axis=-1))
        return bb.emit(relax.op.permute_dims(y, [0, 2, 1]))

    rep = check(_graph([shape], body), [shape], [])
    assert all(v is not None for v in rep.values()), rep


def test_int8_conv_not_claimed():
    """float rules must leave int8 / int32 conv kernels to the int8 rules."""
    from ncc.targets.tvm.schedules.conv2d import Conv2dNCHW1x1, Conv2dNCHWDirect, Conv2dNCHWGrouped, match_conv2d_nchw
    from ncc.targets.tvm.schedules.dense import DenseMatmul
    from tvm import s_tir

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 8, 8, 8), "int8"))
    w = relax.const(RNG.integers(-5, 5, (16, 8, 3, 3)).astype("int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.nn.conv2d(x, w, padding=1, out_dtype="int32"))
        bb.emit_func_output(y)
    mod = _pipeline(bb.get(), host_target())
    for gv, f in mod.functions_items():
        if isinstance(f, tvm.tirx.PrimFunc):
            assert match_conv2d_nchw(s_tir.Schedule(f)) is None
            for rule in (Conv2dNCHWDirect(), Conv2dNCHW1x1(), Conv2dNCHWGrouped(), DenseMatmul()):
                assert rule.apply(f, host_target(), False) is None, rule.name


def test_skips_already_scheduled():
    mod, shapes = conv_graph(1, 8, 8, 8, 16, 3, 1, 1)
    mod = _pipeline(mod, host_target())
    for gv, f in list(mod.functions_items()):
        if isinstance(f, tvm.tirx.PrimFunc):
            mod[gv] = f.with_attr("tirx.is_scheduled", True)
    with host_target():
        out = S.default_schedule_pass(host_target())(mod)
    assert S.kernel_schedules(out) == {}  # every kernel was scheduled before (by tuning records)


needs_cross = pytest.mark.skipif(not shutil.which("aarch64-linux-gnu-objdump"),
                                 reason="needs binutils-aarch64-linux-gnu (g++-aarch64-linux-gnu)")


def conv_kernel_instructions(so_path, objdump, pattern) -> dict:
    """{convolution kernel symbol: count of instructions matching `pattern`} in model.so."""
    listing = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(so_path)], capture_output=True, text=True,
                             check=True).stdout
    counts, symbol = {}, None
    for line in listing.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if header:
            symbol = header.group(1)
            if "conv2d" in symbol and symbol.endswith("_compute_") and "weight_prepack" not in symbol:
                counts[symbol] = 0
        elif symbol in counts and re.search(pattern, line):
            counts[symbol] += 1
    return counts


@pytest.fixture(scope="module")
def zoo_bundle(tmp_path_factory, zoo_onnx):
    from cli_helpers import invoke

    folder = tmp_path_factory.mktemp("fma")

    def get(target, *options):
        out = folder / "-".join((target, *options))
        if not out.exists():
            result = invoke("compile", zoo_onnx("vgg11", width_mult=0.5), "-o", out, "--target", target, *options)
            assert result.exit_code == 0, result.output
        return out

    return get


def test_host_convolutions_use_the_cpus_vector_fmas(zoo_bundle):
    import json

    spec = json.loads((zoo_bundle("host") / "manifest.json").read_text())["target"]["tvm_target"]
    wide = "zmm" if "avx512f" in open("/proc/cpuinfo").read() else "ymm"
    counts = conv_kernel_instructions(zoo_bundle("host") / "model.so", "objdump", rf"vfmadd\w*ps\s.*%{wide}")
    assert counts and all(n > 0 for n in counts.values()), (spec, counts)


@pytest.mark.skipif("avx512f" not in open("/proc/cpuinfo").read(), reason="an AVX-512 host")
def test_host_int8_kernels_run_in_whole_avx512_vectors(zoo_bundle):
    """LLVM's preference for 256-bit vectors on Intel's AVX-512 cores is off for the host, so the
    int8 kernels' VNNI dot products are zmm, not ymm halves; and their requantize is vector code,
    no value gathered or stored alone (TVM left it scalar and LLVM re-vectorized it across the
    output channels, storing one byte at a time: ncc.targets.tvm.vector_rounding)."""
    bundle = zoo_bundle("host", "--quantize", "int8", "--calib-samples", "4")
    so = bundle / "model.so"
    if "avx512_vnni" in open("/proc/cpuinfo").read():
        wide = conv_kernel_instructions(so, "objdump", r"vpdpbusd\s.*%zmm")
        halves = conv_kernel_instructions(so, "objdump", r"vpdpbusd\s.*%ymm")
        assert wide and all(n > halves[kernel] for kernel, n in wide.items()), (wide, halves)
    scalar = conv_kernel_instructions(so, "objdump", r"\b(vpextrb|vgather\w+|vcvtt?ss2si)\s")
    assert scalar and not any(scalar.values()), scalar


@needs_cross
def test_a72_convolutions_use_neon_fmas(zoo_bundle):
    counts = conv_kernel_instructions(zoo_bundle("cortex-a72") / "model.so", "aarch64-linux-gnu-objdump",
                                      r"\bfmla\s+v\d+\.4s")
    assert counts and all(n > 0 for n in counts.values()), counts


def test_the_manifest_says_which_schedule_every_kernel_ran(zoo_bundle):
    import json

    schedules = json.loads((zoo_bundle("host") / "manifest.json").read_text())["target"]["schedules"]
    assert schedules and all(source.startswith("default:") for source in schedules.values()), schedules
    assert {s for k, s in schedules.items() if "conv2d" in k} == {"default:conv2d-nchw-direct"}


def test_tuning_measures_the_default_schedule_and_never_ends_slower(tmp_path):
    import json

    from cli_helpers import invoke
    from ncc.targets.tvm.tuning import DEFAULTS, open_database
    from test_tvm_targets import tiny_model

    db = tmp_path / "db"
    result = invoke("compile", tiny_model(tmp_path), "-o", tmp_path / "b", "--tune-trials", "4", "--tuning-db", db)
    assert result.exit_code == 0, result.output
    (default,) = open_database(str(db), create=False, prefix=DEFAULTS).get_all_tuning_records()
    tuned = open_database(str(db), create=False).get_all_tuning_records()

    def seconds(record):
        return sum(float(s) for s in record.run_secs) / len(record.run_secs)

    # the search started from the default: the tuning database holds its tunable form with the default's
    # measurement (beside the candidates mutated from it, which carry the same marks)
    starts = [r for r in tuned if S.SCHEDULE_ATTR in str(r.trace) and "sample_perfect_tile" in str(r.trace)]
    assert any(seconds(record) == seconds(default) for record in starts)
    schedules = json.loads((tmp_path / "b" / "manifest.json").read_text())["target"]["schedules"]
    (conv,) = [source for kernel, source in schedules.items() if "conv2d" in kernel]
    faster = min(seconds(record) for record in tuned) < seconds(default)  # a tie is the default's
    assert conv == ("tuned" if faster else "default:conv2d-nchw-direct")
    again = invoke("compile", tiny_model(tmp_path), "-o", tmp_path / "c", "--tune-trials", "4", "--tuning-db", db)
    assert again.exit_code == 0, again.output  # a database holding both is tuned further
