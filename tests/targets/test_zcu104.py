"""The zcu104 target (Vitis AI 2.5, DPUCZDX8G_ISA1_B4096): the bundle holds
the quantized XIR graph that libxir loads and whose shapes XIR's own shape
inference reproduces, fix positions that are the dpu flavour's power-of-two
scales, a shellcheck-clean compile.sh that runs vai_c_xir where it exists, and
a DPU report that places each op with its reason, counts subgraphs and
estimates latency from the 8 x 16 x 16 array."""

import json
import math
import os
import pathlib
import shutil
import stat
import subprocess
import sys

import numpy as np
import onnx
import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc.passes import qdq_invariants
from ncc.passes.quant_flavors import FLAVORS
from ncc.targets import get_target
from ncc.targets.zcu104 import dpu_arch, dpu_estimate
from ncc.targets.zcu104.xir_lowering import XirGraph, XirOp, lower
from ncc.targets.zcu104.xmodel_writer import read_xmodel
from onnx import helper, numpy_helper
from onnx_builders import make_model, save

REPO = pathlib.Path(__file__).resolve().parents[2]
CHECKER = REPO / "tests" / "targets" / "fixtures" / "xmodel_check.cc"
TARGET_DUMP = REPO / "tests" / "targets" / "fixtures" / "dpu_target_dump.cc"
INT8 = ("--quantize", "int8", "--calib-samples", "8")
COMPILE = ("--target", "zcu104", "--scale", "uniform:0.25", "--round-to", "auto", *INT8)
EXPECTED_OPS = {"vgg11": {"conv2d": 8, "maxpool2d": 5, "inner-product": 1, "relu": 8},
                "mobilenetv2": {"conv2d": 35, "depthwise-conv2d": 17, "add": 10, "relu6": 35, "avgpool2d": 1},
                "resnet50": {"conv2d": 53, "add": 16, "relu": 49, "avgpool2d": 1, "inner-product": 1}}

needs_libxir = pytest.mark.skipif(not (shutil.which("xir") and os.path.exists("/usr/include/xir/graph/graph.hpp")
                                       and os.path.exists("/usr/include/UniLog/UniLog.hpp")),
                                  reason="needs libxir-dev, libunilog-dev and libxir-utils (.ci/apt-packages.txt)")
needs_target_factory = pytest.mark.skipif(
    not (os.path.exists("/usr/include/vitis/ai/target_factory.hpp")
         and os.path.exists("/usr/include/google/protobuf/message.h")),
    reason="needs libtarget-factory-dev and libprotobuf-dev (.ci/apt-packages.txt)")
needs_shellcheck = pytest.mark.skipif(not shutil.which("shellcheck"), reason="needs shellcheck")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, zoo_onnx):
    """bundle(model, ratio) -> path of a zcu104 int8 bundle."""
    folder = tmp_path_factory.mktemp("zcu104")

    def get(name, ratio="0.25"):
        out = folder / f"{name}-{ratio}"
        if not out.exists():
            args = [a if a != "uniform:0.25" else f"uniform:{ratio}" for a in COMPILE]
            result = invoke("compile", zoo_onnx(name), "-o", out, *args)
            assert result.exit_code == 0, result.output
        return out

    return get


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    """A C++ program against libxir: Graph::deserialize, op counts, shape re-inference."""
    binary = tmp_path_factory.mktemp("xmodel_check") / "xmodel_check"
    build = subprocess.run(["g++", "-std=c++17", "-O1", str(CHECKER), "-o", str(binary), "-lxir", "-lunilog"],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    return binary


def manifest(path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def dpu_report(path) -> dict:
    return json.loads((path / "dpu_report.json").read_text())


def xmodel_ops(path) -> dict:
    """{op name: OPNode} of a bundle's model_int.xmodel, read with ncc's protobuf schema."""
    return {n.op_name: n for n in read_xmodel((path / "model_int.xmodel").read_bytes()).op_node}


# --- the target -------------------------------------------------------------

def test_the_target_picks_the_dpu_flavour_and_the_16_lane_multiple(bundle):
    target = get_target("zcu104")
    assert (target.quant_flavor, target.channel_multiple, target.measurable_here) == ("dpu", 16, False)
    scaling = next(p for p in manifest(bundle("vgg11"))["passes"] if p["name"] == "scale-channels")
    widths = scaling["stats"]["widths"]
    assert all(w["final"] % 16 == 0 for w in widths)


def test_the_manifest_says_what_remains_and_the_bundle_holds_it(bundle):
    found = manifest(bundle("vgg11"))
    paths = {a["path"] for a in found["artifacts"]}
    assert {"model.onnx", "model_int.xmodel", "arch.json", "compile.sh", "dpu_report.json"} <= paths
    assert {"harness/harness.cc", "harness/Makefile", "harness/run.sh"} <= paths  # the VART harness
    assert os.stat(bundle("vgg11") / "harness" / "run.sh").st_mode & stat.S_IXUSR
    assert found["target"]["dpu"] == "DPUCZDX8G_ISA1_B4096" and found["target"]["cores"] == 2
    assert json.loads((bundle("vgg11") / "arch.json").read_text()) == {"target": "DPUCZDX8G_ISA1_B4096"}
    if not shutil.which("vai_c_xir"):
        assert found["target"]["xmodel_compiled"] is False and "out/model.xmodel" not in paths
        assert any("compile.sh" in step and "vai_c_xir" in step for step in found["board_steps"])
    assert any("ZCU104" in step for step in found["board_steps"])


@needs_target_factory
def test_the_dpu_facts_are_those_of_vitis_ais_target_factory(tmp_path):
    """ncc's DPUCZDX8G_ISA1_B4096 figures against the description vai_c_xir reads."""
    binary = tmp_path / "dump"
    build = subprocess.run(["g++", "-std=c++17", str(TARGET_DUMP), "-o", str(binary), "-ltarget-factory",
                            "-lprotobuf"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary), dpu_arch.TARGET, str(tmp_path / "target.txt")], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout, 16) == dpu_arch.FINGERPRINT
    text = (tmp_path / "target.txt").read_text()

    def engine(name):
        return text.split(f"{name} {{", 1)[1].split("\n}", 1)[0]

    def field(block, key):
        return [line.split(":", 1)[1].strip().strip('"') for line in block.splitlines()
                if line.strip().startswith(f"{key}:")]

    arch = dpu_arch.ZCU104
    conv, alu, eltwise = engine("conv_engine"), engine("alu_engine"), engine("eltwise_engine")
    assert field(conv, "pixel_parallel") == [str(arch.pixel_parallel)]
    assert field(conv, "input_channel_parallel") == [str(arch.input_channel_parallel)]
    assert field(conv, "output_channel_parallel") == [str(arch.output_channel_parallel)]
    assert field(conv, "channel_num") == [str(arch.channel_augmentation)]
    assert field(conv, "kernel_size") == ["%d-%d" % dpu_arch.CONV_KERNEL]
    assert field(conv, "stride") == ["%d-%d" % dpu_arch.CONV_STRIDE]
    assert field(alu, "pixel_parallel") == [str(arch.alu_pixel_parallel)]
    assert field(alu, "channel_parallel") == [str(arch.alu_channel_parallel)]
    assert field(alu, "kernel_size") == ["%d-%d" % dpu_arch.ALU_KERNEL]
    assert field(alu, "stride") == ["%d-%d" % dpu_arch.ALU_STRIDE]
    assert field(alu, "pad_left") == field(alu, "pad_top") == ["%d-%d" % dpu_arch.ALU_PAD_LEFT_TOP]
    assert field(alu, "pad_right") == field(alu, "pad_bottom") == ["%d-%d" % dpu_arch.ALU_PAD_RIGHT_BOTTOM]
    assert {"dwconv", "max_pool", "avg_pool", "leaky_relu", "hsigmoid"} <= set(field(alu, "alu_type"))
    assert field(eltwise, "pixel_parallel") == [str(arch.eltwise_pixel_parallel)]
    assert field(eltwise, "channel_parallel") == [str(arch.eltwise_channel_parallel)]
    xir_names = {"relu": "relu", "leaky_relu": "leaky-relu", "relu_six": "relu6"}
    for block, ours in ((conv, dpu_arch.CONV_ACTIVATIONS), (alu, dpu_arch.ALU_ACTIVATIONS),
                        (eltwise, dpu_arch.ELTWISE_ACTIVATIONS)):
        assert [xir_names[n] for n in field(block, "nonlinear_type")] == list(ours)
    assert set(field(text, "bank_depth")) == {str(arch.bank_depth)}


# --- model_int.xmodel -----------------------------------------------------------

@needs_libxir
@pytest.mark.parametrize("name", ["vgg11", "mobilenetv2", "resnet50"])
def test_the_xmodel_round_trips_through_libxir(bundle, checker, name, tmp_path):
    path = bundle(name)
    dump = subprocess.run(["xir", "dump_txt", str(path / "model_int.xmodel"), str(tmp_path / "graph.txt")],
                          capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    assert 'op_type: "conv2d"' in (tmp_path / "graph.txt").read_text()
    run = subprocess.run([str(checker), str(path / "model_int.xmodel")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr  # no "mismatch": XIR infers the shapes ncc wrote
    counts = dict(line.split()[1:] for line in run.stdout.splitlines() if line.startswith("type "))
    assert {k: int(counts[k]) for k in EXPECTED_OPS[name]} == EXPECTED_OPS[name]
    assert int(run.stdout.split("ops ")[1].split()[0]) == len(lower(onnx.load(path / "model.onnx")).ops)


@needs_libxir
def test_every_op_uses_libxirs_op_names_attributes_and_arguments(bundle, checker, tmp_path):
    run = subprocess.run([str(checker), "--op-defs", str(tmp_path / "defs.xmodel")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    defs = {d.name: d for d in read_xmodel((tmp_path / "defs.xmodel").read_bytes()).op_defs}
    required = 0  # AttrDef.REQUIRED
    for name in ("vgg11", "mobilenetv2", "resnet50"):
        for op in xmodel_ops(bundle(name)).values():
            definition = defs[op.op_type]
            declared = {a.name: a for a in definition.attrs}
            assert set(op.op_attr) <= set(declared), (op.op_type, set(op.op_attr) - set(declared))
            assert {a for a, d in declared.items() if d.occur_type == required} <= set(op.op_attr), op.op_type
            for attr, value in op.op_attr.items():  # the same value type as the definition's default
                assert value.WhichOneof("value") == declared[attr].default_value.WhichOneof("value"), (op.op_type, attr)
            assert {a.arg_name for a in op.args} <= {a.name for a in definition.input_args}, op.op_type


@needs_libxir
@pytest.mark.parametrize("family,present", [("resnext", {"conv2d"}), ("mobilenetv3", {"hard-sigmoid", "mul"})])
def test_grouped_convolutions_and_hard_activations_load_in_libxir(family, present, checker, tmp_path):
    """ResNeXt's group=32 convolutions as dense conv2d, MobileNetV3's hard-swish
    and hard-sigmoid gates as hard-sigmoid and mul: XIR re-infers every shape."""
    from exported_cnns import export

    export(family, tmp_path / "model.onnx")
    result = invoke("compile", tmp_path / "model.onnx", "-o", tmp_path / "out", "--target", "zcu104", *INT8)
    assert result.exit_code == 0, result.output
    run = subprocess.run([str(checker), str(tmp_path / "out" / "model_int.xmodel")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    counts = dict(line.split()[1:] for line in run.stdout.splitlines() if line.startswith("type "))
    assert present <= set(counts) and "hard-swish" not in counts


@needs_libxir
def test_libxir_rejects_what_its_shape_inference_contradicts(bundle, checker, tmp_path):
    graph = read_xmodel((bundle("vgg11") / "model_int.xmodel").read_bytes())
    conv = next(n for n in graph.op_node if n.op_type == "conv2d")
    conv.op_attr["stride"].int32_vec_value.value[:] = [2, 2]
    (tmp_path / "bad.xmodel").write_bytes(graph.SerializeToString())
    assert subprocess.run([str(checker), str(tmp_path / "bad.xmodel")], capture_output=True).returncode != 0


def test_the_int8_model_keeps_the_power_of_two_invariants(bundle):
    for name in ("vgg11", "mobilenetv2"):
        model = onnx.load(bundle(name) / "model.onnx")
        assert qdq_invariants.violations(model, FLAVORS["dpu"]) == []


def test_every_fix_is_a_signed_8_bit_dpu_round_at_the_onnx_power_of_two_scale(bundle):
    path = bundle("mobilenetv2")
    model = onnx.load(path / "model.onnx")
    constants = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    onnx_points = sorted(-int(math.log2(float(constants[n.input[1]]))) for n in model.graph.node
                         if n.op_type == "QuantizeLinear")
    ops = xmodel_ops(path)
    fixes = [n for n in ops.values() if n.op_type == "fix"]
    for fix in fixes:
        assert fix.op_attr["bit_width"].int32_value == 8 and fix.op_attr["if_signed"].bool_value
        assert fix.op_attr["round_mode"].string_value == "DPU_ROUND"
    activation_points = sorted(f.op_attr["fix_point"].int32_value for f in fixes
                               if ops[f.args[0].arg_ops[0]].op_type != "const")
    assert set(activation_points) == set(onnx_points)
    assert ops["input"].op_type == "data" and ops["input"].output_tensor.tensor_dim[:] == [1, 32, 32, 3]


def test_weights_are_ohwi_float_consts_exactly_on_their_fix_grid(bundle):
    path = bundle("vgg11")
    model = onnx.load(path / "model.onnx")
    constants = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    dequantize = next(n for n in model.graph.node if n.output[0] == conv.input[1])
    onnx_weights = constants[dequantize.input[0]].astype(np.float32) * constants[dequantize.input[1]]
    ops = xmodel_ops(path)
    conv_op = next(n for n in ops.values() if n.op_type == "conv2d")
    weight_fix = ops[next(a for a in conv_op.args if a.arg_name == "weights").arg_ops[0]]
    const = ops[weight_fix.args[0].arg_ops[0]]
    shape = list(const.op_attr["shape"].int32_vec_value.value)
    values = np.frombuffer(const.op_attr["data"].bytes_value.value, np.float32).reshape(shape)
    np.testing.assert_array_equal(values, onnx_weights.transpose(0, 2, 3, 1))  # OIHW -> OHWI
    steps = values * 2.0 ** weight_fix.op_attr["fix_point"].int32_value
    assert np.array_equal(steps, np.rint(steps)) and steps.min() >= -128 and steps.max() <= 127
    assert list(conv_op.op_attr["kernel"].int32_vec_value.value) == [3, 3]
    assert conv_op.op_attr["pad_mode"].string_value == "FLOOR"


def test_the_bundle_files_are_byte_identical_across_compiles(bundle, zoo_onnx, tmp_path):
    result = invoke("compile", zoo_onnx("vgg11"), "-o", tmp_path / "again", *COMPILE)
    assert result.exit_code == 0, result.output
    for name in ("model_int.xmodel", "dpu_report.json", "compile.sh", "arch.json"):
        assert (tmp_path / "again" / name).read_bytes() == (bundle("vgg11") / name).read_bytes(), name


# --- the DPU report ------------------------------------------------------------

def mixed_model(tmp_path) -> str:
    """conv3x3 -> Sigmoid -> conv17x17 -> conv3x3 -> conv1x1 (the output)."""
    rng = np.random.default_rng(0)

    def weights(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    layers = [("conv_ok", 3, "x"), ("conv_big", 17, "s"), ("conv_mid", 3, "r_big"), ("conv_last", 1, "r_mid")]
    nodes, inits = [], {}
    for name, kernel, source in layers:
        channels = 3 if source == "x" else 16
        inits.update({f"{name}_w": weights(16, channels, kernel, kernel), f"{name}_b": weights(16)})
        nodes.append(helper.make_node("Conv", [source, f"{name}_w", f"{name}_b"], [f"c_{name}"], name=name,
                                      kernel_shape=[kernel, kernel], pads=[kernel // 2] * 4))
        output = "y" if name == "conv_last" else f"r_{name[5:]}"
        nodes.append(helper.make_node("Relu", [f"c_{name}"], [output], name=f"relu_{name[5:]}"))
        if name == "conv_ok":
            nodes.append(helper.make_node("Sigmoid", ["r_ok"], ["s"], name="sigmoid"))
    return save(make_model(nodes, inits, inputs={"x": [1, 3, 20, 20]}, outputs={"y": [1, 16, 20, 20]}), tmp_path)


def test_the_report_places_each_op_with_its_reason_and_counts_subgraphs(tmp_path):
    out = tmp_path / "out"
    result = invoke("compile", mixed_model(tmp_path), "-o", out, "--target", "zcu104", *INT8)
    assert result.exit_code == 0, result.output
    report = dpu_report(out)
    placed = {p["op"]: (p["device"], p["reason"]) for p in report["placements"]}
    assert placed["conv_ok"][0] == "DPU" and placed["relu_ok"] == ("DPU", "fused into conv2d 'conv_ok'")
    assert placed["sigmoid"] == ("CPU", "'sigmoid' is not a DPUCZDX8G operator")
    assert placed["conv_big"] == ("CPU", "convolution kernel 17x17 outside [1, 16]")
    assert placed["relu_big"][0] == "CPU" and placed["conv_mid"][0] == "DPU"
    assert placed["conv_last"][0] == "DPU"  # the network's output is fixed too
    assert report["subgraphs"] == {"dpu": 2, "cpu": 1, "user": 1, "total": 4}
    assert {layer["op"] for layer in report["estimate"]["layers"]} == {"conv_ok", "conv_mid", "conv_last"}
    assert manifest(out)["target"]["predicted_subgraphs"] == report["subgraphs"]


def one_layer_model(tmp_path, op, **attrs) -> str:
    """x -> Conv(16, 3x3) -> Relu -> `op` (a Conv's kernel 3 unless given; an Add with a constant) -> y."""
    rng = np.random.default_rng(2)
    inits = {"w": (rng.standard_normal((16, 3, 3, 3)) * 0.2).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="first", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["r"], name="first_relu")]
    if op == "Conv":
        kernel = attrs.pop("kernel", 3)
        inits["w2"] = (rng.standard_normal((16, 16, kernel, kernel)) * 0.2).astype(np.float32)
        nodes.append(helper.make_node("Conv", ["r", "w2"], ["y"], name="layer", kernel_shape=[kernel, kernel],
                                      **attrs))
    elif op == "Add":  # broadcasting: a per-channel constant
        inits["k"] = (rng.standard_normal((1, 16, 1, 1)) * 0.2).astype(np.float32)
        nodes.append(helper.make_node("Add", ["r", "k"], ["y"], name="layer"))
    else:
        nodes.append(helper.make_node(op, ["r"], ["y"], name="layer", **attrs))
    model = make_model(nodes, inits, inputs={"x": [1, 3, 36, 36]})
    del model.graph.output[:]  # its shape is shape inference's to find
    model.graph.output.append(helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None))
    return save(onnx.shape_inference.infer_shapes(model, strict_mode=True), tmp_path)


@pytest.mark.parametrize("op,attrs,reason", [
    ("Conv", {"strides": [9, 9]}, "convolution stride 9x9 outside [1, 8]"),
    ("Conv", {"pads": [3, 3, 3, 3]}, "padding [3, 3, 3, 3] beyond (kernel - 1) * dilation"),
    ("Conv", {"kernel": 1, "pads": [1, 1, 1, 1]}, "padding [1, 1, 1, 1] beyond (kernel - 1) * dilation"),
    ("MaxPool", {"kernel_shape": [17, 17], "strides": [2, 2], "pads": [16, 16, 0, 0]},
     "padding [16, 0, 16, 0] beyond the ALU's 0-15 left/top, 0-255 right/bottom"),
    ("Add", {}, "a broadcasting add (the elementwise engine takes tensors of one shape)"),
])
def test_the_dpu_limits_send_a_layer_to_the_cpu_with_the_limit_named(tmp_path, op, attrs, reason):
    out = tmp_path / "out"
    result = invoke("compile", one_layer_model(tmp_path, op, **attrs), "-o", out, "--target", "zcu104", *INT8)
    assert result.exit_code == 0, result.output
    placed = {p["op"]: (p["device"], p["reason"]) for p in dpu_report(out)["placements"]}
    assert placed["first"][0] == "DPU"
    assert placed["layer"] == ("CPU", reason), placed


def test_a_batchnorm_no_conv_precedes_runs_on_the_dpus_depthwise_engine(tmp_path):
    """Found by fuzzing: it first broke the dpu flavour's rules, then XIR had no op for it."""
    c = 4
    stats = {"s": np.full(c, 1.5), "b": np.full(c, 0.1), "m": np.zeros(c), "v": np.ones(c)}
    model = make_model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                        helper.make_node("BatchNormalization", ["r", "s", "b", "m", "v"], ["y"], name="bn")],
                       {k: v.astype(np.float32) for k, v in stats.items()},
                       inputs={"x": [1, c, 8, 8]}, outputs={"y": [1, c, 8, 8]})
    out = tmp_path / "out"
    result = invoke("compile", save(model, tmp_path), "-o", out, "--target", "zcu104", *INT8)
    assert result.exit_code == 0, result.output
    placed = {p["source"]: (p["type"], p["device"]) for p in dpu_report(out)["placements"]}
    assert placed["bn"] == ("depthwise-conv2d", "DPU")


def engines_model(tmp_path) -> str:
    """conv3x3 -> depthwise3x3 -> LeakyRelu -> conv1x1 -> Add(+ conv3x3's Relu) -> Relu -> conv1x1 (the output)."""
    rng = np.random.default_rng(0)

    def weights(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
             helper.make_node("Conv", ["r1", "wd", "bd"], ["cd"], name="depthwise", kernel_shape=[3, 3],
                              pads=[1] * 4, group=16),
             helper.make_node("LeakyRelu", ["cd"], ["ld"], name="leaky", alpha=0.1),
             helper.make_node("Conv", ["ld", "w2", "b2"], ["c2"], name="pointwise", kernel_shape=[1, 1]),
             helper.make_node("Add", ["c2", "r1"], ["a"], name="add"),
             helper.make_node("Relu", ["a"], ["ra"], name="relu_add"),
             helper.make_node("Conv", ["ra", "w3", "b3"], ["y"], name="head", kernel_shape=[1, 1])]
    inits = {"w1": weights(16, 3, 3, 3), "b1": weights(16), "wd": weights(16, 1, 3, 3), "bd": weights(16),
             "w2": weights(16, 16, 1, 1), "b2": weights(16), "w3": weights(8, 16, 1, 1), "b3": weights(8)}
    return save(make_model(nodes, inits, inputs={"x": [1, 3, 12, 12]}, outputs={"y": [1, 8, 12, 12]}), tmp_path)


def test_each_engine_takes_its_ops_and_fuses_its_activations(tmp_path):
    out = tmp_path / "out"
    result = invoke("compile", engines_model(tmp_path), "-o", out, "--target", "zcu104", *INT8)
    assert result.exit_code == 0, result.output
    report = dpu_report(out)
    placed = {p["op"]: (p["device"], p["reason"]) for p in report["placements"]}
    assert placed["depthwise"] == ("DPU", "within DPUCZDX8G limits: ALU (depthwise convolution)")
    assert placed["leaky"] == ("DPU", "within DPUCZDX8G limits: ALU (stand-alone leaky-relu)")  # between fixes
    assert placed["add"][0] == "DPU" and placed["relu_add"] == ("DPU", "fused into add 'add'")
    layers = {layer["op"]: layer for layer in report["estimate"]["layers"]}
    assert {op: layer["engine"] for op, layer in layers.items()} == {
        "conv": "conv", "depthwise": "alu", "leaky": "alu", "pointwise": "conv", "add": "eltwise", "head": "conv"}
    assert layers["depthwise"]["cycles"] == 12 * 3 * 1 * 9 and layers["depthwise"]["utilisation"] == 1 / 32
    assert report["subgraphs"] == {"dpu": 1, "cpu": 0, "user": 1, "total": 2}


def test_the_zoo_models_run_on_the_dpu_classifier_and_all(bundle):
    for name in ("vgg11", "mobilenetv2", "resnet50"):
        report = dpu_report(bundle(name))
        cpu = [(p["type"], p["reason"]) for p in report["placements"] if p["device"] == "CPU"]
        assert cpu == []
        assert report["subgraphs"] == {"dpu": 1, "cpu": 0, "user": 1, "total": 2}
        assert all(p["reason"] for p in report["placements"])


# --- the latency estimate ------------------------------------------------------

def one_conv(out_channels, in_channels=16, width=16, kernel=3) -> tuple:
    ops = [XirOp("x", "data", [1, width, width, in_channels]),
           XirOp("conv", "conv2d", [1, width, width, out_channels], attrs={"kernel": [kernel, kernel]},
                 inputs={"input": ["x"]})]
    graph = XirGraph("g", ops)
    return dpu_estimate.layer_cost(ops[1], graph.by_name())


def test_the_estimate_steps_every_16_channels_and_is_monotone():
    cycles = {c: one_conv(c)["cycles"] for c in range(1, 65)}
    assert all(cycles[c] <= cycles[c + 1] for c in range(1, 64))
    assert len({cycles[c] for c in range(1, 17)}) == 1 and cycles[17] == 2 * cycles[16] == cycles[32]
    assert one_conv(16)["utilisation"] == 1.0 and one_conv(17)["utilisation"] == pytest.approx(17 / 32)
    assert one_conv(32, in_channels=8, kernel=1)["utilisation"] == 0.5  # half of the 16 input lanes idle
    assert one_conv(16, width=4)["utilisation"] == 0.5  # rows narrower than the 8 pixel lanes
    # 8 channels x 3 kernel columns fit the channel augmentation (32): 2 x 3 taps instead of 9
    assert one_conv(16, in_channels=8)["cycles"] == 16 * 2 * 6 and one_conv(16, in_channels=8)["channel_augmentation"]


def test_depthwise_layers_and_adds_run_on_the_4_pixel_engines():
    ops = [XirOp("x", "data", [1, 16, 16, 32]),
           XirOp("dw", "depthwise-conv2d", [1, 16, 16, 32], attrs={"kernel": [3, 3]}, inputs={"input": ["x"]}),
           XirOp("add", "add", [1, 16, 16, 32], inputs={"input": ["x", "dw"]})]
    by_name = XirGraph("g", ops).by_name()
    depthwise = dpu_estimate.layer_cost(ops[1], by_name)
    assert depthwise["cycles"] == 16 * 4 * 2 * 9 and depthwise["utilisation"] == 1 / 32
    assert dpu_estimate.layer_cost(ops[2], by_name)["cycles"] == 16 * 4 * 2 * 2


def test_the_estimate_grows_with_the_width_of_vgg11(bundle):
    estimates = [dpu_report(bundle("vgg11", ratio))["estimate"] for ratio in ("0.25", "0.5")]
    assert estimates[0]["latency_ms"] < estimates[1]["latency_ms"]
    assert 0 < estimates[0]["utilisation"] <= estimates[1]["utilisation"] <= 1
    layer = estimates[0]["layers"][0]
    # 3 -> 16 channels, 3x3, 32x32: 3 channels x 3 columns augmented into one 16-lane tap per kernel row
    assert layer["cycles"] == 32 * math.ceil(32 / 8) * 1 * 3 * 1 and layer["channel_augmentation"]
    assert manifest(bundle("vgg11"))["target"]["estimated_dpu_latency_ms"] == round(estimates[0]["latency_ms"], 6)


# --- compile.sh and vai_c_xir ---------------------------------------------------

@needs_shellcheck
def test_compile_sh_is_shellcheck_clean_and_quotes_its_paths(bundle):
    script = bundle("vgg11") / "compile.sh"
    assert subprocess.run(["shellcheck", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert 'vai_c_xir -x "$here/model_int.xmodel" -a "$here/arch.json" -o "$out" -n "model"' in text
    assert os.stat(script).st_mode & stat.S_IXUSR


def test_compile_sh_without_vai_c_xir_says_where_to_run_it(bundle, tmp_path):
    env = {"PATH": "/usr/bin:/bin"}
    run = subprocess.run([str(bundle("vgg11") / "compile.sh"), str(tmp_path / "o")], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 3 and "Vitis AI 2.5 docker image" in run.stderr


FAKE_VAI_C_XIR = """#!{python}
# records its argv; writes -o/-n.xmodel as vai_c_xir would (user, DPU, CPU subgraphs)
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_ARGV"], "w") as handle:
    json.dump(args, handle)
if os.environ.get("FAKE_FAIL"):
    print("[UNILOG][FATAL][XCOM_UNSUPPORTED_OP] the op is not supported", file=sys.stderr)
    sys.exit(1)
from ncc.targets.zcu104.xmodel_writer import read_xmodel
graph = read_xmodel(open(args[args.index("-x") + 1], "rb").read())
for name, device in (("subgraph_input", "USER"), ("subgraph_dpu", "DPU"), ("subgraph_fc", "CPU")):
    child = graph.subg_root.subg_child.add(subgraph_name=name)
    child.subg_attr["device"].string_value = device
out = args[args.index("-o") + 1]
with open(os.path.join(out, args[args.index("-n") + 1] + ".xmodel"), "wb") as handle:
    handle.write(graph.SerializeToString())
"""


@pytest.fixture
def fake_vai_c_xir(tmp_path, monkeypatch):
    folder = tmp_path / "bin"
    folder.mkdir()
    tool = folder / "vai_c_xir"
    tool.write_text(FAKE_VAI_C_XIR.format(python=sys.executable))
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ARGV", str(tmp_path / "argv.json"))
    return tmp_path / "argv.json"


def test_with_vai_c_xir_on_path_ncc_compiles_and_reports_its_subgraphs(fake_vai_c_xir, tmp_path):
    out = tmp_path / "out"
    result = invoke("compile", mixed_model(tmp_path), "-o", out, "--target", "zcu104", *INT8)
    assert result.exit_code == 0, result.output
    argv = json.loads(fake_vai_c_xir.read_text())
    assert argv[0::2] == ["-x", "-a", "-o", "-n"] and argv[-1] == "model"
    assert [os.path.basename(a) for a in argv[1:6:2]] == ["model_int.xmodel", "arch.json", "out"]
    found = manifest(out)
    assert found["target"]["xmodel_compiled"] is True
    assert found["target"]["vai_c_xir"]["subgraphs"] == {"CPU": 1, "DPU": 1, "USER": 1}
    assert "out/model.xmodel" in {a["path"] for a in found["artifacts"]}
    run = subprocess.run([str(out / "compile.sh"), str(tmp_path / "by script")], capture_output=True, text=True,
                         env=os.environ)  # compile.sh runs the same vai_c_xir, paths with spaces quoted
    assert run.returncode == 0, run.stderr
    assert json.loads(fake_vai_c_xir.read_text()) == [
        "-x", str(out / "model_int.xmodel"), "-a", str(out / "arch.json"), "-o", str(tmp_path / "by script"),
        "-n", "model"]
    assert (tmp_path / "by script" / "model.xmodel").is_file()


def test_a_failing_vai_c_xir_is_one_error_line_and_no_bundle(fake_vai_c_xir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "1")
    result = invoke("compile", mixed_model(tmp_path), "-o", tmp_path / "out", "--target", "zcu104", *INT8)
    assert_one_line_error(result, 1, "vai_c_xir failed (exit 1): [UNILOG][FATAL][XCOM_UNSUPPORTED_OP]")
    assert not (tmp_path / "out").exists()


# --- refusals ---------------------------------------------------------------------

def keras_hard_sigmoid(tmp_path) -> str:
    """HardSigmoid at ONNX's default alpha 0.2 (Keras's), not XIR's relu6(x + 3) / 6."""
    w = np.ones((8, 4, 3, 3), np.float32) * 0.1
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
             helper.make_node("HardSigmoid", ["c"], ["y"], name="gate")]
    return save(make_model(nodes, {"w": w}, inputs={"x": [1, 4, 8, 8]}, outputs={"y": [1, 8, 6, 6]}), tmp_path)


@pytest.mark.parametrize("build,flags,code,fragment", [
    (mixed_model, (), 2, "target zcu104 runs int8 only: compile with --quantize int8"),
    (mixed_model, (*INT8, "--quant-flavor", "generic"), 1, "needs the dpu quantization flavour"),
    (keras_hard_sigmoid, INT8, 1, "HardSigmoid (node 'gate': alpha and beta other than 1/6 and 1/2"),
])
def test_what_the_dpu_cannot_take_is_one_error_line_and_no_bundle(tmp_path, build, flags, code, fragment):
    result = invoke("compile", build(tmp_path), "-o", tmp_path / "out", "--target", "zcu104", *flags)
    assert_one_line_error(result, code, fragment)
    assert not (tmp_path / "out").exists()


def test_ncc_bench_refuses_to_run_the_bundle_here(bundle):
    result = invoke("bench", bundle("vgg11"))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
