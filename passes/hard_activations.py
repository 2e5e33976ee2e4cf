"""hard-activations: hard-sigmoid and hard-swish as HardSigmoid (and Mul),
the form the board runtimes take.

The ZCU104 DPU's ALU has a hard-sigmoid, XIR's `hard-sigmoid` being
relu6(x + 3) / 6 (ONNX HardSigmoid with alpha 1/6, beta 1/2), and its
elementwise engine a multiply, but the B4096 has no hard-swish; TensorRT
8.5's ONNX parser has HardSigmoid and no HardSwish. So:

- the hard sigmoids exporters write out, Clip(x / 6 + 0.5, 0, 1) (also with
  Mul by 1/6) and Clip(x + 3, 0, 6) / 6, become HardSigmoid;
- HardSwish(x) becomes Mul(x, HardSigmoid(x)) (what torch.onnx exports
  below opset 14), so the quantizer puts a quantization step on the sigmoid
  and, on the DPU, both halves run on its engines.

Outputs are unchanged (up to float rounding of the rewritten arithmetic).
"""

import onnx_graphsurgeon as gs

from ncc.passes.base import Pass, PassResult
from ncc.passes.graph_utils import constant_values, unique_name

ALPHA, BETA = 1.0 / 6.0, 0.5


class HardActivations(Pass):
    name = "hard-activations"
    preserves_semantics = True

    def run(self, graph, ctx):
        sigmoids = sum(_hard_sigmoid(graph, node) for node in list(graph.nodes) if node.op in ("Clip", "Div"))
        swishes = sum(_split_hard_swish(graph, node) for node in list(graph.nodes) if node.op == "HardSwish")
        graph.cleanup(remove_unused_graph_inputs=False)
        return PassResult(graph, changed=bool(sigmoids or swishes),
                          stats={"hard_sigmoids": sigmoids, "hard_swishes_split": swishes})


def _scalar(tensor):
    values = constant_values(tensor)
    return float(values) if values is not None and values.size == 1 else None


def _close(value, expected) -> bool:
    return value is not None and abs(value - expected) <= 1e-6 * max(1.0, abs(expected))


def _single_producer(tensor, op):
    """The node of type `op` making `tensor`, if `tensor` has no other reader."""
    if isinstance(tensor, gs.Constant) or len(tensor.inputs) != 1 or len(tensor.outputs) != 1:
        return None
    return tensor.inputs[0] if tensor.inputs[0].op == op else None


def _clip_bounds(node):
    return tuple(_scalar(node.inputs[i]) if len(node.inputs) > i and node.inputs[i].name else None for i in (1, 2))


def _scaled_input(node):
    """x for x / 6 or x * (1/6)."""
    if node is None:
        return None
    if node.op == "Div" and _close(_scalar(node.inputs[1]), 6.0):
        return node.inputs[0]
    if node.op == "Mul":
        for a, b in (node.inputs, list(reversed(node.inputs))):
            if _close(_scalar(b), ALPHA) and constant_values(a) is None:
                return a
    return None


def _offset_input(node, offset):
    """x for x + offset (either operand order)."""
    if node is None or node.op != "Add":
        return None
    for a, b in (node.inputs, list(reversed(node.inputs))):
        if _close(_scalar(b), offset) and constant_values(a) is None:
            return a
    return None


def _hard_sigmoid(graph, node) -> int:
    """Rewrite the hard sigmoid ending at `node` (a Clip or a Div) in place."""
    if node.op == "Clip" and _clip_bounds(node) == (0.0, 1.0):
        add = _single_producer(node.inputs[0], "Add")
        scaled = _offset_input(add, BETA)
        source = _scaled_input(_single_producer(scaled, "Div") or _single_producer(scaled, "Mul")) \
            if scaled is not None else None
    elif node.op == "Div" and _close(_scalar(node.inputs[1]), 6.0):
        clip = _single_producer(node.inputs[0], "Clip")
        source = _offset_input(_single_producer(clip.inputs[0], "Add"), 3.0) \
            if clip is not None and _clip_bounds(clip) == (0.0, 6.0) else None
    else:
        return 0
    if source is None:
        return 0
    output = node.outputs[0]
    node.outputs.clear()
    # the Clip (or Div) and the arithmetic before it are left without readers; cleanup drops them
    graph.nodes.append(gs.Node("HardSigmoid", node.name, {"alpha": ALPHA, "beta": BETA}, [source], [output]))
    graph.toposort()
    return 1


def _split_hard_swish(graph, node) -> int:
    source, output = node.inputs[0], node.outputs[0]
    gate = gs.Variable(unique_name(graph, f"{node.name}.hard_sigmoid"), dtype=output.dtype, shape=output.shape)
    node.op, node.attrs = "Mul", {}
    node.inputs.clear()
    node.inputs.extend([source, gate])
    graph.nodes.append(gs.Node("HardSigmoid", f"{node.name}.hard_sigmoid", {"alpha": ALPHA, "beta": BETA},
                               [source], [gate]))
    graph.toposort()
    return 1

