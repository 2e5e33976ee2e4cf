"""strided_pointwise_pass: a strided 1x1 conv2d becomes a strided slice and a
stride-1 conv2d, exactly; other convolutions are left as they are."""

import numpy as np
import pytest
import tvm
from ncc.targets.tvm.strided_pointwise import strided_pointwise_pass
from tvm import relax


def conv_module(x_shape, w, **attrs):
    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, "float32"))
    with builder.function("main", [x]):
        with builder.dataflow():
            y = builder.emit_output(builder.emit(relax.op.nn.conv2d(x, relax.const(w), **attrs)))
        builder.emit_func_output(y)
    return builder.get()


def calls(mod):
    found = []
    relax.analysis.post_order_visit(mod["main"], lambda e: found.append(e) if isinstance(e, relax.Call) else None)
    return [(c.op.name, c) for c in found if hasattr(c.op, "name")]


def run(mod, x):
    vm = relax.VirtualMachine(relax.build(mod, "llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


@pytest.mark.parametrize("shape,strides", [((1, 8, 9, 9), [2, 2]), ((1, 8, 8, 12), [2, 3]), ((2, 4, 7, 7), [3, 3])])
def test_a_strided_pointwise_conv_is_a_slice_and_a_stride_one_conv(shape, strides):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, shape[1], 1, 1)).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)
    before = conv_module(shape, w, strides=strides)
    after = strided_pointwise_pass()(before)
    ops = calls(after)
    assert [name for name, _ in ops] == ["relax.strided_slice", "relax.nn.conv2d"]
    assert [int(s) for s in ops[1][1].attrs.strides] == [1, 1]
    np.testing.assert_allclose(run(after, x), run(before, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel,attrs", [
    (1, {"strides": [1, 1]}),
    (1, {"strides": [2, 2], "padding": [1, 1, 1, 1]}),
    (3, {"strides": [2, 2]}),
    (1, {"strides": [2, 2], "dilation": [2, 2]}),
])
def test_other_convolutions_are_left_alone(kernel, attrs):
    w = np.ones((4, 4, kernel, kernel), np.float32)
    before = conv_module((1, 4, 9, 9), w, **attrs)
    assert [name for name, _ in calls(strided_pointwise_pass()(before))] == ["relax.nn.conv2d"]
