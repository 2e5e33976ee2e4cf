"""model_int.xmodel means what model.onnx means: the XIR graph, evaluated in
NHWC by the formulas of libxir 2.5's op definitions (conv2d over OHWI
weights, pad {left, right, top, bottom}, fix with DPU_ROUND, flatten of NHWC,
inner-product over [out, in] weights), gives the logits ONNX Runtime gives for
the dpu-flavour QDQ model. No XIR interpreter is installed here (Debian's VART
has no CPU runner), so this small one, written from those formulas, is the
oracle for the layout conventions."""

import json
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from cli_helpers import invoke
from ncc.targets.zcu104.xir_lowering import lower
from onnx import helper
from onnx_builders import make_model, save


def dpu_round(x):
    """DPU_ROUND: std::round (half away from zero), except a negative half rounds up."""
    away = np.sign(x) * np.floor(np.abs(x) + 0.5)
    return np.where((x < 0) & (x - np.floor(x) == 0.5), np.ceil(x), away)


def window(x, kernel, stride, pad, fill=0.0):
    """[N, OH, OW, kh, kw, C] patches of an NHWC tensor (FLOOR pad mode)."""
    (kw, kh), (sw, sh), (left, right, top, bottom) = kernel, stride, pad
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    rows = np.arange(oh)[:, None] * sh + np.arange(kh)[None, :]
    cols = np.arange(ow)[:, None] * sw + np.arange(kw)[None, :]
    return x[:, rows[:, None, :, None], cols[None, :, None, :], :]


def evaluate(graph, x_nhwc) -> np.ndarray:
    values = {}
    for op in graph.ops:
        args = {k: [values[n] for n in names] for k, names in op.inputs.items()}
        a = op.attrs
        if op.type == "data":
            out = x_nhwc
        elif op.type == "const":
            out = op.data
        elif op.type == "fix":
            step = 2.0 ** -a["fix_point"]
            out = np.clip(dpu_round(args["input"][0] / step), -128, 127) * step
        elif op.type in ("conv2d", "depthwise-conv2d"):
            patches = window(args["input"][0], a["kernel"], a["stride"], a["pad"])
            w = args["weights"][0]
            if op.type == "conv2d":
                out = np.einsum("nhwijc,oijc->nhwo", patches, w)
            else:
                out = np.einsum("nhwijc,ijc->nhwc", patches, w[0])
            out = out + (args["bias"][0] if "bias" in args else 0)
        elif op.type in ("maxpool2d", "avgpool2d"):
            if a["global"]:
                reduce = np.max if op.type == "maxpool2d" else np.mean
                out = reduce(args["input"][0], axis=(1, 2), keepdims=True)
            else:
                patches = window(args["input"][0], a["kernel"], a["stride"], a["pad"],
                                 -np.inf if op.type == "maxpool2d" else 0.0)
                out = patches.max(axis=(3, 4)) if op.type == "maxpool2d" else patches.mean(axis=(3, 4))
        elif op.type == "relu":
            out = np.maximum(args["input"][0], 0)
        elif op.type == "relu6":
            out = np.clip(args["input"][0], 0, 6)
        elif op.type == "hard-sigmoid":
            out = np.clip(args["input"][0] + 3, 0, 6) / 6
        elif op.type == "add":
            out = sum(args["input"])
        elif op.type == "mul":
            out = np.prod(np.broadcast_arrays(*args["input"]), axis=0)
        elif op.type == "concat":
            out = np.concatenate(args["input"], axis=a["axis"])
        elif op.type == "flatten":
            out = args["input"][0].reshape(args["input"][0].shape[0], -1)
        elif op.type == "inner-product":
            out = args["input"][0].reshape(args["input"][0].shape[0], -1) @ args["weights"][0].T
            out = out + (args["bias"][0] if "bias" in args else 0)
        else:
            raise AssertionError(f"no reference for {op.type}")
        assert list(out.shape) == list(op.shape), (op.name, out.shape, op.shape)
        values[op.name] = out
    return values[graph.ops[-1].name]


def test_dpu_round_follows_the_xir_definition():
    x = np.array([2.3, 2.5, -2.5, -2.6, 0.5, -0.5, 3.5])
    assert dpu_round(x).tolist() == [2, 3, -2, -3, 1, 0, 4]


def onnx_logits(path, x_nchw):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x_nchw})[0]


def check_same_logits(model_path, rng, samples=3, tolerance=0.02):
    model = onnx.load(model_path)
    graph = lower(model)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    for _ in range(samples):
        x = rng.standard_normal(shape).astype(np.float32)
        expected = onnx_logits(model_path, x)
        got = evaluate(graph, x.transpose(0, 2, 3, 1))
        got = got.transpose(0, 3, 1, 2) if got.ndim == 4 else got  # NHWC back to ONNX's NCHW
        # ties round differently (ORT: half to even, DPU_ROUND: half away), so allow a few steps
        scale = np.abs(expected).max()
        assert np.abs(got - expected).max() <= tolerance * scale, (got, expected)


@pytest.mark.parametrize("name", ["vgg11", "mobilenetv2"])
def test_the_xmodel_computes_the_onnx_models_logits(zoo_onnx, tmp_path, rng, name):
    out = tmp_path / name
    result = invoke("compile", zoo_onnx(name), "-o", out, "--target", "zcu104", "--scale", "uniform:0.25",
                    "--quantize", "int8", "--calib-samples", "8")
    assert result.exit_code == 0, result.output
    check_same_logits(out / "model.onnx", rng)


def test_a_classifier_over_a_spatial_map_reads_nhwc_in_the_onnx_order(tmp_path, rng):
    """Flatten of a 4x4 map: XIR flattens (h, w, c), ONNX (c, h, w); the
    inner-product weights are permuted to match."""
    weights = (rng.standard_normal((16, 3, 3, 3)) * 0.3).astype(np.float32)
    fc = (rng.standard_normal((10, 16 * 4 * 4)) * 0.1).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
             helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1)]
    path = save(make_model(nodes, {"w": weights, "fc": fc}, inputs={"x": [1, 3, 8, 8]}, outputs={"y": [1, 10]}),
                tmp_path)
    result = invoke("compile", path, "-o", tmp_path / "out", "--target", "zcu104", "--quantize", "int8",
                    "--calib-samples", "8")
    assert result.exit_code == 0, result.output
    check_same_logits(tmp_path / "out" / "model.onnx", rng)


def concat_model(tmp_path) -> str:
    """Two convolutions concatenated along channels, max-pooled, then a convolution."""
    rng = np.random.default_rng(1)

    def weights(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="left", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu_left"),
             helper.make_node("Conv", ["x", "w2", "b2"], ["c2"], name="right", kernel_shape=[1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu_right"),
             helper.make_node("Concat", ["r1", "r2"], ["cat"], name="concat", axis=1),
             helper.make_node("MaxPool", ["cat"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p", "w3", "b3"], ["y"], name="head", kernel_shape=[3, 3])]
    inits = {"w1": weights(16, 3, 3, 3), "b1": weights(16), "w2": weights(8, 3, 1, 1), "b2": weights(8),
             "w3": weights(4, 24, 3, 3), "b3": weights(4)}
    return save(make_model(nodes, inits, inputs={"x": [1, 3, 12, 12]}, outputs={"y": [1, 4, 4, 4]}), tmp_path)


def test_a_channel_concat_is_an_nhwc_concat_on_the_last_axis(tmp_path, rng):
    out = tmp_path / "out"
    result = invoke("compile", concat_model(tmp_path), "-o", out, "--target", "zcu104", "--quantize", "int8",
                    "--calib-samples", "8")
    assert result.exit_code == 0, result.output
    graph = lower(onnx.load(out / "model.onnx"))
    concat = next(op for op in graph.ops if op.type == "concat")
    assert concat.attrs["axis"] == 3 and concat.shape == [1, 12, 12, 24]
    check_same_logits(out / "model.onnx", rng)
    points = [graph.by_name()[name].attrs["fix_point"] for name in concat.inputs["input"]]
    placed = next(p for p in json.loads((out / "dpu_report.json").read_text())["placements"] if p["op"] == "concat")
    assert len(set(points)) == 1, points  # one position for a concat's inputs, as Vitis AI's quantizer gives
    assert placed["device"] == "DPU" and "fix points" not in placed["reason"]


def test_a_batchnorm_no_layer_absorbs_computes_as_its_depthwise_convolution(tmp_path, rng):
    """Pre-activation: BatchNorm -> Relu -> Conv; the BatchNorm is a 1x1 depthwise convolution in XIR."""
    channels = 16
    stats = {"s": rng.uniform(0.5, 1.5, channels), "b": rng.normal(0, 0.1, channels),
             "m": rng.normal(0, 0.1, channels), "v": rng.uniform(0.5, 2, channels),
             "w": rng.normal(0, 0.2, (8, channels, 3, 3))}
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["a"], name="bn"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w"], ["y"], name="conv", kernel_shape=[3, 3], pads=[1] * 4)]
    model = make_model(nodes, {k: v.astype(np.float32) for k, v in stats.items()},
                       inputs={"x": [1, channels, 10, 10]}, outputs={"y": [1, 8, 10, 10]})
    out = tmp_path / "out"
    result = invoke("compile", save(model, tmp_path), "-o", out, "--target", "zcu104", "--quantize", "int8",
                    "--calib-samples", "8")
    assert result.exit_code == 0, result.output
    assert [op.type for op in lower(onnx.load(out / "model.onnx")).ops if op.type.endswith("conv2d")] == [
        "depthwise-conv2d", "conv2d"]
    check_same_logits(out / "model.onnx", rng)


# these end in one layer's output, where a tie rounded the other way is one or
# two quantization steps: several percent of the output's range
ONE_LAYER_TOLERANCE = 0.08


def compile_zcu104(model, tmp_path) -> pathlib.Path:
    out = tmp_path / "out"
    result = invoke("compile", save(model, tmp_path), "-o", out, "--target", "zcu104", "--quantize", "int8",
                    "--calib-samples", "8")
    assert result.exit_code == 0, result.output
    return out


def test_a_grouped_convolution_is_the_conv2d_of_its_block_diagonal_weight(tmp_path, rng):
    """ResNeXt's grouped 3x3 (here 4 groups of 4 channels): XIR 2.5's conv2d has no group."""
    w1, w2 = (rng.normal(0, 0.3, (16, 3, 1, 1)).astype(np.float32),
              rng.normal(0, 0.3, (16, 4, 3, 3)).astype(np.float32))
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="reduce", kernel_shape=[1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["y"], name="grouped", kernel_shape=[3, 3], pads=[1] * 4, group=4)]
    out = compile_zcu104(make_model(nodes, {"w1": w1, "w2": w2}, inputs={"x": [1, 3, 8, 8]},
                                    outputs={"y": [1, 16, 8, 8]}), tmp_path)
    graph = lower(onnx.load(out / "model.onnx"))
    grouped = next(op for op in graph.ops if op.source == "grouped" and op.type == "conv2d")
    weights = graph.by_name()[graph.by_name()[grouped.inputs["weights"][0]].inputs["input"][0]].data  # OHWI
    assert weights.shape == (16, 3, 3, 16)
    for o in range(16):  # output channel o reads only its group's 4 input channels
        outside = np.delete(weights[o], np.s_[o // 4 * 4:o // 4 * 4 + 4], axis=-1)
        assert not outside.any()
    check_same_logits(out / "model.onnx", rng, tolerance=ONE_LAYER_TOLERANCE)
    placed = {p["source"]: p for p in json.loads((out / "dpu_report.json").read_text())["placements"]}
    assert placed["grouped"]["device"] == "DPU", placed["grouped"]
    assert placed["grouped"]["reason"].endswith("grouped convolution (group=4) as one conv2d with block-diagonal "
                                                "weights: 4x the MACs of its groups")


def test_hard_swish_and_a_clip_written_hard_sigmoid_run_as_hard_sigmoid_and_mul(tmp_path, rng):
    """MobileNetV3's HardSwish and GhostNet's gate Clip(x / 6 + 0.5, 0, 1): the ALU's hard-sigmoid."""
    w1, w2 = (rng.normal(0, 0.5, (16, 3, 3, 3)).astype(np.float32),
              rng.normal(0, 0.5, (16, 16, 1, 1)).astype(np.float32))
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("HardSwish", ["c"], ["h"], name="hswish"),
             helper.make_node("Conv", ["h", "w2"], ["g"], name="gate_conv", kernel_shape=[1, 1]),
             helper.make_node("Div", ["g", "six"], ["g6"], name="div"),
             helper.make_node("Add", ["g6", "half"], ["gh"], name="add"),
             helper.make_node("Clip", ["gh", "zero", "one"], ["y"], name="clip")]
    consts = {"six": np.float32(6), "half": np.float32(0.5), "zero": np.float32(0), "one": np.float32(1)}
    out = compile_zcu104(make_model(nodes, {"w1": w1, "w2": w2, **consts}, inputs={"x": [1, 3, 8, 8]},
                                    outputs={"y": [1, 16, 8, 8]}), tmp_path)
    graph = lower(onnx.load(out / "model.onnx"))
    assert [op.type for op in graph.ops if op.type in ("hard-sigmoid", "hard-swish", "mul")] == [
        "hard-sigmoid", "mul", "hard-sigmoid"]
    check_same_logits(out / "model.onnx", rng, tolerance=ONE_LAYER_TOLERANCE)
    placed = json.loads((out / "dpu_report.json").read_text())["placements"]
    assert all(p["device"] == "DPU" for p in placed), [p for p in placed if p["device"] != "DPU"]
