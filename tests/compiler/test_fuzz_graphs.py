"""Fuzzing ncc with random *valid* small CNNs.

Hypothesis draws an input [1, C, H, H] (C 1-8, H 8-32) and a chain of 1-6 of
the layers the study's networks are made of: Conv (1/3/5, stride 1/2, any
pads ONNX Runtime takes, dilation 2 now and then; dense, depthwise, grouped,
with or without bias, now and then all-zero weights), Relu, Clip(0, 6),
LeakyRelu, MaxPool and AveragePool (2/3, stride 1/2, pads below the kernel,
ceil_mode), BatchNormalization (random statistics), a residual Add (x +
conv(x), x + x), a Mul gate x * conv(x), Add/Mul by a per-channel or scalar
constant, a channel Concat of two branches, GlobalAveragePool, and maybe
Flatten + Gemm; every shape computed, the last op writing the graph output.
Each model passes onnx's full checker and strict shape inference (which must
agree with the shape computed) before ncc sees it, so it is one ncc must
compile: for ONNX Runtime in fp32 (with --verify) and int8 (every flavour and
calibration method), for the ZCU104 (dpu flavour), the Xavier (tensorrt
flavour, GPU and DLA) and, a few, for this host with TVM. Every case must exit
0, or refuse as the target documents (exit 1, one `ncc: error:` line naming
what it lacks, never one in which ncc blames its own passes) and leave no
bundle and no file outside it.
"""

import os
import re
import tempfile

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from fuzz_helpers import FUZZ, check_outcome, invoke, tree

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")

INT8 = ("--quantize", "int8", "--calib-samples", "4")

# Error lines in which ncc blames itself: never an acceptable answer to a valid model.
OWN_FAULTS = ("breaks its own rules", "ONNX Runtime cannot load the model", "quantizer failed",
              "internal error", "reads '", "shape inference failed", "invalid ONNX graph")

# What each target documents refusing among the layers drawn here (README: targets), as a
# pattern its whole error line matches.
_XIR_LACKS = r"(Conv \(node '[^']*': grouped convolution \(group=\d+\) other than depthwise has no XIR op\))"
REFUSALS = {
    "onnxruntime": None,
    "host": None,
    "zcu104": rf"ncc: error: target zcu104 cannot express {_XIR_LACKS}(, {_XIR_LACKS})*( and \d+ more)? in XIR",
    "xavier": None,  # TensorRT 8.5's parser takes every layer drawn here
    # --dla with int8 where the tensorrt flavour quantizes nothing (no Conv, Gemm, Add, ...): the DLA runs no fp32
    "xavier-dla": r"ncc: error: --dla with --quantize int8: the tensorrt flavour quantized no tensor of this model .*",
}


class _Builder:
    """A chain of ONNX nodes over one running tensor whose shape is tracked."""

    def __init__(self, draw, channels, size):
        self.draw, self.nodes, self.inits = draw, [], []
        self.tensor, self.shape = "x", [1, channels, size, size]
        self.count = 0
        self.rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))

    def name(self, stem):
        self.count += 1
        return f"{stem}{self.count}"

    def const(self, stem, values):
        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.float32), name))
        return name

    def node(self, op, inputs, **attrs):
        out = self.name(op.lower() + "_out")
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op), **attrs))
        return out

    # -- layers; each returns (output tensor, output shape) from (tensor, shape) ---------
    def conv(self, tensor, shape, same=False):
        """A Conv: 1 x 1, 3 x 3 or 5 x 5, dense, depthwise (now and then with a
        channel multiplier) or grouped; `same`: with the input's shape."""
        draw = self.draw
        c, h, w = shape[1:]
        if same:  # the output has the input's shape (a residual branch)
            k = draw(st.sampled_from([1, 3, 5]))
            stride, pads = 1, [k // 2] * 4
            group = c if draw(st.booleans()) else 1
            out = c
        else:
            k = draw(st.sampled_from([kk for kk in (1, 3, 5) if kk <= h + 2 * (kk - 1)]))
            stride = draw(st.sampled_from([1, 2]))
            pads = [draw(st.integers(0, k - 1)) for _ in range(4)]
            if h + pads[0] + pads[2] < k or w + pads[1] + pads[3] < k:
                pads = [k - 1] * 4
            group = draw(st.sampled_from([1, c, 1, c, *(g for g in range(2, c) if c % g == 0)]))
            out = draw(st.integers(1, 8)) if group == 1 else group * draw(st.sampled_from([1, 1, 2]))
        dilation = 1
        if not same and k == 3 and h + pads[0] + pads[2] >= 5 and w + pads[1] + pads[3] >= 5:
            dilation = draw(st.sampled_from([1, 2]))
        weight = self.weights((out, c // group, k, k))
        inputs = [tensor, weight]
        if draw(st.booleans()):
            inputs.append(self.const("b", self.rng.normal(0, 0.1, out)))
        y = self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride], pads=pads, group=group,
                      dilations=[dilation, dilation])
        span = dilation * (k - 1) + 1
        oh = (h + pads[0] + pads[2] - span) // stride + 1
        ow = (w + pads[1] + pads[3] - span) // stride + 1
        return y, [1, out, oh, ow]

    def weights(self, shape):
        """He-initialised, now and then all zero (a pruned layer: every scale degenerate)."""
        if self.draw(st.integers(0, 9)) == 0:
            return self.const("w", np.zeros(shape))
        fan_in = int(np.prod(shape[1:]))
        return self.const("w", self.rng.normal(0, (2.0 / fan_in) ** 0.5, shape))

    def layer(self):
        draw, tensor, shape = self.draw, self.tensor, self.shape
        c, h, w = shape[1:]
        kinds = ["conv", "relu", "clip", "leakyrelu", "batchnorm", "residual", "product", "constant", "concat", "gap"]
        if min(h, w) >= 2:  # a convolution's asymmetric pads can make h and w differ
            kinds += ["maxpool", "avgpool"]
        kind = draw(st.sampled_from(kinds))
        if kind == "conv":
            return self.conv(tensor, shape)
        if kind == "relu":
            return self.node("Relu", [tensor]), shape
        if kind == "clip":
            return self.node("Clip", [tensor, self.const("lo", 0.0), self.const("hi", 6.0)]), shape
        if kind == "leakyrelu":
            alpha = draw(st.sampled_from([0.01, 0.1, 0.1015625, 0.2]))
            return self.node("LeakyRelu", [tensor], alpha=alpha), shape
        if kind in ("maxpool", "avgpool"):
            k = draw(st.sampled_from([kk for kk in (2, 3) if kk <= min(h, w)]))
            stride = draw(st.sampled_from([1, 2]))
            pads = [draw(st.integers(0, k - 1)) for _ in range(4)]
            ceil = int(draw(st.booleans()))
            if ceil and any((-(-(n + pads[a] + pads[a + 2] - k) // stride)) * stride >= n + pads[a]
                            for a, n in ((0, h), (1, w))):
                ceil = 0  # a last window starting in the end padding: ONNX's shape inference and ORT disagree
            attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=pads, ceil_mode=ceil)
            if kind == "avgpool":
                attrs["count_include_pad"] = int(draw(st.booleans()))
            y = self.node("MaxPool" if kind == "maxpool" else "AveragePool", [tensor], **attrs)
            rounding = (lambda n: -(-n // stride)) if ceil else (lambda n: n // stride)
            oh = rounding(h + pads[0] + pads[2] - k) + 1
            ow = rounding(w + pads[1] + pads[3] - k) + 1
            return y, [1, c, oh, ow]
        if kind == "batchnorm":
            stats = [self.const("bn_scale", self.rng.uniform(0.5, 1.5, c)),
                     self.const("bn_bias", self.rng.normal(0, 0.1, c)),
                     self.const("bn_mean", self.rng.normal(0, 0.1, c)),
                     self.const("bn_var", self.rng.uniform(0.5, 2.0, c))]
            return self.node("BatchNormalization", [tensor, *stats], epsilon=1e-5), shape
        if kind == "product":  # x * conv(x), an attention-like gate
            branch, _ = self.conv(tensor, shape, same=True)
            return self.node("Mul", [tensor, branch]), shape
        if kind == "residual":  # x + conv(x), or conv(x) + relu(conv(x))
            if draw(st.integers(0, 5)) == 0:  # x + x
                return self.node("Add", [tensor, tensor]), shape
            branch, _ = self.conv(tensor, shape, same=True)
            if draw(st.booleans()):
                branch = self.node("Relu", [branch])
            other = tensor
            if draw(st.booleans()):
                other, _ = self.conv(tensor, shape, same=True)
            operands = [other, branch] if draw(st.booleans()) else [branch, other]
            return self.node("Add", operands), shape
        if kind == "constant":
            op = draw(st.sampled_from(["Add", "Mul"]))
            values = self.rng.uniform(0.5, 1.5, c) if op == "Mul" else self.rng.normal(0, 0.5, c)
            form = draw(st.sampled_from([[1, c, 1, 1], [c, 1, 1], [1], []]))
            constant = self.const("k", values.reshape(form) if len(form) > 1 else values[:1].reshape(form))
            operands = [tensor, constant] if draw(st.booleans()) else [constant, tensor]
            return self.node(op, operands), shape
        if kind == "concat":  # concat(x, conv(x)), concat(conv(x), conv(x)) or concat(x, x) along channels
            first = self.conv(tensor, shape, same=True)[0] if draw(st.booleans()) else tensor
            second_channels = draw(st.integers(1, 8))
            if second_channels == c:
                second = tensor if draw(st.integers(0, 3)) == 0 else self.conv(tensor, shape, same=True)[0]
            else:
                second, _ = self._same_conv_to(tensor, shape, second_channels)
            return self.node("Concat", [first, second], axis=1), [1, c + second_channels, h, w]
        assert kind == "gap"
        return self.node("GlobalAveragePool", [tensor]), [1, c, 1, 1]

    def _same_conv_to(self, tensor, shape, out_channels):
        k = self.draw(st.sampled_from([1, 3]))
        c = shape[1]
        y = self.node("Conv", [tensor, self.weights((out_channels, c, k, k))], kernel_shape=[k, k], pads=[k // 2] * 4)
        return y, [1, out_channels, *shape[2:]]

    def classifier(self):
        flat = self.node("Flatten", [self.tensor], axis=1)
        features = int(np.prod(self.shape[1:]))
        classes = self.draw(st.integers(1, 10))
        inputs = [flat, self.const("fc_w", self.rng.normal(0, (1.0 / features) ** 0.5, (classes, features)))]
        if self.draw(st.booleans()):
            inputs.append(self.const("fc_b", self.rng.normal(0, 0.1, classes)))
        self.tensor = self.node("Gemm", inputs, transB=1)
        self.shape = [1, classes]


@st.composite
def cnns(draw):
    """(model, words): a valid random CNN and how it was drawn."""
    channels, size = draw(st.integers(1, 8)), draw(st.integers(8, 32))
    builder = _Builder(draw, channels, size)
    for _ in range(draw(st.integers(1, 6))):
        builder.tensor, builder.shape = builder.layer()
    if draw(st.booleans()):
        builder.classifier()
    last = builder.nodes[-1]
    last.output[0] = "y"  # the final op writes the graph output
    graph = helper.make_graph(
        builder.nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, builder.shape)], builder.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    words = f"x[1,{channels},{size},{size}] -> " + " -> ".join(n.op_type for n in builder.nodes) + f" -> y{builder.shape}"
    return model, words


def _valid(model):
    """onnx's full checker and strict shape inference: ncc is given only valid models."""
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    out = inferred.graph.output[0].type.tensor_type.shape
    return [d.dim_value for d in out.dim]


def _compile(model, words, target, *extra, refusals=None):
    expected = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert _valid(model) == expected, words
    with tempfile.TemporaryDirectory(prefix="ncc-fuzz-graphs-") as folder:
        path = os.path.join(folder, "model.onnx")
        onnx.save(model, path)
        bundle = os.path.join(folder, "b")
        before = tree(folder)
        result = invoke("compile", path, "-o", bundle, "--target", target, *extra)
        check_outcome(result.exit_code, result.stderr, result.output)
        assert [p for p in tree(folder) if not p.startswith("b" + os.sep)] == before, words
        if result.exit_code == 0:
            assert os.path.isfile(os.path.join(bundle, "manifest.json")), words
            return result
        line = result.stderr.strip()
        assert not os.path.exists(bundle), f"{words}: a failed compile left a bundle"
        assert not any(fault in line for fault in OWN_FAULTS), f"{words}: {line}"
        refused = REFUSALS[refusals or target]
        assert result.exit_code == 1 and refused and re.fullmatch(refused, line), f"{words}: {line}"
        return result


# A compile of these models takes tens of milliseconds (TVM's: about half a second): the counts
# keep the whole file near a minute on a 2-core machine.
@FUZZ(200)
@given(cnns())
def test_onnxruntime_fp32_compiles_and_verifies_every_valid_cnn(case):
    _compile(*case, "onnxruntime", "--verify")


@FUZZ(300)
@given(cnns())
def test_onnxruntime_int8_compiles_every_valid_cnn(case):
    _compile(*case, "onnxruntime", *INT8)


@FUZZ(300)
@given(cnns())
def test_zcu104_int8_compiles_or_names_what_xir_lacks(case):
    _compile(*case, "zcu104", *INT8)


@FUZZ(300)
@given(cnns())
def test_xavier_int8_compiles_or_names_what_tensorrt_lacks(case):
    _compile(*case, "xavier", *INT8)


@FUZZ(100)
@given(cnns())
def test_xavier_dla_int8_compiles_or_says_nothing_was_quantized(case):
    _compile(*case, "xavier", *INT8, "--dla", refusals="xavier-dla")


@FUZZ(150)
@given(cnns(), st.sampled_from(["entropy", "percentile"]), st.sampled_from(["dpu", "tensorrt", "generic"]))
def test_every_flavour_and_calibration_method_quantizes_every_valid_cnn(case, method, flavor):
    """Each flavour's rules hold (ncc checks them) under each calibration method, run by ONNX Runtime."""
    _compile(*case, "onnxruntime", *INT8, "--calib-method", method, "--quant-flavor", flavor)


@FUZZ(15)
@given(cnns())
def test_host_fp32_compiles_every_valid_cnn(case):
    _compile(*case, "host")


@FUZZ(15)
@given(cnns())
def test_host_int8_compiles_every_valid_cnn(case):
    _compile(*case, "host", *INT8)
