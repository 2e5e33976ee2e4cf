"""fold-constants: evaluate every subgraph whose inputs are all constant."""

from onnx_graphsurgeon.logger import G_LOGGER

from ncc.passes.base import Pass, PassResult

G_LOGGER.severity = G_LOGGER.ERROR  # graph-surgeon is chatty at its default level


class FoldConstants(Pass):
    name = "fold-constants"
    preserves_semantics = True

    def run(self, graph, ctx):
        before = len(graph.nodes)
        # graph-surgeon evaluates the constant subgraphs with ONNX Runtime
        graph.fold_constants(fold_shapes=True, error_ok=False).cleanup(remove_unused_graph_inputs=False)
        folded = before - len(graph.nodes)
        return PassResult(graph, changed=folded > 0, stats={"nodes_folded": folded})
