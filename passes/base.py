"""What a pass is: a name, declared options and guarantees, and `run`.

The pass manager (ncc.compiler.pass_manager) checks the guarantees: it verifies
the graph after every pass and, in --verify mode, compares outputs before and
after every pass that declares `preserves_semantics`.
"""

from dataclasses import dataclass, field

import onnx_graphsurgeon as gs


@dataclass
class PassResult:
    graph: gs.Graph  # the graph the pass produced: the one it was given, changed in place, or a new one
    changed: bool
    stats: dict = field(default_factory=dict)


@dataclass
class PassContext:
    """What a pass may know about the compile beyond the graph."""

    seed: int = 0
    target: str = "host"
    notes: list = field(default_factory=list)  # lines for the manifest


class Pass:
    name: str = ""
    preserves_semantics: bool = False

    def __init__(self, **options):
        self.options = dict(sorted(options.items()))

    def run(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({self.options})"
