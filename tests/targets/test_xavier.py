"""The xavier target (TensorRT 8.5 on the Jetson AGX Xavier): what TensorRT's
ONNX parser cannot take is refused before anything is written; the bundle
holds what the board needs to build and time the engine, says plainly that
the engine is not built here, and its scripts, model and calibration cache
pass the checks that can run without a GPU."""

import json
import pathlib
import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc.passes import qdq_invariants
from ncc.passes.quant_flavors import FLAVORS
from ncc.targets import get_target
from ncc.targets.xavier.tensorrt_support import SUPPORTED_OPS, unsupported
from ncc.targets.xavier.target import CACHE_HEADER, activation_scales
from onnx import helper
from onnx_builders import make_model, save

REPO = pathlib.Path(__file__).resolve().parents[2]
TRTEXEC_TIMES = REPO / "tests" / "runtime_harness" / "fixtures" / "trtexec_times.json"
COMPILE = ("--scale", "uniform:0.25")
INT8 = ("--quantize", "int8", "--calib-samples", "8")


def _has_tensorrt_gpu() -> bool:
    try:
        import tensorrt as trt

        return trt.Builder(trt.Logger(trt.Logger.ERROR)) is not None
    except Exception:  # no bindings, or no CUDA device
        return False


needs_trt_gpu = pytest.mark.skipif(not _has_tensorrt_gpu(), reason="needs TensorRT and a CUDA GPU")
needs_shellcheck = pytest.mark.skipif(not shutil.which("shellcheck"),
                                      reason="needs shellcheck (.ci/apt-packages.txt)")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, zoo_onnx):
    """bundle(kind) -> path of a VGG-11 xavier bundle: fp32, fp16, int8, dla-int8, dla-fp16."""
    folder = tmp_path_factory.mktemp("xavier")
    flags = {"fp32": (), "fp16": ("--fp16",), "int8": INT8, "dla-int8": (*INT8, "--dla"),
             "dla-fp16": ("--fp16", "--dla", "1")}

    def get(kind):
        out = folder / kind
        if not out.exists():
            result = invoke("compile", zoo_onnx("vgg11"), "-o", out, "--target", "xavier", *COMPILE, *flags[kind])
            assert result.exit_code == 0, result.output
        return out

    return get


def manifest(path) -> dict:
    return json.loads((path / "manifest.json").read_text())


# --- op support -----------------------------------------------------------

def conv_relu():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    return nodes, {"w": np.ones((4, 3, 3, 3), np.float32)}


def test_a_cnn_and_its_tensorrt_int8_model_are_accepted(bundle):
    for kind in ("fp32", "int8"):
        assert unsupported(onnx.load(bundle(kind) / "model.onnx")) == []


@pytest.mark.parametrize("change,fragment", [
    ("unsupported-op", "Unique (node 'unique')"),
    ("custom-domain", "custom domain 'com.example'"),
    ("opset", "opset 18"),
    ("uint8-qdq", "QuantizeLinear (node 'q': its zero point is uint8, not int8)"),
    ("nonzero-zero-point", "QuantizeLinear (node 'q': its zero point is not 0)"),
])
def test_what_tensorrt_8_5_cannot_parse_is_refused_naming_the_node(tmp_path, change, fragment):
    nodes, inits = conv_relu()
    opset, extra = 17, ()
    if change == "unsupported-op":
        nodes.append(helper.make_node("Unique", ["y"], ["u"], name="unique"))
    elif change == "custom-domain":
        nodes.append(helper.make_node("Gelu", ["y"], ["u"], name="gelu", domain="com.example"))
        extra = (helper.make_opsetid("com.example", 1),)
    elif change == "opset":
        nodes.append(helper.make_node("Identity", ["y"], ["u"], name="same"))
        opset = 18
    else:
        zero_type, zero = (np.uint8, 128) if change == "uint8-qdq" else (np.int8, 3)
        inits.update(s=np.array(0.1, np.float32), z=np.array(zero, zero_type))
        nodes += [helper.make_node("QuantizeLinear", ["y", "s", "z"], ["q8"], name="q"),
                  helper.make_node("DequantizeLinear", ["q8", "s", "z"], ["u"], name="dq")]
    model = make_model(nodes, inits, outputs={"u": None}, opset=opset, extra_opsets=extra)
    assert any(fragment in problem for problem in unsupported(model)), unsupported(model)


OPERATORS_MD = REPO.parent / "shared" / "reference" / "onnx-tensorrt-8.5" / "operators.md"


@pytest.mark.skipif(not OPERATORS_MD.exists(), reason=f"onnx-tensorrt 8.5's operators.md not found at {OPERATORS_MD}")
def test_the_op_table_is_onnx_tensorrt_8_5s_own():
    rows = [line.split("|") for line in OPERATORS_MD.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| Operator")]
    assert SUPPORTED_OPS == {row[1].strip() for row in rows if row[2].strip() == "Y"}


def one_node(op, inputs, inits=None, **attrs):
    """x (1x3x8x8) -> op -> u, with `inits` as initializers."""
    return make_model([helper.make_node(op, inputs, ["u"], name="n", **attrs)], inits or {}, outputs={"u": None})


@pytest.mark.parametrize("model,fragment", [
    (one_node("HardSwish", ["x"]), "HardSwish (node 'n')"),
    (one_node("Resize", ["x", "", "scales"], {"scales": np.array([1, 1, 2, 2], np.float32)}, mode="cubic"),
     "Resize (node 'n': mode 'cubic' is not supported (only nearest, linear))"),
    (one_node("Resize", ["x", "roi", "scales"], {"scales": np.array([1, 1, 2, 2], np.float32),
                                                   "roi": np.zeros(8, np.float32)},
              coordinate_transformation_mode="tf_crop_and_resize"),
     "Resize (node 'n': coordinate_transformation_mode 'tf_crop_and_resize' is not supported"),
    (one_node("Resize", ["x", "", "scales"], {"scales": np.array([1, 1, 2, 2], np.float32)},
              nearest_mode="banker"), "nearest_mode 'banker' is not supported"),
    (one_node("Slice", ["x", "starts", "ends", "computed_axes"], {"starts": np.array([0]), "ends": np.array([1])}),
     "Slice (node 'n': its axes must be an initializer)"),
    (one_node("InstanceNormalization", ["x", "computed_scale", "b"], {"b": np.zeros(3, np.float32)}),
     "InstanceNormalization (node 'n': its scale must be an initializer)"),
    (one_node("MaxPool", ["x"], kernel_shape=[2]), "MaxPool (node 'n': 1D pooling (TensorRT pools in 2D or 3D only))"),
])
def test_per_op_restrictions_of_tensorrt_8_5_are_refused_naming_the_node(model, fragment):
    assert any(fragment in problem for problem in unsupported(model)), unsupported(model)


@pytest.mark.parametrize("model", [
    one_node("GridSample", ["x", "grid"], {"grid": np.zeros((1, 8, 8, 2), np.float32)}),
    one_node("Resize", ["x", "", "scales"], {"scales": np.array([1, 1, 2, 2], np.float32)}, mode="linear",
             coordinate_transformation_mode="align_corners"),
    one_node("Slice", ["x", "starts", "ends", "axes"],
             {"starts": np.array([0]), "ends": np.array([1]), "axes": np.array([1])}),
    one_node("InstanceNormalization", ["x", "scale", "b"], {"scale": np.ones(3, np.float32),
                                                            "b": np.zeros(3, np.float32)}),
])
def test_what_tensorrt_8_5_parses_is_accepted(model):
    assert unsupported(model) == []


@pytest.mark.parametrize("flags", [(), INT8])
def test_hard_swish_reaches_tensorrt_as_hard_sigmoid_and_mul(tmp_path, flags):
    """MobileNetV3 at opset 17: HardSwish, which 8.5's parser lacks, is x * HardSigmoid(x)."""
    nodes, inits = conv_relu()
    nodes[1] = helper.make_node("HardSwish", ["c"], ["y"], name="hswish")
    path = save(make_model(nodes, inits, outputs={"y": [1, 4, 6, 6]}), tmp_path)
    result = invoke("compile", path, "-o", tmp_path / "out", "--target", "xavier", *flags)
    assert result.exit_code == 0, result.output
    model = onnx.load(tmp_path / "out" / "model.onnx")
    assert {"HardSigmoid", "Mul"} <= {node.op_type for node in model.graph.node}
    assert unsupported(model) == []
    if flags:
        assert qdq_invariants.violations(model, FLAVORS["tensorrt"]) == []


def test_a_refused_model_is_one_error_line_and_no_bundle(tmp_path):
    nodes, inits = conv_relu()
    nodes.append(helper.make_node("Bernoulli", ["y"], ["u"], name="coin"))
    path = save(make_model(nodes, inits, outputs={"u": [1, 4, 6, 6]}), tmp_path)
    result = invoke("compile", path, "-o", tmp_path / "out", "--target", "jetson-agx-xavier")
    assert_one_line_error(result, 1, "Bernoulli (node 'coin')")
    assert not (tmp_path / "out").exists()


def test_the_target_picks_the_tensorrt_flavour_and_a_tensor_core_multiple():
    target = get_target("jetson-agx-xavier")
    assert target.name == "xavier" and target.quant_flavor == "tensorrt" and target.channel_multiple == 16


# --- the bundle -----------------------------------------------------------

@pytest.mark.skipif(_has_tensorrt_gpu(), reason="with TensorRT and a GPU the engine is built here")
def test_the_manifest_says_the_engine_is_built_on_the_device(bundle):
    found = manifest(bundle("int8"))
    assert found["target"]["engine_built"] is False and found["target"]["tensorrt_version"] == "8.5.2"
    assert any("build.sh" in step and "not built here" in step for step in found["board_steps"])
    assert any("ncc bench --import" in step for step in found["board_steps"])
    paths = {a["path"] for a in found["artifacts"]}
    assert {"model.onnx", "build.sh", "bench.sh", "harness/trt_harness.py", "harness/rt_results.py"} <= paths
    assert "model.engine" not in paths and not (bundle("int8") / "model.engine").exists()


@pytest.mark.parametrize("kind,present,absent", [
    ("fp32", [], ["--int8", "--fp16", "--useDLACore", "--calib"]),
    ("fp16", ["--fp16"], ["--int8", "--useDLACore"]),
    ("int8", ["--int8", '--onnx="$here/model.onnx"'], ["--calib", "--useDLACore"]),
    ("dla-int8", ["--int8", "--useDLACore=0", "--allowGPUFallback", '--calib="$here/calibration.cache"',
                  '--onnx="$here/model_fp32.onnx"'], ["--fp16"]),
    ("dla-fp16", ["--fp16", "--useDLACore=1", "--allowGPUFallback"], ["--int8", "--calib"]),
])
def test_build_sh_builds_as_compiled(bundle, kind, present, absent):
    script = (bundle(kind) / "build.sh").read_text()
    for flag in ['--saveEngine="$here/model.engine"', '--timingCacheFile="$here/timing.cache"', *present]:
        assert flag in script
    for flag in absent:
        assert flag not in script


def test_bench_sh_times_the_engine_with_trtexec_and_samples_power(bundle):
    script = (bundle("dla-fp16") / "bench.sh").read_text()
    for flag in ('--loadEngine="$here/model.engine"', "--useDLACore=1", "--warmUp=", "--duration=", "--iterations=",
                 "--percentile=", "--useSpinWait", '--exportTimes="$out/times.json"', "--exportProfile=",
                 "tegrastats", "ina3221", "_label"):
        assert flag in script


@needs_shellcheck
@pytest.mark.parametrize("kind", ["fp32", "int8", "dla-int8", "dla-fp16"])
def test_scripts_are_shellcheck_clean(bundle, kind):
    scripts = [bundle(kind) / "build.sh", bundle(kind) / "bench.sh"]
    result = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_int8_model_keeps_the_tensorrt_qdq_invariants(bundle):
    model = onnx.load(bundle("int8") / "model.onnx")
    assert qdq_invariants.violations(model, FLAVORS["tensorrt"]) == []
    assert qdq_invariants.facts(model)["quantized_layers"] == 9  # 8 convolutions and the classifier


@pytest.mark.parametrize("kind", ["int8", "fp16"])
def test_polygraphy_lint_passes_the_bundle_model(bundle, kind, tmp_path):
    pytest.importorskip("polygraphy")
    polygraphy = pathlib.Path(sys.executable).with_name("polygraphy")
    report = tmp_path / "lint.json"
    result = subprocess.run([str(polygraphy), "check", "lint", str(bundle(kind) / "model.onnx"),
                             "-o", str(report)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lint = json.loads(report.read_text())
    assert lint["summary"]["failing"] == [] and lint["summary"]["passing"]


# --- DLA: fp32 model and calibration cache ----------------------------------

def test_dla_int8_gets_the_fp32_model_and_a_calibration_cache_of_ncc_scales(bundle):
    path = bundle("dla-int8")
    qdq = onnx.load(path / "model.onnx")
    lines = (path / "calibration.cache").read_text().splitlines()
    assert lines[0] == CACHE_HEADER == "TRT-8502-EntropyCalibration2"
    entries = {}
    for line in lines[1:]:
        match = re.fullmatch(r"(.+): ([0-9a-f]{8})", line)
        assert match, line
        entries[match[1]] = struct.unpack(">f", bytes.fromhex(match[2]))[0]
    scales = activation_scales(qdq)
    assert entries == pytest.approx(scales) and "input" in entries
    fp32 = onnx.load(path / "model_fp32.onnx")
    onnx.checker.check_model(fp32)
    assert not {"QuantizeLinear", "DequantizeLinear"} & {n.op_type for n in fp32.graph.node}
    tensors = {name for node in fp32.graph.node for name in (*node.input, *node.output)}
    assert set(entries) <= tensors  # every cached scale names a tensor TensorRT will see
    assert manifest(path)["harness"]["model"] == "model_fp32.onnx"


def test_the_dla_fp32_model_computes_what_the_fp32_compile_does(bundle, rng):
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)

    def run(path):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]

    np.testing.assert_allclose(run(bundle("dla-int8") / "model_fp32.onnx"), run(bundle("fp32") / "model.onnx"),
                               rtol=1e-4, atol=1e-5)


def test_dla_int8_of_a_model_whose_output_a_quantized_op_writes(tmp_path, rng):
    """ORT quantizes a MaxPool's output even when it is the graph's: the pair
    writes y and the pool y_QuantizeLinear_Input. The fp32 model's pool writes
    y again, and the cache names y (found by fuzzing: the compile failed)."""
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                        helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
                       {"w": weight}, {"x": [1, 3, 8, 8]}, {"y": [1, 4, 4, 4]})
    out = tmp_path / "b"
    result = invoke("compile", save(model, tmp_path), "-o", out, "--target", "xavier", *INT8, "--dla")
    assert result.exit_code == 0, result.output
    qdq, fp32 = onnx.load(out / "model.onnx"), onnx.load(out / "model_fp32.onnx")
    assert next(n for n in qdq.graph.node if "y" in n.output).op_type == "DequantizeLinear"
    onnx.checker.check_model(fp32, full_check=True)
    assert [n.op_type for n in fp32.graph.node] == ["Conv", "MaxPool"] and fp32.graph.node[-1].output[0] == "y"
    cached = {line.split(": ")[0] for line in (out / "calibration.cache").read_text().splitlines()[1:]}
    assert "y" in cached and cached <= {"x", "c", "y"}
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    got = ort.InferenceSession(fp32.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    reference = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)


def test_dla_int8_of_a_model_with_nothing_to_quantize_is_one_error_line(tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["y"])])
    result = invoke("compile", save(model, tmp_path), "-o", tmp_path / "b", "--target", "xavier", *INT8, "--dla")
    assert_one_line_error(result, 1, "the tensorrt flavour quantized no tensor of this model")
    assert not (tmp_path / "b").exists()


def test_dla_without_reduced_precision_and_fp16_elsewhere_are_refused(zoo_onnx, tmp_path):
    result = invoke("compile", zoo_onnx("vgg11"), "-o", tmp_path / "a", "--target", "xavier", *COMPILE, "--dla")
    assert_one_line_error(result, 2, "--dla needs --fp16 or --quantize int8")
    result = invoke("compile", zoo_onnx("vgg11"), "-o", tmp_path / "b", "--target", "host", "--fp16")
    assert_one_line_error(result, 2, "--fp16 apply only to TensorRT targets")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --- timing: trtexec import and the Python harness ---------------------------

def test_bench_sh_output_imports_into_the_results_schema(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    shutil.copy(TRTEXEC_TIMES, out / "times.json")  # what bench.sh OUT_DIR leaves there
    result = invoke("bench", "--import", out / "times.json", "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["harness"] == "trtexec" and len(results["times_ms"]) == len(json.loads(TRTEXEC_TIMES.read_text()))


def test_the_python_harness_parses_its_flags_and_fails_clearly_without_an_engine(bundle, tmp_path):
    harness = bundle("int8") / "harness" / "trt_harness.py"
    help_text = subprocess.run([sys.executable, str(harness), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--iterations" in help_text.stdout and "--deadline-ms" in help_text.stdout
    missing = subprocess.run([sys.executable, str(harness), "--engine", str(tmp_path / "none.engine")],
                             capture_output=True, text=True)
    assert missing.returncode == 3 and "build.sh" in missing.stderr
    bad = subprocess.run([sys.executable, str(harness), "--iterations", "0"], capture_output=True, text=True)
    assert bad.returncode == 2


def test_ncc_bench_refuses_to_run_the_bundle_here(bundle):
    result = invoke("bench", bundle("fp32"))
    assert_one_line_error(result, 2, "tensorrt-trtexec")


@needs_trt_gpu
@pytest.mark.parametrize("kind", ["fp16", "int8"])
def test_with_tensorrt_and_a_gpu_the_engine_is_built_here_and_the_harness_times_it(bundle, kind, tmp_path):
    from ncc.runtime_harness.results import validate

    path = bundle(kind)
    found = manifest(path)["target"]
    assert found["engine_built"] is True and (path / "model.engine").is_file()
    assert found["local_engine"]["deployable_to_xavier"] == (found["local_engine"]["compute_capability"] == "7.2"
                                                             and found["local_engine"]["tensorrt"].startswith("8.5."))
    out = tmp_path / "r.json"
    run = subprocess.run([sys.executable, str(path / "harness" / "trt_harness.py"), "--iterations", "100",
                          "--json", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert validate(json.loads(out.read_text())) == []
