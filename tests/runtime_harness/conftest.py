"""A tiny bundle with the ONNX Runtime harness, compiled once through the CLI,
and running `ncc bench` on it."""

import json

import numpy as np
import partitioned_xmodel
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


@pytest.fixture(scope="session")
def zcu104_bundle(tmp_path_factory):
    """zcu104_bundle(name) -> a zcu104 int8 bundle whose out/model.xmodel is its
    graph partitioned as a compiled one is (partitioned_xmodel), and the
    devices of its subgraphs. name: a zoo network (`ncc zoo`, compiled at
    uniform 0.25 for speed) or "cpu-layer" (conv -> relu -> Sigmoid, which the
    DPU cannot run -> conv: DPU, CPU and DPU subgraphs)."""
    folder = tmp_path_factory.mktemp("zcu104-bundles")
    made = {}

    def get(name):
        if name not in made:
            if name == "cpu-layer":
                onnx_path, scale = _cpu_layer_model(folder), ()
            else:
                onnx_path, scale = folder / f"{name}.onnx", ("--scale", "uniform:0.25", "--round-to", "auto")
                result = invoke("zoo", name, "-o", onnx_path)
                assert result.exit_code == 0, result.output
            bundle = folder / name
            result = invoke("compile", onnx_path, "-o", bundle, "--target", "zcu104", "--quantize", "int8",
                            "--calib-samples", "8", *scale)
            assert result.exit_code == 0, result.output
            (bundle / "out").mkdir()
            made[name] = bundle, partitioned_xmodel.write(bundle, bundle / "out" / "model.xmodel")
        return made[name]

    return get


def _cpu_layer_model(folder) -> str:
    rng = np.random.default_rng(0)

    def weights(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Sigmoid", ["r1"], ["s"], name="sigmoid"),
             helper.make_node("Conv", ["s", "w2", "b2"], ["y"], name="conv2", kernel_shape=[3, 3], pads=[1] * 4)]
    inits = {"w1": weights(16, 3, 3, 3), "b1": weights(16), "w2": weights(16, 16, 3, 3), "b2": weights(16)}
    return save(make_model(nodes, inits, inputs={"x": [1, 3, 16, 16]}, outputs={"y": [1, 16, 16, 16]}), folder,
                "cpu-layer.onnx")
