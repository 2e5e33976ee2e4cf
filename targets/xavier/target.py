"""xavier: the Jetson AGX Xavier's GPU (Volta, sm_72) and DLA, with TensorRT
8.5.2 (JetPack 5.1.x, CUDA 11.4), the newest stack for that board.

A TensorRT engine is specific to the GPU architecture and TensorRT version
that built it (hardware-compatible engines exist only for Ampere and newer),
so the Xavier's engine is built on the Xavier: ncc emits everything up to the
engine and build.sh finishes it there with trtexec.

Bundle:
    model.onnx              what the engine is built from: fp32, or the
                            tensorrt-flavour QDQ model (explicit int8)
    model_fp32.onnx         with --dla and int8: the model without Q/DQ (DLA
    calibration.cache       takes no explicit Q/DQ) and a TensorRT calibration
                            cache holding ncc's activation scales (implicit int8)
    build.sh                trtexec: model -> model.engine (timing cache beside it)
    bench.sh                trtexec --loadEngine timing with power sampling
    harness/trt_harness.py  Python timing harness on the TensorRT runtime API
"""

import os
import struct
from dataclasses import dataclass

import click
import onnx

from ncc.core.errors import CompileError, UsageError
from ncc.passes import HardActivations, ort_quantize
from ncc.runtime_harness.harnesses import HARNESS_DIR, TENSORRT
from ncc.targets.base import EmitResult, Target, TargetOptions, option
from ncc.targets.xavier.tensorrt_support import TENSORRT_VERSION, check_tensorrt_support

FP32_MODEL = "model_fp32.onnx"
CALIBRATION_CACHE = "calibration.cache"
ENGINE = "model.engine"
# NV_TENSORRT_VERSION of 8.5.2 and trtexec's calibrator (IInt8EntropyCalibrator2)
CACHE_HEADER = "TRT-8502-EntropyCalibration2"
XAVIER_COMPUTE_CAPABILITY = (7, 2)



@dataclass(frozen=True)
class XavierOptions(TargetOptions):
    applies_to = "TensorRT targets (xavier)"

    fp16: bool = option(False, "--fp16", is_flag=True,
                        help="TensorRT targets (xavier): build the engine with fp16 kernels enabled.")
    dla: int | None = option(
        None, "--dla", type=click.IntRange(0, 1), is_flag=False, flag_value=0, metavar="[CORE]",
        help="TensorRT targets (xavier): build for DLA core CORE (default 0), GPU fallback allowed; "
             "with --quantize int8 the bundle also gets the fp32 model and a TensorRT calibration cache.")


def _template(name: str) -> str:
    with open(os.path.join(HARNESS_DIR, "tensorrt", name)) as handle:
        return handle.read()


def trtexec_flags(model: str, engine: str, precision: dict) -> tuple[list, list]:
    """(build flags, bench flags) as shell words, every path quoted and
    relative to the script's folder ($here)."""
    build = [f'--onnx="$here/{model}"', f'--saveEngine="$here/{engine}"', '--timingCacheFile="$here/timing.cache"']
    build += ["--int8"] if precision.get("int8") else []
    build += ["--fp16"] if precision.get("fp16") else []
    if precision.get("calibration_cache"):
        build.append(f'--calib="$here/{precision["calibration_cache"]}"')
    bench = [f'--loadEngine="$here/{engine}"']
    if precision.get("dla_core") is not None:
        dla = [f"--useDLACore={int(precision['dla_core'])}", "--allowGPUFallback"]
        build += dla
        bench += dla[:1]
    return build, bench


def trt_scripts(model: str, engine: str, precision: dict) -> dict:
    """{file name: text} of build.sh and bench.sh for this bundle."""
    build, bench = trtexec_flags(model, engine, precision)
    return {"build.sh": _template("build.sh").replace("@BUILD_FLAGS@", " ".join(build)).replace("@ENGINE@", engine),
            "bench.sh": _template("bench.sh").replace("@BENCH_FLAGS@", " ".join(bench)).replace("@ENGINE@", engine)}


class XavierTarget(Target):
    name = "xavier"
    aliases = ("jetson-agx-xavier",)
    description = "Jetson AGX Xavier GPU/DLA (TensorRT 8.5.2, JetPack 5.1.x); engine built on the board by build.sh"
    # 16: Volta-class Tensor Cores run fp16 convolutions at channel multiples of
    # 8 and int8 at multiples of 16 (NVIDIA's performance guide); 16 serves
    # both. (The DLA pads channels to 16 for fp16 and 32 for int8 by itself.)
    channel_multiple = 16
    quant_flavor = "tensorrt"
    options_type = XavierOptions
    harness = TENSORRT

    def passes(self, options):
        # TensorRT 8.5's ONNX parser has HardSigmoid but no HardSwish
        return {"fold": [HardActivations()]}

    def check_supported(self, model):
        check_tensorrt_support(model, self.name)

    def emit(self, model: onnx.ModelProto, bundle, options) -> EmitResult:
        fp16, dla = options.target_options.fp16, options.target_options.dla
        int8 = any(node.op_type == "QuantizeLinear" for node in model.graph.node)
        if dla is not None and not (int8 or fp16):
            if options.quantize:  # the tensorrt flavour put Q/DQ on no layer's input
                raise CompileError("--dla with --quantize int8: the tensorrt flavour quantized no tensor of this "
                                   "model (no layer it quantizes, e.g. Conv, Gemm or Add), and the DLA runs no fp32; "
                                   "use --fp16")
            raise UsageError("--dla needs --fp16 or --quantize int8 (the DLA runs no fp32)")
        build_model, calib = "model.onnx", None
        if dla is not None and int8:
            bundle.add_model(strip_qdq(model), FP32_MODEL, "model",
                             "model.onnx without Q/DQ, for the DLA (implicit int8)")
            bundle.add_bytes(CALIBRATION_CACHE, calibration_cache(activation_scales(model)), "calibration",
                             "TensorRT calibration cache from ncc's activation scales")
            build_model, calib = FP32_MODEL, CALIBRATION_CACHE
        precision = {"int8": int8, "fp16": fp16, "dla_core": dla, "calibration_cache": calib}
        for name, text in trt_scripts(build_model, ENGINE, precision).items():
            bundle.add_bytes(name, text, "script", _SCRIPTS[name], executable=True)
        self.harness.install(bundle)
        local = build_engine_here(bundle.staging, build_model, precision)
        if local:
            bundle.add_existing(ENGINE, "engine", f"TensorRT engine built here ({local['gpu']})")
        mode = ("int8 (implicit, calibration cache) on DLA" if calib else
                "int8 (explicit Q/DQ)" if int8 else "fp16" if fp16 else "fp32")
        return EmitResult(
            board_steps=[
                "copy the bundle folder to the Jetson AGX Xavier (JetPack 5.1.x: TensorRT 8.5.2, CUDA 11.4)",
                f"build the engine there: BUNDLE/build.sh (trtexec writes BUNDLE/{ENGINE}; " + (
                    "the engine built here is replaced; it is for this machine's GPU)" if local else
                    "it is not built here: no TensorRT builder and no GPU on this machine)"),
                "time it there: BUNDLE/bench.sh OUT_DIR (trtexec, power from tegrastats or the INA3221 rails); "
                "then here: ncc bench --import OUT_DIR/times.json",
                "or time it with the TensorRT runtime API: python3 BUNDLE/harness/trt_harness.py --json results.json"],
            harness=self.harness.entry(build="build.sh", engine=ENGINE, model=build_model,
                                       python="harness/trt_harness.py"),
            info={"runtime": "tensorrt", "tensorrt_version": TENSORRT_VERSION, "jetpack": "5.1.x", "cuda": "11.4",
                  "gpu": "Volta sm_72", "precision": mode, "dla_core": dla, "engine_built": bool(local),
                  "engine_note": "the engine is not built here; build.sh builds it on the device "
                                 "(engines are not portable across GPU architectures or TensorRT versions)"
                  if not local else "an engine was built here; it deploys to the Xavier only if built on "
                                    "sm_72 with TensorRT 8.5 (see local_engine)",
                  **({"local_engine": local} if local else {}),
                  **({"calibration_cache_note": CACHE_NOTE} if calib else {})})


_SCRIPTS = {"build.sh": "builds model.engine on the board with trtexec",
            "bench.sh": "times model.engine with trtexec and samples power"}

CACHE_NOTE = (f"format as ncc understands TensorRT's IInt8Calibrator cache: header '{CACHE_HEADER}', then "
              "'tensor: hex' per tensor, hex the big-endian float32 bits of the scale (amax/127); not verified "
              "against a TensorRT 8.5 build here. Tensors no Q/DQ covers (the network outputs, a layer output "
              "without a Relu after it) get no scale; TensorRT runs what it cannot quantize in fp16/fp32.")


def strip_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without its QuantizeLinear/DequantizeLinear pairs: every
    consumer reads the float tensor the pair quantized (ncc's tensorrt flavour
    keeps weights float behind their own pairs, so nothing is lost but the
    rounding)."""
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    nodes = list(stripped.graph.node)
    origin = ort_quantize.qdq_origin(stripped)
    kept = [n for n in nodes if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    inputs = {i.name for i in stripped.graph.input}
    renamed = ort_quantize.quantized_outputs(stripped)
    passed = [(raw, name) for raw, name in renamed.items() if raw in inputs]  # an input straight through a pair
    renamed = {raw: name for raw, name in renamed.items() if raw not in inputs}
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(origin(name), origin(name))
        for i, name in enumerate(node.output):
            node.output[i] = renamed.get(name, name)
    kept += [onnx.helper.make_node("Identity", [raw], [name], name=f"{name}_Identity") for raw, name in passed]
    del stripped.graph.node[:]
    stripped.graph.node.extend(kept)
    used = {name for node in kept for name in node.input}
    initializers = [i for i in stripped.graph.initializer if i.name in used]
    del stripped.graph.initializer[:]
    stripped.graph.initializer.extend(initializers)
    del stripped.graph.value_info[:]
    return stripped


def activation_scales(model: onnx.ModelProto) -> dict:
    """{float tensor: scale} of every activation a QuantizeLinear quantizes
    (weights, being constants, are calibrated by TensorRT itself), and the
    input of a Relu whose output has one, by their names in the fp32 model
    (strip_qdq)."""
    scales = ort_quantize.activation_scales(model)
    renamed = ort_quantize.quantized_outputs(model)
    # a layer's output before its Relu gets the Relu output's scale, as TensorRT
    # fuses the two and quantizes their common output
    for node in model.graph.node:
        output, source = (renamed.get(name, name) for name in (node.output[0], node.input[0]))
        if node.op_type == "Relu" and output in scales and source not in scales:
            scales[source] = scales[output]
    return scales


def calibration_cache(scales: dict) -> str:
    """TensorRT's calibration cache text: header line, then `name: hex` per
    tensor, hex the big-endian IEEE-754 float32 bits of the scale."""
    lines = [CACHE_HEADER]
    lines += [f"{name}: {struct.pack('>f', scale).hex()}" for name, scale in sorted(scales.items())]
    return "\n".join(lines) + "\n"


def build_engine_here(bundle_dir: str, model_name: str, precision: dict) -> dict | None:
    """Where TensorRT and a CUDA GPU exist, build the engine as build.sh would
    and say whether it is deployable to the Xavier; else None (nothing built)."""
    try:
        import tensorrt as trt

        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        if builder is None:
            return None
    except Exception:  # noqa: BLE001 - no bindings, no driver or no GPU all mean: not here
        return None
    try:  # cuda-python 11.8.4 on; cuda.cudart, deprecated there, is all older ones have
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart

    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    with open(os.path.join(bundle_dir, model_name), "rb") as handle:
        if not parser.parse(handle.read()):
            raise UsageError("TensorRT here cannot parse the model: "
                             + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    for wanted, flag in (("int8", trt.BuilderFlag.INT8), ("fp16", trt.BuilderFlag.FP16)):
        if precision.get(wanted):
            config.set_flag(flag)
    if precision.get("calibration_cache"):
        config.int8_calibrator = _cache_calibrator(trt, os.path.join(bundle_dir, precision["calibration_cache"]))
    if precision.get("dla_core") is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(precision["dla_core"])
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise UsageError("TensorRT here failed to build the engine (its log above says why)")
    with open(os.path.join(bundle_dir, ENGINE), "wb") as handle:
        handle.write(bytes(plan))
    _, props = cudart.cudaGetDeviceProperties(0)
    capability = (props.major, props.minor)
    return {"tensorrt": trt.__version__, "gpu": props.name.decode().rstrip("\x00") if isinstance(props.name, bytes)
            else str(props.name), "compute_capability": f"{capability[0]}.{capability[1]}",
            "deployable_to_xavier": capability == XAVIER_COMPUTE_CAPABILITY and trt.__version__.startswith("8.5.")}


def _cache_calibrator(trt, path):
    """An IInt8EntropyCalibrator2 that only reads ncc's calibration cache."""

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            return None

        def read_calibration_cache(self):
            with open(path, "rb") as handle:
                return handle.read()

        def write_calibration_cache(self, cache):
            return None

    return CacheCalibrator()
