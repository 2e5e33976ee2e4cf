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
Residual Adds need no rewrite: dequantize, add and quantize are elementwise
and fuse into one kernel that reads and writes the quantized tensors.

It is done on Relax rather than on the ONNX graph because TVM's ONNX
importer has no converter for ONNX's integer operators (ConvInteger,
QLinearConv, QLinearMatMul), and the bundle's model.onnx must stay the QDQ
model ONNX Runtime runs as the reference. Layers it cannot prove integer
(asymmetric weights, non-constant weights, other layouts) stay float.
"""

import numpy as np


def integer_layers_pass():
    """A Relax function pass: QDQ-wrapped conv2d and matmul to integer operators."""
    from tvm import relax

    @relax.transform.function_pass(opt_level=0, name="ncc.QDQToIntegerOps")
    def rewrite(func, _mod, _ctx):
        return _rewrite_function(func)

    return rewrite


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
        accumulator = relax.op.nn.conv2d(
            data, relax.const(self.weight), strides=attrs.strides, padding=[top, left, bottom, right],
            dilation=attrs.dilation, groups=attrs.groups, out_dtype="int32")
        sums = self.weight.astype(np.int64).sum(axis=(1, 2, 3))
        return self._rescale(accumulator, sums, ndim=4, axis=1)

    def matmul(self, x_q):
        from tvm import relax

        accumulator = relax.op.matmul(x_q, relax.op.permute_dims(relax.const(self.weight), [1, 0]),
                                      out_dtype="int32")
        sums = self.weight.astype(np.int64).sum(axis=1)
        return self._rescale(accumulator, sums, ndim=len(x_q.ty.shape), axis=-1)


def _value(constant) -> np.ndarray:
    return constant.value.numpy()
