"""The TVM targets (host, cortex-a72) end to end: compile through the CLI,
run the bundle's own C++ harness with `ncc run` (the A72 one under qemu) and
compare with ONNX Runtime on the bundle's model.onnx; tuning, locally and
through an RPC tracker on 127.0.0.1.

Compiles are the cost here (seconds each), so the host runs the three zoo
networks at all four ratios and the Cortex-A72, under qemu, one ratio each.
"""

import json
import os
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc.runtime_harness.results import validate
from onnx import helper
from onnx_builders import make_model, save

needs_cross = pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-g++") and shutil.which("qemu-aarch64")),
                                 reason="needs g++-aarch64-linux-gnu and qemu-user (.ci/apt-packages.txt)")
ELF_MACHINE = {"x86_64": 62, "aarch64": 183}  # e_machine of an ELF header


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, zoo_onnx):
    """bundles(model, target, scale) -> bundle folder, each compiled once."""
    folder = tmp_path_factory.mktemp("tvm-bundles")
    made = {}

    def get(model, target, scale=None):
        key = (model, target, scale)
        if key not in made:
            out = folder / f"{model}-{target}-{scale or 1}"
            args = ["--scale", f"uniform:{scale}"] if scale else []
            result = invoke("compile", zoo_onnx(model), "-o", out, "--target", target, "--reproducible", *args)
            assert result.exit_code == 0, result.output
            made[key] = out
        return made[key]

    return get


def reference(bundle, x):
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def run_bundle(bundle, tmp_path, shape=(1, 3, 32, 32)):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = invoke("run", bundle, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    return x, np.load(tmp_path / "y.npy"), result


def elf_machine(path) -> int:
    header = open(path, "rb").read(20)
    assert header[:4] == b"\x7fELF"
    return int.from_bytes(header[18:20], "little")


ZOO = ("vgg11", "mobilenetv2", "resnet50")
RATIOS = (0.25, 0.5, 0.75, None)  # None: unscaled


@pytest.mark.parametrize("model,target,scale", [
    *[(model, "host", ratio) for model in ZOO for ratio in RATIOS],
    pytest.param("vgg11", "cortex-a72", None, marks=needs_cross),
    pytest.param("vgg11", "rpi4", 0.5, marks=needs_cross),
    pytest.param("mobilenetv2", "cortex-a72", 0.5, marks=needs_cross),
    pytest.param("resnet50", "cortex-a72", 0.25, marks=needs_cross),
])
def test_bundle_output_equals_onnxruntime(bundles, tmp_path, model, target, scale):
    bundle = bundles(model, target, scale)
    x, y, result = run_bundle(bundle, tmp_path)
    expected = reference(bundle, x)
    assert y.shape == expected.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    emulated = target != "host"
    assert ("emulated" in result.stdout) == emulated and ("ms" in result.stdout) != emulated


@needs_cross
def test_a72_bundle_is_for_the_board(bundles):
    bundle = bundles("vgg11", "cortex-a72")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["target"]["name"] == "cortex-a72"
    assert manifest["target"]["tvm_target"]["mcpu"] == "cortex-a72"
    assert manifest["target"]["tvm_target"]["mtriple"] == "aarch64-linux-gnu"
    for path in ("model.so", "harness/harness", "lib/libtvm_runtime.so", "lib/libtvm_ffi.so"):
        assert elf_machine(bundle / path) == ELF_MACHINE["aarch64"], path
    for path in ("harness/harness.cc", "harness/Makefile", "harness/CMakeLists.txt", "harness/run.sh",
                 "harness/include/tvm/ffi/function.h", "harness/include/dlpack/dlpack.h"):
        assert (bundle / path).is_file(), path
    assert os.access(bundle / "harness" / "run.sh", os.X_OK)
    assert (bundle / "harness" / "inputs.txt").read_text() == "input float32 1 3 32 32\n"
    assert manifest["harness"]["kind"] == "tvm-cpp" and manifest["harness"]["arch"] == "aarch64"
    steps = " ".join(manifest["board_steps"])
    assert "copy" in steps and "harness/run.sh" in steps
    listed = {a["path"] for a in manifest["artifacts"]}
    assert {"model.so", "lib/libtvm_runtime.so", "harness/harness", "harness/run.sh"} <= listed


def test_host_bundle_benches_natively_in_the_results_schema(bundles, tmp_path):
    bundle = bundles("vgg11", "host", 0.5)
    assert elf_machine(bundle / "model.so") == ELF_MACHINE[os.uname().machine]
    out = tmp_path / "r.json"
    result = invoke("bench", bundle, "--iterations", "100", "--warmup", "1", "--warmup-seconds", "0",
                    "--deadline-ms", "100000", "--max-miss-rate", "0", "--json", out)
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert validate(results) == []
    assert results["harness"] == "tvm-cpp" and not results["emulated"] and results["valid"]
    assert results["environment"]["runtime"] == "tvm" and results["environment"]["runtime_version"] == "0.27.0.post1"
    assert results["memory"]["model_weight_bytes"] > 0 and results["deadline"]["passed"] is True


@needs_cross
def test_a72_bundle_benches_only_emulated_and_says_so(bundles):
    bundle = bundles("vgg11", "rpi4", 0.5)
    refused = invoke("bench", bundle)
    assert_one_line_error(refused, 2, "--emulate")
    result = invoke("bench", bundle, "--iterations", "2", "--warmup", "0", "--warmup-seconds", "0", "--emulate")
    assert "EMULATED" in result.stdout and "say nothing about the board" in result.stdout


def tiny_model(folder):
    weight = np.random.default_rng(0).normal(size=(8, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1] * 4), helper.make_node("Relu", ["c"], ["y"])]
    return save(make_model(nodes, {"w": weight}, outputs={"y": [1, 8, 8, 8]}), folder)


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-a72", marks=needs_cross)])
def test_identical_compiles_give_byte_identical_bundles(tmp_path, target):
    model = tiny_model(tmp_path)
    for name in ("a", "b"):
        assert invoke("compile", model, "-o", tmp_path / name, "--target", target, "--reproducible").exit_code == 0
    files = sorted(os.path.relpath(os.path.join(d, f), tmp_path / "a") for d, _, fs in os.walk(tmp_path / "a")
                   for f in fs)
    assert {"model.so", "harness/harness", "manifest.json"} <= set(files)
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_tuning_fills_a_database_that_later_compiles_apply(tmp_path):
    model, db = tiny_model(tmp_path), tmp_path / "db"
    tuned = invoke("compile", model, "-o", tmp_path / "tuned", "--tune-trials", "8", "--tuning-db", db)
    assert tuned.exit_code == 0, tuned.output
    assert (db / "database_tuning_record.json").stat().st_size > 0
    # without ncc's measured defaults beside them (which a few trials need not beat), the tuned records must apply
    for defaults in db.glob("ncc_default_*.json"):
        defaults.unlink()
    again = invoke("compile", model, "-o", tmp_path / "again", "--tuning-db", db)
    assert again.exit_code == 0, again.output
    tuning = json.loads((tmp_path / "again" / "manifest.json").read_text())["target"]["tuning"]
    assert tuning["trials"] == 0 and tuning["kernels_with_tuned_schedules"] >= 1
    x, y, _ = run_bundle(tmp_path / "again", tmp_path, shape=(1, 3, 8, 8))
    np.testing.assert_allclose(y, reference(tmp_path / "again", x), rtol=1e-4, atol=1e-5)
    if shutil.which("aarch64-linux-gnu-g++"):
        a72 = invoke("compile", model, "-o", tmp_path / "a72", "--target", "rpi4", "--tuning-db", db)
        assert a72.exit_code == 0, a72.output
        tuning = json.loads((tmp_path / "a72" / "manifest.json").read_text())["target"]["tuning"]
        assert tuning["kernels_with_tuned_schedules"] >= 1 and "not aarch64-linux-gnu/cortex-a72" in tuning["tuned_on"]


@pytest.fixture
def rpc_tracker():
    """An RPC tracker and one server (this machine, key ncc-test), on 127.0.0.1 only."""
    from tvm import rpc
    from tvm.rpc.tracker import Tracker

    tracker = Tracker("127.0.0.1", port=9190, port_end=9290, silent=True)
    server = rpc.Server(host="127.0.0.1", port=9300, port_end=9400, key="ncc-test",
                        tracker_addr=("127.0.0.1", tracker.port), silent=True)
    yield f"127.0.0.1:{tracker.port}"
    server.terminate()
    tracker.terminate()


def test_tuning_measures_on_the_rpc_tracker_boards(tmp_path, rpc_tracker):
    model, db = tiny_model(tmp_path), tmp_path / "db"
    result = invoke("compile", model, "-o", tmp_path / "b", "--tune-trials", "4", "--tuning-db", db,
                    "--rpc-tracker", rpc_tracker, "--rpc-key", "ncc-test")
    assert result.exit_code == 0, result.output
    tuning = json.loads((tmp_path / "b" / "manifest.json").read_text())["target"]["tuning"]
    assert tuning["measured_on"] == f"RPC key ncc-test via {rpc_tracker}"
    assert tuning["trials"] == 4 and tuning["tasks_tuned"] == 1
    assert (db / "database_tuning_record.json").read_text().strip()  # the candidates measured there
    assert (db / "ncc_default_tuning_record.json").read_text().strip()  # and ncc's default, to compare
    # the kernel runs the faster of the two, and the manifest says which
    schedules = json.loads((tmp_path / "b" / "manifest.json").read_text())["target"]["schedules"]
    assert len(schedules) == 1 and tuning["kernels_with_tuned_schedules"] == list(schedules.values()).count("tuned")


def test_tuning_the_a72_needs_the_board(tmp_path):
    result = invoke("compile", tiny_model(tmp_path), "-o", tmp_path / "b", "--target", "rpi4", "--tune-trials", "4")
    assert_one_line_error(result, 2, "--rpc-tracker")


@pytest.mark.parametrize("args,pattern", [
    (["--rpc-tracker", "127.0.0.1:9190"], "go together"),
    (["--rpc-tracker", "nohost", "--rpc-key", "rpi4", "--tune-trials", "4"], "HOST:PORT"),
    (["--rpc-tracker", "127.0.0.1:9190", "--rpc-key", "rpi4"], "only with --tune-trials"),
    (["--tune-trials", "-1"], "-1"),
])
def test_bad_tuning_options_are_usage_errors(tmp_path, args, pattern):
    result = invoke("compile", tiny_model(tmp_path), "-o", tmp_path / "b", *args)
    assert result.exit_code == 2 and pattern in result.stderr
    assert not (tmp_path / "b").exists()


def test_missing_cross_compiler_is_a_toolchain_error(tmp_path, monkeypatch):
    import dataclasses

    from ncc.targets.tvm import cortex_a72

    monkeypatch.setattr(cortex_a72, "A72", dataclasses.replace(cortex_a72.A72, cc="no-such-aarch64-g++"))
    result = invoke("compile", tiny_model(tmp_path), "-o", tmp_path / "b", "--target", "cortex-a72")
    assert_one_line_error(result, 3, "no-such-aarch64-g++ is not installed")
    assert not (tmp_path / "b").exists()


@needs_cross
def test_unavailable_aarch64_runtime_is_a_toolchain_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NCC_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    result = invoke("compile", tiny_model(tmp_path), "-o", tmp_path / "b", "--target", "cortex-a72")
    assert_one_line_error(result, 3, "cannot download the aarch64 TVM runtime")


def test_op_without_a_tvm_converter_is_a_compile_error(tmp_path):
    path = save(make_model([helper.make_node("Foo", ["x"], ["y"], domain="com.example")],
                           extra_opsets=[helper.make_opsetid("com.example", 1)]), tmp_path)
    result = invoke("compile", path, "-o", tmp_path / "b", "--target", "host")
    assert_one_line_error(result, 1, "cannot run Foo")


def test_cpp_harness_peak_memory_is_its_own_not_its_parents(bundles):
    """ru_maxrss survives exec: a harness started from a big process must not report that process's memory."""
    from ncc.runtime_harness.runner import run_bundle

    bundle = bundles("vgg11", "host", 0.5)
    ballast = np.ones(96 * 2**20, dtype=np.float64)  # 768 MiB resident in this process
    results = run_bundle(str(bundle))
    assert ballast.sum() > 0
    assert 0 < results["memory"]["peak_rss_bytes"] < 512 * 2**20
