"""Fuzzing ncc with mutated real models and malformed side files.

A small zoo VGG-11 is mutated the ways the issue lists: wrong dtypes, missing
initializers, cycles, unknown ops, opset 1 and future opsets, huge and zero
dimensions, external data pointing outside the model's folder or to /etc; and
`--profile` JSON, `--calib` files and NeuralScale pickles are malformed,
pickles included that would run code when unpickled naively. Every case
asserts a documented exit code, exactly one `ncc: error:` line on failure, no
traceback, no file outside the requested bundle and no partial bundle.

Cases whose memory use is bounded by construction run in-process through the
real CLI (click's CliRunner); those that could ask for huge allocations run in
a subprocess under RLIMIT_AS and a timeout.
"""

import json
import os
import pickle
import resource
import subprocess
import sys

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, external_data_helper

from fuzz_helpers import FUZZ, check_outcome, invoke, tree

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


def _compile_case(folder, model_path, *extra):
    """Compile in-process into folder/b; nothing but b may appear in folder."""
    before = tree(folder)
    result = invoke("compile", model_path, "-o", folder / "b", "--target", "onnxruntime", *extra)
    check_outcome(result.exit_code, result.stderr, result.output)
    after = [p for p in tree(folder) if not p.startswith("b" + os.sep)]
    assert after == before, "a file was written outside the bundle"
    if result.exit_code:
        assert not (folder / "b").exists(), "a failed compile left a bundle"
    return result


@pytest.fixture(scope="module")
def tiny(zoo_onnx):
    """The small zoo model, as a path and as a ModelProto to copy."""
    path = zoo_onnx("vgg11", width_mult=0.125)
    return path, onnx.load(path)


def _copy(model):
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


# --- graph mutations --------------------------------------------------------------------

DTYPES = [TensorProto.UNDEFINED, TensorProto.INT8, TensorProto.UINT8, TensorProto.INT64, TensorProto.BOOL,
          TensorProto.STRING, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.COMPLEX64, 40, 999]


def _wrong_dtype(model, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    where = data.draw(st.sampled_from(["initializer", "input", "output"]))
    if where == "initializer":
        data.draw(st.sampled_from(list(model.graph.initializer))).data_type = dtype
    else:
        getattr(model.graph, where)[0].type.tensor_type.elem_type = dtype


def _missing_initializer(model, data):
    del model.graph.initializer[data.draw(st.integers(0, len(model.graph.initializer) - 1))]


def _cycle(model, data):
    nodes = model.graph.node
    later = data.draw(st.integers(1, len(nodes) - 1))
    earlier = data.draw(st.integers(0, later))
    slot = data.draw(st.integers(0, len(nodes[earlier].input) - 1))
    nodes[earlier].input[slot] = nodes[later].output[0]


def _unknown_op(model, data):
    node = data.draw(st.sampled_from(list(model.graph.node)))
    if data.draw(st.booleans()):
        node.op_type = data.draw(st.sampled_from(["Frobnicate", "", "conv", "Conv2D"]) | st.text(max_size=12))
    else:
        node.domain = data.draw(st.sampled_from(["com.example", "ai.onnx.ml", "com.microsoft"]))


def _opset(model, data):
    model.opset_import[0].version = data.draw(st.sampled_from([1, 2, 6, 9, 18, 21, 23, 24, 99, 2**31 - 1]))


def _attribute(model, data):
    node = data.draw(st.sampled_from([n for n in model.graph.node if n.attribute]))
    attribute = data.draw(st.sampled_from(list(node.attribute)))
    if attribute.ints:
        attribute.ints[data.draw(st.integers(0, len(attribute.ints) - 1))] = data.draw(
            st.sampled_from([0, -1, -(2**40), 2**40, 2**62]))
    else:
        attribute.type = data.draw(st.sampled_from([0, 2, 3, 4, 8]))


MUTATIONS = {"dtype": _wrong_dtype, "missing-initializer": _missing_initializer, "cycle": _cycle,
             "unknown-op": _unknown_op, "opset": _opset, "attribute": _attribute}


@FUZZ(400)
@given(data=st.data())
def test_mutated_zoo_model(tmp_path_factory, tiny, data):
    folder = tmp_path_factory.mktemp("case")
    model = _copy(tiny[1])
    MUTATIONS[data.draw(st.sampled_from(sorted(MUTATIONS)))](model, data)
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    _compile_case(folder, path)


# --- external data ----------------------------------------------------------------------

def _with_external(model, location):
    """The largest initializer moved to external data at `location`."""
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    raw = tensor.raw_data
    external_data_helper.set_external_data(tensor, location=location, offset=0, length=len(raw))
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    return raw


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/passwd", "../../../../../../etc/passwd",
                                      "sub/../../outside.bin", "link.bin", "missing.bin", "", "."])
def test_external_data_outside_the_model_folder_is_refused(tmp_path, tiny, location):
    folder = tmp_path / "models"
    folder.mkdir()
    model = _copy(tiny[1])
    raw = _with_external(model, location)
    (tmp_path / "outside.bin").write_bytes(raw)
    os.symlink("/etc/passwd", folder / "link.bin")
    (folder / "m.onnx").write_bytes(model.SerializeToString())
    result = _compile_case(folder, folder / "m.onnx")
    assert result.exit_code == 1, result.stderr


def test_external_data_inside_the_model_folder_compiles(tmp_path, tiny):
    model = _copy(tiny[1])
    (tmp_path / "w.bin").write_bytes(_with_external(model, "w.bin"))
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    assert _compile_case(tmp_path, tmp_path / "m.onnx").exit_code == 0


# --- huge and zero dimensions: a subprocess bounded in memory and time ------------------

MEMORY_LIMIT = 3 * 2**30


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _run_bounded(folder, *args):
    before = tree(folder)
    done = subprocess.run([sys.executable, "-m", "ncc.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, preexec_fn=_limit_memory, cwd=folder)
    check_outcome(done.returncode, done.stderr, done.stdout)
    after = [p for p in tree(folder) if not p.startswith("b" + os.sep)]
    assert after == before, "a file was written outside the bundle"
    if done.returncode:
        assert not (folder / "b").exists()
    return done


@pytest.mark.parametrize("dims", [(1, 3, 0, 32), (0, 3, 32, 32), (1, 0, 32, 32), (1, 3, 2**31 - 1, 32),
                                  (1, 3, 65536, 65536), (2**40, 3, 32, 32), (1, 3, -5, 32)])
def test_huge_and_zero_input_dims(tmp_path, tiny, dims):
    model = _copy(tiny[1])
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim, dims):
        dim.dim_value = value
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    _run_bounded(tmp_path, "compile", "m.onnx", "-o", "b", "--target", "onnxruntime", "--quantize", "int8",
                 "--calib-samples", "2")


@pytest.mark.parametrize("shape", ["1x3x0x32", "1x3x100000x100000", "4096x3x1024x1024", "1x3x1x1"])
def test_huge_and_zero_input_shape_option(tmp_path, tiny, shape):
    name = tiny[1].graph.input[0].name
    _run_bounded(tmp_path, "compile", tiny[0], "-o", "b", "--target", "onnxruntime", "--input-shape",
                 f"{name}:{shape}", "--quantize", "int8", "--calib-samples", "2")


# --- NeuralScale profiles ---------------------------------------------------------------

@pytest.fixture(scope="module")
def group_ids(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("profile")
    (folder / "ab.json").write_text(json.dumps({"alpha": [1.0] * 8, "beta": [0.5] * 8}))
    result = invoke("profile", "import", folder / "ab.json", "--model", tiny[0], "-o", folder / "p.json")
    assert result.exit_code == 0, result.output
    return [group["id"] for group in json.loads((folder / "p.json").read_text())["groups"]]


JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)
NUMBER = st.floats() | st.integers(-(2**70), 2**70) | st.text(max_size=4) | st.none()


@FUZZ(150)
@given(data=st.data())
def test_malformed_profiles(tmp_path_factory, tiny, group_ids, data):
    folder = tmp_path_factory.mktemp("case")
    if data.draw(st.booleans()):
        profile = data.draw(JSON)
    else:
        ids = data.draw(st.lists(st.sampled_from(group_ids) | st.text(max_size=8), max_size=10))
        profile = {"format": data.draw(st.sampled_from(["ncc-neuralscale-profile", "other"])),
                   "version": data.draw(st.sampled_from([1, 2, "1", None])),
                   "groups": [{"id": i, "alpha": data.draw(NUMBER), "beta": data.draw(NUMBER)} for i in ids]}
    (folder / "p.json").write_text(json.dumps(profile))
    _compile_case(folder, tiny[0], "--scale", "neuralscale:0.5", "--profile", folder / "p.json")


# --- calibration files ------------------------------------------------------------------

@FUZZ(60)
@given(data=st.data())
def test_malformed_calibration_files(tmp_path_factory, tiny, data):
    folder = tmp_path_factory.mktemp("case")
    calib = folder / "calib.npz"
    kind = data.draw(st.sampled_from(["arrays", "garbage", "object"]))
    if kind == "garbage":
        calib.write_bytes(data.draw(st.binary(max_size=64)))
    elif kind == "object":
        np.savez(calib, x=np.array([{"a": 1}, None], dtype=object))
    else:
        shape = tuple(data.draw(st.lists(st.integers(0, 40), max_size=5)))
        dtype = data.draw(st.sampled_from(["float32", "float64", "int8", "uint8", "bool", "complex64", "<U2"]))
        arrays = {data.draw(st.sampled_from(["x", "X", "data"])): np.zeros(shape, dtype=dtype)}
        if data.draw(st.booleans()):
            arrays["y"] = np.full(data.draw(st.integers(0, 6)), data.draw(st.integers(-5, 300)))
        np.savez(calib, **arrays)
    _compile_case(folder, tiny[0], "--quantize", "int8", "--calib", calib, "--calib-samples", "4")


# --- NeuralScale pickles ----------------------------------------------------------------

class _RunsCode:
    """Unpickling this with pickle.load would run `callable(*args)`."""

    def __init__(self, call, args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def _payloads(marker):
    command = f"touch '{marker}'"
    return [_RunsCode(os.system, (command,)), _RunsCode(subprocess.call, (["touch", str(marker)],)),
            _RunsCode(exec, (f"open({str(marker)!r}, 'w').close()",)),
            _RunsCode(eval, (f"open({str(marker)!r}, 'w')",)),
            _RunsCode(np.save, (str(marker), np.zeros(1)))]


@FUZZ(100)
@given(data=st.data())
def test_neuralscale_pickles_never_run_code(tmp_path_factory, tiny, data):
    folder = tmp_path_factory.mktemp("case")
    marker = folder / "ran"
    payload = data.draw(st.sampled_from(_payloads(marker)))
    where = data.draw(st.sampled_from(["top", "param", "pair", "value"]))
    pairs = [[1.0, 0.5]] * 8
    document = {"top": payload, "param": {"param": payload}, "pair": {"param": [[payload, 0.5]] * 8},
                "value": {"param": [pairs, pairs], "extra": payload}}[where]
    raw = bytearray(pickle.dumps(document, protocol=data.draw(st.integers(0, pickle.HIGHEST_PROTOCOL))))
    for _ in range(data.draw(st.integers(0, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    (folder / "p.pkl").write_bytes(bytes(raw))
    before = tree(folder)
    result = invoke("profile", "import", folder / "p.pkl", "--model", tiny[0], "-o", folder / "out.json")
    check_outcome(result.exit_code, result.stderr, result.output)
    assert not marker.exists() and not (folder / "ran.npy").exists(), "unpickling ran the payload"
    assert result.exit_code != 0
    assert tree(folder) == before


def test_regression_unknown_tensor_data_type(tmp_path, tiny):
    """Finding: an initializer with data type 40 made onnx's checker raise a
    bare ValueError ("Invalid tensor data type 40."), an internal error (70)."""
    model = _copy(tiny[1])
    model.graph.initializer[0].data_type = 40
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    result = _compile_case(tmp_path, tmp_path / "m.onnx")
    assert result.exit_code == 1 and "Invalid tensor data type 40" in result.stderr, result.stderr
