"""int8 that runs as int8 under TVM: a Relax rewrite of QDQ-wrapped layers
into integer operators.

TVM's ONNX importer turns a QDQ model into quantize/dequantize around float
conv2d and matmul: the weights are dequantized (and folded to float32
constants) and the layer computes in float, so an int8 model runs no faster
than its float original. This rewrite runs right after import, before
constant folding, and replaces

    conv2d(dequantize(x_q, sx, zx), dequantize(w_q, sw, 0))
    matmul(dequantize(x_q, sx, zx), permute_dims(dequantize(w_q, sw, 0)))

by the integer layer (uint8/int8 x int8 -> int32 accumulation) and its
rescale to the float value the float layer had:

    (conv2d(pad(x_q, zx), w_q, out_dtype=int32) - zx * sum(w_q)) * (sx * sw)

The bias add, Relu and the requantize (quantize to the next layer's scale)
that follow are elementwise and fuse into the integer kernel, so the float
values never reach memory. Padding uses zx, the integer that stands for 0.0.
A max pool between dequantize and quantize of one scale pools the integers.
A residual Add of two quantized tensors (dequantize, add, [Relu,] quantize)
becomes one elementwise PrimFunc of the two integer tensors (integer_add_pass),
so that no dequantized float tensor is written between kernels.
A dense conv whose output channels do not fill the CPU schedules' vector
blocks (NeuralScale's 137 or 230) computes zero-weight channels up to a
multiple of 8 (4 below 8; none below 4) and slices them off before the rescale; the slice
fuses into the kernel, so only the accumulator tile is wider. A depthwise
conv on a map at least 16 wide sums the same integers in float32 (exact below
2**24), where the CPUs' float multiply-adds outrun their int32 ones.

It is done on Relax rather than on the ONNX graph because TVM's ONNX
importer has no converter for ONNX's integer operators (ConvInteger,
QLinearConv, QLinearMatMul), and the bundle's model.onnx must stay the QDQ
model ONNX Runtime runs as the reference. Layers it cannot prove integer
(asymmetric weights, non-constant weights, other layouts) stay float.
"""

import functools

import numpy as np

FLOAT_SUM_MIN_WIDTH = 16  # a depthwise output at least this wide sums its integers in float32


def integer_range(dtype):
    """The (lo, hi) float bounds of a uint8 or int8 value."""
    return (0.0, 255.0) if dtype == "uint8" else (-128.0, 127.0)


def integer_layers_pass():
    """Relax passes: QDQ-wrapped conv2d and matmul to integer operators, then
    residual adds of two quantized tensors to one integer kernel."""
    import tvm
    from tvm import relax

    @relax.transform.function_pass(opt_level=0, name="ncc.QDQToIntegerOps")
    def rewrite(func, _mod, _ctx):
        return _rewrite_function(func)

    return tvm.transform.Sequential([rewrite, integer_add_pass(), relax.transform.FoldConstant(),
                                     fold_requantize_pass(), reciprocal_quantize_pass()],
                                    name="ncc.IntegerLayers")


def fold_requantize_pass():
    """quantize((float(acc [- offset]) * rescale) + bias, s, z) of an integer
    layer to clip(round(float(acc) * (rescale / s) + ((bias - offset * rescale) / s + z))):
    one multiply-add per output in the kernel's epilogue instead of an integer
    subtract, a multiply, an add, a divide and an add. The constants are folded
    in float64 and rounded once to float32; an output can differ from the
    unfolded arithmetic only where the value lies within float32 rounding of a
    rounding boundary, and then by one step."""
    from tvm import relax
    from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

    acc = wildcard()
    offset = is_const()
    sub = is_op("relax.subtract")(acc, offset)
    cast = is_op("relax.astype")(sub | acc)
    rescale, bias = is_const(), is_const()
    mul = is_op("relax.multiply")(cast, rescale)
    add = is_op("relax.add")(mul, bias)
    pattern = is_op("relax.quantize")(add, is_const(), is_const())

    def rewriter(expr, matches):
        scale, zero = _value(expr.args[1]), _value(expr.args[2])
        out_dtype = str(expr.attrs.out_dtype)
        accumulator = matches[acc]
        if (scale.size != 1 or zero.size != 1 or out_dtype not in ("uint8", "int8")
                or str(accumulator.ty.dtype) != "int32" or str(matches[cast].attrs.dtype) != "float32"):
            return expr
        s, z = float(scale.reshape(())), float(zero.reshape(()))
        m = _value(matches[rescale]).astype(np.float64)
        b = _value(matches[bias]).astype(np.float64)
        off = _value(matches[offset]).astype(np.float64) if sub in matches else np.zeros((), np.float64)
        try:
            mult = np.broadcast_to(m, np.broadcast_shapes(m.shape, off.shape)) / s
            add_c = (b - off * m) / s + z
        except ValueError:
            return expr
        out_shape = [int(d) for d in expr.ty.shape]
        if len(np.broadcast_shapes(mult.shape, add_c.shape, tuple(out_shape))) != len(out_shape):
            return expr
        lo, hi = integer_range(out_dtype)
        value = relax.op.add(relax.op.multiply(relax.op.astype(accumulator, "float32"),
                                               relax.const(mult.astype(np.float32))),
                             relax.const(add_c.astype(np.float32)))
        return relax.op.astype(relax.op.clip(relax.op.round(value), lo, hi), out_dtype)

    @relax.transform.function_pass(opt_level=0, name="ncc.FoldRequantize")
    def transform(func, _mod, _ctx):
        return rewrite_call(pattern, rewriter, func)

    return transform


def reciprocal_quantize_pass():
    """quantize(x, s, z) of a float32 x with a scalar constant s to
    clip(round(x * (1/s)) + z) cast to the integer type.

    Legalized, relax.quantize divides by s: a vector divide per output in
    every kernel's epilogue (vdivps: 5+ cycles per 16 values), as costly as the
    rest of the requantize. A multiply by 1/s differs from the divide by at
    most one rounding of the float quotient, so an output changes only when x/s
    lies within an ulp of a rounding boundary, and then by one step, the same
    multiplier form ONNX Runtime's QLinearConv uses."""
    from tvm import relax
    from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

    x = wildcard()
    pattern = is_op("relax.quantize")(x, is_const(), is_const())

    def rewriter(expr, matches):
        scale, zero = _value(expr.args[1]), _value(expr.args[2])
        out_dtype = str(expr.attrs.out_dtype)
        if (scale.size != 1 or zero.size != 1 or out_dtype not in ("uint8", "int8")
                or str(matches[x].ty.dtype) != "float32"):
            return expr
        lo, hi = integer_range(out_dtype)
        inverse = relax.const(np.float32(1.0) / np.float32(scale.reshape(()).item()), "float32")
        value = relax.op.round(relax.op.multiply(matches[x], inverse))
        if int(zero.reshape(())):
            value = relax.op.add(value, relax.const(np.float32(int(zero.reshape(()))), "float32"))
        return relax.op.astype(relax.op.clip(value, lo, hi), out_dtype)

    @relax.transform.function_pass(opt_level=0, name="ncc.ReciprocalQuantize")
    def transform(func, _mod, _ctx):
        return rewrite_call(pattern, rewriter, func)

    return transform


def integer_add_pass():
    """quantize([relu](dequantize(a) + dequantize(b))) to one elementwise
    PrimFunc that reads both quantized tensors.

    Left as Relax ops, FuseOps fuses the dequantize of one Add input into the
    kernel that produced it (a conv), which then writes a float32 tensor that
    the Add kernel reads back: 4x the bytes of the quantized tensor. As one
    call_tir of both integer tensors, the dequantize-add-quantize can only be
    fused whole (into one producer), and every tensor between kernels stays
    uint8/int8. Its arithmetic is two multiply-adds per output
    (_quantized_add_constants), not the dequantize-add-divide the Relax ops
    legalize to (the divide alone cost more than the 1x1 conv it was fused
    into): an output differs from theirs only where the value lies within
    float32 rounding of a rounding boundary, and then by one step."""
    import tvm
    from tvm import relax

    @tvm.ir.transform.module_pass(opt_level=0, name="ncc.IntegerResidualAdd")
    def transform(mod, _ctx):
        mutator = _AddMutator(mod)
        for gv, func in list(mod.functions_items()):
            if isinstance(func, relax.Function):
                mutator.builder_.update_func(gv, mutator.visit_expr(func))
        return mutator.builder_.get()

    return transform


def _make_add_mutator():
    from tvm import relax, te, tirx

    @relax.expr_functor.mutator
    class AddMutator(relax.PyExprMutator):
        def visit_call_(self, call):  # pylint: disable=arguments-renamed
            call = super().visit_call_(call)
            matched = _match_quantized_add(call, self.lookup_binding)
            if matched is None:
                return call
            (a, sa, za), (b, sb, zb), relu, (so, zo, out_dtype) = matched
            ka, kb, offset, (lo, hi) = _quantized_add_constants(sa, za, sb, zb, so, zo, relu, out_dtype)

            def qadd(ta, tb):
                def fn(*i):
                    v = (tirx.Cast("float32", ta(*i)) * tirx.const(ka, "float32")
                         + tirx.Cast("float32", tb(*i)) * tirx.const(kb, "float32") + tirx.const(offset, "float32"))
                    q = tirx.max(tirx.min(tirx.nearbyint(v), tirx.const(hi, "float32")), tirx.const(lo, "float32"))
                    return tirx.Cast(out_dtype, q)

                return te.compute(ta.shape, fn, name="quantized_add")

            return self.builder_.call_te(qadd, a, b, primfunc_name_hint="quantized_add")

    return AddMutator


def _quantized_add_constants(sa, za, sb, zb, so, zo, relu, out_dtype):
    """quantize([relu](sa*(a - za) + sb*(b - zb)), so, zo) as
    clip(round(a*ka + b*kb + offset), lo, hi): the scales divided out and
    the zero points folded into one offset (in float64, rounded once to
    float32), and a Relu as the lower bound zo (so > 0, so Relu commutes with
    the scaling, and zo is an integer, so with the rounding)."""
    ka, kb = sa / so, sb / so
    offset = zo - (za * sa + zb * sb) / so
    lo, hi = integer_range(out_dtype)
    if relu:
        lo = max(lo, float(zo))
    return (float(np.float32(ka)), float(np.float32(kb)), float(np.float32(offset)), (lo, hi))


def _AddMutator(mod):  # pylint: disable=invalid-name
    return _make_add_mutator()(mod)


def _match_quantized_add(call, lookup):
    """(a, sa, za), (b, sb, zb), relu, (so, zo, out_dtype) of
    quantize([relu](add(dequantize(a), dequantize(b)))) with scalar constant
    scales and zero points, equal integer input shapes; else None."""
    from tvm import relax

    def op(expr, name):
        expr = _resolve(expr, lookup)
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm_op()) and expr.op.name == name:
            return expr
        return None

    def scalar(expr):
        expr = _resolve(expr, lookup)
        if not isinstance(expr, tvm_const()):
            return None
        value = expr.value.numpy()
        return value.reshape(()).item() if value.size == 1 else None

    if not (isinstance(call.op, tvm_op()) and call.op.name == "relax.quantize"):
        return None
    so, zo = scalar(call.args[1]), scalar(call.args[2])
    out_dtype = str(call.attrs.out_dtype)
    if so is None or zo is None or out_dtype not in ("uint8", "int8"):
        return None
    inner, relu = op(call.args[0], "relax.nn.relu"), False
    if inner is not None:
        relu, add = True, op(inner.args[0], "relax.add")
    else:
        add = op(call.args[0], "relax.add")
    if add is None:
        return None
    sides = []
    for arg in add.args:
        dq = op(arg, "relax.dequantize")
        if dq is None:
            return None
        s, z = scalar(dq.args[1]), scalar(dq.args[2])
        x = dq.args[0]
        dtype = str(x.ty.dtype)
        if s is None or z is None or dtype not in ("uint8", "int8"):
            return None
        sides.append((x, float(s), int(z)))
    (a, _, _), (b, _, _) = sides
    shape_a, shape_b = a.ty.shape, b.ty.shape
    if shape_a is None or shape_b is None or len(shape_a) != len(shape_b) or any(
            int(p) != int(q) for p, q in zip(shape_a, shape_b)):
        return None
    return sides[0], sides[1], relu, (float(so), int(zo), out_dtype)


def _resolve(expr, lookup):
    from tvm import relax

    while isinstance(expr, relax.Var):
        bound = lookup(expr)
        if bound is None:
            break
        expr = bound
    return expr


def tvm_op():
    import tvm

    return tvm.ir.Op


def _rewrite_function(func):
    from tvm import relax
    from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

    def dequantize(data):
        return is_op("relax.dequantize")(data, is_const(), is_const())

    x, w = wildcard(), is_const()
    dq_x, dq_w = dequantize(x), dequantize(w)
    conv = is_op("relax.nn.conv2d")(dq_x, dq_w)
    transposed = is_op("relax.permute_dims")(dq_w)
    matmul = is_op("relax.matmul")(dq_x, transposed)

    def rewrite_conv(expr, matches):
        layer = _Layer.of(matches[dq_x], matches[dq_w], weight_axis=0)
        attrs = expr.attrs
        if layer is None or attrs.data_layout != "NCHW" or attrs.kernel_layout != "OIHW":
            return expr
        return layer.conv2d(matches[x], attrs)

    def rewrite_matmul(expr, matches):
        layer = _Layer.of(matches[dq_x], matches[dq_w], weight_axis=0)
        if layer is None or len(layer.weight.shape) != 2 or tuple(matches[transposed].attrs.axes) != (1, 0):
            return expr
        return layer.matmul(matches[x])

    pool = is_op("relax.nn.max_pool2d")(dq_x)
    pooled = is_op("relax.quantize")(pool, is_const(), is_const())

    def rewrite_pool(expr, matches):
        # max commutes with a dequantize/quantize pair of one scale and zero point
        dq, q = matches[dq_x], expr
        same = all(np.array_equal(_value(a), _value(b)) for a, b in zip(dq.args[1:], q.args[1:]))
        if not same or str(q.attrs.out_dtype) != str(matches[x].ty.dtype):
            return expr
        return relax.Call(matches[pool].op, [matches[x]], matches[pool].attrs)

    for pattern, rewriter in ((conv, rewrite_conv), (matmul, rewrite_matmul), (pooled, rewrite_pool)):
        func = rewrite_call(pattern, rewriter, func)
    return func


class _Layer:
    """The integers and scales of one QDQ-wrapped weighted layer."""

    def __init__(self, x_scale, x_zero, weight, w_scale):
        self.x_scale, self.x_zero, self.weight, self.w_scale = x_scale, x_zero, weight, w_scale

    @classmethod
    def of(cls, dq_x, dq_w, weight_axis):
        x_scale, x_zero = (_value(arg) for arg in dq_x.args[1:])
        weight, w_scale, w_zero = (_value(arg) for arg in dq_w.args)
        integer = ("int8", "uint8")
        if (x_scale.size != 1 or x_zero.size != 1 or str(dq_x.args[0].ty.dtype) not in integer
                or weight.dtype != np.int8 or np.any(w_zero != 0)
                or (w_scale.size != 1 and int(dq_w.attrs.axis) != weight_axis)):
            return None
        return cls(float(x_scale.reshape(())), int(x_zero.reshape(())), weight, w_scale.astype(np.float32))

    def _per_output(self, values, ndim, axis):
        """values[out_channel] shaped to broadcast along `axis` of an ndim-d output."""
        shape = [1] * ndim
        shape[axis] = -1
        return np.asarray(values).reshape(shape)

    def _rescale(self, accumulator, weight_sums, ndim, axis):
        from tvm import relax

        corrected = accumulator
        if self.x_zero:
            offset = self._per_output(self.x_zero * weight_sums, ndim, axis).astype(np.int32)
            corrected = relax.op.subtract(accumulator, relax.const(offset))
        scale = self._per_output(np.float32(self.x_scale) * np.broadcast_to(self.w_scale, weight_sums.shape),
                                 ndim, axis).astype(np.float32)
        return relax.op.multiply(relax.op.astype(corrected, "float32"), relax.const(scale))

    def conv2d(self, x_q, attrs):
        from tvm import relax

        top, left, bottom, right = (int(p) for p in attrs.padding)
        data = x_q
        if self.x_zero and (top or left or bottom or right):
            data = relax.op.nn.pad(x_q, [0, 0, 0, 0, top, bottom, left, right], pad_value=float(self.x_zero))
            top = left = bottom = right = 0
        channels = self.weight.shape[0]
        padded = channels if int(attrs.groups) != 1 else _vector_block_multiple(channels)
        weight = np.pad(self.weight, ((0, padded - channels), (0, 0), (0, 0), (0, 0)))
        conv = functools.partial(relax.op.nn.conv2d, strides=attrs.strides, padding=[top, left, bottom, right],
                                 dilation=attrs.dilation, groups=attrs.groups)
        if _sums_in_float(self.weight, attrs, x_q):
            accumulator = relax.op.astype(conv(data, relax.const(weight.astype(np.float32)), out_dtype="float32"),
                                          "int32")
        else:
            accumulator = conv(data, relax.const(weight), out_dtype="int32")
        if padded != channels:
            accumulator = relax.op.strided_slice(accumulator, axes=[1], begin=[0], end=[channels])
        sums = self.weight.astype(np.int64).sum(axis=(1, 2, 3))
        return self._rescale(accumulator, sums, ndim=4, axis=1)

    def matmul(self, x_q):
        from tvm import relax

        accumulator = relax.op.matmul(x_q, relax.op.permute_dims(relax.const(self.weight), [1, 0]),
                                      out_dtype="int32")
        sums = self.weight.astype(np.int64).sum(axis=1)
        return self._rescale(accumulator, sums, ndim=len(x_q.ty.shape), axis=-1)


def _sums_in_float(weight: np.ndarray, attrs, x_q) -> bool:
    """Whether a depthwise conv sums its integers in float32: exact while a window's sum stays
    below 2**24 (|data| <= 255, |weight| <= 128), and on maps at least FLOAT_SUM_MIN_WIDTH wide
    the float rows schedule ran 2-2.5x faster than int32 multiply-adds (Xeon, AVX-512); narrower
    maps keep integer sums, whose channels-in-lanes schedule is faster there."""
    out_channels, per_group, kh, kw = weight.shape
    if per_group != 1 or int(attrs.groups) != out_channels or kh * kw * 255 * 128 >= 2 ** 24:
        return False
    width = int(x_q.ty.shape[3]) + int(attrs.padding[1]) + int(attrs.padding[3])
    return (width - int(attrs.dilation[1]) * (kw - 1) - 1) // int(attrs.strides[1]) + 1 >= FLOAT_SUM_MIN_WIDTH


def _vector_block_multiple(channels: int) -> int:
    if channels < 4:  # (a slice of fewer channels than one vector fails TVM's vectorizer; too small to matter)
        return channels
    block = 8 if channels > 8 else 4
    return -(-channels // block) * block


def _value(constant) -> np.ndarray:
    return constant.value.numpy()


def tvm_const():
    import tvm

    return tvm.ir.expr.Constant
