"""eliminate-dead-code: drop Identity and inference-mode Dropout, then every node
and initializer that no graph output depends on."""

import onnx_graphsurgeon as gs

from ncc.passes.base import Pass, PassResult
from ncc.passes.graph_utils import constant_values, is_graph_output, producer

_PASS_THROUGH = {"Identity", "Dropout"}


class EliminateDeadCode(Pass):
    name = "eliminate-dead-code"
    preserves_semantics = True

    def run(self, graph, ctx):
        bypassed = {op: 0 for op in sorted(_PASS_THROUGH)}
        for node in list(graph.nodes):
            if node.op in _PASS_THROUGH and _is_pass_through(node) and _bypass(graph, node):
                bypassed[node.op] += 1
        nodes, constants = len(graph.nodes), _count_constants(graph)
        graph.cleanup(remove_unused_graph_inputs=False)
        removed_nodes = nodes - len(graph.nodes)
        stats = {"identity_removed": bypassed["Identity"], "dropout_removed": bypassed["Dropout"],
                 "dead_nodes_removed": removed_nodes - sum(bypassed.values()),
                 "initializers_removed": constants - _count_constants(graph)}
        return PassResult(graph, changed=removed_nodes > 0 or stats["initializers_removed"] > 0, stats=stats)


def _is_pass_through(node) -> bool:
    if node.op == "Identity":
        return True
    # Dropout is the identity in inference unless training_mode is a constant true
    if len(node.outputs) > 1 and node.outputs[1].outputs:
        return False  # its mask is used
    if len(node.inputs) > 2 and node.inputs[2].name:
        mode = constant_values(node.inputs[2])
        return mode is not None and not bool(mode)
    return True


def _bypass(graph, node) -> bool:
    """Rewire the readers of node's output to its input; keep the graph's output names."""
    source, result = node.inputs[0], node.outputs[0]
    if is_graph_output(graph, result):
        renamable = (isinstance(source, gs.Variable) and producer(source) is not None
                     and not is_graph_output(graph, source))
        if not renamable:
            return False
        for index, out in enumerate(graph.outputs):
            if out is result:
                graph.outputs[index] = source
        result.name, source.name = f"{result.name}__bypassed", result.name
    for consumer in list(result.outputs):
        for index, tensor in enumerate(consumer.inputs):
            if tensor is result:
                consumer.inputs[index] = source
    node.outputs.clear()
    node.inputs.clear()
    return True


def _count_constants(graph) -> int:
    return sum(isinstance(t, gs.Constant) for t in graph.tensors().values())
