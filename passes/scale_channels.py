"""scale-channels: give every scalable channel group a new width, uniformly
(`uniform:R`) or by a NeuralScale profile (`neuralscale:R`), and rewrite every
tensor those channels run through.

Shrinking keeps the most important channels in their original order; growing
appends channels whose producer weights are He-initialised and whose consumer
weights are zero, so the grown model computes what the original did. Frozen
groups keep their width; the stats name them and why.
"""

import numpy as np
import onnx_graphsurgeon as gs

from ncc.core.errors import CompileError
from ncc.passes import channel_widths, neuralscale
from ncc.passes.analysis.channel_groups import CHANNEL, IN, OUT, analyze
from ncc.passes.analysis.channel_importance import channel_importance, keep_order
from ncc.passes.base import Pass, PassResult
from ncc.passes.graph_utils import constant_values, replace_constant

METHODS = ("uniform", "neuralscale", "widths")  # widths: given explicitly, e.g. by architecture descent
_NEUTRAL = {("BatchNormalization", 1): 1.0, ("BatchNormalization", 4): 1.0, ("InstanceNormalization", 1): 1.0,
            ("Mul", None): 1.0, ("Div", None): 1.0, ("Pow", None): 1.0}
_AXIS_ORDER = {IN: 0, CHANNEL: 1, OUT: 2}
WEIGHT_BYTES = 4  # float32
MAX_MODEL_BYTES = 2**31  # protobuf's limit for one message: checked before any weight is allocated  # producer rows last: new rows are initialised whole


class ScaleChannels(Pass):
    name = "scale-channels"

    def __init__(self, method: str, ratio: float = 1.0, profile: str | None = None, importance: str = "l1",
                 round_to: int = 1, seed: int = 0, widths: dict | None = None):
        super().__init__(method=method, ratio=ratio, profile=profile, importance=importance,
                         round_to=round_to, seed=seed, **({"widths": widths} if widths is not None else {}))

    def run(self, graph, ctx):
        groups = analyze(graph)
        widths, stats = self._choose_widths(groups)
        rewrite(graph, groups, widths, channel_importance(graph, groups, self.options["importance"]),
                np.random.default_rng(self.options["seed"]))
        changed = any(widths[g.id] != g.width for g in groups.scalable)
        stats["frozen"] = [{"id": g.id, "reasons": g.frozen} for g in groups.groups if g.frozen]
        return PassResult(graph, changed=changed, stats=stats)

    def _choose_widths(self, groups):
        method, ratio, multiple = self.options["method"], self.options["ratio"], self.options["round_to"]
        stats = {"params_before": groups.param_count({})}
        if method == "uniform":
            widths = channel_widths.uniform_widths(groups, ratio)
        elif method == "widths":
            widths = {g.id: int(self.options["widths"][g.id]) for g in groups.scalable
                      if g.id in self.options["widths"]}
            if len(widths) != len(groups.scalable) or len(widths) != len(self.options["widths"]):
                raise CompileError("the widths given do not name exactly the scalable groups of the model")
        else:
            profile = neuralscale.match_profile(neuralscale.load_profile(self.options["profile"]),
                                                [g.id for g in groups.scalable])
            budget = neuralscale.uniform_budget(groups, ratio)
            tau, widths, _ = neuralscale.solve_tau(profile, groups.param_count, budget)
            stats.update(budget=round(budget, 3), tau=tau)
        unrounded = widths
        if multiple > 1:
            widths = channel_widths.round_widths(widths, multiple)
            if method == "neuralscale":
                widths = channel_widths.repair_toward_budget(widths, multiple, stats["budget"], groups.param_count)
        stats["params_after"] = groups.param_count(widths)
        if stats["params_after"] * WEIGHT_BYTES >= MAX_MODEL_BYTES:
            raise CompileError(f"the scaled model would have {stats['params_after']:,} parameters "
                               f"({stats['params_after'] * WEIGHT_BYTES / 2**30:.1f} GiB), over the 2 GiB an ONNX "
                               "model can hold; scale by less or round to a smaller multiple")
        stats["widths"] = [{"id": g.id, "original": g.width, "unrounded": unrounded[g.id], "final": widths[g.id]}
                           for g in groups.scalable]  # topological order
        return widths, stats


def rewrite(graph: gs.Graph, groups, widths: dict, importance: dict, rng):
    """Slice or pad every constant axis; set depthwise group counts, flatten
    shapes and channel cuts' bounds."""
    maps = {g.id: _index_map(g.width, widths[g.id], importance[g.id]) for g in groups.scalable}
    by_operand = {}
    for axis in groups.axes:
        by_operand.setdefault((id(axis.node), axis.index), (axis.node, []))[1].append(axis)
    for node, axes in by_operand.values():
        index = axes[0].index
        values = constant_values(node.inputs[index])
        original = values
        for axis in sorted(axes, key=lambda a: _AXIS_ORDER[a.role]):
            positions = _positions(groups, axis.segments, maps)
            if positions is not None:
                values = _take(values, axis, positions, rng)
        if values is not original:
            replace_constant(graph, node, index, values.astype(original.dtype), f"{node.name}.scaled{index}")
    for node, layout in groups.depthwise:
        node.attrs["group"] = int(groups.features(layout, widths))
    for node, layout in groups.reshapes:
        shape = constant_values(node.inputs[1]).copy()
        if shape[1] != -1:
            shape[1] = int(groups.features(layout, widths))
            replace_constant(graph, node, 1, shape, f"{node.name}.shape")
    for node, position, parts in groups.cuts:
        _rewrite_cut(graph, node, position, [int(groups.features(part, widths)) for part in parts])
    boundary = {id(t) for t in (*graph.inputs, *graph.outputs)}
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Variable) and id(tensor) not in boundary:
            tensor.shape = None  # re-inferred by the pass manager


def _rewrite_cut(graph, node, position, sizes):
    """A channel Slice's bounds or a Split's sizes for the parts' new widths."""
    if node.op == "Split":
        replace_constant(graph, node, 1, np.array(sizes[1:], np.int64), f"{node.name}.split")
        return
    for index, bound in ((1, sizes[0]), (2, sizes[0] + sizes[1])):
        values = constant_values(node.inputs[index]).copy()
        values[position] = bound
        replace_constant(graph, node, index, values, f"{node.name}.bounds{index}")


def _index_map(width, new_width, scores) -> np.ndarray:
    """For each new channel, the old channel it takes over, or -1 for a new one."""
    if new_width <= width:
        return np.sort(keep_order(scores)[:new_width])
    return np.concatenate([np.arange(width), np.full(new_width - width, -1)])


def _positions(groups, layout, maps):
    """Old entry index for every new entry along an axis with this layout (-1:
    new), or None when nothing along it changes."""
    parts, offset, changed = [], 0, False
    for segment in layout:
        group = groups.group(segment.group)
        mapping = maps.get(group.id)
        if mapping is None:
            mapping = np.arange(group.width)
        else:
            changed = changed or len(mapping) != group.width or bool((mapping != np.arange(len(mapping))).any())
        entries = mapping[:, None] * segment.block + np.arange(segment.block)
        parts.append(np.where(mapping[:, None] >= 0, offset + entries, -1).ravel())
        offset += group.width * segment.block
    return np.concatenate(parts) if changed else None


def _take(values, axis, positions, rng):
    if axis.axis >= values.ndim:
        raise CompileError(f"node '{axis.node.name}': operand {axis.index} has no axis {axis.axis}")
    taken = np.take(values, np.maximum(positions, 0), axis=axis.axis)
    new = positions < 0
    if not new.any():
        return taken
    taken = np.moveaxis(taken, axis.axis, 0).copy()
    taken[new] = _fill(axis, taken[new].shape, taken.shape, rng)
    return np.moveaxis(taken, 0, axis.axis)


def _fill(axis, shape, full_shape, rng):
    """Values of new entries: He-initialised producer weights, zero consumer
    weights and biases, neutral per-channel constants."""
    node, index = axis.node, axis.index
    is_weight = index == 1 and node.op in ("Conv", "Gemm", "MatMul")
    if is_weight and axis.role in (OUT, CHANNEL):
        fan_in = max(1, int(np.prod(full_shape[1:])))
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    if axis.role == CHANNEL:
        neutral = _NEUTRAL.get((node.op, index), _NEUTRAL.get((node.op, None), 0.0))
        return np.full(shape, neutral)
    return np.zeros(shape)
