"""Which ops of the XIR graph the ZCU104's DPU runs, which fall to the ARM
cores, and why: the placement vai_c_xir makes, predicted from the engine
limits in ncc.targets.zcu104.dpu_arch, and the subgraphs that placement cuts the
graph into.

`data`, `const` and `fix` ops are not placed: the input is the user's, and
constants and fix positions fold into the ops that read them. An activation
runs on the DPU only fused into the op that produces it, if that op's engine
fuses it; flatten/reshape only as the layout step before an inner product. A
DPU op needs quantized (fixed) inputs and a fixed output. vai_c_xir has the
last word; where it runs here, its own subgraphs are reported beside these.
"""

import math
from dataclasses import asdict, dataclass

from ncc.targets.zcu104 import dpu_arch
from ncc.targets.zcu104.xir_lowering import XirGraph

NOT_PLACED = ("data", "const", "fix")
RESHAPES = ("flatten", "reshape")
# the activations each producer's engine fuses
FUSES = {"conv2d": dpu_arch.CONV_ACTIVATIONS, "inner-product": dpu_arch.CONV_ACTIVATIONS,
         "depthwise-conv2d": dpu_arch.ALU_ACTIVATIONS, "add": dpu_arch.ELTWISE_ACTIVATIONS,
         "mul": dpu_arch.ELTWISE_ACTIVATIONS}


@dataclass
class Placement:
    op: str
    type: str
    device: str  # "DPU" or "CPU"
    reason: str
    source: str  # the ONNX node


def _within(value, bounds) -> bool:
    return bounds[0] <= value <= bounds[1]


class _Context:
    def __init__(self, graph: XirGraph):
        self.ops = graph.by_name()
        self.consumers = graph.consumers()

    def through_fix(self, name: str) -> str:
        """The op behind a chain of fix ops."""
        while self.ops[name].type == "fix":
            name = self.ops[name].inputs["input"][0]
        return name

    def feature_inputs(self, op) -> list:
        return op.inputs.get("input", [])

    def fixed_output(self, op) -> bool:
        return any(c.type == "fix" for c in self.consumers[op.name])

    def input_channels(self, op) -> int:
        return self.ops[op.inputs["input"][0]].shape[-1]


def _window_problem(op, kernel_bounds, stride_bounds, what, alu: bool) -> str | None:
    if op.attrs.get("global"):
        return None
    kw, kh = op.attrs["kernel"]
    sw, sh = op.attrs["stride"]
    dw, dh = op.attrs.get("dilation", [1, 1])
    left, right, top, bottom = op.attrs["pad"]
    if not (_within(kw, kernel_bounds) and _within(kh, kernel_bounds)):
        return f"{what} kernel {kw}x{kh} outside [{kernel_bounds[0]}, {kernel_bounds[1]}]"
    if not (_within(sw, stride_bounds) and _within(sh, stride_bounds)):
        return f"{what} stride {sw}x{sh} outside [{stride_bounds[0]}, {stride_bounds[1]}]"
    if alu:
        if not (_within(left, dpu_arch.ALU_PAD_LEFT_TOP) and _within(top, dpu_arch.ALU_PAD_LEFT_TOP)
                and _within(right, dpu_arch.ALU_PAD_RIGHT_BOTTOM)
                and _within(bottom, dpu_arch.ALU_PAD_RIGHT_BOTTOM)):
            return f"padding {op.attrs['pad']} beyond the ALU's 0-15 left/top, 0-255 right/bottom"
    elif max(left, right) > (kw - 1) * dw or max(top, bottom) > (kh - 1) * dh:
        return f"padding {op.attrs['pad']} beyond (kernel - 1) * dilation"
    return None


def _conv_problem(op, ctx) -> str | None:
    depthwise = op.type == "depthwise-conv2d"
    if depthwise:
        problem = _window_problem(op, dpu_arch.ALU_KERNEL, dpu_arch.ALU_STRIDE, "depthwise", alu=True)
    else:
        problem = _window_problem(op, dpu_arch.CONV_KERNEL, dpu_arch.CONV_STRIDE, "convolution", alu=False)
    if problem:
        return problem
    kw, kh = op.attrs["kernel"]
    channels, out_channels = ctx.input_channels(op), op.shape[-1]
    if kw * kh * math.ceil(channels / dpu_arch.ZCU104.input_channel_parallel) > dpu_arch.ZCU104.bank_depth:
        return f"kernel_w * kernel_h * ceil({channels} / 16) exceeds the bank depth {dpu_arch.ZCU104.bank_depth}"
    if max(channels, out_channels) > dpu_arch.MAX_CHANNELS:
        return f"{max(channels, out_channels)} channels exceed {dpu_arch.MAX_CHANNELS}"
    dilation = max(op.attrs.get("dilation", [1, 1]))
    if dilation * channels > dpu_arch.MAX_CHANNELS:
        return f"dilation {dilation} x {channels} input channels exceeds {dpu_arch.MAX_CHANNELS}"
    return None


def _op_problem(op, ctx) -> str | None:
    """Why the DPU cannot run `op` (ignoring quantization), or None."""
    if op.type in ("conv2d", "depthwise-conv2d"):
        return _conv_problem(op, ctx)
    if op.type == "inner-product":
        channels = math.prod(ctx.ops[op.inputs["input"][0]].shape[1:])
        if math.ceil(channels / 16) > dpu_arch.ZCU104.bank_depth or op.shape[-1] > dpu_arch.MAX_CHANNELS:
            return f"{channels} -> {op.shape[-1]} features exceed the convolution engine"
        return None
    if op.type in ("maxpool2d", "avgpool2d"):
        return _window_problem(op, dpu_arch.ALU_KERNEL, dpu_arch.ALU_STRIDE, "pooling", alu=True)
    if op.type in ("add", "mul"):
        shapes = {tuple(ctx.ops[name].shape) for name in ctx.feature_inputs(op)}
        if len(shapes) > 1:
            return f"a broadcasting {op.type} (the elementwise engine takes tensors of one shape)"
        if op.shape[-1] > dpu_arch.MAX_CHANNELS:
            return f"{op.shape[-1]} channels exceed {dpu_arch.MAX_CHANNELS}"
        return None
    if op.type in dpu_arch.ALU_STANDALONE:
        return None
    if op.type == "concat":
        return None if op.attrs["axis"] == len(op.shape) - 1 else "a concat along an axis other than channels"
    return f"'{op.type}' is not a DPUCZDX8G operator"


def partition(graph: XirGraph) -> list[Placement]:
    ctx = _Context(graph)
    placements, device = [], {}
    for op in graph.ops:
        if op.type in NOT_PLACED:
            continue
        place, reason = _place(op, ctx, device)
        device[op.name] = place
        placements.append(Placement(op.name, op.type, place, reason, op.source))
    for placement in placements:  # a reshape's place depends on its readers'
        if placement.type in RESHAPES:
            _place_reshape(placement, ctx, device)
    return placements


def _place(op, ctx, device) -> tuple[str, str]:
    if op.type in RESHAPES:
        return "CPU", "pending"
    producer = ctx.ops[op.inputs["input"][0]]
    if op.type in dpu_arch.ACTIVATIONS and (producer.type in FUSES or op.type not in dpu_arch.ALU_STANDALONE):
        return _fusion(op, producer, ctx, device)
    problem = _op_problem(op, ctx)
    if problem:
        return "CPU", problem
    unfixed = [n for n in ctx.feature_inputs(op) if ctx.ops[n].type not in ("fix", *RESHAPES)]
    if unfixed:
        return "CPU", f"its input '{unfixed[0]}' is not quantized (no fix before it)"
    fused = [c for c in ctx.consumers[op.name] if c.type in FUSES.get(op.type, ())]
    if not (ctx.fixed_output(op) or any(ctx.fixed_output(c) for c in fused)):
        return "CPU", "its output is not quantized (no fix after it), so it stays float"
    return "DPU", _dpu_reason(op) + _concat_note(op, ctx) + (f"; {op.note}" if op.note else "")


def _concat_note(op, ctx) -> str:
    """A concat is a memory layout step only when its inputs share a fix point."""
    if op.type != "concat":
        return ""
    points = [ctx.ops[name].attrs["fix_point"] for name in ctx.feature_inputs(op)]
    if len(set(points)) == 1:
        return ""
    return (f"; its inputs' fix points {points} differ, so vai_c_xir must shift them (Vitis AI's quantizer "
            "gives a concat's inputs one position)")


def _place_reshape(placement, ctx, device) -> None:
    """A flatten/reshape folds into the inner products that read it, if they run on the DPU."""
    readers = []
    for consumer in ctx.consumers[placement.op]:
        readers += ctx.consumers[consumer.name] if consumer.type == "fix" else [consumer]
    if readers and all(r.type == "inner-product" and device.get(r.name) == "DPU" for r in readers):
        placement.device, placement.reason = "DPU", "layout only: folded into the inner product that reads it"
    else:
        placement.device = "CPU"
        placement.reason = ("a reshape the DPU does not fold: "
                            + ("its reader runs on the CPU" if readers and all(r.type == "inner-product"
                                                                               for r in readers)
                               else "not before an inner product"))
    device[placement.op] = placement.device


def _dpu_reason(op) -> str:
    engine = {"conv2d": "convolution engine", "depthwise-conv2d": "ALU (depthwise convolution)",
              "inner-product": "convolution engine (as a 1x1 convolution)", "maxpool2d": "ALU (pooling)",
              "avgpool2d": "ALU (pooling)", "add": "elementwise engine", "mul": "elementwise engine",
              "concat": "memory layout (no compute)", "leaky-relu": "ALU (stand-alone leaky-relu)",
              "hard-sigmoid": "ALU (stand-alone hard-sigmoid)"}
    return f"within DPUCZDX8G limits: {engine[op.type]}"


def _fusion(op, producer, ctx, device) -> tuple[str, str]:
    """An activation runs on the DPU fused into the op before it, if that op's engine fuses it."""
    if producer.type not in FUSES:
        return "CPU", f"a stand-alone {op.type} (the DPU runs it only fused into the op before it)"
    if op.type not in FUSES[producer.type]:
        return "CPU", f"{producer.type} fuses {', '.join(FUSES[producer.type])} only, not {op.type}"
    if len(ctx.consumers[producer.name]) != 1:
        return "CPU", f"'{producer.name}' has other readers, so {op.type} cannot fuse into it"
    if device.get(producer.name) != "DPU":
        return "CPU", f"it follows '{producer.name}', which runs on the CPU"
    return "DPU", f"fused into {producer.type} '{producer.name}'"


def groups(graph: XirGraph, placements: list[Placement]) -> list[tuple[str, list[str]]]:
    """Connected groups of DPU ops and of CPU ops (fix ops are transparent),
    as (device, op names in graph order), in the order of their first ops:
    the subgraphs vai_c_xir cuts the graph into, beside the user's input."""
    ctx = _Context(graph)
    device = {p.op: p.device for p in placements}
    parent = {name: name for name in device}

    def find(name):
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for op in graph.ops:
        if op.name not in device:
            continue
        for name in ctx.feature_inputs(op):
            source = ctx.through_fix(name)
            if source in device and device[source] == device[op.name]:
                parent[find(source)] = find(op.name)
    found = {}
    for op in graph.ops:
        if op.name in device:
            found.setdefault(find(op.name), (device[op.name], []))[1].append(op.name)
    return list(found.values())


def subgraphs(graph: XirGraph, placements: list[Placement]) -> dict:
    """How many subgraphs vai_c_xir cuts the graph into, per device."""
    cut = groups(graph, placements)
    counts = {place: sum(1 for device, _ops in cut if device == place) for place in ("DPU", "CPU")}
    inputs = sum(1 for op in graph.ops if op.type == "data")
    return {"dpu": counts["DPU"], "cpu": counts["CPU"], "user": inputs,
            "total": counts["DPU"] + counts["CPU"] + inputs}


def report(graph: XirGraph, placements: list[Placement] | None = None) -> dict:
    placements = partition(graph) if placements is None else placements
    return {"placements": [asdict(p) for p in placements], "subgraphs": subgraphs(graph, placements),
            "dpu_ops": sum(p.device == "DPU" for p in placements),
            "cpu_ops": sum(p.device == "CPU" for p in placements)}
