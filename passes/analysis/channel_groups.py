"""Channel dependency groups: the channel dimensions that must keep one width.

Every activation's channel axis (axis 1) is described by a *layout*: a list of
segments, each a group and a block size (1 for an NCHW channel axis, H*W for
the features of a flattened map). Walking the graph in topological order, one
small handler per op type (the `_HANDLERS` table) says how its output layout
follows from its inputs and which constant operand axes follow which
channels:

- producers (Conv, Gemm, MatMul with a constant weight) start a new group;
- channel-wise ops (activations, pooling, BatchNormalization, ...) pass the
  layout through, and their per-channel constants follow it;
- element-wise joins (Add, Mul, ...) merge the groups of their inputs;
- depthwise Conv ties its input and output channels;
- Concat on the channel axis concatenates layouts; Flatten and Reshape to
  [N, C*H*W] multiply block sizes;
- Slice and Split on the channel axis (a ShuffleNet channel split, a GhostNet
  cut back to its width) take the segments between their bounds, when those
  fall on segment boundaries (the bounds are rewritten for the new widths);
  a cut inside a group freezes it. A channel shuffle (Reshape to
  [N, g, C/g, H, W], Transpose, Reshape back) interleaves the channels of
  its groups, which no layout here describes: it freezes them, saying so.

Anything else freezes the groups it touches, with the reason, and so do graph
inputs and outputs. Supporting a new op is one handler in the table.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import onnx_graphsurgeon as gs

from ncc.passes.analysis.cost import parameter_inputs

IN, OUT, CHANNEL = "in", "out", "channel"  # roles of a constant axis: consumer, producer, per-channel


@dataclass(frozen=True)
class Segment:
    group: int  # the group's key; resolve with ChannelGroups.root
    block: int = 1  # consecutive entries per channel


@dataclass
class ChannelAxis:
    """An axis of a node's constant operand whose entries follow channels."""

    node: gs.Node
    index: int  # operand position
    axis: int
    segments: list
    role: str  # IN, OUT or CHANNEL


@dataclass
class ChannelGroup:
    id: str
    width: int
    producers: list  # node names, topological order
    members: list  # activation tensor names
    frozen: list  # reasons; empty when the group can be scaled

    @property
    def scalable(self) -> bool:
        return not self.frozen and bool(self.producers)

    def to_dict(self) -> dict:
        return {"id": self.id, "width": self.width, "scalable": self.scalable,
                "frozen": self.frozen or ([] if self.producers else ["no producing layer"]),
                "producers": self.producers, "members": self.members}


@dataclass
class ChannelGroups:
    groups: list  # ChannelGroup, in topological order of first appearance
    axes: list  # ChannelAxis
    depthwise: list  # (Conv node, layout): their `group` attribute is their channel count
    reshapes: list  # (Reshape node, layout): their constant target shape is [N, features]
    cuts: list  # (Slice or Split node, its channel axis's position, layouts of the consecutive parts)
    parameter_nodes: list = field(repr=False)  # nodes with parameter operands, for param_count
    _root_of: dict = field(repr=False)  # key -> root key
    _group_of_root: dict = field(repr=False)  # root key -> ChannelGroup

    @property
    def scalable(self) -> list:
        return [g for g in self.groups if g.scalable]

    def group(self, key: int) -> ChannelGroup:
        return self._group_of_root[self._root_of[key]]

    def features(self, layout, widths: dict) -> float:
        """Entries along an axis with this layout, at `widths` (group id -> width)."""
        total = 0
        for segment in layout:
            group = self.group(segment.group)
            total += segment.block * widths.get(group.id, group.width)
        return total

    def param_count(self, widths: dict):
        """Parameters (as `ncc inspect` counts them) of the model rescaled to
        `widths`; ids that are missing keep their width. Float widths give the
        un-rounded count NeuralScale's budget uses."""
        by_operand = {}
        for axis in self.axes:
            by_operand.setdefault((id(axis.node), axis.index), []).append(axis)
        total = 0
        for node in self.parameter_nodes:
            for index in parameter_inputs(node.op):
                if index >= len(node.inputs) or not isinstance(node.inputs[index], gs.Constant):
                    continue
                dims = list(node.inputs[index].shape)
                for axis in by_operand.get((id(node), index), []):
                    dims[axis.axis] = self.features(axis.segments, widths)
                total += math.prod(dims)
        return total

    def to_dict(self) -> dict:
        return {"groups": [g.to_dict() for g in self.groups],
                "scalable": len(self.scalable), "frozen": len(self.groups) - len(self.scalable)}


def analyze(graph: gs.Graph) -> ChannelGroups:
    return _Analysis(graph).run()


# --- the walk --------------------------------------------------------------------------

class _Analysis:
    def __init__(self, graph: gs.Graph):
        self.graph = graph
        self.parent = {}  # union-find over group keys
        self.width = {}
        self.reasons = {}
        self.producers = {}  # key -> [(node index, name)]
        self.origin = {}  # key -> name used as id when the group has no producer
        self.members = {}
        self.layout = {}  # tensor name -> list[Segment]
        self.axes, self.depthwise, self.reshapes, self.cuts = [], [], [], []
        self.index = 0

    def run(self) -> ChannelGroups:
        self.graph.toposort()
        for tensor in self.graph.inputs:
            if _rank(tensor) >= 2:
                key = self.new_group(tensor.shape[1], origin=tensor.name)
                self.freeze([Segment(key)], f"graph input '{tensor.name}'")
                self.set_layout(tensor, [Segment(key)])
        for self.index, node in enumerate(self.graph.nodes):
            _HANDLERS.get(node.op, _opaque)(self, node)
        for tensor in self.graph.outputs:
            self.freeze(self.layout.get(tensor.name, []), f"graph output '{tensor.name}'")
        return self.result()

    # groups

    def new_group(self, width, producer=None, origin=None) -> int:
        key = len(self.parent)
        self.parent[key], self.width[key], self.reasons[key] = key, int(width), []
        self.producers[key] = [(self.index, producer.name)] if producer is not None else []
        self.origin[key] = origin or (producer.name if producer is not None else f"group{key}")
        self.members[key] = []
        return key

    def root(self, key) -> int:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a, b):
        a, b = self.root(a), self.root(b)
        if a == b:
            return
        if self.width[a] != self.width[b]:
            self.freeze([Segment(a), Segment(b)], "joined with channels of another width")
            return
        a, b = min(a, b), max(a, b)  # the older group keeps its identity
        self.parent[b] = a
        for table in (self.reasons, self.producers, self.members):
            table[a] = table[a] + table.pop(b)

    def freeze(self, layout, reason):
        for segment in layout:
            reasons = self.reasons[self.root(segment.group)]
            if reason not in reasons:
                reasons.append(reason)

    def set_layout(self, tensor, layout):
        self.layout[tensor.name] = layout
        for segment in layout:
            self.members[self.root(segment.group)].append(tensor.name)

    def layout_of(self, tensor):
        return None if isinstance(tensor, gs.Constant) else self.layout.get(tensor.name)

    def axis(self, node, index, axis, layout, role):
        self.axes.append(ChannelAxis(node, index, axis, layout, role))

    # results

    def result(self) -> ChannelGroups:
        by_root = {}
        for key in sorted(self.parent):
            by_root.setdefault(self.root(key), key)
        groups, of_root, taken = [], {}, set()
        for root in sorted(by_root, key=by_root.get):
            producers = [name for _, name in sorted(self.producers[root])]
            name = producers[0] if producers else self.origin[by_root[root]]
            group_id, n = name, 1
            while group_id in taken:
                group_id, n = f"{name}:{n}", n + 1
            taken.add(group_id)
            of_root[root] = ChannelGroup(group_id, self.width[root], producers,
                                         list(dict.fromkeys(self.members[root])), list(self.reasons[root]))
            groups.append(of_root[root])
        return ChannelGroups(groups, self.axes, self.depthwise, self.reshapes, self.cuts,
                             [n for n in self.graph.nodes if parameter_inputs(n.op)],
                             {key: self.root(key) for key in self.parent}, of_root)


# --- handlers: one per kind of op ------------------------------------------------------

def _opaque(an: _Analysis, node, reason=None):
    """An op whose channel semantics are unknown (or beyond a layout): what it
    reads and makes is frozen, for `reason` when one is given."""
    for tensor in node.inputs:
        an.freeze(an.layout_of(tensor) or [], reason or f"used by {node.op} node '{node.name}'")
    for tensor in node.outputs:
        if _rank(tensor) >= 2 and isinstance(tensor.shape[1], int):
            key = an.new_group(tensor.shape[1], origin=tensor.name)
            an.freeze([Segment(key)], reason or f"produced by {node.op} node '{node.name}'")
            an.set_layout(tensor, [Segment(key)])


def _conv(an: _Analysis, node):
    weight, layout = node.inputs[1], an.layout_of(node.inputs[0])
    if not isinstance(weight, gs.Constant) or _has_variable_operand(node, 2):
        return _opaque(an, node)
    groups = node.attrs.get("group", 1)
    out_channels, in_channels = weight.shape[0], weight.shape[1] * groups
    if groups == 1:
        if layout:
            an.axis(node, 1, 1, layout, IN)
        key = an.new_group(out_channels, producer=node)
        _producer_axes(an, node, key, weight_axis=0, bias_index=2)
    elif groups == in_channels == out_channels and layout:
        an.axis(node, 1, 0, layout, CHANNEL)
        if _operand(node, 2) is not None:
            an.axis(node, 2, 0, layout, CHANNEL)
        an.depthwise.append((node, layout))
        an.set_layout(node.outputs[0], layout)
    else:
        an.freeze(layout or [], f"grouped convolution '{node.name}' (group={groups})")
        key = an.new_group(out_channels, producer=node)
        an.freeze([Segment(key)], f"grouped convolution '{node.name}' (group={groups})")
        an.set_layout(node.outputs[0], [Segment(key)])


def _gemm(an: _Analysis, node):
    trans_b = node.attrs.get("transB", 0)
    if node.attrs.get("transA", 0) or _rank(node.inputs[0]) != 2 or not isinstance(node.inputs[1], gs.Constant) \
            or _has_variable_operand(node, 2):
        return _opaque(an, node)
    _linear(an, node, in_axis=1 if trans_b else 0, out_axis=0 if trans_b else 1)


def _matmul(an: _Analysis, node):
    if _rank(node.inputs[0]) != 2 or not isinstance(node.inputs[1], gs.Constant) or _rank(node.inputs[1]) != 2:
        return _opaque(an, node)
    _linear(an, node, in_axis=0, out_axis=1)


def _linear(an, node, in_axis, out_axis):
    weight, layout = node.inputs[1], an.layout_of(node.inputs[0])
    if layout:
        an.axis(node, 1, in_axis, layout, IN)
    key = an.new_group(weight.shape[out_axis], producer=node)
    _producer_axes(an, node, key, weight_axis=out_axis, bias_index=2)


def _producer_axes(an, node, key, weight_axis, bias_index):
    an.axis(node, 1, weight_axis, [Segment(key)], OUT)
    bias = _operand(node, bias_index)
    if bias is not None and _rank(bias) >= 1 and bias.shape[-1] == an.width[key]:
        an.axis(node, bias_index, _rank(bias) - 1, [Segment(key)], OUT)
    an.set_layout(node.outputs[0], [Segment(key)])


def _batchnorm(an: _Analysis, node):
    layout = an.layout_of(node.inputs[0])
    if not layout or any(not isinstance(t, gs.Constant) for t in node.inputs[1:5]) or \
            any(out.outputs for out in node.outputs[1:]):
        return _opaque(an, node)
    for index in range(1, len(node.inputs)):
        an.axis(node, index, 0, layout, CHANNEL)
    an.set_layout(node.outputs[0], layout)


def _elementwise(an: _Analysis, node):
    """Element-wise ops with broadcasting: activations of equal channel count
    join; a constant is per-channel (sliced with the layout) or broadcast."""
    out = node.outputs[0]
    rank = _rank(out)
    if rank < 2 or not isinstance(out.shape[1], int) or any(o.outputs for o in node.outputs[1:]):
        return _opaque(an, node)
    joined, constants = [], []
    for index, tensor in enumerate(node.inputs):
        if not tensor.name:
            continue
        if isinstance(tensor, gs.Constant):
            constants.append((index, tensor))
            continue
        layout = an.layout_of(tensor)
        if layout is None or _rank(tensor) != rank:
            return _opaque(an, node)
        if tensor.shape[1] == out.shape[1]:
            joined.append(layout)
        elif tensor.shape[1] != 1:
            return _opaque(an, node)
    if not joined:
        return _opaque(an, node)
    layout = joined[0]
    for other in joined[1:]:
        if [s.block for s in other] != [s.block for s in layout] or \
                [an.width[an.root(s.group)] for s in other] != [an.width[an.root(s.group)] for s in layout]:
            return _opaque(an, node, f"{node.op} '{node.name}' joins channels split into different groups on "
                                     "each input (a zero-padded or concatenated operand)")
        for a, b in zip(layout, other):
            an.union(a.group, b.group)
    for index, constant in constants:
        axis = 1 - (rank - _rank(constant))
        if axis >= 0 and constant.shape[axis] != 1:
            if constant.shape[axis] != out.shape[1]:
                return _opaque(an, node)
            an.axis(node, index, axis, layout, CHANNEL)
    an.set_layout(out, layout)


def _pad(an: _Analysis, node):
    pads = _constant(node, 1)
    rank = _rank(node.inputs[0])
    if pads is not None and rank >= 2 and (pads[1] or pads[rank + 1]):
        return _opaque(an, node, f"Pad '{node.name}' adds channels (a zero-padded shortcut)")
    if pads is None or rank < 2 or _operand(node, 3) is not None:
        return _opaque(an, node)
    _pass_through(an, node)


def _pass_through(an: _Analysis, node):
    layout = an.layout_of(node.inputs[0])
    if layout is None or any(o.outputs for o in node.outputs[1:]):
        return _opaque(an, node)
    an.set_layout(node.outputs[0], layout)


def _concat(an: _Analysis, node):
    rank = _rank(node.outputs[0])
    if rank < 2 or node.attrs.get("axis") % rank != 1:
        return _elementwise_concat(an, node)
    layout = []
    for tensor in node.inputs:
        part = an.layout_of(tensor)
        if part is None:
            key = an.new_group(tensor.shape[1], origin=tensor.name)
            an.freeze([Segment(key)], f"constant operand of Concat '{node.name}'")
            part = [Segment(key)]
        layout += part
    an.set_layout(node.outputs[0], layout)


def _elementwise_concat(an: _Analysis, node):
    """A Concat along another axis keeps channels: its inputs' channels join."""
    if any(isinstance(t, gs.Constant) for t in node.inputs):
        return _opaque(an, node)
    _elementwise(an, node)


def _flatten(an: _Analysis, node):
    if node.attrs.get("axis", 1) != 1:
        return _opaque(an, node)
    _to_features(an, node)


def _reshape(an: _Analysis, node):
    source, target = node.inputs[0], node.outputs[0]
    if _constant(node, 1) is None or _rank(source) < 2 or None in (source.shape or [None]):
        return _opaque(an, node)
    if list(target.shape) == list(source.shape):
        return _pass_through(an, node)
    if _rank(target) == 2 and target.shape[0] == source.shape[0]:
        return _to_features(an, node, reshape=True)
    if _is_channel_shuffle(node):
        return _opaque(an, node, f"channel shuffle at Reshape '{node.name}' (Reshape-Transpose-Reshape) "
                                 "interleaves the channels of its groups")
    _opaque(an, node)


def _is_channel_shuffle(node) -> bool:
    """Reshape [N, C, H, W] -> [N, g, C/g, H, W] read by a Transpose that swaps axes 1 and 2."""
    source, target = node.inputs[0].shape, node.outputs[0].shape
    if len(target) != len(source) + 1 or target[0] != source[0] or target[1] * target[2] != source[1] \
            or list(target[3:]) != list(source[2:]):
        return False
    return any(consumer.op == "Transpose" and list(consumer.attrs.get("perm", []))[:3] == [0, 2, 1]
               for consumer in node.outputs[0].outputs)


def _slice(an: _Analysis, node):
    """Slice with constant bounds: spatial slices keep channels; a step-1
    slice of the channel axis keeps the segments between its bounds."""
    layout, rank = an.layout_of(node.inputs[0]), _rank(node.inputs[0])
    starts, ends = _constant(node, 1), _constant(node, 2)
    axes = _constant(node, 3) if _operand(node, 3) is not None else np.arange(len(starts if starts is not None else []))
    steps = _constant(node, 4) if _operand(node, 4) is not None else np.ones(len(axes), np.int64)
    if layout is None or rank < 2 or starts is None or ends is None or axes is None or steps is None:
        return _opaque(an, node)
    axes = [int(a) % rank for a in axes]
    if 1 not in axes:
        return _pass_through(an, node)
    position = axes.index(1)
    if steps[position] != 1:
        return _opaque(an, node, f"Slice '{node.name}' steps through the channels by {steps[position]}")
    width = node.inputs[0].shape[1]
    start, end = (int(np.clip(b if b >= 0 else b + width, 0, width)) for b in (starts[position], ends[position]))
    _cut(an, node, position, layout, [start, max(start, end)], keep=[1])


def _split(an: _Analysis, node):
    layout, rank = an.layout_of(node.inputs[0]), _rank(node.inputs[0])
    if layout is None or rank < 2 or "num_outputs" in node.attrs:
        return _opaque(an, node)
    if node.attrs.get("axis", 0) % rank != 1:
        for out in node.outputs:
            an.set_layout(out, layout)
        return None
    sizes = _constant(node, 1) if _operand(node, 1) is not None else [o.shape[1] for o in node.outputs]
    if sizes is None:
        return _opaque(an, node)
    bounds = [0, *np.cumsum([int(size) for size in sizes])]
    _cut(an, node, 0, layout, bounds, keep=range(1, len(bounds)))


def _cut(an: _Analysis, node, position, layout, bounds, keep):
    """Split `layout` at the channel offsets `bounds`; part i (between bounds
    i-1 and i) goes to the next output for each i in `keep`. Part 0 is what
    lies before the first bound."""
    ends = np.cumsum([an.width[an.root(s.group)] * s.block for s in layout])
    if any(b and b not in ends for b in bounds):
        return _opaque(an, node, f"{node.op} '{node.name}' cuts the channel axis inside a group "
                                 f"(at channels {', '.join(str(b) for b in bounds if b and b not in ends)})")
    parts = [[s for s, end in zip(layout, ends) if low < end <= high] for low, high in zip([0, *bounds], bounds)]
    an.cuts.append((node, position, parts))
    for out, index in zip(node.outputs, keep):
        an.set_layout(out, parts[index])


def _to_features(an, node, reshape=False):
    source = node.inputs[0]
    layout = an.layout_of(source)
    if layout is None or any(not isinstance(d, int) for d in source.shape[2:]):
        return _opaque(an, node)
    block = math.prod(source.shape[2:])
    features = [Segment(s.group, s.block * block) for s in layout]
    if reshape:
        an.reshapes.append((node, features))
    an.set_layout(node.outputs[0], features)


def _reduce(an: _Analysis, node):
    """Reductions over spatial axes keep the channel axis where it was."""
    axes = node.attrs.get("axes")
    if axes is None:
        axes = _constant(node, 1)
    rank = _rank(node.inputs[0])
    if axes is None or rank < 2 or {a % rank for a in np.atleast_1d(axes)} & {0, 1}:
        return _opaque(an, node)
    _pass_through(an, node)


def _squeeze(an: _Analysis, node):
    axes = _constant(node, 1)
    rank = max(_rank(node.inputs[0]), _rank(node.outputs[0]))
    if axes is None or rank < 2 or {a % rank for a in np.atleast_1d(axes)} & {0, 1}:
        return _opaque(an, node)
    _pass_through(an, node)


def _resize(an: _Analysis, node):
    scales = _constant(node, 2)
    if scales is None or scales.size < 2 or scales[1] != 1 or _operand(node, 3) is not None:
        return _opaque(an, node)
    _pass_through(an, node)


_CHANNELWISE = ("Relu LeakyRelu PRelu Sigmoid HardSigmoid HardSwish Tanh Clip Elu Selu Celu Softplus Softsign "
                "Mish Gelu Erf Abs Neg Exp Log Sqrt Reciprocal Floor Ceil Round Sign ThresholdedRelu "
                "Add Sub Mul Div Max Min Sum Mean Pow").split()
_PASS_THROUGH = ("Identity Dropout Cast MaxPool AveragePool GlobalAveragePool GlobalMaxPool LpPool "
                 "GlobalLpPool Softmax LogSoftmax").split()
_REDUCTIONS = "ReduceMean ReduceMax ReduceMin ReduceSum ReduceL1 ReduceL2 ReduceProd".split()

_HANDLERS = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "BatchNormalization": _batchnorm,
    "Pad": _pad, "Concat": _concat, "Flatten": _flatten, "Reshape": _reshape, "Resize": _resize,
    "Squeeze": _squeeze, "Unsqueeze": _squeeze, "Slice": _slice, "Split": _split,
    **{op: _elementwise for op in _CHANNELWISE},
    **{op: _pass_through for op in _PASS_THROUGH},
    **{op: _reduce for op in _REDUCTIONS},
}


# --- operand helpers -------------------------------------------------------------------

def _rank(tensor) -> int:
    return len(tensor.shape) if tensor is not None and tensor.shape is not None else -1


def _operand(node, index):
    if index < len(node.inputs) and node.inputs[index].name:
        return node.inputs[index]
    return None


def _constant(node, index):
    operand = _operand(node, index)
    return np.asarray(operand.values) if isinstance(operand, gs.Constant) else None


def _has_variable_operand(node, index) -> bool:
    operand = _operand(node, index)
    return operand is not None and not isinstance(operand, gs.Constant)
