"""Folding the shape subgraphs exporters leave, so shape inference can resolve them.

torch.onnx traces `x.size()` into Shape-Gather-Unsqueeze-Concat chains that
feed Reshape targets, Slice bounds and ConstantOfShape (a zero-padded
shortcut, a channel shuffle, a `view(x.size(0), -1)`). ONNX's shape inference
propagates little of that, but with the input shape fixed every such chain is
a constant: onnx-graphsurgeon folds it (Shape of a tensor whose shape is
known, then everything computed only from constants, evaluated by ONNX
Runtime), which lets the next inference resolve more shapes, so the two
alternate until nothing folds.
"""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.logger import G_LOGGER

import ncc.core.numerics  # noqa: F401  (quiets ONNX Runtime's logger, which folding's sessions use)

G_LOGGER.severity = G_LOGGER.ERROR  # graph-surgeon is chatty at its default level

# What folds here: Shape and Size of tensors whose shape is known, and every
# node computing integers or booleans (shapes, indices, pads) or a
# ConstantOfShape, from constants. Float arithmetic on weights (a weight's
# DequantizeLinear in a QDQ model, a scaled constant) is the fold-constants
# pass's, so the manifest records it.
ALWAYS_FOLDED = frozenset({"Shape", "Size", "ConstantOfShape"})
MAX_ROUNDS = 16  # each round resolves at least one more level of shapes; real exports need 2-4


def needs_folding(model: onnx.ModelProto) -> bool:
    """A Shape-like node, or a node output whose shape inference left open."""
    if any(node.op_type in ALWAYS_FOLDED for node in model.graph.node):
        return True
    return first_dynamic_tensor(model) is not None


def fold_shapes(model: onnx.ModelProto, infer) -> onnx.ModelProto:
    """Alternate graph-surgeon's folding of shape subgraphs and `infer(model)`
    (shape inference) on a model whose shapes are inferred, until the node
    count stops falling."""
    for _ in range(MAX_ROUNDS):
        before = len(model.graph.node)
        graph = gs.import_onnx(model)
        graph.toposort()
        graph.fold_constants(fold_shapes=True, error_ok=True, partitioning="basic",
                             should_exclude_node=lambda node: not _computes_shapes(node))
        graph.cleanup(remove_unused_graph_inputs=False)
        model.graph.CopyFrom(gs.export_onnx(graph, do_type_check=False).graph)
        model = infer(model)
        if len(model.graph.node) >= before:
            break
    return model


def _computes_shapes(node: gs.Node) -> bool:
    return node.op in ALWAYS_FOLDED or all(
        out.dtype is not None and np.issubdtype(np.dtype(out.dtype), np.integer) or out.dtype == np.bool_
        for out in node.outputs)


def is_static(value: onnx.ValueInfoProto) -> bool:
    tensor = value.type.tensor_type
    return (value.type.HasField("tensor_type") and tensor.elem_type != 0 and tensor.HasField("shape")
            and all(dim.HasField("dim_value") for dim in tensor.shape.dim))


def first_dynamic_tensor(model: onnx.ModelProto):
    """(tensor name, producing node) of the first node output, in graph order,
    without a static shape and element type; None when every one has them."""
    static = {value.name for value in (*model.graph.value_info, *model.graph.output) if is_static(value)}
    for node in model.graph.node:
        for out in node.output:
            if out and out not in static:
                return out, node
    return None
