"""The ZCU104's DPU as facts: the Vitis AI reference design (DPU TRD) puts two
DPUCZDX8G B4096 cores at 300 MHz in the ZCU104's programmable logic; Vitis AI
2.5 names that configuration DPUCZDX8G_ISA1_B4096 and vai_c_xir reads it from
an arch.json holding only that name (the docker image's
/opt/vitis_ai/compiler/arch/DPUCZDX8G/ZCU104/arch.json).

The engine figures below are those of the target description Vitis AI 2.5's
target factory holds for DPUCZDX8G_ISA1_B4096 (libtarget-factory 2.5, which
vai_c_xir consults; tests/targets/test_zcu104.py checks them against it where
it is installed): fingerprint 0x101000016010407; a convolution engine of
8 pixels x 16 input x 16 output channels per cycle with channel augmentation
up to 32, kernels 1-16, strides 1-8, fused ReLU, LeakyReLU, ReLU6; an ALU
engine (depthwise convolution, pooling, LeakyReLU, hard sigmoid) of 4 pixels x 16 channels, kernels
and strides 1-256, pads left/top 0-15 and right/bottom 0-255, fused ReLU and
ReLU6; an elementwise engine (add, multiply) of 4 pixels x 16 channels with
fused ReLU; weight banks 2048 deep. UG1414's operator table adds for the
convolution engine: padding up to (kernel - 1) x dilation, kernel_w x
kernel_h x ceil(C_in / 16) <= the bank depth, and at most 256 x 16 channels.
"""

import json
from dataclasses import dataclass

TARGET = "DPUCZDX8G_ISA1_B4096"
FINGERPRINT = 0x101000016010407
BOARD = "ZCU104"
VITIS_AI = "2.5"


@dataclass(frozen=True)
class DpuArch:
    target: str = TARGET
    cores: int = 2
    clock_mhz: float = 300.0
    pixel_parallel: int = 8  # convolution engine
    input_channel_parallel: int = 16
    output_channel_parallel: int = 16
    channel_augmentation: int = 32  # a layer with C_in x kernel_w <= 32 packs kernel columns into channels
    alu_pixel_parallel: int = 4  # depthwise convolution and pooling
    alu_channel_parallel: int = 16
    eltwise_pixel_parallel: int = 4
    eltwise_channel_parallel: int = 16
    bank_depth: int = 2048

    @property
    def macs_per_cycle(self) -> int:
        return self.pixel_parallel * self.input_channel_parallel * self.output_channel_parallel

    @property
    def peak_gops(self) -> float:
        """Peak of one core, in 10^9 operations (2 per MAC) per second."""
        return 2 * self.macs_per_cycle * self.clock_mhz / 1e3

    def arch_json(self) -> str:
        return json.dumps({"target": self.target}, indent=2) + "\n"


ZCU104 = DpuArch()

# (low, high) inclusive ranges
CONV_KERNEL = (1, 16)
CONV_STRIDE = (1, 8)
ALU_KERNEL = (1, 256)  # depthwise convolution, max and average pooling
ALU_STRIDE = (1, 256)
ALU_PAD_LEFT_TOP = (0, 15)
ALU_PAD_RIGHT_BOTTOM = (0, 255)
MAX_CHANNELS = 256 * 16  # input/output channels of the convolution engine

# activations each engine fuses (XIR op types)
CONV_ACTIVATIONS = ("relu", "leaky-relu", "relu6")
ALU_ACTIVATIONS = ("relu", "relu6")
ELTWISE_ACTIVATIONS = ("relu",)
ACTIVATIONS = ("relu", "leaky-relu", "relu6", "hard-sigmoid", "hard-swish")
ALU_STANDALONE = ("leaky-relu", "hard-sigmoid")  # the ALU's leaky_relu and hsigmoid: also between fix ops
