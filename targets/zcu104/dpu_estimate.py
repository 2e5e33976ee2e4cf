"""An analytical latency estimate for the DPU part of a graph, from the
B4096 core's engines (ncc.targets.zcu104.dpu_arch). The convolution engine computes
8 output pixels of a row x 16 input channels x 16 output channels per cycle:

    cycles = H_out * ceil(W_out / 8) * ceil(C_in / 16) * ceil(C_out / 16) * k_h * k_w

so channel counts that are not multiples of 16 and rows narrower than 8
pixels leave lanes idle; utilisation = MACs / (cycles * 2048). A layer whose
C_in x k_w fits the engine's channel augmentation (32) has its kernel columns
packed into channels: ceil(C_in * k_w / 16) * k_h replaces
ceil(C_in / 16) * k_h * k_w (ncc's reading of the target's
channel_augmentation). Depthwise convolution and pooling run on the ALU, 4
pixels x 16 channels per cycle and kernel tap, so a depthwise layer uses at
most 64 of the 2048 MAC lanes; adds and multiplies on the elementwise
engine, 4 pixels x 16 channels per operand; a LeakyReLU the ALU runs on its
own, one pass. Fused activations, concat and flatten cost nothing.

It is a compute-only estimate for one image on one core, layers one after
another: it leaves out DDR traffic, weight loading and instruction overhead
(and the overlap of engines in vai_c_xir's schedule), which the board's
measurement includes. The ZCU104's second core doubles throughput, not the
latency of one image.
"""

import math

from ncc.targets.zcu104.dpu_arch import ALU_STANDALONE, ZCU104, DpuArch
from ncc.targets.zcu104.xir_lowering import XirGraph


def _rows_and_width(shape) -> tuple[int, int]:
    """(H, W) of an NHWC output; (1, 1) of an [N, C] one."""
    return (shape[1], shape[2]) if len(shape) == 4 else (1, 1)


def layer_cost(op, ops: dict, arch: DpuArch = ZCU104) -> dict | None:
    """{cycles, macs, utilisation, ...} of one DPU op, or None for ops that cost nothing."""
    height, width = _rows_and_width(op.shape)
    out_channels = op.shape[-1]
    blocks = math.ceil(width / arch.pixel_parallel)
    if op.type in ("conv2d", "inner-product"):
        source = ops[op.inputs["input"][0]]
        in_channels = source.shape[-1] if op.type == "conv2d" else math.prod(source.shape[1:])
        kw, kh = op.attrs.get("kernel", [1, 1])
        taps = math.ceil(in_channels / arch.input_channel_parallel) * kh * kw
        augmented = kw > 1 and in_channels * kw <= arch.channel_augmentation
        if augmented:
            taps = math.ceil(in_channels * kw / arch.input_channel_parallel) * kh
        cycles = height * blocks * taps * math.ceil(out_channels / arch.output_channel_parallel)
        macs = height * width * out_channels * in_channels * kh * kw
        return {"engine": "conv", "cycles": cycles, "macs": macs, "utilisation": macs / (cycles * arch.macs_per_cycle),
                "input_channels": in_channels, "output_channels": out_channels, "output_width": width,
                "channel_augmentation": augmented}
    alu_blocks = math.ceil(width / arch.alu_pixel_parallel)
    if op.type in ("depthwise-conv2d", "maxpool2d", "avgpool2d"):
        kw, kh = op.attrs["kernel"]
        cycles = height * alu_blocks * math.ceil(out_channels / arch.alu_channel_parallel) * kh * kw
        macs = height * width * out_channels * kh * kw if op.type == "depthwise-conv2d" else 0
        return {"engine": "alu", "cycles": cycles, "macs": macs,
                "utilisation": macs / (cycles * arch.macs_per_cycle) if macs else None,
                "output_channels": out_channels, "output_width": width}
    if op.type in ALU_STANDALONE:  # an activation the ALU runs between fix ops
        cycles = height * alu_blocks * math.ceil(out_channels / arch.alu_channel_parallel)
        return {"engine": "alu", "cycles": cycles, "macs": 0, "utilisation": None,
                "output_channels": out_channels, "output_width": width}
    if op.type in ("add", "mul"):
        cycles = (height * math.ceil(width / arch.eltwise_pixel_parallel)
                  * math.ceil(out_channels / arch.eltwise_channel_parallel) * len(op.inputs["input"]))
        return {"engine": "eltwise", "cycles": cycles, "macs": 0, "utilisation": None,
                "output_channels": out_channels, "output_width": width}
    return None


def estimate(graph: XirGraph, placements: list, arch: DpuArch = ZCU104) -> dict:
    """Per-layer cycles and utilisation of the DPU ops, and the total."""
    ops = graph.by_name()
    layers, cycles, macs = [], 0, 0
    for placement in placements:
        if placement.device != "DPU" or placement.reason.startswith("fused into"):
            continue
        cost = layer_cost(ops[placement.op], ops, arch)
        if cost is None:
            continue
        cycles += cost["cycles"]
        macs += cost["macs"]
        layers.append({"op": placement.op, "type": placement.type, **cost,
                       "latency_us": cost["cycles"] / arch.clock_mhz})
    latency_ms = cycles / (arch.clock_mhz * 1e3)
    return {"model": "compute only, layers in sequence: H * ceil(W/8) * ceil(Cin/16) * ceil(Cout/16) * kh * kw "
                     f"cycles per convolution at {arch.clock_mhz:g} MHz, one image on one core",
            "cycles": cycles, "macs": macs, "latency_ms": latency_ms,
            "throughput_fps_all_cores": arch.cores * 1e3 / latency_ms if latency_ms else None,
            "utilisation": macs / (cycles * arch.macs_per_cycle) if cycles else None,
            "layers": layers}
