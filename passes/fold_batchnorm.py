"""fold-batchnorm: a BatchNormalization that reads only the output of a Conv or
Gemm is folded into that layer's weight and bias. Any other BatchNormalization
stays, and the stats say which and why."""

import numpy as np

from ncc.passes.base import Pass, PassResult
from ncc.passes.graph_utils import (constant_values, is_graph_output, producer, replace_constant,
                                    sole_consumer)


class FoldBatchNorm(Pass):
    name = "fold-batchnorm"
    preserves_semantics = True

    def run(self, graph, ctx):
        folded, kept = 0, {}
        for bn in [n for n in graph.nodes if n.op == "BatchNormalization"]:
            reason = _why_not_foldable(graph, bn)
            if reason:
                kept[bn.name] = reason
                continue
            layer = producer(bn.inputs[0])
            scale, shift = affine(bn)
            (_fold_into_conv if layer.op == "Conv" else _fold_into_gemm)(graph, layer, scale, shift)
            layer.outputs = [bn.outputs[0]]
            bn.inputs.clear()
            bn.outputs.clear()
            folded += 1
        graph.cleanup(remove_unused_graph_inputs=False)
        return PassResult(graph, changed=folded > 0, stats={"folded": folded, "kept": kept})


def _why_not_foldable(graph, bn) -> str | None:
    layer = producer(bn.inputs[0])
    if layer is None or layer.op not in ("Conv", "Gemm"):
        return f"follows {layer.op if layer else 'a graph input'}, not Conv or Gemm"
    if sole_consumer(graph, bn.inputs[0]) is not bn:
        return f"the output of {layer.name} is also used elsewhere"
    problem = inference_problem(graph, bn)
    if problem:
        return problem
    if any(constant_values(t) is None for t in layer.inputs[1:3]):
        return "a weight or statistic is not constant"
    if layer.op == "Gemm" and (layer.attrs.get("transA", 0) or len(bn.inputs[0].shape or []) != 2):
        return "the Gemm output is not [batch, features]"
    return None


def inference_problem(graph, bn) -> str | None:
    """Why `bn` is no fixed per-channel affine map, or None."""
    if bn.attrs.get("training_mode", 0):
        return "training_mode is set"
    if any(out.outputs or is_graph_output(graph, out) for out in bn.outputs[1:]):
        return "its running statistics outputs are used"
    if any(constant_values(t) is None for t in bn.inputs[1:5]):
        return "a weight or statistic is not constant"
    return None


def affine(bn):
    """BN(x) = x * scale + shift, per channel, in float64."""
    gamma, beta, mean, var = (constant_values(t).astype(np.float64) for t in bn.inputs[1:5])
    scale = gamma / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
    return scale, beta - mean * scale


def _fold_into_conv(graph, conv, scale, shift):
    weight = constant_values(conv.inputs[1])
    bias = _bias_or_zeros(conv, 2, weight.shape[0])
    folded = weight.astype(np.float64) * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    replace_constant(graph, conv, 1, folded.astype(weight.dtype), f"{conv.name}.weight")
    replace_constant(graph, conv, 2, (bias * scale + shift).astype(weight.dtype), f"{conv.name}.bias")


def _fold_into_gemm(graph, gemm, scale, shift):
    """Y = alpha * A @ B + beta * C  becomes  A @ B' + C'  with alpha = beta = 1."""
    weight = constant_values(gemm.inputs[1])
    trans_b = gemm.attrs.get("transB", 0)
    features = weight.shape[0] if trans_b else weight.shape[1]
    alpha, beta = gemm.attrs.get("alpha", 1.0), gemm.attrs.get("beta", 1.0)
    per_feature = scale.reshape(-1, 1) if trans_b else scale.reshape(1, -1)
    folded = alpha * weight.astype(np.float64) * per_feature
    bias = beta * _bias_or_zeros(gemm, 2, features)
    replace_constant(graph, gemm, 1, folded.astype(weight.dtype), f"{gemm.name}.weight")
    replace_constant(graph, gemm, 2, (bias * scale + shift).astype(weight.dtype), f"{gemm.name}.bias")
    gemm.attrs["alpha"], gemm.attrs["beta"] = 1.0, 1.0


def _bias_or_zeros(node, index, channels):
    if index < len(node.inputs) and node.inputs[index].name:
        return constant_values(node.inputs[index]).astype(np.float64)
    return np.zeros(channels, dtype=np.float64)
