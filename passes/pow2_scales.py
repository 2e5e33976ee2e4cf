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
ELEMENTWISE = ("Add", "Mul")  # binary ops whose both operands ORT's QDQ quantizer quantizes


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


# ops whose input 1 ORT's QDQ quantizer quantizes as a weight and input 2 as a bias
WEIGHTED = ("Conv", "Gemm", "BatchNormalization", "InstanceNormalization", "LayerNormalization")


def choose_exponents(float_model: onnx.ModelProto, activation_scales: dict[str, float], input_name: str,
                     batches: list[np.ndarray], outputs: list[str] = ()) -> dict[str, dict[str, int]]:
    """Exponents for every quantized activation (given with the scale ORT
    calibrated for it), every weight and bias of `float_model` (a WEIGHTED
    op's, and an Add's or Mul's constant operand) and the graph `outputs` to
    be fixed (see fix_outputs), the activations and outputs from one run over
    the calibration data."""
    activations, fixed_outputs = _activation_exponents(float_model, activation_scales, input_name, batches, outputs)
    _align_concats(float_model, activations)
    constants = {init.name: numpy_helper.to_array(init) for init in float_model.graph.initializer}
    weights, biases = {}, {}
    for node in float_model.graph.node:
        if node.op_type in ELEMENTWISE:  # a constant operand is quantized as a weight is
            for name in node.input:
                if name in constants and constants[name].dtype == np.float32:
                    weights.setdefault(name, constant_exponent(constants[name]))
        if node.op_type not in WEIGHTED or node.input[1] not in constants:
            continue
        weights.setdefault(node.input[1], constant_exponent(constants[node.input[1]]))
        if len(node.input) > 2 and node.input[2] in constants:
            layer_input = activations.get(node.input[0])
            lowest = None if layer_input is None else layer_input + weights[node.input[1]]
            biases.setdefault(node.input[2], constant_exponent(constants[node.input[2]], lowest))
    return {"activations": activations, "weights": weights, "biases": biases, "outputs": fixed_outputs}


def _align_concats(model: onnx.ModelProto, activations: dict[str, int]) -> None:
    """A concat's inputs and output share one exponent, the largest of them
    (as Vitis AI's quantizer gives them one position): the DPU then writes
    each input into its slice of the output, and the concat costs nothing."""
    concats = [[name for name in (*node.input, *node.output) if name in activations]
               for node in model.graph.node if node.op_type == "Concat"]
    changed = True
    while changed:  # a concat's output may be another's input
        changed = False
        for names in concats:
            shared = max((activations[name] for name in names), default=None)
            for name in names:
                changed |= activations[name] != shared
                activations[name] = shared


def _activation_exponents(model, scales, input_name, batches, outputs) -> tuple[dict[str, int], dict[str, int]]:
    """The activations' exponents, searched batch by batch around ORT's scale,
    and the outputs', around their range (unknown before the run, so their
    values are kept: a network's outputs are small)."""
    searches = {name: ExponentSearch(covering_exponent(scale * INT8_MAX)) for name, scale in sorted(scales.items())}
    names = [name for name in searches if name != input_name]
    kept = {name: [] for name in outputs}
    probe = _with_outputs(model, names + list(kept))
    for batch, values in zip(batches, ort_quantize.run_batches(probe, input_name, batches, names + list(kept))):
        for name, array in zip(names, values):
            searches[name].add(array)
        for name, array in zip(kept, values[len(names):]):
            kept[name].append(array.ravel())
        if input_name in searches:
            searches[input_name].add(batch)
    return ({name: search.best() for name, search in searches.items()},
            {name: constant_exponent(np.concatenate(arrays)) for name, arrays in kept.items()})


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {out.name for out in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in names if name not in present)
    return probe


LAYER_OPS = ("Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "LeakyRelu")  # what the DPU computes and fixes


def float_outputs(model: onnx.ModelProto) -> list[str]:
    """The graph outputs a layer (or its activation) writes in float."""
    producers = {out: node for node in model.graph.node for out in node.output}
    return [out.name for out in model.graph.output
            if out.name in producers and producers[out.name].op_type in LAYER_OPS]


def fix_outputs(quantized: onnx.ModelProto, exponents: dict[str, int]) -> None:
    """Put a power-of-two Q/DQ pair on each graph output in `exponents`, the
    ones a layer writes in float (float_outputs), in place.

    The QDQ quantizer leaves layer outputs to their readers' inputs, which a
    network's own outputs do not have; Vitis AI's quantizer fixes them too, so
    the classifier stays on the DPU and only what follows it (softmax) goes to
    the CPU. Each exponent is searched over the calibration data as the
    activations' are (choose_exponents)."""
    for name, exponent in exponents.items():
        _insert_qdq(quantized.graph, name, exponent)


def _insert_qdq(graph: onnx.GraphProto, name: str, exponent: int) -> None:
    """`name`'s producer writes `name`_float; Q/DQ at scale 2**exponent, right
    after it (the graph stays in topological order), make `name` again."""
    raw, scale, zero = f"{name}_float", f"{name}_scale", f"{name}_zero_point"
    position = next(i for i, node in enumerate(graph.node) if name in node.output)
    producer = graph.node[position]
    producer.output[:] = [raw if out == name else out for out in producer.output]
    graph.initializer.extend([numpy_helper.from_array(np.array(2.0 ** exponent, dtype=np.float32), scale),
                              numpy_helper.from_array(np.array(0, dtype=np.int8), zero)])
    pair = [onnx.helper.make_node("QuantizeLinear", [raw, scale, zero], [f"{name}_QuantizeLinear_Output"],
                                  name=f"{name}_QuantizeLinear"),
            onnx.helper.make_node("DequantizeLinear", [f"{name}_QuantizeLinear_Output", scale, zero], [name],
                                  name=f"{name}_DequantizeLinear")]
    for offset, node in enumerate(pair, start=1):
        graph.node.insert(position + offset, node)
