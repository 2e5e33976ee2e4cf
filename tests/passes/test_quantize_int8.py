"""Each flavour's promises, checked on the zoo models (as exported and scaled to
0.5x) with assertions of their own, not with the pass's invariant checker."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ncc.core.datasets import load_dataset
from ncc.core.errors import CompileError, UsageError
from ncc.passes import (
    EliminateDeadCode,
    FoldBatchNorm,
    FoldConstants,
    QuantizeInt8,
    ScaleChannels,
    pow2_scales,
)
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import apply_passes, make_model

MODELS = ("vgg11", "mobilenetv2", "resnet50")
CALIBRATION_SAMPLES = {"vgg11": 4, "mobilenetv2": 4, "resnet50": 2}  # keeps ResNet-50 quick
every_zoo_model = pytest.mark.parametrize("name, scale", [(m, s) for m in MODELS for s in (False, True)],
                                          ids=[f"{m}-{r}" for m in MODELS for r in ("1.0x", "0.5x")])


def quantize(model, flavor, samples=4, scale=False, evaluation=None):
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    passes = [FoldConstants(), EliminateDeadCode(), *([ScaleChannels("uniform", 0.5)] if scale else []),
              FoldBatchNorm(), QuantizeInt8(load_dataset("random", shape, samples), flavor, evaluation=evaluation)]
    return apply_passes(model, *passes, verify=False)


@pytest.fixture(scope="module")
def quantized(zoo_onnx):
    cache = {}

    def get(name, flavor, scale):
        """(View of the quantized model, the pass's stats)."""
        if (name, flavor, scale) not in cache:
            model, records = quantize(onnx.load(zoo_onnx(name)), flavor, CALIBRATION_SAMPLES[name], scale)
            cache[name, flavor, scale] = View(model), records[-1].stats
        return cache[name, flavor, scale]

    return get


class View:
    """Producers and constants of a quantized model."""

    def __init__(self, model):
        self.model = model
        self.producer = {out: node for node in model.graph.node for out in node.output}
        self.constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}

    def nodes(self, *ops):
        return [n for n in self.model.graph.node if n.op_type in ops]

    def op(self, tensor):
        node = self.producer.get(tensor)
        return node.op_type if node else None

    def weight_dq(self, layer):
        dq = self.producer[layer.input[1]]
        assert dq.op_type == "DequantizeLinear", layer.name
        return dq


def axis(node):
    return next((a.i for a in node.attribute if a.name == "axis"), 1)


def runs_in_onnx_runtime(model):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    assert np.isfinite(session.run(None, {model.graph.input[0].name: x})[0]).all()


@every_zoo_model
def test_tensorrt_flavour(quantized, name, scale):
    view, stats = quantized(name, "tensorrt", scale)
    model = view.model
    assert [o.domain for o in model.opset_import if o.domain not in ("", "ai.onnx")] == []
    assert all(n.domain == "" for n in model.graph.node)
    assert max(o.version for o in model.opset_import) <= 17
    for node in view.nodes("QuantizeLinear", "DequantizeLinear"):
        zero_point = view.constants[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any(), node.name
    for layer in view.nodes("Conv", "Gemm"):
        quantize_weight = view.producer[view.weight_dq(layer).input[0]]  # float weight -> Q -> DQ
        assert quantize_weight.op_type == "QuantizeLinear" and axis(quantize_weight) == 0
        weight = view.constants[quantize_weight.input[0]]
        assert weight.dtype == np.float32 and view.constants[quantize_weight.input[1]].shape == (weight.shape[0],)
        assert view.constants[layer.input[2]].dtype == np.float32  # bias left float
    for add in view.nodes("Add"):
        assert [view.op(i) for i in add.input] == ["DequantizeLinear"] * 2, add.name
    for dq in view.nodes("DequantizeLinear"):  # one pair per consumer
        assert sum(dq.output[0] in n.input for n in model.graph.node) == 1
    runs_in_onnx_runtime(model)
    assert stats["flavor"] == "tensorrt" and stats["float_layers"] == []


@every_zoo_model
def test_dpu_flavour(quantized, name, scale):
    view, stats = quantized(name, "dpu", scale)
    for node in view.nodes("QuantizeLinear", "DequantizeLinear"):
        scale_value, zero_point = view.constants[node.input[1]], view.constants[node.input[2]]
        assert scale_value.size == 1, node.name  # per tensor
        assert float(scale_value) == 2.0 ** round(np.log2(float(scale_value))), node.name
        assert zero_point.dtype == np.int8 and not zero_point.any(), node.name
    for layer in view.nodes("Conv", "Gemm"):
        assert view.constants[view.weight_dq(layer).input[0]].dtype == np.int8
        bias = view.producer[layer.input[2]]
        assert bias.op_type == "DequantizeLinear" and view.constants[bias.input[0]].dtype == np.int8
    for activation in view.nodes("Relu", "Clip"):  # no Q/DQ between a layer and its activation
        assert view.op(activation.input[0]) in ("Conv", "Add", "Gemm"), activation.name
    for output in view.model.graph.output:  # the classifier's output is fixed too, so it stays on the DPU
        assert view.op(output.name) == "DequantizeLinear", output.name
    runs_in_onnx_runtime(view.model)
    assert set(stats["pow2_exponents"]) == {"activations", "weights", "biases", "outputs", "tightened_activations"}
    assert stats["scheme"]["scales"] == "powers of two" and stats["scheme"]["biases"] == "int8-pow2"


def test_dpu_flavour_gives_a_batchnorm_no_conv_precedes_power_of_two_scales(rng):
    """ORT quantizes a BatchNormalization's scale as a weight and its B as a
    bias; one after a Relu stays unfolded and its scales must be powers of two
    too (found by fuzzing: the pass broke its own rules)."""
    c = 3
    stats = {"s": rng.uniform(0.5, 1.5, c), "b": rng.normal(0, 0.1, c), "m": rng.normal(0, 0.1, c),
             "v": rng.uniform(0.5, 2.0, c)}
    model = make_model([helper.make_node("Relu", ["x"], ["r"]),
                        helper.make_node("BatchNormalization", ["r", "s", "b", "m", "v"], ["y"])],
                       {k: v.astype(np.float32) for k, v in stats.items()})
    quantized_model, records = quantize(model, "dpu")
    view = View(quantized_model)
    batchnorm = view.nodes("BatchNormalization")[0]  # not folded: no Conv before it
    for index in (1, 2):
        dq = view.producer[batchnorm.input[index]]
        assert dq.op_type == "DequantizeLinear" and view.constants[dq.input[0]].dtype == np.int8
    for node in view.nodes("QuantizeLinear", "DequantizeLinear"):
        scale_value = float(view.constants[node.input[1]])
        assert scale_value == 2.0 ** round(np.log2(scale_value)), node.name
    runs_in_onnx_runtime(quantized_model)
    assert records[-1].stats["pow2_exponents"]["biases"]


def test_tensorrt_flavour_takes_an_add_of_a_tensor_to_itself(rng):
    """Add(t, t) reads its one Q/DQ pair twice: still one pair per consumer
    (found by fuzzing: the pass said the pair 'feeds 2 nodes'), and the second
    pair ORT makes for it, which nothing reads, is gone."""
    weight = rng.standard_normal((3, 3, 3, 3)).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                        helper.make_node("Add", ["c", "c"], ["y"])], {"w": weight})
    quantized_model, _ = quantize(model, "tensorrt")
    view = View(quantized_model)
    add = view.nodes("Add")[0]
    assert add.input[0] == add.input[1] and view.op(add.input[0]) == "DequantizeLinear"
    for dq in view.nodes("DequantizeLinear"):
        assert len({id(n) for n in quantized_model.graph.node if dq.output[0] in n.input}) == 1, dq.name
    runs_in_onnx_runtime(quantized_model)


@pytest.mark.parametrize("flavor", ["tensorrt", "dpu", "generic"])
def test_a_weight_shared_by_two_layers_quantizes_in_every_flavour(rng, flavor):
    """One module applied twice (DIA-ResNet's shared attention) leaves one weight
    read by two layers; ORT quantizes it once, and for tensorrt the pass said its
    DequantizeLinear 'feeds 2 nodes'. Each layer now gets a pair of its own."""
    weight = rng.standard_normal((3, 3, 3, 3)).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                        helper.make_node("Relu", ["c"], ["r"]),
                        helper.make_node("Conv", ["r", "w"], ["y"], pads=[1, 1, 1, 1])], {"w": weight})
    quantized_model, records = quantize(model, flavor)
    view = View(quantized_model)
    dqs = [view.weight_dq(conv) for conv in view.nodes("Conv")]
    if flavor == "tensorrt":
        assert dqs[0].name != dqs[1].name and records[-1].stats["shared_weights_copied"] == 1
    runs_in_onnx_runtime(quantized_model)


@every_zoo_model
def test_generic_flavour(quantized, name, scale):
    view, _ = quantized(name, "generic", scale)
    for layer in view.nodes("Conv", "Gemm"):
        dq = view.weight_dq(layer)
        weight, weight_scale = view.constants[dq.input[0]], view.constants[dq.input[1]]
        assert weight.dtype == np.int8 and np.abs(weight.astype(int)).max() <= 64  # 7-bit, see quant_flavors
        assert axis(dq) == 0 and weight_scale.shape == (weight.shape[0],)
        assert not view.constants[dq.input[2]].any()
        assert view.constants[view.producer[layer.input[2]].input[0]].dtype == np.int32
    activation_zero_points = [view.constants[q.input[2]] for q in view.nodes("QuantizeLinear")]
    assert activation_zero_points and all(z.dtype == np.uint8 for z in activation_zero_points)
    runs_in_onnx_runtime(view.model)


def test_quantization_is_deterministic(zoo_onnx):
    model = onnx.load(zoo_onnx("vgg11"))
    first, second = (quantize(model, "dpu", scale=True)[0] for _ in range(2))
    assert first.SerializeToString(deterministic=True) == second.SerializeToString(deterministic=True)


def test_eval_data_compares_int8_with_fp32(zoo_onnx):
    evaluation = load_dataset("random", (1, 3, 32, 32), samples=6, seed=1)
    _, records = quantize(onnx.load(zoo_onnx("vgg11")), "generic", scale=True, evaluation=evaluation)
    figures = records[-1].stats["eval"]
    assert figures["measured"] and figures["samples"] == 6 and 0 <= figures["top1_agreement_pct"] <= 100
    assert figures["sqnr_db"] > 10 and "top1_fp32_pct" not in figures  # no labels, no accuracy
    assert records[-1].options["eval_data"]["format"] == "random"


def test_no_eval_data_means_accuracy_not_measured(quantized):
    _, stats = quantized("vgg11", "generic", True)
    assert stats["eval"] == {"measured": False, "why": "no evaluation data, calibrated on random input"}


def _conv_model(opset=17, gemm_trans_b=1):
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1] * 4), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]), helper.make_node("Gemm", ["f", "g"], ["y"], transB=gemm_trans_b)]
    gemm = rng.standard_normal((10, 4 * 8 * 8) if gemm_trans_b else (4 * 8 * 8, 10)).astype(np.float32)
    weights = {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "b": np.zeros(4, np.float32), "g": gemm}
    return make_model(nodes, weights, outputs={"y": [1, 10]}, opset=opset)


def test_gemm_weights_are_turned_to_output_channels_first():
    model, records = quantize(_conv_model(gemm_trans_b=0), "tensorrt")
    view = View(model)
    gemm = view.nodes("Gemm")[0]
    assert next(a.i for a in gemm.attribute if a.name == "transB") == 1
    assert view.constants[view.producer[view.weight_dq(gemm).input[0]].input[0]].shape == (10, 256)
    assert records[-1].stats["gemm_weights_transposed"] == 1


def test_tensorrt_refuses_an_opset_above_17():
    with pytest.raises(CompileError, match="opset 18 > 17"):
        quantize(_conv_model(opset=18), "tensorrt")
    quantize(_conv_model(opset=18), "generic")  # other flavours take it


def test_needs_one_image_input():
    model = make_model([helper.make_node("Add", ["x", "z"], ["y"])], inputs={"x": [1, 3, 8, 8], "z": [1, 3, 8, 8]})
    with pytest.raises(CompileError, match="one N x C x H x W input"):
        quantize(model, "generic")


def test_unknown_flavour_and_method():
    data = load_dataset("random", (1, 3, 8, 8), samples=1)
    with pytest.raises(UsageError, match="unknown quantization flavour 'fpga'"):
        QuantizeInt8(data, "fpga")
    with pytest.raises(UsageError, match="unknown calibration method 'mse'"):
        QuantizeInt8(data, "generic", "mse")


@pytest.mark.parametrize("absmax, exponent", [(127.0, 0), (127.01, 1), (63.5, -1), (1.0, -6), (0.0, 0)])
def test_covering_exponent_is_the_smallest_without_clipping(absmax, exponent):
    assert pow2_scales.covering_exponent(absmax) == exponent


def test_exponent_search_trades_clipping_against_rounding(rng):
    spread = rng.uniform(-100, 100, size=10000)
    assert pow2_scales.constant_exponent(spread) == pow2_scales.covering_exponent(100)  # clipping would cost
    outlier = np.append(rng.normal(0, 1, size=100000), 20.0)  # one outlier: clip it, keep resolution
    assert pow2_scales.constant_exponent(outlier) < pow2_scales.covering_exponent(20)
    assert pow2_scales.constant_exponent(outlier, lowest=-2) == -2  # a bias never below input + weight exponent
    assert pow2_scales.squared_error(np.array([0.25, -0.5, 31.75]), -2) == 0


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_calibration_methods(method):
    shape = (1, 3, 8, 8)
    quantize_pass = QuantizeInt8(load_dataset("random", shape, samples=3), "dpu", method)
    model, records = apply_passes(_conv_model(), quantize_pass, verify=False)
    assert records[-1].options["calib_method"] == method
    runs_in_onnx_runtime(model)


def test_quantized_model_keeps_the_float_interface():
    model, _ = quantize(_conv_model(), "generic")
    assert [i.name for i in model.graph.input] == ["x"] and [o.name for o in model.graph.output] == ["y"]
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
