import json
import os

import onnx
import pytest
from cli_helpers import invoke


def test_compile_with_uniform_scale_records_widths(tmp_path, zoo_onnx):
    result = invoke("compile", zoo_onnx("mobilenetv2"), "-o", tmp_path / "b", "--target", "onnxruntime",
                    "--scale", "uniform:0.5", "--round-to", "8", "--importance", "l2")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["options"]["scale"] == "uniform:0.5" and manifest["options"]["round_to"] == 8
    scale = next(p for p in manifest["passes"] if p["name"] == "scale-channels")
    assert scale["options"] == {"importance": "l2", "method": "uniform", "profile": None, "ratio": 0.5,
                                "round_to": 8, "seed": 0}
    assert all(w["final"] % 8 == 0 for w in scale["stats"]["widths"])
    assert [f["id"] for f in scale["stats"]["frozen"]] == ["input", "/25/Gemm"]
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
    result = invoke("compile", zoo_onnx("vgg11"), "-o", tmp_path / "b", "--target", "onnxruntime", *args)
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


REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "reference", "neuralscale")


@pytest.mark.skipif(not os.path.isdir(REFERENCE), reason="shared/reference is not beside this checkout")
def test_reference_vgg_profile_reproduces_the_original_widths(tmp_path, zoo_onnx):
    """The acceptance case: NeuralScale's own VGG-11 CIFAR-10 profile, imported
    onto the zoo's VGG-11 and compiled at the study's four ratios."""
    reference_path = os.path.join(REFERENCE, "vgg_10_eff_c10.json")
    reference = json.load(open(reference_path))
    profile = tmp_path / "vgg.json"
    imported = invoke("profile", "import", reference_path, "--model", zoo_onnx("vgg11"), "-o", profile)
    assert imported.exit_code == 0, imported.output
    for ratio, expected in reference["expected_widths_original_solver"].items():
        out = tmp_path / f"b{ratio}"
        result = invoke("compile", zoo_onnx("vgg11"), "-o", out, "--target", "onnxruntime",
                        "--scale", f"neuralscale:{ratio}", "--profile", profile)
        assert result.exit_code == 0, result.output
        manifest = json.loads((out / "manifest.json").read_text())
        stats = next(p for p in manifest["passes"] if p["name"] == "scale-channels")["stats"]
        widths = [w["final"] for w in stats["widths"]]
        assert all(abs(w - e) <= 1 for w, e in zip(widths, expected["widths"])), (ratio, widths)
        assert stats["budget"] == pytest.approx(expected["budget_params"], abs=1)
        assert abs(stats["params_after"] - expected["params"]) <= 0.001 * expected["params"]
        assert manifest["options"]["profile"]["file"] == "vgg.json"
