import json

import numpy as np
import onnx
import onnx_builders
import pytest
import torch
from ncc.study import zoo
from ncc.core.errors import CompileError
from ncc.passes.analysis.cost import count_parameters, layer_costs, model_cost
from onnx import TensorProto, helper, numpy_helper
from torch import nn

F32 = 4  # bytes per float32 element


def make_model(nodes, inputs, outputs, weights=(), infer=True):
    """A float32 model with all-ones weights {name: shape}; outputs may be shapeless."""
    initializers = {name: np.ones(shape, np.float32) for name, shape in dict(weights).items()}
    model = onnx_builders.make_model(nodes, initializers, inputs, outputs)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True) if infer else model


def single_layer(model):
    [layer] = layer_costs(model)
    return layer


def conv(x, w, y, b=None, **attrs):
    return helper.make_node("Conv", [x, w] + ([b] if b else []), [y], name=y, **attrs)


@pytest.mark.parametrize("bias, params", [(True, 4 * 3 * 3 * 3 + 4), (False, 4 * 3 * 3 * 3)])
def test_conv_params_and_macs(bias, params):
    weights = {"w": (4, 3, 3, 3)} | ({"b": (4,)} if bias else {})
    model = make_model([conv("x", "w", "y", "b" if bias else None, pads=[1, 1, 1, 1])],
                       {"x": (1, 3, 8, 8)}, {"y": None}, weights)
    layer = single_layer(model)
    assert (layer.params, layer.weight_bytes) == (params, params * F32)
    assert layer.macs == (4 * 8 * 8) * 3 * 3 * 3  # each output element: C_in * kernel
    assert (layer.in_channels, layer.out_channels, layer.output_shape) == (3, 4, (1, 4, 8, 8))


@pytest.mark.parametrize("c_in, c_out, group", [(4, 8, 2), (4, 4, 4)], ids=["grouped", "depthwise"])
def test_grouped_conv_macs_use_channels_per_group(c_in, c_out, group):
    model = make_model([conv("x", "w", "y", group=group)], {"x": (1, c_in, 8, 8)}, {"y": None},
                       {"w": (c_out, c_in // group, 3, 3)})
    layer = single_layer(model)
    assert layer.params == c_out * (c_in // group) * 9
    assert layer.macs == (c_out * 6 * 6) * (c_in // group) * 9


def test_conv_transpose_macs():
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    model = make_model([node], {"x": (1, 4, 5, 5)}, {"y": None}, {"w": (4, 6, 3, 3)})
    layer = single_layer(model)
    assert layer.output_shape == (1, 6, 11, 11)
    assert (layer.params, layer.macs) == (4 * 6 * 9, (4 * 5 * 5) * 6 * 9)


@pytest.mark.parametrize("a_shape, b_shape, attrs", [
    ((2, 5), (3, 5), {"transB": 1}),
    ((2, 5), (5, 3), {"transB": 0}),
    ((5, 2), (5, 3), {"transA": 1}),
])
def test_gemm_honours_transposes(a_shape, b_shape, attrs):
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], **attrs)
    model = make_model([node], {"a": a_shape}, {"y": None}, {"b": b_shape, "c": (3,)})
    layer = single_layer(model)
    assert layer.output_shape == (2, 3)
    assert (layer.params, layer.macs) == (15 + 3, 2 * 3 * 5)
    assert (layer.in_channels, layer.out_channels) == (5, 3)


def test_matmul_with_constant_operand_has_params():
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], {"x": (2, 4, 5)}, {"y": None},
                       {"w": (5, 3)})
    layer = single_layer(model)
    assert (layer.params, layer.macs, layer.output_shape) == (15, 2 * 4 * 3 * 5, (2, 4, 3))


def test_matmul_of_two_activations_has_no_params():
    model = make_model([helper.make_node("MatMul", ["x", "z"], ["y"])], {"x": (2, 4, 5), "z": (2, 5, 3)},
                       {"y": None})
    layer = single_layer(model)
    assert (layer.params, layer.macs, layer.weight_bytes) == (0, 2 * 4 * 3 * 5, 0)


def batch_norm(x, y, scale, bias, mean, var):
    return helper.make_node("BatchNormalization", [x, scale, bias, mean, var], [y], name=y)


def test_batch_norm_counts_scale_and_bias_but_no_macs():
    model = make_model([batch_norm("x", "y", "s", "b", "m", "v")], {"x": (1, 6, 4, 4)}, {"y": None},
                       {name: (6,) for name in "sbmv"})
    layer = single_layer(model)
    assert (layer.params, layer.macs) == (12, 0)
    assert layer.weight_bytes == 4 * 6 * F32  # mean and var are stored, though not learnable


def test_identity_deduplicated_initializers_count_per_use():
    # as torch exports two equal BNs: one `ones` and one `zeros` tensor behind Identity nodes
    nodes = [helper.make_node("Identity", ["ones"], ["bn2.weight"]),
             helper.make_node("Identity", ["zeros"], ["bn2.bias"]),
             helper.make_node("Identity", ["bn2.weight"], ["var"]),  # a chain of Identities
             batch_norm("x", "y1", "ones", "zeros", "zeros", "var"),
             batch_norm("y1", "y2", "bn2.weight", "bn2.bias", "zeros", "ones")]
    model = make_model(nodes, {"x": (1, 8, 2, 2)}, {"y2": None}, {"ones": (8,), "zeros": (8,)})
    assert count_parameters(model) == 2 * (8 + 8)
    cost = model_cost(model)
    assert cost.weight_bytes == 2 * 8 * F32  # each stored tensor once
    # Identity outputs of constants are constants, not activations: x, y1 and y2 only
    assert cost.peak_activation_bytes == 2 * 32 * F32


def test_constant_node_operands_are_parameters():
    weight = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32))
    nodes = [helper.make_node("Constant", [], ["w"], value=weight),
             helper.make_node("Constant", [], ["b"], value_floats=[0.0] * 4),
             conv("x", "w", "y", "b")]
    model = make_model(nodes, {"x": (1, 3, 4, 4)}, {"y": None})
    assert count_parameters(model) == 12 + 4
    assert model_cost(model).weight_bytes == (12 + 4) * F32


def relu(x, y):
    return helper.make_node("Relu", [x], [y], name=y)


ACT = 4 * 8 * 8 * F32  # bytes of one (1, 4, 8, 8) float32 activation


@pytest.mark.parametrize("nodes, outputs, peak", [
    # a chain holds only a node's input and output
    ([relu("x", "a"), relu("a", "b"), relu("b", "c")], ["c"], 2 * ACT),
    # a residual keeps x alive until the Add
    ([relu("x", "a"), relu("a", "b"), helper.make_node("Add", ["x", "b"], ["c"])], ["c"], 3 * ACT),
    # a graph output stays alive to the end
    ([relu("x", "a"), relu("a", "b"), relu("b", "c")], ["a", "c"], 3 * ACT),
], ids=["chain", "residual", "early-output"])
def test_peak_activation_bytes(nodes, outputs, peak):
    model = make_model(nodes, {"x": (1, 4, 8, 8)}, {name: None for name in outputs})
    assert model_cost(model).peak_activation_bytes == peak


def test_activation_bytes_follow_element_type():
    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT8)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT16, (10,))],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert model_cost(model).peak_activation_bytes == 10 * 2 + 10


def test_shapes_are_inferred_when_missing():
    nodes = [conv("x", "w", "h", pads=[1, 1, 1, 1]), relu("h", "y")]
    args = (nodes, {"x": (1, 3, 8, 8)}, {"y": None}, {"w": (4, 3, 3, 3)})
    assert model_cost(make_model(*args, infer=False)) == model_cost(make_model(*args))


def test_unknown_shape_is_a_compile_error_naming_the_tensor():
    model = make_model([relu("x", "y")], {"x": ("N", 4)}, {"y": None})
    with pytest.raises(CompileError, match="'x'"):
        model_cost(model)


def test_to_dict_is_json_with_sorted_keys():
    model = make_model([conv("x", "w", "y")], {"x": (1, 3, 8, 8)}, {"y": None}, {"w": (4, 3, 3, 3)})
    data = model_cost(model).to_dict()
    assert list(data) == sorted(data)
    assert list(data["layers"][0]) == sorted(data["layers"][0])
    assert json.loads(json.dumps(data)) == data
    assert data["layers"][0]["output_shape"] == [1, 4, 6, 6]


class SmallCNN(nn.Module):
    """Conv/BN pairs of equal width (so the exporter deduplicates their
    default-initialised tensors), a depthwise conv, a residual and a Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = x + torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3)))


def export(module, x, path):
    # the legacy exporter, as the zoo uses it: it keeps BatchNormalization and deduplicates tensors
    torch.onnx.export(module.eval(), (x,), path, opset_version=17, dynamo=False,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    return onnx.load(path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torch_cnn_params_match_torch(tmp_path):
    module = SmallCNN()
    model = export(module, torch.zeros(1, 3, 16, 16), tmp_path / "cnn.onnx")
    assert any(node.op_type == "Identity" for node in model.graph.node)  # the dedup quirk is exercised
    expected = sum(p.numel() for p in module.parameters())
    assert count_parameters(model) == expected
    cost = model_cost(model)
    assert cost.params == expected
    assert cost.macs == 16 * 16 * 16 * (3 * 9 + 9) + 16 * 10


@pytest.mark.parametrize("name, dataset", [(m, d) for m in zoo.MODELS for d in zoo.DATASETS])
def test_zoo_params_match_torch(name, dataset, tmp_path):
    module = zoo.build(name, dataset)  # default init: equal BatchNorm tensors get deduplicated
    zoo.export_onnx(module, dataset, tmp_path / "model.onnx")
    model = onnx.load(tmp_path / "model.onnx")
    assert count_parameters(model) == sum(p.numel() for p in module.parameters())


def test_weights_behind_dequantize_still_count_as_parameters():
    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.int8), "w_q")
    scale = numpy_helper.from_array(np.full(4, 0.1, np.float32), "w_scale")
    zero = numpy_helper.from_array(np.zeros(4, np.int8), "w_zero")
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], axis=0),
         helper.make_node("Conv", ["x", "w"], ["y"])], "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])], [weight, scale, zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert count_parameters(model) == 4 * 3 * 3 * 3
