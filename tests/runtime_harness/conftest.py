"""A tiny bundle with the ONNX Runtime harness, compiled once through the CLI,
and running `ncc bench` on it."""

import json

import numpy as np
import pytest
from cli_helpers import invoke
from onnx import helper
from onnx_builders import make_model, save


@pytest.fixture(scope="session")
def ort_bundle(tmp_path_factory):
    from ncc.targets import target_names

    folder = tmp_path_factory.mktemp("ort-bundle")
    weight = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)
    path = save(make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4)], {"w": weight},
                           outputs={"y": [1, 4, 8, 8]}), folder)
    target = "onnxruntime" if "onnxruntime" in target_names() else "host"
    result = invoke("compile", path, "-o", folder / "b", "--target", target)
    assert result.exit_code == 0, result.output
    return folder / "b"


@pytest.fixture
def bench(ort_bundle, tmp_path):
    """bench(*args) -> (CliRunner result, results dict or None): `ncc bench` on the
    tiny bundle with a short warm-up, keeping the results JSON."""

    def run(*args, bundle=None):
        out = tmp_path / "results.json"
        out.unlink(missing_ok=True)
        result = invoke("bench", bundle or ort_bundle, "--warmup-seconds", "0", "--json", out, *args)
        return result, json.loads(out.read_text()) if out.exists() else None

    return run
