"""How important each channel of a scalable group is, for choosing which to keep.

A channel's score is the norm of its producers' weights (summed over the
producers of the group), taken as if BatchNorm were already folded: when a
producer's output feeds only a BatchNormalization, its rows are scaled by
|gamma / sqrt(var + eps)| first, so a channel that BatchNorm silences ranks low.
"""

import numpy as np

from ncc.passes.analysis.channel_groups import OUT
from ncc.passes.graph_utils import constant_values, sole_consumer

METHODS = ("l1", "l2", "first")


def channel_importance(graph, groups, method: str = "l1") -> dict:
    """{group id: scores[width]} for every scalable group; higher is kept first."""
    scores = {g.id: np.zeros(g.width) for g in groups.scalable}
    if method == "first":
        return scores  # equal scores: ties go to the lower index
    for axis in groups.axes:
        group = groups.group(axis.segments[0].group)
        if axis.role != OUT or axis.index != 1 or group.id not in scores:
            continue
        rows = np.moveaxis(constant_values(axis.node.inputs[1]).astype(np.float64), axis.axis, 0)
        rows = rows.reshape(rows.shape[0], -1) * _folded_scale(graph, axis.node)[:, None]
        scores[group.id] += np.abs(rows).sum(1) if method == "l1" else np.sqrt((rows ** 2).sum(1))
    return scores


def _folded_scale(graph, node) -> np.ndarray:
    bn = sole_consumer(graph, node.outputs[0])
    channels = node.outputs[0].shape[1]
    if bn is None or bn.op != "BatchNormalization":
        return np.ones(channels)
    gamma, var = constant_values(bn.inputs[1]), constant_values(bn.inputs[4])
    if gamma is None or var is None:
        return np.ones(channels)
    return np.abs(gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + bn.attrs.get("epsilon", 1e-5)))


def keep_order(scores: np.ndarray) -> np.ndarray:
    """Channel indices from most to least important; ties go to the lower index."""
    return np.argsort(-scores, kind="stable")
