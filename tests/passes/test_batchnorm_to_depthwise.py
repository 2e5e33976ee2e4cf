"""batchnorm-to-depthwise: the BatchNorms fold-batchnorm keeps become 1x1
depthwise convolutions computing the same outputs, and a zcu104 compile of a
pre-activation block (BatchNorm -> Relu -> Conv) runs them on the DPU."""

import json

import numpy as np
from cli_helpers import invoke
from ncc.passes import BatchNormToDepthwise, FoldBatchNorm
from onnx import helper, numpy_helper
from onnx_builders import apply_passes, make_model, ops, save


def _bn_inputs(rng, n, prefix):
    return {f"{prefix}.scale": rng.uniform(0.5, 1.5, n).astype(np.float32),
            f"{prefix}.bias": rng.normal(0, 0.1, n).astype(np.float32),
            f"{prefix}.mean": rng.normal(0, 0.1, n).astype(np.float32),
            f"{prefix}.var": rng.uniform(0.5, 2, n).astype(np.float32)}


def _bn(x, y, prefix):
    return helper.make_node("BatchNormalization", [x, *(f"{prefix}.{k}" for k in ("scale", "bias", "mean", "var"))],
                            [y], name=prefix, epsilon=1e-3)


def pre_activation_model(rng, channels=16):
    """x -> BN -> Relu -> Conv 3x3 -> BN (folded) -> Relu -> BN -> y: two BNs no layer absorbs."""
    inits = {"w": rng.normal(0, 0.2, (channels, channels, 3, 3)).astype(np.float32),
             **_bn_inputs(rng, channels, "bn_in"), **_bn_inputs(rng, channels, "bn_conv"),
             **_bn_inputs(rng, channels, "bn_out")}
    nodes = [_bn("x", "a", "bn_in"), helper.make_node("Relu", ["a"], ["r"], name="relu_in"),
             helper.make_node("Conv", ["r", "w"], ["c"], name="conv", pads=[1] * 4),
             _bn("c", "b", "bn_conv"), helper.make_node("Relu", ["b"], ["s"], name="relu"),
             _bn("s", "y", "bn_out")]
    shape = [1, channels, 12, 12]
    return make_model(nodes, inits, inputs={"x": shape}, outputs={"y": shape})


def test_kept_batchnorms_become_equivalent_depthwise_convolutions(rng):
    converted, records = apply_passes(pre_activation_model(rng), FoldBatchNorm(), BatchNormToDepthwise())
    assert records[0].stats["folded"] == 1 and len(records[0].stats["kept"]) == 2
    assert records[1].stats == {"converted": 2, "kept": {}}
    assert records[1].verified["max_rel_error"] <= 1e-5
    assert ops(converted) == ["Conv", "Relu", "Conv", "Relu", "Conv"]
    constants = {init.name: numpy_helper.to_array(init) for init in converted.graph.initializer}
    for node in (n for n in converted.graph.node if n.name.startswith("bn_")):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs == {"group": 16, "kernel_shape": [1, 1]}
        assert constants[node.input[1]].shape == (16, 1, 1, 1) and constants[node.input[2]].shape == (16,)


def test_zcu104_runs_a_pre_activation_block_on_the_dpu(rng, tmp_path):
    out = tmp_path / "out"
    result = invoke("compile", save(pre_activation_model(rng), tmp_path), "-o", out, "--target", "zcu104",
                    "--quantize", "int8", "--calib-samples", "8")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "dpu_report.json").read_text())
    placed = {p["op"]: p for p in report["placements"]}
    for bn in ("bn_in", "bn_out"):
        entry = next(p for name, p in placed.items() if name.startswith(bn))
        assert entry["type"] == "depthwise-conv2d" and entry["device"] == "DPU", entry
    assert report["subgraphs"]["cpu"] == 0
