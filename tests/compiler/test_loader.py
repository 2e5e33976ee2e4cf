import os

import numpy as np
import onnx
import pytest
from ncc.core.errors import CompileError, UsageError
from ncc.compiler.loader import NCC_OPSET, load_model
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import make_model, save


def _conv_model(opset=17, batch=1, height=8):
    weight = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)
    return make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4)], {"w": weight},
                      inputs={"x": [batch, 3, height, 8]}, outputs={"y": [batch, 4, height, 8]}, opset=opset)


def _dims(value):
    return [d.dim_value for d in value.type.tensor_type.shape.dim]


def test_missing_file_and_folder_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        load_model(str(tmp_path / "absent.onnx"))
    with pytest.raises(UsageError, match="is a directory"):
        load_model(str(tmp_path))


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all \x00\xff" * 10, b"\x08"])
def test_garbage_is_not_onnx(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(CompileError, match="not an ONNX model"):
        load_model(str(path))


def test_truncated_model(tmp_path, zoo_onnx):
    data = open(zoo_onnx("vgg11"), "rb").read()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CompileError):
        load_model(str(path))


def test_invalid_graph_names_the_problem(tmp_path):
    model = make_model([helper.make_node("Relu", ["nowhere"], ["y"])])
    with pytest.raises(CompileError, match="invalid ONNX graph.*nowhere"):
        load_model(save(model, tmp_path))


def test_dynamic_batch_defaults_to_one_and_shapes_are_inferred(tmp_path):
    model = _conv_model(batch="N")
    loaded = load_model(save(model, tmp_path))
    assert _dims(loaded.graph.input[0]) == [1, 3, 8, 8]
    assert _dims(loaded.graph.output[0]) == [1, 4, 8, 8]


def test_dynamic_spatial_dimension_needs_input_shape(tmp_path):
    path = save(_conv_model(height="H"), tmp_path)
    with pytest.raises(UsageError, match="dynamic dimension 2 .*--input-shape x:"):
        load_model(path)
    loaded = load_model(path, {"x": (2, 3, 16, 8)})
    assert _dims(loaded.graph.output[0]) == [2, 4, 16, 8]


def test_input_shape_errors(tmp_path):
    path = save(_conv_model(), tmp_path)
    with pytest.raises(UsageError, match="names no graph input: y"):
        load_model(path, {"y": (1, 3, 8, 8)})
    with pytest.raises(UsageError, match="rank 3 given"):
        load_model(path, {"x": (1, 3, 8)})


def test_old_opset_is_converted(tmp_path):
    model = _conv_model(opset=9)
    loaded = load_model(save(model, tmp_path))
    assert [o.version for o in loaded.opset_import if o.domain in ("", "ai.onnx")] == [NCC_OPSET]


def test_too_old_and_too_new_opsets(tmp_path):
    with pytest.raises(CompileError, match="too old"):
        load_model(save(_conv_model(opset=1), tmp_path, "old.onnx"))
    with pytest.raises(CompileError, match="newer than"):
        load_model(save(_conv_model(opset=onnx.defs.onnx_opset_version() + 1), tmp_path, "new.onnx"))


def test_initializers_listed_as_inputs_are_frozen(tmp_path):
    model = _conv_model()
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3]))
    loaded = load_model(save(model, tmp_path))
    assert [i.name for i in loaded.graph.input] == ["x"]


def test_unnamed_nodes_get_unique_names(tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Relu", ["r"], ["y"])])
    names = [n.name for n in load_model(save(model, tmp_path)).graph.node]
    assert len(set(names)) == 2 and all(names)


def _external(tmp_path, location):
    model = _conv_model()
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    del tensor.float_data[:]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return save(model, tmp_path / "model")


def test_external_data_inside_the_folder_loads(tmp_path):
    os.makedirs(tmp_path / "model")
    weight = numpy_helper.to_array(_conv_model().graph.initializer[0])
    (tmp_path / "model" / "weights.bin").write_bytes(weight.tobytes())
    loaded = load_model(_external(tmp_path, "weights.bin"))
    np.testing.assert_array_equal(numpy_helper.to_array(loaded.graph.initializer[0]), weight)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    os.makedirs(tmp_path / "model")
    (tmp_path / "secret.bin").write_bytes(b"\0" * 432)
    with pytest.raises(CompileError, match="outside the model's folder"):
        load_model(_external(tmp_path, location))


def _pool_model(pads, ceil_mode, size, op="MaxPool"):
    return make_model([helper.make_node(op, ["x"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2],
                                        pads=pads, ceil_mode=ceil_mode)],
                      inputs={"x": [1, 3, 8, 8]}, outputs={"y": [1, 3, size, size]})


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_a_ceil_mode_pool_whose_last_window_starts_in_the_padding_is_refused(tmp_path, op):
    """ONNX's shape inference says 5 x 5 here, ONNX Runtime computes 4 x 4."""
    with pytest.raises(CompileError, match=r"'pool' \(ceil_mode=1\).* gives 5 outputs and ONNX Runtime and PyTorch 4"):
        load_model(save(_pool_model([0, 0, 1, 1], 1, 5, op=op), tmp_path))


@pytest.mark.parametrize("pads,ceil_mode,size", [([0, 0, 1, 1], 0, 4), ([0, 0, 0, 0], 1, 4), ([1, 1, 1, 1], 1, 5)])
def test_pools_on_which_onnx_and_onnx_runtime_agree_load(tmp_path, pads, ceil_mode, size):
    model = load_model(save(_pool_model(pads, ceil_mode, size), tmp_path))
    assert _dims(model.graph.output[0]) == [1, 3, size, size]
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.zeros((1, 3, 8, 8), np.float32)})[0].shape == (1, 3, size, size)


def test_a_pool_larger_than_its_input_is_refused(tmp_path):
    """onnx's checker passes it (output size -1); found by fuzzing random CNNs."""
    model = make_model([helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[3, 3])],
                       inputs={"x": [1, 1, 3, 1]}, outputs={"y": [1, 1, 1, -1]})
    onnx.checker.check_model(model, full_check=True)
    with pytest.raises(CompileError, match=r"tensor 'y' \(output of MaxPool 'pool'\) would have shape \[1, 1, 1, -1\]"):
        load_model(save(model, tmp_path))


def _channel_split_model():
    """y = relu(x[:, :C // 2]) with C read from x's shape, as torch.onnx exports
    `x.chunk(2, 1)` under a dynamic batch: Div is beyond ONNX's data propagation."""
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "one"], ["channels"], axis=0),
             helper.make_node("Div", ["channels", "two"], ["half"]),
             helper.make_node("Unsqueeze", ["half", "zero"], ["end"]),
             helper.make_node("Slice", ["x", "zero", "end", "axes"], ["split"], name="split"),
             helper.make_node("Relu", ["split"], ["y"])]
    constants = {"one": np.array(1), "two": np.array(2), "zero": np.array([0]), "axes": np.array([1])}
    return make_model(nodes, constants, inputs={"x": ["N", 4, 2, 2]}, outputs={"y": ["N", "C", 2, 2]})


def test_shape_subgraphs_are_folded_with_the_fixed_input_shape(tmp_path):
    import onnxruntime as ort

    model = _channel_split_model()
    loaded = load_model(save(model, tmp_path))
    assert _dims(loaded.graph.output[0]) == [1, 2, 2, 2]
    assert "Shape" not in {node.op_type for node in loaded.graph.node}
    x = np.random.default_rng(0).standard_normal((1, 4, 2, 2)).astype(np.float32)
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_array_equal(run(loaded)[0], run(model)[0])


def test_a_tensor_shaped_by_input_values_is_refused_naming_it_and_its_producer(tmp_path):
    nodes = [helper.make_node("Reshape", ["x", "target"], ["reshaped"], name="view"),
             helper.make_node("Relu", ["reshaped"], ["y"])]
    model = make_model(nodes, outputs={"y": [1, 192]})
    model.graph.input.append(helper.make_tensor_value_info("target", TensorProto.INT64, [2]))
    with pytest.raises(CompileError, match=r"^tensor 'reshaped' \(output of Reshape 'view'\) has no static shape"):
        load_model(save(model, tmp_path))
