"""quantize-int8: the float model becomes a QDQ int8 model in one flavour
(ncc.passes.quant_flavors: tensorrt, dpu, generic), calibrated on user data.

ONNX Runtime's static quantizer calibrates and inserts QuantizeLinear /
DequantizeLinear; this pass feeds it the calibration data, adds what it lacks
(power-of-two scales for the dpu, the checks of each flavour's promises) and,
given held-out data, measures the int8 model against the float one.
"""

import os
import tempfile

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ncc.core.datasets import RANDOM, Dataset
from ncc.core.errors import CompileError, UsageError
from ncc.passes import ort_quantize, pow2_scales, qdq_invariants, quant_accuracy
from ncc.passes.base import Pass, PassResult
from ncc.passes.graph_utils import constant_values, replace_constant, unique_name
from ncc.passes.quant_flavors import CALIBRATION_METHODS, FLAVORS

_WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")  # what ONNX Runtime quantizes the weight of


class QuantizeInt8(Pass):
    name = "quantize-int8"

    def __init__(self, calibration: Dataset, flavor: str = "generic", method: str = "minmax",
                 evaluation: Dataset | None = None, seed: int = 0):
        if flavor not in FLAVORS:
            raise UsageError(f"unknown quantization flavour '{flavor}' (known: {', '.join(FLAVORS)})")
        if method not in CALIBRATION_METHODS:
            raise UsageError(f"unknown calibration method '{method}' (known: {', '.join(CALIBRATION_METHODS)})")
        super().__init__(flavor=flavor, calib_method=method, calib_samples=len(calibration.x),
                         calib_data=calibration.description,
                         eval_data=evaluation.description if evaluation is not None else None, seed=seed)
        self.calibration, self.evaluation = calibration, evaluation

    def run(self, graph, ctx):
        flavor = FLAVORS[self.options["flavor"]]
        input_name, batch = _image_input(graph)
        transposed = _transpose_gemm_weights(graph)
        unshared = _unshare_weights(graph) if flavor.dedicated_pairs else 0
        float_model = gs.export_onnx(graph)
        with tempfile.TemporaryDirectory(prefix="ncc-quantize-") as work:
            quantized, pow2 = self._quantize(float_model, flavor, input_name, self.calibration.batches(batch), work)
        # ORT's DedicatedQDQPair makes a pair per input a node reads, then points both
        # inputs of Add(t, t) at the first: the second pair is dead, and goes as any dead node
        cleaned = gs.import_onnx(quantized).cleanup(remove_unused_graph_inputs=False)
        quantized = gs.export_onnx(cleaned)
        qdq_invariants.check(quantized, flavor)
        stats = {"flavor": flavor.name, "scheme": flavor.scheme(), **qdq_invariants.facts(quantized), **pow2}
        if transposed:
            stats["gemm_weights_transposed"] = transposed
        if unshared:
            stats["shared_weights_copied"] = unshared
        stats["eval"] = self._evaluate(float_model, quantized, input_name, batch)
        return PassResult(cleaned, changed=True, stats=stats)

    def _evaluate(self, float_model, quantized, input_name, batch) -> dict:
        if self.evaluation is None:
            random = self.calibration.description["format"] == RANDOM
            return {"measured": False, "why": "no evaluation data" + (", calibrated on random input" if random else "")}
        return {"measured": True, **quant_accuracy.compare(float_model, quantized, self.evaluation, input_name, batch)}

    def _quantize(self, float_model, flavor, input_name, batches, work) -> tuple[onnx.ModelProto, dict]:
        source, target, cache = (os.path.join(work, name) for name in ("float.onnx", "int8.onnx", "ranges.json"))
        onnx.save(float_model, source)
        method = self.options["calib_method"]
        quantized = ort_quantize.quantize(source, target, flavor, method,
                                          ort_quantize.BatchReader(input_name, batches), cache)
        if not flavor.power_of_two_scales:
            return quantized, {}
        # again from the cached calibration, with every scale fixed to the power of two chosen
        scales = ort_quantize.activation_scales(quantized)
        exponents = pow2_scales.choose_exponents(float_model, scales, input_name, batches,
                                                 pow2_scales.float_outputs(quantized))
        fixed = {name: 2.0 ** e for kind, chosen in exponents.items() if kind != "outputs" for name, e in chosen.items()}
        overrides = ort_quantize.int8_overrides(fixed, int8_tensors=set(exponents["biases"]))
        quantized = ort_quantize.quantize(source, target, flavor, method, None, cache, overrides)
        pow2_scales.fix_outputs(quantized, exponents["outputs"])  # the quantizer leaves them float
        return quantized, {"pow2_exponents": _exponent_stats(exponents, scales)}


def _image_input(graph) -> tuple[str, int]:
    if len(graph.inputs) != 1 or len(graph.inputs[0].shape or ()) != 4:
        shapes = ", ".join(f"{t.name} {t.shape}" for t in graph.inputs)
        raise CompileError(f"int8 calibration needs one N x C x H x W input; the model takes {shapes}")
    return graph.inputs[0].name, int(graph.inputs[0].shape[0])


def _transpose_gemm_weights(graph) -> int:
    """Gemm(A, B) with transB=0 becomes Gemm(A, B^T, transB=1), so every
    layer's weight has its output channels on axis 0, where per-channel
    quantization (and TensorRT) expects them."""
    count = 0
    for gemm in [n for n in graph.nodes if n.op == "Gemm" and not n.attrs.get("transB", 0)]:
        weight = constant_values(gemm.inputs[1])
        if weight is not None and weight.ndim == 2:
            replace_constant(graph, gemm, 1, np.ascontiguousarray(weight.T), f"{gemm.name}.weight")
            gemm.attrs["transB"] = 1
            count += 1
    return count


def _unshare_weights(graph) -> int:
    """A weight read by several layers (one module applied at several places)
    gets a copy per further layer: ONNX Runtime quantizes an initializer once,
    so its one DequantizeLinear would feed every layer, and the flavour
    promises a pair per consumer."""
    count = 0
    for node in graph.nodes:
        weight = node.inputs[1] if node.op in _WEIGHTED and len(node.inputs) > 1 else None
        if isinstance(weight, gs.Constant) and weight.outputs[0] is not node:
            node.inputs[1] = gs.Constant(unique_name(graph, weight.name), np.array(weight.values))
            count += 1
    return count


def _exponent_stats(exponents, scales) -> dict:
    stats = {kind: [min(chosen.values()), max(chosen.values())] if chosen else []
             for kind, chosen in exponents.items()}
    stats["tightened_activations"] = sum(
        1 for name, e in exponents["activations"].items()
        if e < pow2_scales.covering_exponent(scales[name] * pow2_scales.INT8_MAX))
    return stats

