"""Small helpers over onnx-graphsurgeon graphs that several passes need."""

import numpy as np
import onnx_graphsurgeon as gs


def producer(tensor: gs.Tensor):
    return tensor.inputs[0] if tensor.inputs else None


def is_graph_output(graph: gs.Graph, tensor: gs.Tensor) -> bool:
    return any(out is tensor for out in graph.outputs)


def sole_consumer(graph: gs.Graph, tensor: gs.Tensor):
    """The one node reading `tensor`, if exactly one reads it and it is not a graph output."""
    if len(tensor.outputs) != 1 or is_graph_output(graph, tensor):
        return None
    return tensor.outputs[0]


def constant_values(tensor: gs.Tensor):
    """The values of a constant operand (initializer or Constant output), else None."""
    if isinstance(tensor, gs.Constant):
        return np.asarray(tensor.values)
    return None


def unique_name(graph: gs.Graph, base: str) -> str:
    taken = set(graph.tensors().keys())
    name, n = base, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def replace_constant(graph: gs.Graph, node: gs.Node, index: int, values: np.ndarray, base_name: str):
    """Give `node` new values at input `index`, in place when no other node shares the constant."""
    old = node.inputs[index] if index < len(node.inputs) else None
    if isinstance(old, gs.Constant) and len(old.outputs) == 1:
        old.values = values
        return old
    new = gs.Constant(unique_name(graph, base_name), values)
    if old is None:
        while len(node.inputs) < index:
            node.inputs.append(gs.Variable.empty())
        node.inputs.append(new)
    else:
        node.inputs[index] = new
    return new
