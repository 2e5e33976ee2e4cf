import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import helper
from onnx_builders import make_model, save

from ncc.compiler.cli import main


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    weight = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)
    path = save(make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4)], {"w": weight},
                           outputs={"y": [1, 4, 8, 8]}), folder)
    result = CliRunner().invoke(main, ["compile", path, "-o", str(folder / "b")])
    assert result.exit_code == 0, result.output
    return folder / "b"


def test_bench_prints_latency_and_writes_results(bundle, tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["bench", str(bundle), "--iterations", "25", "--warmup", "2",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "p50 ms" in result.stdout and "p99 ms" in result.stdout and "max ms" in result.stdout
    results = json.loads(out.read_text())
    assert results["format"] == "ncc-results" and results["iterations"] == 25
    times = np.array(results["times_ms"])
    assert len(times) == 25 and (times > 0).all()
    latency = results["latency_ms"]
    assert latency["min"] <= latency["p50"] <= latency["p99"] <= latency["max"]
    assert latency["p50"] == pytest.approx(np.percentile(times, 50), rel=1e-4)


def test_bundle_harness_runs_standalone_and_matches_onnxruntime(bundle, tmp_path):
    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(["sh", str(bundle / "harness" / "run.sh"), "--iterations", "3",
                           "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                           "--json", str(tmp_path / "r.json")], capture_output=True, text=True,
                          env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 0, done.stderr
    expected = ort.InferenceSession(str(bundle / "model.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6)


@pytest.mark.parametrize("make,pattern", [
    (lambda p: None, "not a bundle folder"),
    (lambda p: p.mkdir(), "no manifest.json"),
])
def test_bench_rejects_what_is_not_a_bundle(tmp_path, make, pattern):
    target = tmp_path / "x"
    make(target)
    result = CliRunner().invoke(main, ["bench", str(target)])
    assert result.exit_code == 2 and pattern in result.stderr
