import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from cli_helpers import assert_one_line_error, invoke
from onnx import helper
from onnx_builders import make_model, save


def listing(folder):
    return sorted(os.listdir(folder))


@pytest.fixture(scope="module")
def vgg_bundle(tmp_path_factory, zoo_onnx):
    out = tmp_path_factory.mktemp("bundles") / "vgg"
    result = invoke("compile", zoo_onnx("vgg11"), "-o", out, "--target", "onnxruntime", "--verify",
                    "--dump-after", "fold-batchnorm")
    assert result.exit_code == 0, result.output
    return out, result


def test_compile_writes_a_complete_bundle(vgg_bundle, zoo_onnx):
    out, result = vgg_bundle
    assert "fold-batchnorm" in result.stdout and str(out) in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"]["name"] == "onnxruntime"
    assert manifest["versions"]["ncc"] and manifest["versions"]["onnxruntime"]
    source = open(zoo_onnx("vgg11"), "rb").read()
    import hashlib
    assert manifest["input"]["sha256"] == hashlib.sha256(source).hexdigest()
    passes = [p["name"] for p in manifest["passes"]]
    assert passes == ["fold-constants", "eliminate-dead-code", "fold-batchnorm"]
    fold = manifest["passes"][2]
    assert fold["stats"]["folded"] == 8 and fold["verified"]["max_rel_error"] <= 1e-5
    assert all("time_s" in p for p in manifest["passes"])
    before, after = manifest["model"]["before"], manifest["model"]["after"]
    assert before["params"] == 9231114
    assert after["params"] == before["params"] - 2 * (64 + 128 + 256 * 2 + 512 * 4)  # BN scale+shift folded
    assert before["macs"] == after["macs"] > 0
    for artifact in manifest["artifacts"]:
        data = (out / artifact["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"] and len(data) == artifact["bytes"]
    assert {"model.onnx", "harness/ort_harness.py", "dumps/02-fold-batchnorm.onnx"} <= \
        {a["path"] for a in manifest["artifacts"]}
    compiled = onnx.load(out / "model.onnx")
    onnx.checker.check_model(compiled, full_check=True)
    assert "BatchNormalization" not in {n.op_type for n in compiled.graph.node}
    assert not [f for f in listing(out.parent) if f.startswith(".")]


def test_same_inputs_give_byte_identical_bundles(tmp_path, zoo_onnx):
    model = zoo_onnx("mobilenetv2")
    for name in ("a", "b"):
        assert invoke("compile", model, "-o", tmp_path / name,
                      "--target", "onnxruntime", "--reproducible").exit_code == 0
    files = [os.path.relpath(os.path.join(d, f), tmp_path / "a")
             for d, _, fs in os.walk(tmp_path / "a") for f in fs]
    assert "manifest.json" in files and "model.onnx" in files
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_timed_manifests_differ_only_in_times(tmp_path, zoo_onnx):
    for name in ("a", "b"):
        assert invoke("compile", zoo_onnx("vgg11"), "-o", tmp_path / name, "--target", "onnxruntime").exit_code == 0

    def untimed(name):
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        manifest.pop("timing")
        for record in manifest["passes"]:
            record.pop("time_s")
        return manifest

    assert untimed("a") == untimed("b")


def test_existing_output_needs_force(vgg_bundle, zoo_onnx):
    out, _ = vgg_bundle
    before = listing(out)
    assert_one_line_error(invoke("compile", zoo_onnx("vgg11"), "-o", out, "--target", "onnxruntime"), 2, "--force")
    assert listing(out) == before


def test_force_replaces_a_bundle(tmp_path, zoo_onnx):
    out = tmp_path / "b"
    assert invoke("compile", zoo_onnx("vgg11"), "-o", out, "--target", "onnxruntime",
                  "--dump-after", "all").exit_code == 0
    assert (out / "dumps").is_dir()
    assert invoke("compile", zoo_onnx("vgg11"), "-o", out, "--target", "onnxruntime", "--force").exit_code == 0
    assert not (out / "dumps").exists()
    assert listing(tmp_path) == ["b"]


@pytest.mark.parametrize("case,code,pattern", [
    ("missing", 2, "no such file"),
    ("garbage", 1, "not an ONNX model"),
    ("truncated", 1, ""),
    ("invalid", 1, "invalid ONNX graph"),
    ("dynamic", 2, "--input-shape"),
    ("custom-op", 1, "cannot run Foo"),
    ("unknown-target", 2, "unknown target 'nope'"),
    ("bad-shape-spec", 2, "bad --input-shape"),
    ("bad-dump-name", 1, "--dump-after names no pass"),
])
def test_errors_are_one_line_and_leave_nothing(tmp_path, zoo_onnx, case, code, pattern):
    models = tmp_path / "in"
    models.mkdir()
    path, extra = models / "m.onnx", []
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    if case == "garbage":
        path.write_bytes(b"\x00garbage" * 8)
    elif case == "truncated":
        path.write_bytes(open(zoo_onnx("vgg11"), "rb").read()[:5000])
    elif case == "invalid":
        save(make_model([helper.make_node("Relu", ["nowhere"], ["y"])]), models, "m.onnx")
    elif case == "dynamic":
        save(make_model(relu, inputs={"x": [1, 3, "H", 8]}, outputs={"y": [1, 3, "H", 8]}), models, "m.onnx")
    elif case == "custom-op":
        save(make_model([helper.make_node("Foo", ["x"], ["y"], domain="com.example")],
                        extra_opsets=[helper.make_opsetid("com.example", 1)]), models, "m.onnx")
    elif case != "missing":
        save(make_model(relu), models, "m.onnx")
        extra = {"unknown-target": ["--target", "nope"], "bad-shape-spec": ["--input-shape", "x:1x3xAx8"],
                 "bad-dump-name": ["--dump-after", "no-such-pass"]}[case]
    out = tmp_path / "out" / "bundle"
    result = invoke("compile", path, "-o", out, "--target", "onnxruntime", *extra)
    assert_one_line_error(result, code, pattern)
    assert not (tmp_path / "out").exists() or listing(tmp_path / "out") == []


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"garbage")
    result = invoke("compile", path, "-o", tmp_path / "out", "--target", "onnxruntime", "--debug")
    assert result.exit_code == 1 and "Traceback" in result.stderr


def test_input_shape_sets_the_batch(tmp_path):
    weight = np.ones((2, 3, 1, 1), np.float32)
    path = save(make_model([helper.make_node("Conv", ["x", "w"], ["y"])], {"w": weight},
                           inputs={"x": ["N", 3, 8, 8]}, outputs={"y": ["N", 2, 8, 8]}), tmp_path)
    assert invoke("compile", path, "-o", tmp_path / "b",
                  "--target", "onnxruntime", "--input-shape", "x:4x3x8x8").exit_code == 0
    compiled = onnx.load(tmp_path / "b" / "model.onnx")
    assert [d.dim_value for d in compiled.graph.input[0].type.tensor_type.shape.dim] == [4, 3, 8, 8]
    assert [d.dim_value for d in compiled.graph.output[0].type.tensor_type.shape.dim] == [4, 2, 8, 8]


def test_cli_as_a_subprocess(tmp_path):
    path = save(make_model([helper.make_node("Relu", ["x"], ["y"])]), tmp_path)
    ncc = [sys.executable, "-m", "ncc.cli"]
    version = subprocess.run([*ncc, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("ncc ")
    for command in ("compile", "inspect", "zoo", "bench"):
        shown = subprocess.run([*ncc, command, "--help"], capture_output=True, text=True)
        assert shown.returncode == 0 and "Usage:" in shown.stdout
    done = subprocess.run([*ncc, "compile", path, "-o", tmp_path / "b",
                          "--target", "onnxruntime"], capture_output=True, text=True)
    assert done.returncode == 0 and (tmp_path / "b" / "manifest.json").exists()
    failed = subprocess.run([*ncc, "compile", path, "-o", tmp_path / "b",
                            "--target", "onnxruntime"], capture_output=True, text=True)
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr


def test_onnx_function_ops_run_on_onnxruntime(tmp_path):
    """ONNX Runtime has no HardSwish kernel; it inlines the op's ONNX function body."""
    model = make_model([helper.make_node("HardSwish", ["x"], ["y"], name="hswish")])
    result = invoke("compile", save(model, tmp_path), "-o", tmp_path / "out", "--target", "onnxruntime")
    assert result.exit_code == 0, result.output
