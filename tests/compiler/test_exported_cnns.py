"""CIFAR-10 CNN families as torch.onnx exports them (tests/exported_cnns.py),
through the commands a new user runs: each loads, lists its channel groups,
scales to half width with --verify, quantizes on onnxruntime, and is compiled
or refused for zcu104 and xavier exactly as the table below says."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from cli_helpers import assert_one_line_error, invoke
from exported_cnns import FAMILIES, INPUT, export

OK = None
INT8 = ("--quantize", "int8", "--calib-samples", "8")

# model -> ({reason fragment: how many groups with producers it freezes}, besides the graph's input
#           and output; {target: None if it compiles, else a fragment of its one-line refusal})
EXPECTED = {
    "preact-resnet": ({}, {"zcu104": OK, "xavier": OK}),
    "se-resnet": ({}, {"zcu104": OK, "xavier": OK}),
    "densenet": ({}, {"zcu104": OK, "xavier": OK}),
    "resnext": ({"grouped convolution": 4}, {"zcu104": OK, "xavier": OK}),
    "pyramidnet": ({"joins channels split into different groups": 4, "adds channels": 1},
                   {"zcu104": "cannot express Pad (node '/blocks/blocks.1/Pad') in XIR", "xavier": OK}),
    "shufflenetv2": ({"channel shuffle": 4}, {"zcu104": "cannot express Reshape", "xavier": OK}),
    "mobilenetv3": ({}, {"zcu104": OK, "xavier": OK}),
    "ghostnet": ({"joins channels split into different groups": 11}, {"zcu104": OK, "xavier": OK}),
    "wrn": ({}, {"zcu104": OK, "xavier": OK}),
    "ror": ({}, {"zcu104": OK, "xavier": OK}),
    "nin": ({}, {"zcu104": OK, "xavier": OK}),
    # the downsampling shortcut concatenates two convolutions and is added to one; its pixel shift
    # (a spatial Slice and Pad) is not lowered to XIR
    "shake-shake": ({"joins channels split into different groups": 8},
                    {"zcu104": "cannot express Slice (node '/features/features.3/shortcut/Slice'", "xavier": OK}),
    # the attention's LSTM cell: its state goes through stack/index (Unsqueeze/Gather on axis 0), which
    # freezes each stage's width, and its 4C gate vector is chunked into quarters
    "dia-resnet": ({"produced by Gather node": 3, "cuts the channel axis inside a group": 6},
                   {"zcu104": "cannot express Slice (node '/stages.0.0/attention/lstm/Slice'", "xavier": OK}),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exported")
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = folder / f"{name}.onnx"
            export(name, cache[name])
        return cache[name]

    return get


def groups_of(path) -> list:
    result = invoke("inspect", path, "--groups", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["groups"]


def conv_widths(model: onnx.ModelProto) -> dict:
    """Conv name -> (output channels, group)."""
    weights = {init.name: init.dims for init in model.graph.initializer}
    groups = {node.name: next((a.i for a in node.attribute if a.name == "group"), 1) for node in model.graph.node}
    return {node.name: (weights[node.input[1]][0], groups[node.name])
            for node in model.graph.node if node.op_type == "Conv"}


def run(model_path, x):
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_the_table_covers_every_family():
    assert set(EXPECTED) == set(FAMILIES)


@pytest.mark.parametrize("name", FAMILIES)
def test_groups_list_and_freeze_only_what_the_table_says(name, exported):
    frozen_extra, _ = EXPECTED[name]
    groups = groups_of(exported(name))
    reasons = [g["frozen"] for g in groups if not g["scalable"] and g["producers"]
               and not any(r.startswith(("graph input", "graph output")) for r in g["frozen"])]
    counted = {fragment: sum(any(fragment in r for r in rs) for rs in reasons) for fragment in frozen_extra}
    assert counted == frozen_extra, reasons
    assert all(any(fragment in r for fragment in frozen_extra for r in rs) for rs in reasons), reasons
    assert sum(g["scalable"] for g in groups) >= 3


@pytest.mark.parametrize("name", FAMILIES)
def test_uniform_half_width_verifies_and_gives_exact_widths(name, exported, tmp_path):
    path = exported(name)
    result = invoke("compile", path, "-o", tmp_path / "b", "--target", "onnxruntime", "--scale", "uniform:0.5",
                    "--verify")
    assert result.exit_code == 0, result.output
    compiled = onnx.load(tmp_path / "b" / "model.onnx")
    onnx.checker.check_model(compiled, full_check=True)
    expected = {producer: max(1, g["width"] // 2) if g["scalable"] else g["width"]
                for g in groups_of(path) for producer in g["producers"]}
    for conv, (width, group) in conv_widths(compiled).items():
        assert width == expected[conv] if conv in expected else width == group, conv  # else depthwise
    x = np.random.default_rng(0).standard_normal(INPUT, dtype=np.float32)
    assert run(tmp_path / "b" / "model.onnx", x).shape == (1, 10)


@pytest.mark.parametrize("name", FAMILIES)
def test_int8_on_onnxruntime_stays_close_to_float(name, exported, tmp_path):
    path = exported(name)
    result = invoke("compile", path, "-o", tmp_path / "b", "--target", "onnxruntime", *INT8)
    assert result.exit_code == 0, result.output
    ops = {node.op_type for node in onnx.load(tmp_path / "b" / "model.onnx").graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    x = np.random.default_rng(0).standard_normal(INPUT, dtype=np.float32)
    assert run(tmp_path / "b" / "model.onnx", x).shape == (1, 10)


@pytest.mark.parametrize("target", ["zcu104", "xavier"])
@pytest.mark.parametrize("name", FAMILIES)
def test_board_bundles_compile_or_are_refused_as_documented(name, target, exported, tmp_path):
    refusal = EXPECTED[name][1][target]
    result = invoke("compile", exported(name), "-o", tmp_path / "b", "--target", target, *INT8)
    if refusal is OK:
        assert result.exit_code == 0, result.output
        assert (tmp_path / "b" / "manifest.json").exists()
    else:
        assert_one_line_error(result, 1, refusal)
        assert not (tmp_path / "b").exists()
