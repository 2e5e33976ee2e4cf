"""How far the int8 model is from the float one on held-out data.

Both run in ONNX Runtime on the CPU with its graph optimisations, so the int8
figures are those of the fused integer kernels the host executes. Top-1
accuracy needs labels; top-1 agreement (how often both models pick the same
class) and the output SQNR (signal-to-quantization-noise ratio of the int8
outputs against the float ones) do not.
"""

import math

import numpy as np
import onnx

from ncc.core.datasets import Dataset
from ncc.passes import ort_quantize


def compare(float_model: onnx.ModelProto, int8_model: onnx.ModelProto, data: Dataset, input_name: str,
            batch: int) -> dict:
    batches = data.batches(batch)
    reference = _scores(float_model, input_name, batches)
    quantized = _scores(int8_model, input_name, batches)
    noise = float(np.sum((reference - quantized) ** 2))
    signal = float(np.sum(reference ** 2))
    figures = {"samples": len(reference),
               "top1_agreement_pct": _pct(np.mean(reference.argmax(1) == quantized.argmax(1))),
               "sqnr_db": round(10 * math.log10(signal / noise), 2) if noise > 0 and signal > 0 else None}
    if data.y is not None:
        labels = data.y[:len(reference)]
        figures["top1_fp32_pct"] = _pct(np.mean(reference.argmax(1) == labels))
        figures["top1_int8_pct"] = _pct(np.mean(quantized.argmax(1) == labels))
    return figures


def _scores(model, input_name, batches) -> np.ndarray:
    """The first output of every batch, one row per sample, in float64."""
    return np.concatenate([np.asarray(outputs[0], dtype=np.float64).reshape(len(batch), -1)
                           for batch, outputs in zip(batches, ort_quantize.run_batches(model, input_name, batches))])


def _pct(fraction) -> float:
    return round(100.0 * float(fraction), 2)
