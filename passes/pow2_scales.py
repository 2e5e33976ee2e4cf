"""Power-of-two int8 scales for fix-point hardware (the dpu flavour).

The DPU multiplies by shifting, so every scale must be 2**e. Rounding ORT's
scale up to the next power of two would waste up to a bit of resolution; as
Vitis AI's power-of-two "min-MSE" method does, each tensor's exponent is
instead chosen among the few around the one that just covers its range
(smaller ones clip the largest values, larger ones round more coarsely) as the
one with the least squared quantization error: over the calibration data for
activations, over their own values for weights and biases.

Biases are int8 with their own exponent, as the DPU stores them; a bias is
shifted left onto the accumulator's scale, so its exponent is never below
the sum of the input's and the weight's.
"""

import math

import numpy as np
import onnx
from onnx import numpy_helper

from ncc.passes import ort_quantize

INT8_MIN, INT8_MAX = -128, 127
SEARCH = range(-3, 2)  # exponents tried, relative to the one covering the range


def covering_exponent(absmax: float) -> int:
    """The smallest e with 127 * 2**e >= absmax."""
    if absmax <= 0 or not math.isfinite(absmax):
        return 0
    exponent = math.ceil(math.log2(absmax / INT8_MAX))
    while INT8_MAX * 2.0 ** exponent < absmax:  # log2 may round either way
        exponent += 1
    while INT8_MAX * 2.0 ** (exponent - 1) >= absmax:
        exponent -= 1
    return exponent


def squared_error(values: np.ndarray, exponent: int) -> float:
    """Error of QuantizeLinear/DequantizeLinear at scale 2**exponent, zero point 0."""
    scale = 2.0 ** exponent
    values = np.asarray(values, dtype=np.float64)
    quantized = np.clip(np.rint(values / scale), INT8_MIN, INT8_MAX) * scale
    return float(np.sum((values - quantized) ** 2))


class ExponentSearch:
    """Accumulates each candidate exponent's squared error over batches of values."""

    def __init__(self, covering: int, lowest: int | None = None):
        self.candidates = [covering + step for step in SEARCH if lowest is None or covering + step >= lowest]
        self.candidates = self.candidates or [lowest]
        self.errors = np.zeros(len(self.candidates))

    def add(self, values: np.ndarray):
        self.errors += [squared_error(values, e) for e in self.candidates]

    def best(self) -> int:
        # ties go to the larger exponent: equal error, less clipping on unseen data
        return max(zip(-self.errors, self.candidates))[1]


def constant_exponent(values: np.ndarray, lowest: int | None = None) -> int:
    search = ExponentSearch(covering_exponent(float(np.max(np.abs(values), initial=0.0))), lowest)
    search.add(values)
    return search.best()


def choose_exponents(float_model: onnx.ModelProto, activation_scales: dict[str, float], input_name: str,
                     batches: list[np.ndarray]) -> dict[str, dict[str, int]]:
    """Exponents for every quantized activation (given with the scale ORT
    calibrated for it) and every Conv/Gemm weight and bias of `float_model`."""
    activations = _activation_exponents(float_model, activation_scales, input_name, batches)
    constants = {init.name: numpy_helper.to_array(init) for init in float_model.graph.initializer}
    weights, biases = {}, {}
    for node in float_model.graph.node:
        if node.op_type not in ("Conv", "Gemm") or node.input[1] not in constants:
            continue
        weights.setdefault(node.input[1], constant_exponent(constants[node.input[1]]))
        if len(node.input) > 2 and node.input[2] in constants:
            layer_input = activations.get(node.input[0])
            lowest = None if layer_input is None else layer_input + weights[node.input[1]]
            biases.setdefault(node.input[2], constant_exponent(constants[node.input[2]], lowest))
    return {"activations": activations, "weights": weights, "biases": biases}


def _activation_exponents(model, scales, input_name, batches) -> dict[str, int]:
    searches = {name: ExponentSearch(covering_exponent(scale * INT8_MAX)) for name, scale in sorted(scales.items())}
    names = [name for name in searches if name != input_name]
    probe = _with_outputs(model, names)
    for batch, outputs in zip(batches, ort_quantize.run_batches(probe, input_name, batches, names)):
        for name, values in zip(names, outputs):
            searches[name].add(values)
        if input_name in searches:
            searches[input_name].add(batch)
    return {name: search.best() for name, search in searches.items()}


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {out.name for out in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in names if name not in present)
    return probe
