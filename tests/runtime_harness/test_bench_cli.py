import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc.runtime_harness.results import validate


def test_bench_prints_the_table_and_writes_results_that_match_the_schema(bench):
    result, results = bench("--iterations", "120", "--warmup", "2")
    assert result.exit_code == 0, result.output
    for column in ("p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"):
        assert column in result.stdout
    assert "jitter:" in result.stdout and "power: absent" in result.stdout and "peak RSS" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].strip() == "valid"
    assert validate(results) == []
    assert results["harness"] == "onnxruntime-python" and results["valid"] and not results["emulated"]
    assert results["run"]["iterations"] == len(results["times_ms"]) >= 120
    assert results["warmup"]["iterations"] >= 2
    latency = results["latency_ms"]
    assert latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert latency["p99_9"] is None  # fewer than 1000 samples
    env = results["environment"]
    assert env["threads"] == 1 and env["cores_used"] == len(env["affinity"]) >= 1
    assert env["fifo_requested"] is False and env["fifo_granted"] is None


def test_bench_fills_the_model_memory_from_the_manifest(bench, ort_bundle):
    _result, results = bench("--iterations", "3")
    after = json.loads((ort_bundle / "manifest.json").read_text())["model"]["after"]
    assert results["memory"]["model_weight_bytes"] == after["weight_bytes"] == 4 * 3 * 3 * 3 * 4
    assert results["memory"]["model_activation_bytes"] == after["peak_activation_bytes"]
    assert results["memory"]["peak_rss_bytes"] > 0


def test_csv_export_holds_every_iteration(bench, tmp_path):
    result, results = bench("--iterations", "7", "--csv", tmp_path / "t.csv", "--emulate")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "t.csv").read_text())))
    assert [int(r["iteration"]) for r in rows] == list(range(len(results["times_ms"])))
    assert [float(r["latency_ms"]) for r in rows] == results["times_ms"]
    assert results["emulated"] is False  # --emulate leaves a bundle built for this machine native


def test_bundle_harness_runs_standalone_and_matches_onnxruntime(ort_bundle, tmp_path):
    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(["sh", str(ort_bundle / "harness" / "run.sh"), "--iterations", "100",
                           "--warmup-seconds", "0", "--input", str(tmp_path / "x.npy"),
                           "--output", str(tmp_path / "y.npy"), "--json", str(tmp_path / "r.json")],
                          capture_output=True, text=True, env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 0, done.stderr
    expected = ort.InferenceSession(str(ort_bundle / "model.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6)
    results = json.loads((tmp_path / "r.json").read_text())
    assert validate(results) == []
    assert results["run"]["input"] == "file" and results["memory"]["model_weight_bytes"] == 432


@pytest.mark.parametrize("make,pattern", [
    (lambda p: None, "not a bundle folder"),
    (lambda p: p.mkdir(), "no manifest.json"),
])
def test_bench_rejects_what_is_not_a_bundle(tmp_path, make, pattern):
    target = tmp_path / "x"
    make(target)
    assert_one_line_error(invoke("bench", target), 2, pattern)


def test_bench_needs_a_bundle_or_an_import_but_not_both(ort_bundle, tmp_path):
    assert_one_line_error(invoke("bench"), 2, "give a bundle folder or --import FILE")
    assert_one_line_error(invoke("bench", ort_bundle, "--import", tmp_path / "r.json"), 2, "not both")


@pytest.fixture
def foreign_bundle(ort_bundle, tmp_path):
    """A copy of the bundle whose manifest says its harness is built for another architecture."""
    copy = tmp_path / "foreign"
    shutil.copytree(ort_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["harness"]["arch"] = "x86_64" if platform.machine() == "aarch64" else "aarch64"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_a_bundle_for_another_architecture_runs_only_emulated(foreign_bundle, monkeypatch):
    assert_one_line_error(invoke("bench", foreign_bundle), 2, "--emulate")
    monkeypatch.setattr("ncc.runtime_harness.runner.shutil.which", lambda _name: None)
    assert_one_line_error(invoke("bench", foreign_bundle, "--emulate"), 3)


def test_a_harness_kind_ncc_cannot_run_is_a_usage_error(ort_bundle, tmp_path):
    copy = tmp_path / "other"
    shutil.copytree(ort_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["harness"]["kind"] = "vart-cpp"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(invoke("bench", copy), 2, "vart-cpp")


def test_python_harness_peak_memory_is_its_own_not_its_parents(ort_bundle):
    """ru_maxrss survives exec: a harness started from a big process must not report that process's memory."""
    from ncc.runtime_harness.runner import run_bundle

    ballast = np.ones(96 * 2**20, dtype=np.float64)  # 768 MiB resident in this process
    results = run_bundle(str(ort_bundle))
    assert ballast.sum() > 0
    assert 0 < results["memory"]["peak_rss_bytes"] < 512 * 2**20
