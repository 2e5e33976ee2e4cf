"""batchnorm-to-depthwise: a BatchNormalization that fold-batchnorm had to keep
(one no Conv or Gemm precedes, as in pre-activation networks) becomes the
per-channel affine map it computes, a 1x1 depthwise convolution, for targets
whose hardware has no BatchNorm (the ZCU104's DPU, which runs it on its
depthwise engine, as Vitis AI's quantizer does)."""

import numpy as np
import onnx_graphsurgeon as gs

from ncc.passes.base import Pass, PassResult
from ncc.passes.fold_batchnorm import affine, inference_problem
from ncc.passes.graph_utils import constant_values, unique_name


class BatchNormToDepthwise(Pass):
    name = "batchnorm-to-depthwise"
    preserves_semantics = True

    def run(self, graph, ctx):
        converted, kept = 0, {}
        for bn in [n for n in graph.nodes if n.op == "BatchNormalization"]:
            reason = _why_not(graph, bn)
            if reason:
                kept[bn.name] = reason
                continue
            scale, shift = affine(bn)
            dtype = constant_values(bn.inputs[1]).dtype
            channels = scale.size
            weight = gs.Constant(unique_name(graph, f"{bn.name}.weight"),
                                 scale.reshape(channels, 1, 1, 1).astype(dtype))
            bias = gs.Constant(unique_name(graph, f"{bn.name}.bias"), shift.astype(dtype))
            source, result = bn.inputs[0], bn.outputs[0]
            bn.inputs.clear()
            bn.outputs.clear()
            bn.op, bn.attrs = "Conv", {"group": channels, "kernel_shape": [1, 1]}
            bn.inputs.extend([source, weight, bias])
            bn.outputs.append(result)
            converted += 1
        graph.cleanup(remove_unused_graph_inputs=False)
        return PassResult(graph, changed=converted > 0, stats={"converted": converted, "kept": kept})


def _why_not(graph, bn) -> str | None:
    if len(bn.inputs[0].shape or ()) != 4:
        return "its input is not N x C x H x W"
    return inference_problem(graph, bn)
