"""ONNX Runtime's static quantizer and sessions, as the quantize-int8 pass uses them.

Calibration and the QDQ rewrite are ORT's (`quantize_static` with a
CalibrationDataReader and a calibration cache); this module maps a Flavor onto
ORT's options, feeds it the data in the model's batch size and keeps its
progress prints and log warnings off the terminal. onnxruntime.quantization is
imported when first used: it adds a tenth of a second to every `ncc` start.
"""

import contextlib
import io
import logging

import numpy as np
import onnx
import onnxruntime as ort

from ncc.core.errors import CompileError
from ncc.passes.quant_flavors import Flavor

MAX_SAMPLES_PER_COLLECT = 8  # calibrators keep every intermediate tensor of a collect in memory


class BatchReader:
    """ORT's CalibrationDataReader protocol (get_next, and __len__/set_range for
    strided collection) over a list of input batches."""

    def __init__(self, input_name: str, batches: list[np.ndarray]):
        self.input_name, self.batches = input_name, batches
        self.set_range(0, len(batches))

    def get_next(self):
        if self.position >= self.end:
            return None
        self.position += 1
        return {self.input_name: self.batches[self.position - 1]}

    def __len__(self):
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int):
        self.position, self.end = start_index, end_index


def quantize(model_path: str, output_path: str, flavor: Flavor, method: str, reader: BatchReader | None,
             cache_path: str, overrides: dict | None = None) -> onnx.ModelProto:
    """QDQ-quantize the model at `model_path` for `flavor`. The calibration
    ranges are read from `cache_path` if it exists, else computed from
    `reader` and saved there. `overrides` are ORT TensorQuantOverrides."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    extra = {
        "ActivationSymmetric": flavor.symmetric_activations,
        "WeightSymmetric": True,
        "AddQDQPairToWeight": flavor.weight_qdq_pair,
        "DedicatedQDQPair": flavor.dedicated_pairs,
        "QuantizeBias": flavor.bias != "float",
        # Q/DQ where a layer's or Add's output is consumed (after its Relu, at the next
        # layer's input) rather than on the output itself; pooling and
        # reshaping ops are then quantized even when their input is not yet
        "OpTypesToExcludeOutputQuantization": [] if flavor.quantize_layer_outputs else ["Conv", "Gemm", "Add"],
        "ForceQuantizeNoInputCheck": not flavor.quantize_layer_outputs,
        "TensorQuantOverrides": overrides or {},
    }
    if reader is not None:
        extra["CalibStridedMinMax"] = _stride(len(reader))  # ORT applies it to every calibration method
    try:
        with _quiet():
            quantize_static(model_path, output_path, reader, quant_format=QuantFormat.QDQ,
                            per_channel=flavor.per_channel_weights, reduce_range=flavor.seven_bit_weights,
                            activation_type=types[flavor.activations],
                            weight_type=QuantType.QInt8,
                            calibrate_method={"minmax": CalibrationMethod.MinMax,
                                              "entropy": CalibrationMethod.Entropy,
                                              "percentile": CalibrationMethod.Percentile}[method],
                            extra_options=extra, calibration_cache_path=cache_path,
                            op_types_to_quantize=sorted({*QLinearOpsRegistry, *QDQRegistry, *flavor.extra_ops}))
    except Exception as err:  # ORT's Python raises ValueError, AssertionError, ...; its C++ its own types
        raise CompileError(f"ONNX Runtime's quantizer failed: {' '.join(str(err).split())}") from None
    return onnx.load(output_path)


def int8_overrides(scales: dict[str, float], int8_tensors: set[str] = frozenset()) -> dict:
    """TensorQuantOverrides fixing each tensor's per-tensor scale (zero point 0).
    Tensors in `int8_tensors` (biases) are quantized to int8 as weights are."""
    from onnxruntime.quantization import QuantType

    overrides = {}
    for name, scale in sorted(scales.items()):
        entry = {"scale": np.array(scale, dtype=np.float32), "zero_point": np.array(0, dtype=np.int8)}
        if name in int8_tensors:
            entry["quant_type"] = QuantType.QInt8
        overrides[name] = [entry]
    return overrides


def qdq_origin(model: onnx.ModelProto):
    """origin(name): the tensor a chain of Q/DQ nodes writing `name` starts from."""
    source = {node.output[0]: node.input[0] for node in model.graph.node
              if node.op_type in ("QuantizeLinear", "DequantizeLinear")}

    def origin(name):
        while name in source:
            name = source[name]
        return name

    return origin


def quantized_outputs(model: onnx.ModelProto) -> dict:
    """{float tensor: graph output} of each output a Q/DQ pair writes: the
    quantizer renames its producer's output OUT_QuantizeLinear_Input, so
    that the pair can write OUT; in the float model the producer writes OUT."""
    origin = qdq_origin(model)
    return {origin(o.name): o.name for o in model.graph.output if origin(o.name) != o.name}


def activation_scales(model: onnx.ModelProto) -> dict[str, float]:
    """{tensor: scale} of every activation a QDQ model quantizes per tensor,
    each by its name in the float model (see quantized_outputs)."""
    constants = {init.name: init for init in model.graph.initializer}
    renamed = quantized_outputs(model)
    scales = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in constants:
            scale = onnx.numpy_helper.to_array(constants[node.input[1]]).ravel()
            if scale.size == 1:
                scales[renamed.get(node.input[0], node.input[0])] = float(scale[0])
    return scales


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    """A CPU session with ORT's full graph optimisation, as the host runs it
    (unlike ncc.core.numerics.session, which must see the graph as is)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own exception types from C++
        raise CompileError(f"ONNX Runtime cannot load the model: {' '.join(str(err).split())}") from None


def run_batches(model: onnx.ModelProto, input_name: str, batches, outputs: list[str] | None = None):
    """Yield the outputs (all, or the named ones) for each input batch."""
    runner = session(model)
    for batch in batches:
        yield runner.run(outputs, {input_name: batch})


def _stride(samples: int) -> int:
    """The largest divisor of `samples` up to MAX_SAMPLES_PER_COLLECT (ORT needs one)."""
    return max(d for d in range(1, min(samples, MAX_SAMPLES_PER_COLLECT) + 1) if samples % d == 0)


@contextlib.contextmanager
def _quiet():
    """ORT's quantizer prints calibration progress and logs warnings (e.g. to run
    its pre-processing, which ncc's own passes replace) on the root logger."""
    root = logging.getLogger()
    handler = logging.NullHandler()  # so logging.warning() does not install a stderr handler
    root.addHandler(handler)
    previous = root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)
        root.removeHandler(handler)
