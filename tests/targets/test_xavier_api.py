"""The xavier bundle against TensorRT 8.5 (JetPack 5.1.x): every TensorRT and
cuda-python name its Python harness (and the target's local engine build)
uses, and every trtexec flag build.sh and bench.sh pass, is in a table of
what TensorRT 8.5 documents, with what each relies on; anything not in the
table, or deprecated by 8.5, fails.

Sources of the table: TensorRT 8.5.2/8.5.3's API reference (NvInferRuntime.h:
ICudaEngine's and IExecutionContext's binding-index calls are TRT_DEPRECATED
there, superseded by the name-based I/O API that 8.5 introduces), the
8.x -> 10.x migration guide (what 10.0 removed), trtexec 8.5.3's --help and
sampleOptions.cpp (--workspace, --explicitBatch warn "deprecated"), and
cuda-python's 11.8.x wheels (cuda.bindings.runtime from 11.8.4 on, which
deprecates cuda.cudart; 11.8.3 and older have cuda.cudart only).

Installing TensorRT here (Python 3.11, x86_64, no GPU): PyPI has no 8.5 for
any Python (`pip install tensorrt==8.5.3.1`: no such version; the oldest is
8.6.1, an sdist that pip-installs tensorrt_libs and tensorrt_bindings from
NVIDIA's own index, which is unreachable here). tensorrt-bindings 8.6.1 is a
real cp311 wheel but needs libnvinfer.so.8, which only that index has (PyPI's
tensorrt-libs is a placeholder). The full 10.x/11.x packages
(tensorrt-cu12 10.16.1.11, tensorrt-cu12-libs) are wheel stubs that download
from that index too, and fail. What does install from PyPI and import without
a GPU is TensorRT's lean runtime, tensorrt-lean-cu12-libs and
-bindings 11.4.0.106 (about 47 MB, imported as tensorrt_lean_bindings): it has
the runtime classes the harness uses (not the builder, parser or plugins), so
test_the_installed_tensorrt_has_what_the_table_says checks the harness's
runtime calls and the table's "removed in" notes against it, and against the
full tensorrt where one is installed (a Jetson or a GPU machine).
cuda-python 11.8.7 installs and imports without a GPU; its names are checked
the same way.
"""

import ast
import importlib
import pathlib
import re
import shlex
from typing import NamedTuple

import numpy as np
import pytest
from cli_helpers import invoke
from onnx import helper
from onnx_builders import make_model, save

REPO = pathlib.Path(__file__).resolve().parents[2]
TARGET_PY = REPO / "targets" / "xavier" / "target.py"
KINDS = {"fp32": (), "fp16": ("--fp16",), "int8": ("--quantize", "int8", "--calib-samples", "4"),
         "dla-int8": ("--quantize", "int8", "--calib-samples", "4", "--dla"), "dla-fp16": ("--fp16", "--dla", "1")}


class Api(NamedTuple):
    note: str
    part: str = "runtime"  # runtime: in TensorRT's lean runtime too; builder, parser, plugin: full tensorrt only
    instead: str = ""  # set: 8.5 deprecates it (or it needs what 8.5 deprecates); what to use
    removed_in: str = ""  # the first TensorRT release without it


DEPRECATED_BINDINGS = "the binding-index API, TRT_DEPRECATED in 8.5"

TENSORRT = {
    ("tensorrt", "__version__"): Api("the bindings' version string"),
    ("tensorrt", "Logger"): Api("trt.Logger(min_severity): the ILogger the runtime reports through"),
    ("tensorrt", "Runtime"): Api("trt.Runtime(logger): IRuntime, deserializes engines"),
    ("tensorrt", "nptype"): Api("nptype(DataType) -> numpy type: a helper in the bindings' __init__.py"),
    ("tensorrt", "TensorIOMode"): Api("the enum get_tensor_mode returns: TensorRT >= 8.5"),
    ("tensorrt", "init_libnvinfer_plugins"): Api(
        "init_libnvinfer_plugins(logger, namespace): registers libnvinfer_plugin's creators, which engines with "
        "plugin layers need to deserialize (8.5's ONNX parser makes e.g. InstanceNormalization one)", "plugin"),
    ("Logger", "WARNING"): Api("Logger.Severity.WARNING, also an attribute of Logger"),
    ("Logger", "ERROR"): Api("Logger.Severity.ERROR, also an attribute of Logger"),
    ("Runtime", "deserialize_cuda_engine"): Api("deserialize_cuda_engine(bytes) -> ICudaEngine, None on failure"),
    ("ICudaEngine", "create_execution_context"): Api("-> IExecutionContext"),
    ("ICudaEngine", "num_io_tensors"): Api("number of I/O tensors: TensorRT >= 8.5"),
    ("ICudaEngine", "get_tensor_name"): Api("get_tensor_name(index) -> name: TensorRT >= 8.5"),
    ("ICudaEngine", "get_tensor_mode"): Api("get_tensor_mode(name) -> TensorIOMode: TensorRT >= 8.5"),
    ("ICudaEngine", "get_tensor_dtype"): Api("get_tensor_dtype(name) -> DataType: TensorRT >= 8.5"),
    ("ICudaEngine", "get_tensor_shape"): Api("get_tensor_shape(name) -> Dims (-1 for dynamic): TensorRT >= 8.5"),
    ("ICudaEngine", "num_bindings"): Api(DEPRECATED_BINDINGS, instead="num_io_tensors", removed_in="10.0"),
    ("ICudaEngine", "get_binding_name"): Api(DEPRECATED_BINDINGS, instead="get_tensor_name", removed_in="10.0"),
    ("ICudaEngine", "get_binding_index"): Api(DEPRECATED_BINDINGS, instead="tensor names", removed_in="10.0"),
    ("ICudaEngine", "binding_is_input"): Api(DEPRECATED_BINDINGS, instead="get_tensor_mode", removed_in="10.0"),
    ("ICudaEngine", "get_binding_shape"): Api(DEPRECATED_BINDINGS, instead="get_tensor_shape", removed_in="10.0"),
    ("ICudaEngine", "get_binding_dtype"): Api(DEPRECATED_BINDINGS, instead="get_tensor_dtype", removed_in="10.0"),
    ("IExecutionContext", "get_tensor_shape"): Api("get_tensor_shape(name): the context's resolved shape, 8.5+"),
    ("IExecutionContext", "set_tensor_address"): Api("set_tensor_address(name, int pointer) -> bool: 8.5+"),
    ("IExecutionContext", "execute_async_v3"): Api(
        "execute_async_v3(stream_handle: int) -> bool, addresses from set_tensor_address: TensorRT >= 8.5"),
    ("IExecutionContext", "get_binding_shape"): Api(DEPRECATED_BINDINGS, instead="get_tensor_shape",
                                                    removed_in="10.0"),
    ("IExecutionContext", "set_binding_shape"): Api(DEPRECATED_BINDINGS, instead="set_input_shape",
                                                    removed_in="10.0"),
    ("IExecutionContext", "execute_async_v2"): Api(
        "in 8.5, but it takes a binding-index array, the API 8.5 deprecates",
        instead="set_tensor_address + execute_async_v3", removed_in="10.0"),
    ("IExecutionContext", "execute_async"): Api("implicit batch, TRT_DEPRECATED (enqueue) in 8.5",
                                                instead="execute_async_v3", removed_in="10.0"),
    ("TensorIOMode", "INPUT"): Api("TensorRT >= 8.5"),
    # the target's engine build where a GPU and TensorRT exist (build_engine_here)
    ("tensorrt", "Builder"): Api("trt.Builder(logger); None without a CUDA device", "builder"),
    ("tensorrt", "NetworkDefinitionCreationFlag"): Api("flags of Builder.create_network", "builder"),
    ("tensorrt", "OnnxParser"): Api("trt.OnnxParser(network, logger), libnvonnxparser", "parser"),
    ("tensorrt", "BuilderFlag"): Api("flags of IBuilderConfig.set_flag", "builder"),
    ("tensorrt", "DeviceType"): Api("GPU or DLA, for IBuilderConfig.default_device_type", "builder"),
    ("tensorrt", "IInt8EntropyCalibrator2"): Api("the calibrator trtexec's --calib uses too", "builder"),
    ("Builder", "create_network"): Api("create_network(flags) -> INetworkDefinition", "builder"),
    ("Builder", "create_builder_config"): Api("-> IBuilderConfig", "builder"),
    ("Builder", "build_serialized_network"): Api("(network, config) -> IHostMemory or None: TensorRT >= 8.0",
                                                 "builder"),
    ("Builder", "build_engine"): Api("deprecated since 8.0", "builder", instead="build_serialized_network",
                                     removed_in="10.0"),
    ("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH"): Api(
        "what 8.5's ONNX parser requires (implicit batch is deprecated); 10.0 makes it the only mode", "builder"),
    ("OnnxParser", "parse"): Api("parse(bytes) -> bool", "parser"),
    ("OnnxParser", "num_errors"): Api("errors of the last parse", "parser"),
    ("OnnxParser", "get_error"): Api("get_error(index) -> ParserError", "parser"),
    ("IBuilderConfig", "set_flag"): Api("set_flag(BuilderFlag)", "builder"),
    ("IBuilderConfig", "int8_calibrator"): Api("the IInt8Calibrator implicit int8 reads scales from", "builder"),
    ("IBuilderConfig", "default_device_type"): Api("DeviceType layers run on unless set per layer", "builder"),
    ("IBuilderConfig", "DLA_core"): Api("the DLA core to build for", "builder"),
    ("IBuilderConfig", "max_workspace_size"): Api("deprecated in 8.4", "builder",
                                                  instead="set_memory_pool_limit(MemoryPoolType.WORKSPACE, n)",
                                                  removed_in="10.0"),
    ("BuilderFlag", "INT8"): Api("int8 kernels allowed (also what explicit Q/DQ needs in 8.x)", "builder"),
    ("BuilderFlag", "FP16"): Api("fp16 kernels allowed", "builder"),
    ("BuilderFlag", "GPU_FALLBACK"): Api("layers the DLA cannot run go to the GPU", "builder"),
    ("DeviceType", "DLA"): Api("build for the DLA", "builder"),
    ("IInt8EntropyCalibrator2", "__init__"): Api("a Python calibrator must call the base __init__", "builder"),
    ("IInt8EntropyCalibrator2", "get_batch_size"): Api("override: -> int", "builder"),
    ("IInt8EntropyCalibrator2", "get_batch"): Api("override: (names) -> device pointers, or None when done",
                                                  "builder"),
    ("IInt8EntropyCalibrator2", "read_calibration_cache"): Api("override: -> bytes of the cache, or None",
                                                               "builder"),
    ("IInt8EntropyCalibrator2", "write_calibration_cache"): Api("override: (cache) -> None", "builder"),
}

CUDART = {  # cuda-python 11.8 (JetPack 5 has CUDA 11.4); every call returns (cudaError_t, values...)
    ("cudart", "cudaError_t"): Api("the error enum every call returns first"),
    ("cudaError_t", "cudaSuccess"): Api("0"),
    ("cudart", "cudaStreamCreate"): Api("() -> (err, cudaStream_t); int(stream) is the handle TensorRT takes"),
    ("cudart", "cudaEventCreate"): Api("() -> (err, cudaEvent_t)"),
    ("cudart", "cudaEventRecord"): Api("(event, stream) -> (err,)"),
    ("cudart", "cudaEventSynchronize"): Api("(event) -> (err,)"),
    ("cudart", "cudaEventElapsedTime"): Api("(start, end) -> (err, milliseconds)"),
    ("cudart", "cudaMalloc"): Api("(bytes) -> (err, int pointer)"),
    ("cudart", "cudaMemcpyAsync"): Api("(dst, src, bytes, cudaMemcpyKind, stream) -> (err,); pointers as int"),
    ("cudart", "cudaMemcpyKind"): Api("the copy direction enum"),
    ("cudaMemcpyKind", "cudaMemcpyHostToDevice"): Api("1"),
    ("cudaMemcpyKind", "cudaMemcpyDeviceToHost"): Api("2"),
    ("cudart", "cudaGetDeviceProperties"): Api("(device) -> (err, cudaDeviceProp)"),
    ("cudaDeviceProp", "name"): Api("char[256]: bytes, NUL-padded"),
    ("cudaDeviceProp", "major"): Api("compute capability, major (7 on the Xavier)"),
    ("cudaDeviceProp", "minor"): Api("compute capability, minor (2 on the Xavier)"),
}

API = {**TENSORRT, **CUDART}
MODULES = {"tensorrt": "tensorrt", "cuda.bindings.runtime": "cudart", "cuda.cudart": "cudart"}
DEPRECATED_MODULES = {"cuda.cudart": "deprecated from cuda-python 11.8.4 on, removed in 13.0; only as the "
                                     "fallback when cuda.bindings.runtime does not import"}
OWNERS = {owner for owner, _ in API} - set(MODULES.values())
RETURNS = {("Runtime", "deserialize_cuda_engine"): "ICudaEngine",
           ("ICudaEngine", "create_execution_context"): "IExecutionContext",
           ("Builder", "create_network"): "INetworkDefinition", ("Builder", "create_builder_config"): "IBuilderConfig",
           ("cudart", "cudaGetDeviceProperties"): "cudaDeviceProp"}
UNWRAPS = {"cuda_call"}  # the harness's unwrapping of cuda-python's (error, value)


class Usage:
    """What a Python file uses of TensorRT and cuda-python, by static reading:
    the types of names and attributes are followed through assignments, calls
    the table's RETURNS covers and functions that return a module."""

    def __init__(self, source: str):
        self.tree = ast.parse(source)
        self.types, self.returns = {}, {}
        self.imports, self.unresolved = [], []
        parents = {child: node for node in ast.walk(self.tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(self.tree):
            for module, alias in self._imported(node):
                self.types[alias] = MODULES[module]
                self.imports.append((module, self._in_import_error_handler(node, parents)))
        for _ in range(10):  # to a fixed point: an assignment may use a later one
            before = (dict(self.types), dict(self.returns))
            for node in ast.walk(self.tree):
                self._learn(node)
            if before == (self.types, self.returns):
                break
        self.used = set()
        known_names = {name for owner, name in TENSORRT if owner not in MODULES.values()}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute):
                owner = self.type_of(node.value)
                if owner:
                    self.used.add((owner, node.attr))
                elif node.attr in known_names:
                    self.unresolved.append(f"line {node.lineno}: .{node.attr} of something not followed")
            elif isinstance(node, ast.ClassDef):
                for base in map(self.type_of, node.bases):
                    self.used |= {(base, item.name) for item in node.body
                                  if base and isinstance(item, ast.FunctionDef)}

    @staticmethod
    def _imported(node):
        if isinstance(node, ast.Import):
            return [(a.name, a.asname or a.name) for a in node.names if a.name in MODULES]
        if isinstance(node, ast.ImportFrom) and node.module:
            return [(f"{node.module}.{a.name}", a.asname or a.name) for a in node.names
                    if f"{node.module}.{a.name}" in MODULES]
        return []

    @staticmethod
    def _in_import_error_handler(node, parents):
        while node in parents:
            node, child = parents[node], node
            if isinstance(node, ast.Try) and child in node.handlers:
                return isinstance(child.type, ast.Name) and child.type.id == "ImportError"
        return False

    @staticmethod
    def key(node):
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            base = Usage.key(node.value)
            return base and f"{base}.{node.attr}"
        return None

    def type_of(self, node):
        if self.key(node) in self.types:
            return self.types[self.key(node)]
        if isinstance(node, ast.Attribute):
            owner = self.type_of(node.value)
            return node.attr if owner in MODULES.values() and node.attr in OWNERS else None
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                if node.func.id in UNWRAPS and node.args:
                    return self.type_of(node.args[0])
                return self.returns.get(node.func.id)
            if isinstance(node.func, ast.Attribute):
                owner = self.type_of(node.func.value)
                constructed = self.type_of(node.func)
                return RETURNS.get((owner, node.func.attr)) or (constructed if constructed in OWNERS else None)
        return None

    def _learn(self, node):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = zip(target.elts, node.value.elts)
                elif isinstance(target, ast.Tuple):  # `_, value = cudart.call()`: cuda-python's (error, value)
                    pairs = [(target.elts[-1], node.value)]
                else:
                    pairs = [(target, node.value)]
                for name, value in pairs:
                    if self.key(name) and self.type_of(value):
                        self.types[self.key(name)] = self.type_of(value)
        elif isinstance(node, ast.FunctionDef):
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and ret.value is not None and self.type_of(ret.value):
                    self.returns[node.name] = self.type_of(ret.value)


def problems(usage: Usage) -> list:
    found = list(usage.unresolved)
    for owner, name in sorted(usage.used):
        api = API.get((owner, name))
        if api is None:
            found.append(f"{owner}.{name}: not in the TensorRT 8.5 / cuda-python 11.8 table")
        elif api.instead:
            found.append(f"{owner}.{name}: {api.note}; use {api.instead} (removed in {api.removed_in})")
    for module, in_fallback in usage.imports:
        if module in DEPRECATED_MODULES and not in_fallback:
            found.append(f"import of {module}: {DEPRECATED_MODULES[module]}")
    return found


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """{kind: bundle path} of a small Conv-Relu-Conv xavier bundle per precision."""
    folder = tmp_path_factory.mktemp("xavier_api")
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["y"], pads=[1, 1, 1, 1])]
    weights = {"w1": rng.standard_normal((16, 3, 3, 3)).astype(np.float32),
               "w2": rng.standard_normal((16, 16, 3, 3)).astype(np.float32)}
    model = save(make_model(nodes, weights, outputs={"y": [1, 16, 8, 8]}), folder)
    found = {}
    for kind, flags in KINDS.items():
        result = invoke("compile", model, "-o", folder / kind, "--target", "xavier", *flags)
        assert result.exit_code == 0, result.output
        found[kind] = folder / kind
    return found


# --- the Python harness and the target's engine build -----------------------

def test_the_harness_uses_only_what_tensorrt_8_5_documents_undeprecated(bundles):
    for kind, path in bundles.items():
        usage = Usage((path / "harness" / "trt_harness.py").read_text())
        assert problems(usage) == [], kind
        owners = {owner for owner, _ in usage.used}
        assert {"Runtime", "ICudaEngine", "IExecutionContext", "cudart", "cudaDeviceProp"} <= owners


def test_the_targets_local_engine_build_uses_only_what_tensorrt_8_5_documents():
    usage = Usage(TARGET_PY.read_text())
    assert problems(usage) == []
    assert {"Builder", "IBuilderConfig", "OnnxParser", "IInt8EntropyCalibrator2", "cudaDeviceProp"} <= \
        {owner for owner, _ in usage.used}


@pytest.mark.parametrize("snippet,fragment", [
    ("import tensorrt as trt\nengine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(b'')\n"
     "n = engine.num_bindings", "ICudaEngine.num_bindings: the binding-index API"),
    ("import tensorrt as trt\ne = trt.Runtime(None).deserialize_cuda_engine(b'')\nc = e.create_execution_context()\n"
     "c.execute_async_v2([], 0)", "use set_tensor_address + execute_async_v3"),
    ("import tensorrt as trt\nb = trt.Builder(None)\nconf = b.create_builder_config()\nconf.max_workspace_size = 1",
     "IBuilderConfig.max_workspace_size: deprecated in 8.4"),
    ("import tensorrt as trt\nr = trt.Runtime(None)\nr.deserialize_engine(b'')",
     "Runtime.deserialize_engine: not in the TensorRT 8.5"),
    ("def load():\n    from cuda.bindings import runtime\n    return runtime\nrt = load()\nrt.cudaMallocManaged(4)",
     "cudart.cudaMallocManaged: not in the"),
    ("from cuda import cudart\n", "import of cuda.cudart: deprecated"),
    ("import tensorrt as trt\nclass C(trt.IInt8EntropyCalibrator2):\n    def get_batch_sizes(self):\n        pass",
     "IInt8EntropyCalibrator2.get_batch_sizes: not in the"),
    ("def f(engine):\n    return engine.get_binding_name(0)", ".get_binding_name of something not followed"),
])
def test_the_check_catches_what_8_5_lacks_or_deprecates(snippet, fragment):
    assert any(fragment in problem for problem in problems(Usage(snippet))), problems(Usage(snippet))


def test_the_cudart_fallback_import_is_accepted():
    source = "try:\n    from cuda.bindings import runtime\nexcept ImportError:\n    from cuda import cudart\n"
    assert problems(Usage(source)) == []


# --- build.sh and bench.sh ----------------------------------------------------

INT, PATH = r"\d+", r"\S+"
TRTEXEC = {  # flag: (value pattern or None for a bare flag, what trtexec 8.5 documents)
    "--onnx": (PATH, "ONNX model; ONNX forces explicit batch (--explicitBatch is deprecated, no effect)"),
    "--saveEngine": (PATH, "write the serialized engine"),
    "--loadEngine": (PATH, "read a serialized engine instead of building one"),
    "--timingCacheFile": (PATH, "save/load the global timing cache (TensorRT >= 8.0)"),
    "--fp16": (None, "enable fp16 in addition to fp32"),
    "--int8": (None, "enable int8 in addition to fp32; 8.5 needs it for explicit Q/DQ models too"),
    "--calib": (PATH, "read an INT8 calibration cache (implicit int8)"),
    "--useDLACore": (r"[01]", "DLA core N for the layers it supports; the Xavier has cores 0 and 1; also needed "
                              "with --loadEngine of a DLA engine"),
    "--allowGPUFallback": (None, "with --useDLACore, layers the DLA cannot run go to the GPU"),
    "--warmUp": (INT, "milliseconds of warm-up before measuring (default 200)"),
    "--duration": (INT, "measure for at least N seconds (default 3)"),
    "--iterations": (INT, "at least N inference iterations (default 10)"),
    "--percentile": (r"\d+(,\d+)*", "8.5: P1,P2,... in 0..100 (default 90,95,99)"),
    "--useSpinWait": (None, "actively synchronize on GPU events"),
    "--exportTimes": (PATH, "timing results as JSON (what ncc bench --import reads)"),
    "--exportProfile": (PATH, "per-layer profile as JSON"),
    "--separateProfileRun": (None, "profile in a second run, not in the timed one"),
}
TRTEXEC_DEPRECATED = {
    "--workspace": "deprecated in 8.4 (a warning in 8.5): use --memPoolSize=workspace:N",
    "--explicitBatch": "deprecated, no effect in 8.x: ONNX models are always explicit batch",
    "--explicitPrecision": "deprecated, no effect: Q/DQ nodes make precision explicit",
    "--maxBatch": "implicit batch only; must not be used with ONNX models",
    "--batch": "implicit batch only; must not be used with engines built from ONNX",
}
PASSED_THROUGH = "$@"  # the script's own arguments, for the user to add flags


def trtexec_commands(script: str) -> list:
    """The argument lists (quotes removed, ${VAR:-default} as its default) of
    every "$trtexec" invocation in a bash script, up to its first redirection
    or pipe."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True) if line.strip() else []
        if words and words[0] == "$trtexec":
            args = []
            for word in words[1:]:
                if re.match(r"\d*[<>|&]", word):
                    break
                args.append(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", word))
            commands.append(args)
    return commands


def flag_problems(args: list) -> list:
    found = []
    for arg in args:
        flag, has_value, value = arg.partition("=")
        if arg == PASSED_THROUGH:
            continue
        if flag in TRTEXEC_DEPRECATED:
            found.append(f"{flag}: {TRTEXEC_DEPRECATED[flag]}")
        elif flag not in TRTEXEC:
            found.append(f"{arg}: not in the table of trtexec 8.5 flags")
        elif TRTEXEC[flag][0] is None and has_value:
            found.append(f"{arg}: {flag} takes no value")
        elif TRTEXEC[flag][0] is not None and not re.fullmatch(TRTEXEC[flag][0], value):
            found.append(f"{arg}: the value does not match {TRTEXEC[flag][0]} ({TRTEXEC[flag][1]})")
        elif flag == "--percentile" and any(int(p) > 100 for p in value.split(",")):
            found.append(f"{arg}: percentiles are 0..100")
    return found


@pytest.mark.parametrize("script", ["build.sh", "bench.sh"])
def test_the_scripts_pass_trtexec_only_flags_8_5_documents(bundles, script):
    for kind, path in bundles.items():
        commands = trtexec_commands((path / script).read_text())
        assert len(commands) == 1, (kind, commands)
        assert flag_problems(commands[0]) == [], kind
        assert PASSED_THROUGH in commands[0]
        if script == "build.sh":
            assert any(arg.startswith("--saveEngine=") for arg in commands[0])
        else:
            assert any(arg.startswith("--loadEngine=") for arg in commands[0])
            assert any(arg.startswith("--useDLACore=") for arg in commands[0]) == kind.startswith("dla")


def test_bench_sh_defaults_are_what_trtexec_8_5_parses(bundles):
    args = dict(arg.partition("=")[::2] for arg in trtexec_commands((bundles["fp32"] / "bench.sh").read_text())[0])
    assert args["--warmUp"] == "500" and args["--duration"] == "10" and args["--iterations"] == "1000"
    assert args["--percentile"] == "99"


@pytest.mark.parametrize("line,fragment", [
    ('"$trtexec" --onnx=m.onnx --workspace=1024', "--workspace: deprecated in 8.4"),
    ('"$trtexec" --onnx=m.onnx --explicitBatch', "--explicitBatch: deprecated"),
    ('"$trtexec" --onnx=m.onnx --stronglyTyped', "not in the table of trtexec 8.5 flags"),  # 9.x+
    ('"$trtexec" --loadEngine=e --useDLACore=2', "--useDLACore=2: the value does not match"),
    ('"$trtexec" --loadEngine=e --percentile="${P:-101}"', "percentiles are 0..100"),
    ('"$trtexec" --loadEngine=e --useSpinWait=1', "takes no value"),
    ('"$trtexec" \\\n    --loadEngine=e --warmUp="${W:-half}" 2>&1 | tee log', "--warmUp=half: the value"),
])
def test_the_flag_check_catches_what_trtexec_8_5_would_not_take(line, fragment):
    found = [problem for args in trtexec_commands(line) for problem in flag_problems(args)]
    assert any(fragment in problem for problem in found), found


# --- against an installed TensorRT and cuda-python ------------------------------

def _import_first(*names):
    for name in names:
        try:
            return importlib.import_module(name)
        except Exception:  # noqa: BLE001 - missing, or its libraries are
            continue
    return None


def _version(text: str) -> tuple:
    return tuple(int(part) for part in text.split(".")[:2])


def _resolve(module, owner):
    return module if owner in MODULES.values() else getattr(module, owner, None)


INSTALLED_TRT = _import_first("tensorrt", "tensorrt_lean", "tensorrt_lean_bindings")
INSTALLED_CUDART = _import_first("cuda.bindings.runtime", "cuda.cudart")


@pytest.mark.skipif(INSTALLED_TRT is None, reason="no TensorRT Python package imports here (tensorrt, or the lean "
                                                  "runtime: pip install tensorrt-lean-cu12-libs "
                                                  "tensorrt-lean-cu12-bindings)")
def test_the_installed_tensorrt_has_what_the_table_says(bundles):
    """Every name the harness uses exists in the installed TensorRT (any
    release from 8.5 on), and every table entry exists exactly while the
    installed release is older than its "removed in" (of the lean runtime,
    the runtime part only)."""
    lean = "lean" in INSTALLED_TRT.__name__
    installed = _version(INSTALLED_TRT.__version__)
    assert installed >= (8, 5)
    # the table's sources end at the 8.x -> 10.x migration guide: of an 11.x, only the runtime part is checked
    full = not lean and installed < (11, 0)
    covered = {key: api for key, api in TENSORRT.items() if api.part == "runtime" or full}
    harness = Usage((bundles["int8"] / "harness" / "trt_harness.py").read_text()).used
    missing = [f"{owner}.{name}" for owner, name in sorted(harness & covered.keys())
               if not hasattr(_resolve(INSTALLED_TRT, owner), name)]
    assert missing == [], INSTALLED_TRT.__version__
    wrong = [f"{owner}.{name} (removed in {api.removed_in or 'never'})" for (owner, name), api in covered.items()
             if hasattr(_resolve(INSTALLED_TRT, owner), name)
             != (not api.removed_in or installed < _version(api.removed_in))]
    assert wrong == [], INSTALLED_TRT.__version__


@pytest.mark.skipif(INSTALLED_CUDART is None, reason="cuda-python does not import here (pip install cuda-python)")
def test_the_installed_cuda_python_has_what_the_harness_calls(bundles):
    used = Usage((bundles["int8"] / "harness" / "trt_harness.py").read_text()).used
    used |= Usage(TARGET_PY.read_text()).used
    missing = [f"{owner}.{name}" for owner, name in sorted(used & CUDART.keys())
               if not hasattr(_resolve(INSTALLED_CUDART, owner), name)]
    assert missing == []
