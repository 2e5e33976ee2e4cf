"""Assembling the pass list of one compile from its options and target.

The order is fixed: simplify, then rescale channels (BatchNorm still present, so
its statistics are sliced with the channels and the parameter count is the one
NeuralScale uses), then fold BatchNorm into the layers (and, for a target
without BatchNorm, make the rest depthwise convolutions), then quantize, then
whatever the target needs.
"""

import onnx
import onnx_graphsurgeon as gs

from ncc.compiler.errors import UsageError
from ncc.compiler.pass_manager import PassManager
from ncc.passes import (BatchNormToDepthwise, EliminateDeadCode, FoldBatchNorm, FoldConstants, QuantizeInt8,
                        ScaleChannels)
from ncc.passes.analysis.channel_groups import ChannelGroups, analyze
from ncc.passes.base import PassContext


def simplify_passes() -> list:
    return [FoldConstants(), EliminateDeadCode()]


def build_pipeline(options, target, quant_data=None) -> list:
    """`quant_data` is (calibration, evaluation or None) datasets when options.quantize is set."""
    passes = simplify_passes()
    if options.scale:
        method, ratio = options.scale
        if method == "neuralscale" and not options.profile:
            raise UsageError("--scale neuralscale:R needs --profile P.json")
        round_to = target.channel_multiple if options.round_to == "auto" else int(options.round_to)
        passes.append(ScaleChannels(method, ratio, profile=options.profile, importance=options.importance,
                                    round_to=round_to, seed=options.seed))
    elif options.profile:
        raise UsageError("--profile is used only with --scale neuralscale:R")
    passes.append(FoldBatchNorm())
    if target.batchnorm_as_depthwise:
        passes.append(BatchNormToDepthwise())
    if options.quantize:
        if options.quantize != "int8":
            raise UsageError(f"unknown --quantize '{options.quantize}' (ncc quantizes to int8)")
        calibration, evaluation = quant_data
        flavor = target.quant_flavor if options.quant_flavor == "auto" else options.quant_flavor
        passes.append(QuantizeInt8(calibration, flavor, options.calib_method, evaluation, seed=options.seed))
    return passes + target.passes(options)


def channel_groups(model: onnx.ModelProto) -> tuple[onnx.ModelProto, ChannelGroups]:
    """The channel groups of a loaded model, as the scaling pass sees them."""
    simplified = PassManager(simplify_passes()).run(model, PassContext())
    return simplified, analyze(gs.import_onnx(simplified))
