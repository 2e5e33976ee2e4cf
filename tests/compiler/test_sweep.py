"""ncc sweep: the grid, its records, resuming, the report and plots."""

import csv
import io
import json
import os

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc.study import report as study_report

REFERENCE_VGG = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "reference", "neuralscale",
                             "vgg_10_eff_c10.json")
FAST = ("--iterations", "100", "--warmup", "1", "--warmup-seconds", "0")


@pytest.fixture(scope="module")
def tiny_vgg(tmp_path_factory):
    """VGG-11 at 1/8 width, as a file named tinyvgg.onnx."""
    path = tmp_path_factory.mktemp("sweep-model") / "tinyvgg.onnx"
    result = invoke("zoo", "vgg11", "--width-mult", "0.125", "-o", path)
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def profile(tmp_path_factory, tiny_vgg):
    """An ncc profile for tinyvgg: the reference's if present, else a fitted-looking one of our own."""
    if os.path.exists(REFERENCE_VGG):
        return REFERENCE_VGG  # NeuralScale's own JSON: the sweep imports it onto the model
    path = tmp_path_factory.mktemp("sweep-profile") / "p.json"
    alpha = [0.5, 1.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    path.write_text(json.dumps({"alpha": alpha, "beta": [0.25] * 8}))
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_vgg, profile):
    folder = tmp_path_factory.mktemp("study") / "s"
    result = invoke("sweep", "--models", f"{tiny_vgg},vgg11", "--methods", "uniform,neuralscale",
                    "--ratios", "0.5,1.0", "--precision", "fp32,int8", "--target", "onnxruntime",
                    "--profile", f"tinyvgg={profile}", "--deadline-ms", "1000", "-o", folder, *FAST,
                    "--models", f"{tiny_vgg}")  # the last --models wins: vgg11 (full size) is not swept
    return folder, result


def read_rows(folder):
    return list(csv.DictReader(io.StringIO((folder / "results.csv").read_text())))


def test_sweep_measures_every_configuration_and_writes_the_study(study):
    folder, result = study
    assert result.exit_code == 0, result.output
    rows = read_rows(folder)
    grid = {(r["method"], float(r["ratio"]), r["precision"]) for r in rows}
    assert grid == {(m, r, p) for m in ("uniform", "neuralscale") for r in (0.5, 1.0) for p in ("fp32", "int8")}
    assert all(r["status"] == "ok" and r["model"] == "tinyvgg" and r["target"] == "onnxruntime" for r in rows)
    for r in rows:
        assert float(r["p50_ms"]) <= float(r["p99_ms"]) <= float(r["max_ms"])
        assert int(r["iterations"]) >= 100 and r["valid"] == "True"
        assert (r["meets_deadline"] == "True") == (float(r["p99_ms"]) <= 1000)
    by = {(r["method"], float(r["ratio"]), r["precision"]): r for r in rows}
    # int8 weights are a quarter of fp32's, up to float biases and scales
    assert int(by["uniform", 1.0, "int8"]["weight_bytes"]) < 0.3 * int(by["uniform", 1.0, "fp32"]["weight_bytes"])
    assert int(by["uniform", 0.5, "fp32"]["params"]) < int(by["uniform", 1.0, "fp32"]["params"])
    report = (folder / "report.md").read_text()
    for section in ("## Configurations", "## NeuralScale vs uniform", "## int8 vs fp32", "## Scaling speed-up"):
        assert section in report
    for plot in ("vs_params.png", "vs_macs.png", "neuralscale_vs_uniform.png", "int8_vs_fp32.png",
                 "scaling_speedup.png"):
        assert (folder / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/{plot})" in report
    assert not (folder / "bundles").exists()  # not kept without --keep-bundles
    assert "[8/8] tinyvgg neuralscale x1 int8" in result.stderr


def test_sweep_resumes_without_measuring_again(study, tiny_vgg, profile, monkeypatch):
    folder, _ = study
    before = {p.name: p.read_bytes() for p in (folder / "records").iterdir()}
    (folder / "records" / "tinyvgg-uniform-0.5-int8.json").unlink()
    compiled = []
    from ncc.compiler import driver

    real = driver.compile_model
    monkeypatch.setattr(driver, "compile_model", lambda *a, **k: compiled.append(a[1]) or real(*a, **k))
    result = invoke("sweep", "--models", tiny_vgg, "--ratios", "0.5,1", "--target", "onnxruntime",
                    "--profile", f"tinyvgg={profile}", "--deadline-ms", "1000", "-o", folder, *FAST)
    assert result.exit_code == 0, result.output
    assert [os.path.basename(c) for c in compiled] == ["tinyvgg-uniform-0.5-int8"]
    assert result.stderr.count("measured before") == 7
    after = {p.name: p.read_bytes() for p in (folder / "records").iterdir()}
    assert {k: v for k, v in after.items() if k != "tinyvgg-uniform-0.5-int8.json"} == \
           {k: v for k, v in before.items() if k != "tinyvgg-uniform-0.5-int8.json"}


def test_a_changed_run_rule_measures_again_but_a_deadline_only_re_marks(study, tiny_vgg):
    from ncc.study import sweep

    folder, _ = study
    settings = sweep.SweepSettings(models=[str(tiny_vgg)], ratios=[1.0], methods=["uniform"], precisions=["fp32"],
                                   target="onnxruntime")
    plan = sweep.make_plan(settings, str(folder), progress=lambda _line: None)
    config = plan.configs[0]
    key = sweep.config_key(config, plan, settings)
    rules = settings.rules
    assert sweep.config_key(config, plan, sweep.SweepSettings(**{**vars(settings), "rules": rules.__class__(
        **{**vars(rules), "deadline_ms": 3.0})})) == key
    assert sweep.config_key(config, plan, sweep.SweepSettings(**{**vars(settings), "rules": rules.__class__(
        **{**vars(rules), "iterations": 500})})) != key


def test_models_without_a_profile_are_swept_uniformly_and_the_skip_is_said(tmp_path, tiny_vgg):
    result = invoke("sweep", "--models", tiny_vgg, "--ratios", "1", "--precision", "fp32", "--target", "onnxruntime",
                    "-o", tmp_path / "s", *FAST)
    assert result.exit_code == 0, result.output
    assert "skipping tinyvgg neuralscale: no profile (give --profile tinyvgg=P.json)" in result.stderr
    assert [r["method"] for r in read_rows(tmp_path / "s")] == ["uniform"]


def test_failed_configurations_are_reported_and_fail_the_command(tmp_path, tiny_vgg):
    bad = tmp_path / "calib.npz"
    np.savez(bad, x=np.zeros((4, 3, 16, 16), np.float32))  # the model takes 32x32
    result = invoke("sweep", "--models", tiny_vgg, "--ratios", "1", "--methods", "uniform", "--target", "onnxruntime",
                    "--calib", bad, "-o", tmp_path / "s", *FAST)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("ncc: error: 1 of 2 configurations failed")
    rows = {r["precision"]: r for r in read_rows(tmp_path / "s")}
    assert rows["fp32"]["status"] == "ok" and rows["int8"]["status"] == "failed" and rows["int8"]["reason"]
    assert "## Failed" in (tmp_path / "s" / "report.md").read_text()


@pytest.mark.parametrize("args,fragment", [
    (["--ratios", "0.5,x"], "bad --ratios"),
    (["--ratios", "0"], "--ratios must be numbers in (0, 4]"),
    (["--methods", "uniform,magic"], "--methods"),
    (["--precision", "fp16"], "--precision"),
    (["--profile", "nonsense"], "bad --profile"),
    (["--profile", "resnet50=p.json"], "not one of the swept models"),
    (["--target", "xavier"], "runs on its board"),
])
def test_bad_sweep_options_are_one_line_usage_errors(tmp_path, tiny_vgg, args, fragment):
    result = invoke("sweep", "--models", tiny_vgg, "-o", tmp_path / "s", *args)
    assert_one_line_error(result, 2, fragment)


def test_unknown_model_is_a_usage_error(tmp_path):
    assert_one_line_error(invoke("sweep", "--models", "alexnet", "-o", tmp_path / "s"), 2, "neither a zoo model")


def test_comparisons_are_ratios_of_medians_of_matching_configurations():
    def row(method, ratio, precision, p50, weights=100, rss=1000):
        return {"model": "m", "method": method, "ratio": ratio, "precision": precision, "status": "ok",
                "p50_ms": p50, "params": 10, "macs": 20, "weight_bytes": weights, "peak_rss_bytes": rss}

    table = [row("uniform", 0.5, "fp32", 2.0), row("uniform", 1.0, "fp32", 8.0),
             row("neuralscale", 0.5, "fp32", 4.0), row("uniform", 0.5, "int8", 1.0, weights=25, rss=500),
             {**row("neuralscale", 1.0, "fp32", 1.0), "status": "failed"}]
    assert [(p["ratio"], p["relative_speed"]) for p in study_report.neuralscale_vs_uniform(table)] == [(0.5, 0.5)]
    (pair,) = study_report.int8_vs_fp32(table)
    assert (pair["speedup"], pair["weight_reduction"], pair["rss_reduction"]) == (2.0, 0.75, 0.5)
    speedups = {(p["method"], p["ratio"]): p["speedup"] for p in study_report.scaling_speedup(table)}
    assert speedups == {("uniform", 0.5): 4.0, ("uniform", 1.0): 1.0}  # neuralscale has no measured 1.0x


def test_eval_data_adds_accuracy_columns(tmp_path, tiny_vgg):
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(str(tiny_vgg))
    y = np.array([session.run(None, {"input": x[i:i + 1]})[0].argmax() for i in range(len(x))])  # its own answers
    np.savez(tmp_path / "eval.npz", x=x, y=y)
    result = invoke("sweep", "--models", tiny_vgg, "--ratios", "1", "--methods", "uniform", "--precision", "fp32",
                    "--target", "onnxruntime", "--eval", tmp_path / "eval.npz", "-o", tmp_path / "s", *FAST)
    assert result.exit_code == 0, result.output
    (row,) = read_rows(tmp_path / "s")
    assert float(row["top1"]) == 1.0 and float(row["top5"]) == 1.0
    assert "| top-1 |" in (tmp_path / "s" / "report.md").read_text()
