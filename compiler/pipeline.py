"""Assembling the pass list of one compile from its options and target, in
named phases whose order is fixed:

    simplify  fold constants, drop dead code
    scale     rescale channels (BatchNorm still present, so its statistics are
              sliced with the channels and the parameter count is the one
              NeuralScale uses)
    fold      fold BatchNorm into the layers
    quantize  int8
    target    whatever the target needs last

A target adds its own passes to any phase (`Target.passes`), e.g. zcu104 turns
the BatchNorms no layer absorbs into depthwise convolutions in `fold`.
"""

import onnx
import onnx_graphsurgeon as gs

from ncc.core.errors import UsageError
from ncc.compiler.pass_manager import PassManager
from ncc.passes import EliminateDeadCode, FoldBatchNorm, FoldConstants, QuantizeInt8, ScaleChannels
from ncc.passes.analysis.channel_groups import ChannelGroups, analyze
from ncc.passes.base import PassContext


def simplify_passes() -> list:
    return [FoldConstants(), EliminateDeadCode()]


PHASES = ("simplify", "scale", "fold", "quantize", "target")


def build_pipeline(options, target, quant_data=None) -> list:
    """The passes of every phase in order. `quant_data` is (calibration,
    evaluation or None) datasets when options.quantize is set."""
    phases = build_phases(options, target, quant_data)
    return [pass_ for phase in PHASES for pass_ in phases[phase]]


def build_phases(options, target, quant_data=None) -> dict:
    phases = {"simplify": simplify_passes(), "scale": [], "fold": [FoldBatchNorm()], "quantize": [], "target": []}
    if options.profile and (options.scale or ("",))[0] != "neuralscale":
        raise UsageError("--profile is used only with --scale neuralscale:R")
    if options.scale:
        method, ratio = options.scale
        if method == "neuralscale" and not options.profile:
            raise UsageError("--scale neuralscale:R needs --profile P.json")
        round_to = target.channel_multiple if options.round_to == "auto" else int(options.round_to)
        phases["scale"].append(ScaleChannels(method, ratio, profile=options.profile, importance=options.importance,
                                             round_to=round_to, seed=options.seed))

    if options.quantize:
        if options.quantize != "int8":
            raise UsageError(f"unknown --quantize '{options.quantize}' (ncc quantizes to int8)")
        calibration, evaluation = quant_data
        flavor = target.quant_flavor if options.quant_flavor == "auto" else options.quant_flavor
        phases["quantize"].append(QuantizeInt8(calibration, flavor, options.calib_method, evaluation,
                                               seed=options.seed))
    for phase, passes in target.passes(options).items():
        if phase not in phases:
            raise ValueError(f"target {target.name} adds passes to an unknown phase '{phase}' (phases: {PHASES})")
        phases[phase] += passes
    return phases


def channel_groups(model: onnx.ModelProto) -> tuple[onnx.ModelProto, ChannelGroups]:
    """The channel groups of a loaded model, as the scaling pass sees them."""
    simplified = PassManager(simplify_passes()).run(model, PassContext())
    return simplified, analyze(gs.import_onnx(simplified))
