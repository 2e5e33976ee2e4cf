"""ncc's int8 CPU schedule rules (conv2d_int8, dense_int8), rule by rule.

Each test builds a small Relax function as ncc's integer rewrite emits it
(pad with the zero point, conv2d/matmul to int32, zero-point correction),
legalizes and fuses it as ncc does, schedules it with one rule, builds it,
and compares the int32 result exactly with numpy's integer arithmetic. The
networks against ONNX Runtime: test_tvm_int8.py."""

import shutil
import subprocess

import numpy as np
import pytest
import tvm
from ncc.targets.tvm.schedules.conv2d_int8 import Conv2dInt8
from ncc.targets.tvm.schedules.int8_common import Isa
from ncc.targets.tvm.schedules.dense_int8 import DenseInt8
from tvm import relax
from tvm_kernels import host_target as host
from tvm_kernels import with_scheduled


A72 = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72", "mattr": ["+neon"], "num-cores": 4}


# -- reference integer arithmetic ---------------------------------------------

def np_conv(x, w, stride, pad, zx, groups):
    """int64 NCHW conv of x (padded with zx) and w, minus zx * sum(w): exact."""
    x = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=zx)
    n, c, h, wd = x.shape
    oc, icg, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, oc, oh, ow), np.int64)
    ocg = oc // groups
    for o in range(oc):
        g = o // ocg
        for i in range(icg):
            for r in range(kh):
                for s in range(kw):
                    patch = x[:, g * icg + i, r:r + stride * oh:stride, s:s + stride * ow:stride]
                    out[:, o] += patch * int(w[o, i, r, s])
    return out - zx * w.astype(np.int64).sum(axis=(1, 2, 3)).reshape(1, -1, 1, 1)


# -- building -------------------------------------------------------------------

def conv_module(shape_x, dtype, w, stride, pad, zx, groups, float_sums=False):
    """float_sums: the conv as integer_ops emits a wide depthwise one, integers summed in float32."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape_x, dtype)) if hasattr(relax, "TensorType") else None
    if x is None:
        raise RuntimeError("relax.TensorType missing")
    with bb.function("main", [x]):
        with bb.dataflow():
            data = x
            if zx and pad:
                data = bb.emit(relax.op.nn.pad(x, [0, 0, 0, 0, pad, pad, pad, pad], pad_value=float(zx)))
                p = 0
            else:
                p = pad
            weight, summed = (w.astype(np.float32), "float32") if float_sums else (w, "int32")
            acc = bb.emit(relax.op.nn.conv2d(data, relax.const(weight), strides=stride, padding=p, groups=groups,
                                             out_dtype=summed))
            if float_sums:
                acc = bb.emit(relax.op.astype(acc, "int32"))
            if zx:
                off = (zx * w.astype(np.int64).sum(axis=(1, 2, 3))).astype(np.int32).reshape(1, -1, 1, 1)
                acc = bb.emit(relax.op.subtract(acc, relax.const(off)))
            out = bb.emit_output(acc)
        bb.emit_func_output(out)
    return bb.get()


def dense_module(m, k, dtype, w):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((m, k), dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            acc = bb.emit(relax.op.matmul(x, relax.op.permute_dims(relax.const(w), [1, 0]), out_dtype="int32"))
            out = bb.emit_output(acc)
        bb.emit_func_output(out)
    return bb.get()


def lower(mod, target):
    with target:
        return tvm.transform.Sequential([
            relax.transform.DecomposeOpsForInference(), relax.transform.CanonicalizeBindings(),
            relax.get_pipeline("zero"), relax.transform.AttachAttrLayoutFreeBuffers()])(mod)


def schedule_with(mod, target, rule):
    """Apply one rule; return (module ready to build, names of the PrimFuncs it scheduled)."""
    scheduled = {}
    for gv, func in list(mod.functions_items()):
        if isinstance(func, tvm.tirx.PrimFunc):
            sch = rule.apply(func, target, False)
            if sch is not None:
                scheduled[gv] = sch.mod["main"]
    return with_scheduled(mod, target, scheduled), [(gv.name_hint, f.script()) for gv, f in scheduled.items()]


def run(mod, target, x):
    ex = relax.build(mod, target)
    vm = relax.VirtualMachine(ex, tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


CONV_CASES = [
    # (ic, oc, h, w, k, stride, pad, zx, dtype, expect_vnni)      what it covers
    (16, 32, 9, 9, 3, 1, 1, 7, "uint8", True),     # odd size, nonzero zero point: channel-vector VNNI
    (8, 16, 16, 16, 3, 1, 1, 3, "uint8", True),    # pixel-vector VNNI (OW % 16 == 0)
    (16, 24, 8, 8, 3, 1, 1, 0, "uint8", True),     # pixel-vector VNNI, 8 lanes, OC 24
    (12, 24, 16, 16, 1, 1, 0, 0, "uint8", True),   # 1x1
    (64, 48, 8, 8, 1, 1, 0, 9, "uint8", True),     # 1x1 flattened pixels (64 per image)
    (64, 32, 4, 4, 1, 1, 0, 0, "uint8", True),     # 1x1, 4x4: falls back to channel-vector
    (16, 32, 15, 15, 3, 2, 1, 11, "uint8", True),  # stride 2, odd size, pad with zero point
    (20, 40, 7, 7, 3, 2, 0, 0, "uint8", True),     # stride 2, no pad, OC % 16 != 0 (8-lane VNNI)
    (3, 16, 11, 11, 3, 1, 1, 5, "uint8", True),    # 3 input channels: reduction zero-padded to 4
    (3, 32, 16, 16, 3, 1, 1, 0, "uint8", True),    # first layer, channel-vector VNNI
    (137, 24, 9, 9, 3, 1, 1, 2, "uint8", True),    # NeuralScale's odd widths: IC 137
    (137, 40, 16, 16, 1, 1, 0, 0, "uint8", True),  # 1x1 pixel path, IC 137
    (8, 20, 10, 10, 3, 1, 1, 0, "uint8", False),   # OC 20: 4 lanes
    (16, 32, 9, 9, 3, 1, 1, 0, "int8", False),     # int8 activations: widening
    (13, 12, 9, 9, 3, 1, 1, 0, "int8", False),     # odd IC, OC 12: widening, 4 lanes
]


@pytest.mark.parametrize("ic,oc,h,w,k,stride,pad,zx,dtype,vnni", CONV_CASES)
def test_conv2d_int8_exact(ic, oc, h, w, k, stride, pad, zx, dtype, vnni):
    rng = np.random.default_rng(ic * 1000 + oc + h)
    lo, hi = (0, 256) if dtype == "uint8" else (-128, 128)
    x = rng.integers(lo, hi, (1, ic, h, w)).astype(dtype)
    wt = rng.integers(-64, 64, (oc, ic, k, k)).astype(np.int8)
    target = host()
    mod = lower(conv_module(x.shape, dtype, wt, stride, pad, zx, 1), target)
    mod, done = schedule_with(mod, target, Conv2dInt8())
    assert done, "Conv2dInt8 did not match"
    uses_vnni = any("vpdpbusd" in script for _, script in done)
    assert uses_vnni == (vnni and Isa(target).vnni512)
    np.testing.assert_array_equal(run(mod, target, x), np_conv(x, wt, stride, pad, zx, 1))


@pytest.mark.parametrize("ic,oc,h,w,k,stride,pad,zx,dtype,vnni", CONV_CASES)
def test_conv2d_int8_avx2_pairs_exact(ic, oc, h, w, k, stride, pad, zx, dtype, vnni):
    """x86 without VNNI (haswell): whole blocks of 8 output channels take vpmaddwd over input
    channel pairs widened to int16 (any AVX2 host runs it), the rest LLVM's widening; exact
    for both activation types and full-range weights."""
    rng = np.random.default_rng(ic * 1000 + oc + h)
    lo, hi = (0, 256) if dtype == "uint8" else (-128, 128)
    x = rng.integers(lo, hi, (1, ic, h, w)).astype(dtype)
    wt = rng.integers(-128, 128, (oc, ic, k, k)).astype(np.int8)
    target = host("haswell")
    mod, done = schedule_with(lower(conv_module(x.shape, dtype, wt, stride, pad, zx, 1), target), target,
                              Conv2dInt8())
    assert [("llvm.x86.avx2.pmadd.wd" in script) for _, script in done] == [oc % 8 == 0]
    np.testing.assert_array_equal(run(mod, target, x), np_conv(x, wt, stride, pad, zx, 1))


@pytest.mark.parametrize("ic,oc,h,k,strategy", [
    (3, 32, 16, 3, "vnni_channels"),       # the first layer: its reduction zero-padded to 4
    (16, 24, 8, 3, "vnni_pixels"),
    (64, 64, 8, 3, "vnni_channels"),       # a 3x3 conv of more channels: output channels in the lanes
    (256, 256, 8, 3, "vnni_channels"),
    (64, 48, 8, 1, "vnni_pixels_flat"),    # 1x1: the image's pixels in the lanes
])
def test_conv2d_int8_picks_the_lanes_that_measured_faster(ic, oc, h, k, strategy):
    rng = np.random.default_rng(ic)
    x = rng.integers(0, 256, (1, ic, h, h)).astype("uint8")
    wt = rng.integers(-64, 64, (oc, ic, k, k)).astype(np.int8)
    target = host("icelake-server")  # scheduled only: the choice on any machine
    _, done = schedule_with(lower(conv_module(x.shape, "uint8", wt, 1, k // 2, 0, 1), target), target, Conv2dInt8())
    assert [f'"{strategy}"' in script for _, script in done] == [True]


DW_CASES = [
    (32, 17, 17, 3, 1, 1, 5),   # odd size, zero point padding
    (48, 16, 16, 3, 2, 1, 0),   # stride 2 to an 8x8 map
    (24, 8, 8, 3, 1, 1, 3),     # 24 channels fill no 16 lanes
    (16, 5, 5, 5, 1, 2, 0),     # 5x5 kernel, odd size
    (64, 8, 8, 3, 1, 1, 5),     # MobileNetV2's small maps: channels in the lanes
    (160, 4, 4, 3, 1, 1, 0),
    (32, 9, 9, 3, 2, 1, 7),     # stride 2, odd size, zero point
    (32, 16, 16, 3, 1, 1, 0),   # wider maps keep rows in the lanes
]


@pytest.mark.parametrize("c,h,w,k,stride,pad,zx", DW_CASES)
def test_depthwise_int8_exact(c, h, w, k, stride, pad, zx):
    rng = np.random.default_rng(c + h)
    x = rng.integers(0, 256, (1, c, h, w)).astype("uint8")
    wt = rng.integers(-64, 64, (c, 1, k, k)).astype(np.int8)
    target = host()
    mod = lower(conv_module(x.shape, "uint8", wt, stride, pad, zx, c), target)
    mod, done = schedule_with(mod, target, Conv2dInt8())
    # channels in the lanes for maps narrower than 16 whose channels fill the int32 lanes
    out_w = (w + 2 * pad - k) // stride + 1
    channels = out_w < 16 and c % Isa(target).i32_lanes == 0
    strategy = "depthwise_channels" if channels else "depthwise_rows"
    assert [f'"{strategy}"' in script for _, script in done] == [True]
    np.testing.assert_array_equal(run(mod, target, x), np_conv(x, wt, stride, pad, zx, c))


FLOAT_SUM_CASES = [
    (32, 32, 32, 3, 1, 1, 0),   # MobileNetV2's 32x32 maps
    (48, 33, 33, 3, 2, 1, 0),   # stride 2, odd padded width: the parity split pads a column
    (16, 32, 32, 3, 2, 1, 0),   # stride 2, even padded width
    (24, 20, 20, 5, 1, 2, 9),   # 5x5, zero point padding (a pad kernel of its own)
    (16, 16, 16, 3, 1, 1, 0),
]


@pytest.mark.parametrize("c,h,w,k,stride,pad,zx", FLOAT_SUM_CASES)
def test_depthwise_integers_summed_in_float_are_exact(c, h, w, k, stride, pad, zx):
    """A wide depthwise int8 conv sums its integers in float32 (integer_ops), scheduled by the float
    depthwise rule; extreme values (255 x -128 in every tap) stay exact."""
    from ncc.targets.tvm.schedules import schedule_for

    rng = np.random.default_rng(c + h)
    x = rng.integers(0, 256, (1, c, h, w)).astype("uint8")
    x[0, 0] = 255
    wt = rng.integers(-128, 128, (c, 1, k, k)).astype(np.int8)
    wt[0] = -128
    target = host()
    mod = lower(conv_module(x.shape, "uint8", wt, stride, pad, zx, c, float_sums=True), target)
    rules, funcs = [], {}
    for gv, func in list(mod.functions_items()):
        scheduled = schedule_for(func, target) if isinstance(func, tvm.tirx.PrimFunc) else None
        if scheduled is not None and "conv2d" in gv.name_hint:
            funcs[gv] = scheduled[0].mod["main"]
            rules.append(scheduled[1])
    assert rules == ["conv2d-nchw-depthwise-grouped"]
    mod = with_scheduled(mod, target, funcs)
    np.testing.assert_array_equal(run(mod, target, x), np_conv(x, wt, stride, pad, zx, c))


@pytest.mark.parametrize("c,h,k,stride,groups,in_float", [
    (32, 32, 3, 1, 32, True),
    (32, 32, 3, 2, 32, True),     # 16 wide out
    (32, 16, 3, 2, 32, False),    # 8 wide out: integer sums, channels in the lanes
    (32, 8, 3, 1, 32, False),
    (32, 32, 3, 1, 1, False),     # dense
    (32, 32, 3, 1, 8, False),     # grouped
])
def test_integer_ops_sums_wide_depthwise_convs_in_float(c, h, k, stride, groups, in_float):
    from ncc.targets.tvm.integer_ops import _sums_in_float

    x = relax.Var("x", relax.TensorType((1, c, h, h), "uint8"))
    weight = np.ones((c, c // groups, k, k), np.int8)
    call = relax.op.nn.conv2d(x, relax.const(weight), strides=stride, padding=k // 2, groups=groups,
                              out_dtype="int32")
    assert _sums_in_float(weight, call.attrs, x) == in_float


@pytest.mark.parametrize("dtype,relu", [("uint8", True), ("uint8", False), ("int8", True), ("int8", False)])
def test_quantized_add_is_within_one_step_of_exact_arithmetic(dtype, relu):
    """The residual Add's integer kernel (two multiply-adds per output) against
    quantize([relu](dequantize(a) + dequantize(b))) in float64, ties to even:
    at most one step apart, and only at the few values that lie within float32
    rounding of a rounding boundary."""
    from ncc.targets.tvm.integer_ops import integer_add_pass

    rng = np.random.default_rng(5)
    lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
    (sa, za), (sb, zb), (so, zo) = (0.0371, 131 if dtype == "uint8" else 3), (0.0219, 97 if dtype == "uint8" else -7), \
        (0.0413, (10 if relu else 120) if dtype == "uint8" else -2)
    a, b = (rng.integers(lo, hi + 1, (1, 32, 16, 16)).astype(dtype) for _ in range(2))
    bb = relax.BlockBuilder()
    xa, xb = (relax.Var(n, relax.TensorType(a.shape, dtype)) for n in ("a", "b"))
    const = lambda v, t: relax.const(np.array(v, t))  # noqa: E731
    with bb.function("main", [xa, xb]):
        with bb.dataflow():
            fa = bb.emit(relax.op.dequantize(xa, const(sa, "float32"), const(za, dtype), axis=1))
            fb = bb.emit(relax.op.dequantize(xb, const(sb, "float32"), const(zb, dtype), axis=1))
            v = bb.emit(relax.op.add(fa, fb))
            if relu:
                v = bb.emit(relax.op.nn.relu(v))
            out = bb.emit_output(relax.op.quantize(v, const(so, "float32"), const(zo, dtype), axis=1,
                                                   out_dtype=dtype))
        bb.emit_func_output(out)
    target = host()
    mod = integer_add_pass()(bb.get())
    assert "quantized_add" in mod.script()
    ex = relax.build(lower(mod, target), target)
    got = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(a), tvm.runtime.tensor(b)).numpy()
    value = sa * (a.astype(np.float64) - za) + sb * (b.astype(np.float64) - zb)
    if relu:
        value = np.maximum(value, 0)
    expected = np.clip(np.rint(value / so) + zo, lo, hi)
    diff = np.abs(got.astype(np.int64) - expected)
    assert diff.max() <= 1 and np.count_nonzero(diff) <= diff.size // 1000, (diff.max(), np.count_nonzero(diff))


def test_grouped_conv_is_left_to_other_rules():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (1, 16, 8, 8)).astype("uint8")
    wt = rng.integers(-64, 64, (32, 8, 3, 3)).astype(np.int8)
    target = host()
    mod = lower(conv_module(x.shape, "uint8", wt, 1, 1, 0, 2), target)
    mod, done = schedule_with(mod, target, Conv2dInt8())
    assert not done
    np.testing.assert_array_equal(run(mod, target, x), np_conv(x, wt, 1, 1, 0, 2))


def test_conv2d_int8_avx2_target_without_vnni():
    """A target without AVX512-VNNI (haswell) gets the int16 pair schedule; it runs here."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (1, 16, 9, 9)).astype("uint8")
    wt = rng.integers(-64, 64, (32, 16, 3, 3)).astype(np.int8)
    target = host("haswell")
    mod = lower(conv_module(x.shape, "uint8", wt, 1, 1, 4, 1), target)
    mod, done = schedule_with(mod, target, Conv2dInt8())
    assert done and not any("vpdpbusd" in s for _, s in done)
    assert all('"pmaddwd_channels"' in s for _, s in done)
    np.testing.assert_array_equal(run(mod, target, x), np_conv(x, wt, 1, 1, 4, 1))


@pytest.mark.parametrize("m,k,n,dtype,vnni", [
    (1, 64, 32, "uint8", True),
    (3, 128, 48, "uint8", True),
    (1, 30, 10, "uint8", False),   # N 10 (the classifiers): vectorized widening
    (2, 64, 32, "int8", False),
])
def test_dense_int8_exact(m, k, n, dtype, vnni):
    rng = np.random.default_rng(k + n)
    lo, hi = (0, 256) if dtype == "uint8" else (-128, 128)
    x = rng.integers(lo, hi, (m, k)).astype(dtype)
    wt = rng.integers(-64, 64, (n, k)).astype(np.int8)
    target = host()
    mod = lower(dense_module(m, k, dtype, wt), target)
    mod, done = schedule_with(mod, target, DenseInt8())
    assert done
    assert any("vpdpbusd" in s for _, s in done) == (vnni and Isa(target).vnni512)
    np.testing.assert_array_equal(run(mod, target, x), x.astype(np.int64) @ wt.astype(np.int64).T)


# -- aarch64 ----------------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("aarch64-linux-gnu-g++"), reason="needs g++-aarch64-linux-gnu")
def test_a72_conv_uses_neon_widening_multiply_accumulate(tmp_path):
    rng = np.random.default_rng(3)
    target = tvm.target.Target(A72)
    for groups, wshape in ((1, (32, 16, 3, 3)), (16, (16, 1, 3, 3))):
        wt = rng.integers(-64, 64, wshape).astype(np.int8)
        mod = lower(conv_module((1, 16, 16, 16), "uint8", wt, 1, 1, 3, groups), target)
        mod, done = schedule_with(mod, target, Conv2dInt8())
        assert done
        so = str(tmp_path / f"a72_{groups}.so")
        relax.build(mod, target).export_library(so, cc="aarch64-linux-gnu-g++")
        asm = subprocess.run(["aarch64-linux-gnu-objdump", "-d", so], capture_output=True, text=True).stdout
        ops = {op for op in ("smlal", "smlal2", "smull", "smull2", "sadalp", "umlal") if f"\t{op}\t" in asm}
        assert ops, "no NEON widening multiply-accumulate in the aarch64 conv kernel"


# -- integer_ops copy --------------------------------------------------------------
