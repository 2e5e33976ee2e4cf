"""The VART C++ harness of zcu104 bundles (runtime_harness/vart/), built here
against Debian's Vitis AI 2.5 packages and run with VART's dummy runner on a
tiny xmodel written with libxir's C++ API (fixtures/make_xmodel.cc): a data op
and a conv2d in a child subgraph with device "DPU" and the runner map a
compiled model carries. The dummy runner sleeps DUMMY_RUNNER_PROCESS_TIME ms
per job and touches no data, so these tests check the harness (build, run
rules, results, power, errors), never DPU figures."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from ncc.runtime_harness import rt_power
from ncc.runtime_harness.harnesses import VART
from ncc.runtime_harness.results import validate
from ncc.runtime_harness.vart_harness import build_here
from ncc.targets.zcu104.xmodel_writer import read_xmodel
from test_power import JETSON, energy_per_inference, make_hwmon

pytestmark = pytest.mark.skipif(
    not (os.path.exists("/usr/include/vart/runner.hpp") and os.path.exists("/usr/include/xir/graph/graph.hpp")
         and shutil.which("g++") and shutil.which("make")),
    reason="needs libvart-dev, libxir-dev and g++ (.ci/apt-packages.txt)")
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
SLEEP_MS = 3  # the dummy runner's time per job
QUICK = ["--warmup", "1", "--warmup-seconds", "0"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A bundle folder with the harness installed and built, and out/model.xmodel (one DPU subgraph)."""
    folder = tmp_path_factory.mktemp("vart-bundle")
    VART.copy_to(str(folder))
    build_here(str(folder / "harness"))
    (folder / "out").mkdir()
    make_xmodel(folder / "out" / "model.xmodel", "dpu")
    return folder


def make_xmodel(path, kind):
    tool = path.parent / "make_xmodel"
    if not tool.exists():
        subprocess.run(["g++", "-std=c++17", "-o", tool, os.path.join(FIXTURES, "make_xmodel.cc"), "-lxir"],
                       check=True)
    subprocess.run([tool, path, kind], check=True)
    return path


def run(bundle, *args, env=None):
    """run.sh with args; (exit code, stderr lines, results dict or None)."""
    out = bundle / "results.json"
    out.unlink(missing_ok=True)
    environment = {**os.environ, "DUMMY_RUNNER_PROCESS_TIME": str(SLEEP_MS), **(env or {})}
    done = subprocess.run([bundle / "harness" / "run.sh", *map(str, args), "--json", out],
                          check=False, capture_output=True, text=True, env=environment)
    return done.returncode, done.stderr.strip().splitlines(), json.loads(out.read_text()) if out.exists() else None


def test_bundle_holds_the_sources_the_board_builds_from(bundle):
    files = sorted(os.listdir(bundle / "harness"))
    assert {"harness.cc", "Makefile", "run.sh", "rules.h", "power.h", "env.h", "results.h", "npy.h"} <= set(files)
    assert os.access(bundle / "harness" / "run.sh", os.X_OK) and os.access(bundle / "harness" / "harness", os.X_OK)
    cross = subprocess.run(["make", "-n", "-B", "-C", bundle / "harness", "harness", "SYSROOT=/opt/sysroot",
                            "CXX=aarch64-linux-gnu-g++"], capture_output=True, text=True, check=True).stdout
    assert "aarch64-linux-gnu-g++ -std=c++17" in cross and "--sysroot=/opt/sysroot" in cross
    assert "-L/opt/sysroot/usr/lib/aarch64-linux-gnu" in cross  # a Debian sysroot's multiarch folders
    assert "-Wl,-rpath-link,/opt/sysroot/usr/lib/aarch64-linux-gnu:/opt/sysroot/lib/aarch64-linux-gnu:" in cross
    assert "-lvart-runner -lxir" in cross
    if shutil.which("shellcheck"):
        assert subprocess.run(["shellcheck", bundle / "harness" / "run.sh"], check=False).returncode == 0


def test_dummy_runner_run_validates_and_says_no_dpu_ran(bundle):
    code, stderr, results = run(bundle, "--runner", "dummy", "--iterations", "100", *QUICK,
                                "--csv", bundle / "times.csv")
    assert code == 0, stderr
    assert validate(results) == []
    assert results["harness"] == "vart" and results["model"] == "model.xmodel" and results["valid"]
    env = results["environment"]
    assert (env["runtime"], env["runtime_version"]) == ("vart", "2.5.0")
    assert env["extra"] == {"runner": "dummy", "subgraphs": [
        {"name": "subgraph_input", "device": "USER", "ran": False},
        {"name": "subgraph_conv", "device": "DPU", "ran": True, "library": "libvart-dummy-runner.so",
         "inputs": {"input": "random"}}]}
    assert results["notes"] == ["dummy runner (libvart-dummy-runner.so) in place of every DPU and CPU runner: no DPU "
                                "ran; the times are the dummy's sleep and say nothing about the model"]
    assert results["run"]["iterations"] == 100 == len(results["times_ms"])
    assert results["latency_ms"]["min"] >= SLEEP_MS  # each timed job is the dummy's sleep
    assert len((bundle / "times.csv").read_text().splitlines()) == 101


def test_power_from_the_boards_hwmon_rails(bundle, tmp_path):
    root = make_hwmon(tmp_path / "hwmon", JETSON)
    code, stderr, results = run(bundle, "--runner", "dummy", "--iterations", "100", *QUICK,
                                env={rt_power.HWMON_ROOT_ENV: str(root)})
    assert code == 0, stderr
    power, timed = results["power"], results["run"]
    assert power["available"] and power["total"] == "VDD_IN" and power["average_w"] == 5.0
    assert power["energy_per_inference_j"] == energy_per_inference(5.0, timed, rel=1e-4)
    assert [(r["label"], r["average_w"]) for r in power["rails"]] == [("VDD_IN", 5.0), ("VDD_CPU_GPU_CV", 1.0)]
    assert validate(results) == []


def test_deadline_misses_fail_the_run_but_keep_the_results(bundle):
    code, stderr, results = run(bundle, "--runner", "dummy", "--iterations", "100", *QUICK,
                                "--deadline-ms", "1", "--max-miss-rate", "0.5")
    assert code == 4 and len(stderr) == 1 and "missed the 1.000000 ms deadline" in stderr[0]
    assert results["deadline"]["misses"] == 100 and results["deadline"]["passed"] is False
    assert validate(results) == []


def test_min_seconds_and_warmup_time_are_obeyed(bundle):
    code, stderr, results = run(bundle, "--runner", "dummy", "--iterations", "2", "--min-seconds", "0.1",
                                "--warmup", "2", "--warmup-seconds", "0.05")
    assert results["run"]["seconds"] >= 0.1 and results["run"]["iterations"] > 2
    assert code == (0 if results["run"]["iterations"] >= 100 else 4), stderr  # ~33 jobs of 3 ms: invalid
    assert results["warmup"]["iterations"] >= 2 and results["warmup"]["seconds"] >= 0.05


def test_too_few_iterations_make_the_run_invalid(bundle):
    code, stderr, results = run(bundle, "--runner", "dummy", "--iterations", "5", *QUICK)
    assert code == 4 and stderr == [("harness: run invalid: 5 timed iterations; a p99 needs at least 100 "
                                     "(raise --iterations or --min-seconds)")]
    assert results["valid"] is False and validate(results) == []


def test_input_from_npy_and_output_to_npy(bundle, tmp_path):
    # the dummy runner's tensors: the subgraph's, with the batch of DUMMY_RUNNER_BATCH_SIZE
    x = np.random.default_rng(0).integers(-128, 128, size=(2, 8, 8, 3), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    code, stderr, results = run(bundle, "--runner", "dummy", "--iterations", "3", *QUICK, "--input",
                                tmp_path / "x.npy", "--output", tmp_path / "y.npy",
                                env={"DUMMY_RUNNER_BATCH_SIZE": "2"})
    assert code == 4, stderr  # 3 iterations: invalid, results written
    assert results["run"]["input"] == "file" and results["run"]["seed"] is None
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (2, 8, 8, 4) and y.dtype == np.int8


def test_input_of_the_wrong_shape_is_one_error_line(bundle, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), dtype=np.int8))
    code, stderr, _ = run(bundle, "--runner", "dummy", "--input", tmp_path / "x.npy")
    assert code == 1 and len(stderr) == 1 and "does not match the input 'input'" in stderr[0]


def test_xmodel_without_a_dpu_subgraph_is_one_error_line(bundle, tmp_path):
    path = make_xmodel(tmp_path / "cpu.xmodel", "cpu")
    code, stderr, results = run(bundle, "--model", path, "--runner", "dummy")
    assert code == 1 and results is None
    assert stderr == [(f"harness: error: {path} has no DPU subgraph (its subgraphs run on: USER, CPU); "
                       "run the harness on the xmodel vai_c_xir compiled (compile.sh)")]


def test_a_file_that_is_no_xmodel_ends_with_the_harness_line(bundle, tmp_path):
    (tmp_path / "junk.xmodel").write_bytes(b"\x01not a protobuf graph" * 8)
    code, stderr, _ = run(bundle, "--model", tmp_path / "junk.xmodel", "--runner", "dummy")
    assert code == 1 and stderr[-1].startswith("harness: error: XIR/VART stopped while reading")


@pytest.mark.parametrize("args,message", [
    (["--model", "/no/such.xmodel"], "harness: error: cannot open /no/such.xmodel"),
    (["--runner", "fpga"], "harness: --runner must be dpu or dummy, not fpga"),
    (["--threads", "2"], "harness: --threads must be 1: the VART harness runs one DPU job at a time"),
    (["--max-miss-rate", "0.1"], "harness: --max-miss-rate needs --deadline-ms"),
    (["--pin", "zero"], "harness: bad CPU list 'zero': expected numbers and ranges such as 0,2-3"),
    (["--iterations", "0"], "harness: --iterations must be at least 1"),
    (["--frobnicate", "1"], "harness: unknown option --frobnicate"),
])
def test_bad_command_lines_are_one_error_line(bundle, args, message):
    code, stderr, results = run(bundle, *args)
    assert (code, stderr, results) == (1 if "cannot open" in message else 2, [message], None)


# --- a partitioned model: CPU subgraphs between the DPU ones ---------------------

def test_cpu_subgraphs_run_in_turn_with_the_dpu_ones_reading_what_they_wrote(bundle, zcu104_bundle):
    model, devices = zcu104_bundle("cpu-layer")
    assert devices == ["USER", "DPU", "CPU", "DPU"]
    code, stderr, results = run(bundle, "--model", model / "out" / "model.xmodel", "--runner", "dummy",
                                "--iterations", "100", *QUICK)
    assert code == 0, stderr
    assert validate(results) == []
    dummy = "libvart-dummy-runner.so"
    assert results["environment"]["extra"]["subgraphs"] == [
        {"name": "subgraph_x", "device": "USER", "ran": False},
        {"name": "subgraph_conv1", "device": "DPU", "ran": True, "library": dummy, "inputs": {"x_fix": "random"}},
        {"name": "subgraph_sigmoid", "device": "CPU", "ran": True, "library": dummy,
         "inputs": {"relu1_fix": "subgraph subgraph_conv1"}},
        {"name": "subgraph_conv2", "device": "DPU", "ran": True, "library": dummy,
         "inputs": {"sigmoid_fix": "subgraph subgraph_sigmoid"}}]
    assert results["notes"][0] == ("each time is the model's 2 DPU and 1 CPU subgraph(s) run in turn, "
                                   "in topological order")
    assert "no DPU ran and no CPU subgraph was computed" in results["notes"][1]
    assert results["latency_ms"]["min"] >= 3 * SLEEP_MS  # three subgraphs' jobs per inference


def test_a_cpu_subgraph_that_names_no_runner_is_one_error_line(bundle, zcu104_bundle, tmp_path):
    model, _devices = zcu104_bundle("cpu-layer")
    graph = read_xmodel((model / "out" / "model.xmodel").read_bytes())
    cpu = next(child for child in graph.subg_root.subg_child if child.subg_attr["device"].string_value == "CPU")
    del cpu.subg_attr["runner"]
    (tmp_path / "uncompiled.xmodel").write_bytes(graph.SerializeToString())
    code, stderr, results = run(bundle, "--model", tmp_path / "uncompiled.xmodel", "--runner", "dummy")
    assert (code, results) == (1, None)
    assert stderr == ["harness: error: CPU subgraph subgraph_sigmoid names no runner (no \"runner\" attribute): "
                      "not an xmodel vai_c_xir compiled"]
