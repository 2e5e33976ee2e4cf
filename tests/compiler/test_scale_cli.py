import json

import onnx
import pytest
from click.testing import CliRunner

from ncc.compiler.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_compile_with_uniform_scale_records_widths(tmp_path, zoo_onnx):
    result = invoke("compile", zoo_onnx("mobilenetv2"), "-o", tmp_path / "b", "--scale", "uniform:0.5",
                    "--round-to", "8", "--importance", "l2")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["options"]["scale"] == "uniform:0.5" and manifest["options"]["round_to"] == 8
    scale = next(p for p in manifest["passes"] if p["name"] == "scale-channels")
    assert scale["options"] == {"importance": "l2", "method": "uniform", "profile": None, "ratio": 0.5,
                                "round_to": 8, "seed": 0}
    assert all(w["final"] % 8 == 0 for w in scale["stats"]["widths"].values())
    assert set(scale["stats"]["frozen"]) == {"input", "/25/Gemm"}
    compiled = onnx.load(tmp_path / "b" / "model.onnx")
    assert manifest["model"]["after"]["params"] < manifest["model"]["before"]["params"] / 3
    assert "BatchNormalization" not in {n.op_type for n in compiled.graph.node}


@pytest.mark.parametrize("args,pattern", [
    (["--scale", "uniform"], "bad --scale 'uniform'"),
    (["--scale", "uniform:-1"], "positive"),
    (["--scale", "magic:0.5"], "bad --scale"),
    (["--scale", "uniform:0.5", "--round-to", "x"], "bad --round-to"),
    (["--scale", "neuralscale:0.5"], "needs --profile"),
    (["--profile", "p.json"], "only with --scale neuralscale"),
])
def test_bad_scale_options_are_usage_errors(tmp_path, zoo_onnx, args, pattern):
    result = invoke("compile", zoo_onnx("vgg11"), "-o", tmp_path / "b", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and pattern in result.stderr
    assert not (tmp_path / "b").exists()


def test_inspect_groups(zoo_onnx):
    result = invoke("inspect", zoo_onnx("resnet50"), "--groups", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scalable"] == 37 and summary["frozen"] == 2
    ids = [g["id"] for g in summary["groups"]]
    assert len(set(ids)) == len(ids) and ids[0] == "input"
    text = invoke("inspect", zoo_onnx("resnet50"), "--groups")
    assert "graph output 'logits'" in text.stdout and "37 scalable, 2 frozen" in text.stdout
