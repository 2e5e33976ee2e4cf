"""Graph passes, one per module, registered here by name."""

from ncc.passes.batchnorm_to_depthwise import BatchNormToDepthwise
from ncc.passes.eliminate_dead_code import EliminateDeadCode
from ncc.passes.fold_batchnorm import FoldBatchNorm
from ncc.passes.fold_constants import FoldConstants
from ncc.passes.hard_activations import HardActivations
from ncc.passes.quantize_int8 import QuantizeInt8
from ncc.passes.scale_channels import ScaleChannels

PASSES = {cls.name: cls for cls in (BatchNormToDepthwise, EliminateDeadCode, FoldBatchNorm, FoldConstants,
                                     HardActivations, QuantizeInt8, ScaleChannels)}
