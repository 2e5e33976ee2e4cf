"""Bad input found by an independent campaign (issue 18): each case is one
`ncc: error:` line with its documented exit code (1 the model or what it
asks for is refused, 2 a usage error), no traceback, and no bundle or other
file left behind or deleted."""

import json
import os

import numpy as np
import onnx
import pytest
from cli_helpers import assert_one_line_error, invoke
from onnx import helper, numpy_helper
from onnx_builders import make_model, save


def conv_model(weight_shape=(4, 3, 3, 3), group=None, input_shape=(1, 3, 8, 8)):
    weight = np.random.default_rng(0).normal(size=weight_shape).astype(np.float32)
    attrs = {"pads": [1] * 4} if group is None else {"pads": [1] * 4, "group": group}
    out_channels = weight_shape[0]
    return make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)], {"w": weight},
                      inputs={"x": list(input_shape)}, outputs={"y": [1, out_channels, 8, 8]})


def compile_(model_path, out, *args):
    return invoke("compile", model_path, "-o", out, "--target", "onnxruntime", *args)


def test_a_fifo_is_refused_instead_of_blocking(tmp_path):
    os.mkfifo(tmp_path / "model.onnx")
    assert_one_line_error(compile_(tmp_path / "model.onnx", tmp_path / "b"), 2, "not a regular file")


def test_a_device_is_refused_instead_of_read_to_exhaustion():
    assert_one_line_error(invoke("inspect", "/dev/zero"), 2, "not a regular file")


@pytest.mark.parametrize("entries,fragment", [
    ({"offset": "-5"}, "offset '-5' is not a non-negative integer"),
    ({"length": "-1"}, "length '-1' is not a non-negative integer"),
    ({"offset": "abc"}, "offset 'abc'"),
    ({"offset": "100000"}, "beyond the end"),
    ({"location": "weights\0.bin"}, "NUL"),
])
def test_corrupt_external_data_entries_are_refused(tmp_path, entries, fragment):
    model = conv_model()
    tensor = model.graph.initializer[0]
    data = numpy_helper.to_array(tensor).tobytes()
    (tmp_path / "weights.bin").write_bytes(data)
    tensor.ClearField("raw_data")
    del tensor.float_data[:]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    fields = {"location": "weights.bin", **entries}
    for key, value in fields.items():
        tensor.external_data.add(key=key, value=value)
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    assert_one_line_error(compile_(path, tmp_path / "b"), 1, fragment)


@pytest.mark.parametrize("args,code,fragment", [
    (["--scale", "uniform:50"], 1, "over the 2 GiB an ONNX model can hold"),
    (["--scale", "uniform:1", "--round-to", "99999"], 1, "over the 2 GiB"),
    (["--scale", "neuralscale:0.5", "--profile", "missing.json"], 2, "no such file: missing.json"),
    (["--input-shape", "input:99999999999999999999x3x32x32"], 2, "more than a tensor may"),
])
def test_sizes_are_checked_before_anything_is_allocated(zoo_onnx, tmp_path, args, code, fragment):
    assert_one_line_error(compile_(zoo_onnx("vgg11"), tmp_path / "b", *args), code, fragment)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("weight_shape,group,fragment", [
    ((4, 5, 3, 3), None, "takes 5 input channels per group x group=1 = 5, but its input 'x' has 3"),
    ((4, 3, 3, 3), 2, "group=2"),
    ((4, 3, 3, 3), 0, "group=0; it must be at least 1"),
    ((4, 3, 3, 3), -3, "group=-3; it must be at least 1"),
])
def test_convolutions_no_runtime_can_run_are_refused_at_load(tmp_path, weight_shape, group, fragment):
    path = save(conv_model(weight_shape, group), tmp_path)
    result = compile_(path, tmp_path / "b")
    assert result.exit_code == 1 and fragment in result.stderr, result.output
    assert_one_line_error(result, 1)


def test_a_grouped_convolution_that_fits_loads(tmp_path):
    path = save(conv_model((6, 1, 3, 3), 3), tmp_path)
    assert compile_(path, tmp_path / "b").exit_code == 0


def test_force_replaces_a_bundle_but_no_other_folder(zoo_onnx, tmp_path):
    model = zoo_onnx("vgg11", width_mult=0.125)
    assert compile_(model, tmp_path / "b").exit_code == 0
    assert compile_(model, tmp_path / "b", "--force").exit_code == 0
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"cat")
    assert_one_line_error(compile_(model, tmp_path / "photos", "--force"), 2, "is not an ncc bundle")
    assert (tmp_path / "photos" / "cat.jpg").read_bytes() == b"cat"


def test_force_never_deletes_the_input_model(zoo_onnx, tmp_path):
    assert compile_(zoo_onnx("vgg11", width_mult=0.125), tmp_path / "b").exit_code == 0
    inside = tmp_path / "b" / "model.onnx"  # the bundle's own model, compiled again into its own folder
    before = inside.read_bytes()
    assert_one_line_error(compile_(inside, tmp_path / "b", "--force"), 2, "which this compile reads")
    assert inside.read_bytes() == before and json.loads((tmp_path / "b" / "manifest.json").read_text())


def test_a_symlinked_output_is_refused_and_leaves_nothing(zoo_onnx, tmp_path):
    model = zoo_onnx("vgg11", width_mult=0.125)
    assert compile_(model, tmp_path / "real").exit_code == 0
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert_one_line_error(compile_(model, tmp_path / "link", "--force"), 2, "symbolic link")
    assert sorted(os.listdir(tmp_path)) == ["link", "real"]


def test_nan_weights_give_one_line_and_no_numpy_warning(tmp_path):
    model = conv_model()
    weight = numpy_helper.to_array(model.graph.initializer[0]).copy()
    weight[0, 0, 0, 0] = np.nan
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(weight, "w"))
    result = invoke("compile", save(model, tmp_path), "-o", tmp_path / "b", "--target", "onnxruntime",
                    "--quantize", "int8", "--calib-samples", "4")
    assert "RuntimeWarning" not in result.stderr and "[W:onnxruntime" not in result.stderr
    if result.exit_code != 0:
        assert_one_line_error(result, result.exit_code)
