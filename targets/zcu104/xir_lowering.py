"""The dpu-flavour int8 ONNX model as the XIR graph Vitis AI's quantizer hands
to vai_c_xir (its `*_int.xmodel`): float32 tensors in NHWC, a `fix` op after
every quantized tensor (fix_point = -log2(scale), bit_width 8, signed,
round_mode DPU_ROUND), weights and biases as float32 `const` ops holding the
dequantized int8 values (exactly on their fix-point grid) behind their own
`fix`. Op and attribute names are those of libxir 2.5's built-in op
definitions (`conv2d` kernel/stride/dilation as {w, h}, pad as {left, right,
top, bottom}, pad_mode FLOOR as PyTorch exports; weights OHWI, depthwise
weights [1, kh, kw, C]).

XIR 2.5's conv2d has no group: a grouped convolution other than depthwise
(ResNeXt's) becomes one conv2d whose weight is block-diagonal (zero between
groups), which computes the same, exactly in int8, and on the B4096's 16 x 16
channel array costs ceil(C_in / 16) x ceil(C_out / 16) passes per pixel block:
fewer than per-group convolutions while groups are under 16 channels wide, up
to `group` times the MACs when they are wider. HardSigmoid with alpha 1/6 and
beta 1/2 is XIR's hard-sigmoid (the hard-activations pass brings exporters'
forms to it). What ONNX has and XIR cannot express (auto_pad, transposes...)
is refused naming the node; what XIR expresses but the DPU does not run is
left to ncc.targets.zcu104.dpu_partition.
"""

import math
import re
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from ncc.core.errors import CompileError
from ncc.targets.base import listing

NCHW_TO_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}
ELEMENTWISE = {"Add": "add", "Sub": "sub", "Mul": "mul"}


@dataclass
class XirOp:
    name: str
    type: str
    shape: list  # of the output tensor (NHWC for 4-D)
    attrs: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)  # arg name -> [op names]
    source: str = ""  # the ONNX node it comes from
    data: np.ndarray | None = None  # const ops: the float32 values
    note: str = ""  # how the ONNX node became this op, when a reader of the DPU report needs to know


@dataclass
class XirGraph:
    name: str
    ops: list  # topologically sorted

    def by_name(self) -> dict:
        return {op.name: op for op in self.ops}

    def consumers(self) -> dict:
        found = {op.name: [] for op in self.ops}
        for op in self.ops:
            for names in op.inputs.values():
                for name in names:
                    found[name].append(op)
        return found


def fix_point(scale: float) -> int:
    """-log2(scale) of a power-of-two scale (frexp gives scale = 0.5 * 2**exponent)."""
    mantissa, exponent = math.frexp(float(scale))
    assert mantissa == 0.5, scale  # check_flavour refused any other
    return 1 - exponent


def attributes(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def block_diagonal(w: np.ndarray, group: int) -> np.ndarray:
    """A grouped convolution's OIHW weight as the dense one computing the same:
    output channel o reads only its group's input channels, zero elsewhere."""
    if group == 1:
        return w
    out_channels, per_group = w.shape[:2]
    dense = np.zeros((out_channels, per_group * group, *w.shape[2:]), w.dtype)
    for o in range(out_channels):
        g = o // (out_channels // group)
        dense[o, g * per_group:(g + 1) * per_group] = w[o]
    return dense


def nhwc(shape: list) -> list:
    return [shape[0], shape[2], shape[3], shape[1]] if len(shape) == 4 else list(shape)


class _Lowering:
    def __init__(self, model: onnx.ModelProto):
        self.model = shape_inference.infer_shapes(model)
        graph = self.model.graph
        self.constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.shapes = {}
        for value in [*graph.input, *graph.value_info, *graph.output]:
            dims = value.type.tensor_type.shape.dim
            self.shapes[value.name] = [d.dim_value for d in dims]
        self.ops, self.names = [], set()
        self.op_of = {}  # ONNX tensor -> XIR op name
        self.pending_q = {}  # QuantizeLinear output -> the float tensor it quantizes
        self.quantized_consts = {}  # DequantizeLinear output of a constant -> (int8 values, scale)
        self.fixes = {}  # (XIR op, fix_point) -> fix op name
        self.flattened = {}  # ONNX tensor -> (C, H, W) it was flattened from
        self.problems = []

    # -- helpers ---------------------------------------------------------------
    def unique(self, name: str) -> str:
        base = re.sub(r"[^0-9A-Za-z]", "_", name).strip("_") or "op"
        candidate, index = base, 1
        while candidate in self.names:
            index += 1
            candidate = f"{base}_{index}"
        self.names.add(candidate)
        return candidate

    def add(self, op: XirOp) -> str:
        self.ops.append(op)
        return op.name

    def fix(self, producer: str, point: int, shape: list, source: str) -> str:
        key = (producer, point)
        if key not in self.fixes:
            self.fixes[key] = self.add(XirOp(self.unique(f"{producer}_fix"), "fix", shape, source=source, attrs={
                "fix_point": point, "bit_width": 8, "if_signed": True, "round_mode": "DPU_ROUND"},
                inputs={"input": [producer]}))
        return self.fixes[key]

    def const(self, tensor: str, values: np.ndarray, source: str, point: int | None) -> str:
        """A const op (float32) and, for quantized constants, its fix."""
        values = np.ascontiguousarray(values, dtype=np.float32)
        shape = list(values.shape) or [1]
        name = self.add(XirOp(self.unique(tensor), "const", shape, source=source, data=values.reshape(shape),
                              attrs={"shape": shape, "data_type": "FLOAT32", "data": values.tobytes()}))
        return name if point is None else self.fix(name, point, shape, source)

    def constant_input(self, tensor: str, node) -> tuple[np.ndarray, int | None] | None:
        """(float values, fix point or None) of a constant operand, or None."""
        if tensor in self.quantized_consts:
            ints, scale = self.quantized_consts[tensor]
            return ints.astype(np.float32) * np.float32(scale), fix_point(scale)
        if tensor in self.constants:
            return self.constants[tensor].astype(np.float32), None
        return None

    def input_op(self, tensor: str, node) -> str:
        if tensor in self.op_of:
            return self.op_of[tensor]
        constant = self.constant_input(tensor, node)
        if constant is None:
            raise CompileError(f"node '{node.name}' reads '{tensor}', which nothing before it produces")
        values, point = constant
        self.op_of[tensor] = self.const(tensor, values, node.name, point)
        return self.op_of[tensor]

    def add_bias(self, node, inputs: dict) -> str | None:
        """A Conv's or Gemm's bias (its third input, if any) as inputs["bias"]; the problem, if any."""
        if len(node.input) < 3 or not node.input[2]:
            return None
        bias = self.constant_input(node.input[2], node)
        if bias is None:
            return "its bias is not constant"
        inputs["bias"] = [self.const(f"{node.name}_bias", bias[0].reshape(-1), node.name, bias[1])]
        return None

    def shape(self, tensor: str) -> list:
        return nhwc(self.shapes.get(tensor, []))

    def emit(self, node, xir_type: str, attrs: dict, inputs: dict) -> None:
        name = self.add(XirOp(self.unique(node.name or node.output[0]), xir_type, self.shape(node.output[0]),
                              attrs=attrs, inputs=inputs, source=node.name))
        self.op_of[node.output[0]] = name

    # -- nodes -------------------------------------------------------------------
    def check_flavour(self) -> None:
        """Every Q/DQ as the dpu flavour makes them: one power-of-two scale, int8, zero point 0."""
        for node in self.model.graph.node:
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
                continue
            scale = self.constants.get(node.input[1])
            zero = self.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if scale is None or scale.size != 1:
                problem = "its scale is not one constant (per-tensor)"
            elif zero is None or zero.dtype != np.int8 or np.any(zero != 0):
                problem = "it is not int8 with zero point 0"
            elif math.frexp(float(scale.ravel()[0]))[0] != 0.5:
                problem = f"its scale {float(scale.ravel()[0]):g} is not a power of two"
            else:
                continue
            raise CompileError(f"target zcu104 needs the dpu quantization flavour (int8, per-tensor power-of-two "
                               f"scales, zero point 0): {node.op_type} '{node.name}': {problem}")

    def run(self, graph_name: str) -> XirGraph:
        self.check_flavour()
        graph = self.model.graph
        for value in graph.input:
            if value.name in self.constants:
                continue
            shape = self.shape(value.name)
            self.op_of[value.name] = self.add(XirOp(self.unique(value.name), "data", shape, source=value.name,
                                                    attrs={"shape": shape, "data_type": "FLOAT32"}))
        for node in graph.node:
            handler = getattr(self, f"_{node.op_type}", None)
            if node.domain not in ("", "ai.onnx") or handler is None:
                self.problems.append(f"{node.op_type} (node '{node.name}')")
                continue
            try:
                problem = handler(node)
            except CompileError:
                if self.problems:  # a consequence of a node already refused
                    continue
                raise
            if problem:
                self.problems.append(f"{node.op_type} (node '{node.name}': {problem})")
        if self.problems:
            raise CompileError(f"target zcu104 cannot express {listing(self.problems)} in XIR")
        return XirGraph(graph_name, self.ops)

    def _Constant(self, node):
        return None

    # Q/DQ are as check_flavour demands: one int8 power-of-two scale, zero point 0
    def _QuantizeLinear(self, node):
        self.pending_q[node.output[0]] = node.input[0]
        return None

    def _DequantizeLinear(self, node):
        source, scale = node.input[0], float(self.constants[node.input[1]].ravel()[0])
        if source in self.pending_q:  # an activation's Q/DQ pair: a fix on the op that makes it
            tensor = self.pending_q[source]
            self.op_of[node.output[0]] = self.fix(self.input_op(tensor, node), fix_point(scale),
                                                  self.shape(tensor), node.name)
            if tensor in self.flattened:
                self.flattened[node.output[0]] = self.flattened[tensor]
            return None
        if source in self.constants:  # int8 weights or bias: const + fix where a layer reads them
            self.quantized_consts[node.output[0]] = (self.constants[source], scale)
            return None
        return "its input is neither a QuantizeLinear nor a constant"

    def _Conv(self, node):
        attrs = attributes(node)
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            return "auto_pad (give explicit pads)"
        weights = self.constant_input(node.input[1], node)
        if weights is None:
            return "its weights are not constant"
        w, w_point = weights
        if w.ndim != 4:
            return "not a 2-D convolution"
        group = int(attrs.get("group", 1))
        out_channels, _, kh, kw = w.shape
        in_channels = self.shapes.get(node.input[0], [0, 0])[1]
        if group == in_channels == out_channels and group > 1:
            kind, layout = "depthwise-conv2d", w.transpose(1, 2, 3, 0)  # [C,1,kh,kw] -> [1,kh,kw,C]
        else:
            kind, layout = "conv2d", block_diagonal(w, group).transpose(0, 2, 3, 1)  # OIHW -> OHWI
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        strides = list(attrs.get("strides", [1, 1]))
        dilations = list(attrs.get("dilations", [1, 1]))
        inputs = {"input": [self.input_op(node.input[0], node)],
                  "weights": [self.const(f"{node.name}_weights", layout, node.name, w_point)]}
        problem = self.add_bias(node, inputs)
        if problem:
            return problem
        self.emit(node, kind, {"kernel": [kw, kh], "stride": [strides[1], strides[0]],
                               "dilation": [dilations[1], dilations[0]], "pad_mode": "FLOOR",
                               "pad": [pads[1], pads[3], pads[0], pads[2]]}, inputs)
        if kind == "conv2d" and group > 1:
            self.ops[-1].note = (f"grouped convolution (group={group}) as one conv2d with block-diagonal weights: "
                                 f"{group}x the MACs of its groups")
        return None

    def _Gemm(self, node):
        attrs = attributes(node)
        if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            return "transA, alpha or beta other than the defaults"
        weights = self.constant_input(node.input[1], node)
        if weights is None:
            return "its weights are not constant"
        w, w_point = weights
        w = w if attrs.get("transB", 0) else w.T  # [out, in]
        if node.input[0] in self.flattened:  # ONNX flattens (c, h, w); XIR flattens NHWC as (h, w, c)
            c, h, wd = self.flattened[node.input[0]]
            w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        inputs = {"input": [self.input_op(node.input[0], node)],
                  "weights": [self.const(f"{node.name}_weights", w, node.name, w_point)]}
        problem = self.add_bias(node, inputs)
        if problem:
            return problem
        self.emit(node, "inner-product", {"axis": 1}, inputs)
        return None

    def _pool(self, node, kind):
        attrs = attributes(node)
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            return "auto_pad (give explicit pads)"
        if kind == "maxpool2d" and len(node.output) > 1 and node.output[1]:
            return "its Indices output has no XIR form"
        kh, kw = attrs["kernel_shape"]
        strides = list(attrs.get("strides", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        xir = {"kernel": [kw, kh], "stride": [strides[1], strides[0]],
               "pad_mode": "CEIL" if attrs.get("ceil_mode", 0) else "FLOOR",
               "pad": [pads[1], pads[3], pads[0], pads[2]], "global": False}
        if kind == "avgpool2d":
            xir.update(count_include_pad=bool(attrs.get("count_include_pad", 0)), count_include_invalid=True)
        self.emit(node, kind, xir, {"input": [self.input_op(node.input[0], node)]})
        return None

    def _MaxPool(self, node):
        return self._pool(node, "maxpool2d")

    def _AveragePool(self, node):
        return self._pool(node, "avgpool2d")

    def _global_pool(self, node, kind):
        _, _, h, w = self.shapes[node.input[0]]
        attrs = {"kernel": [w, h], "stride": [w, h], "pad_mode": "FLOOR", "pad": [0, 0, 0, 0], "global": True}
        if kind == "avgpool2d":
            attrs.update(count_include_pad=True, count_include_invalid=True)
        self.emit(node, kind, attrs, {"input": [self.input_op(node.input[0], node)]})
        return None

    def _GlobalAveragePool(self, node):
        return self._global_pool(node, "avgpool2d")

    def _GlobalMaxPool(self, node):
        return self._global_pool(node, "maxpool2d")

    def _activation(self, node, kind, attrs=None):
        self.emit(node, kind, attrs or {}, {"input": [self.input_op(node.input[0], node)]})
        return None

    def _Relu(self, node):
        return self._activation(node, "relu")

    def _Sigmoid(self, node):
        return self._activation(node, "sigmoid")

    def _Tanh(self, node):
        return self._activation(node, "tanh")

    def _HardSwish(self, node):
        return self._activation(node, "hard-swish")

    def _HardSigmoid(self, node):
        attrs = attributes(node)
        if not (math.isclose(attrs.get("alpha", 0.2), 1 / 6, rel_tol=1e-6) and attrs.get("beta", 0.5) == 0.5):
            return "alpha and beta other than 1/6 and 1/2 (XIR's hard-sigmoid is relu6(x + 3) / 6)"
        return self._activation(node, "hard-sigmoid")

    def _LeakyRelu(self, node):
        return self._activation(node, "leaky-relu", {"alpha": float(attributes(node).get("alpha", 0.01))})

    def _Clip(self, node):
        bounds = []
        for index in (1, 2):
            name = node.input[index] if len(node.input) > index else ""
            if name and name not in self.constants:
                return "its bounds are not constant"
            bounds.append(float(self.constants[name]) if name else None)
        if bounds[0] == 0.0 and bounds[1] == 6.0:
            return self._activation(node, "relu6")
        if bounds[0] == 0.0 and bounds[1] is None:
            return self._activation(node, "relu")
        return f"bounds {bounds} are neither ReLU nor ReLU6"

    def _Softmax(self, node):
        axis = attributes(node).get("axis", -1)
        rank = len(self.shapes.get(node.input[0], []))
        axis = axis % rank if rank else axis
        return self._activation(node, "softmax", {"axis": NCHW_TO_NHWC_AXIS[axis] if rank == 4 else axis})

    def _elementwise(self, node):
        self.emit(node, ELEMENTWISE[node.op_type], {},
                  {"input": [self.input_op(name, node) for name in node.input]})
        return None

    _Add = _Sub = _Mul = _elementwise

    def _Concat(self, node):
        axis = attributes(node)["axis"]
        rank = len(self.shapes.get(node.output[0], []))
        axis = axis % rank
        self.emit(node, "concat", {"axis": NCHW_TO_NHWC_AXIS[axis] if rank == 4 else axis},
                  {"input": [self.input_op(name, node) for name in node.input]})
        return None

    def _to_2d(self, node):
        shape = self.shapes.get(node.input[0], [])
        out = self.shapes.get(node.output[0], [])
        if len(out) != 2 or not shape:
            return "only reshapes to [batch, features] have an NHWC equivalent here"
        if len(shape) == 4 and shape[2] * shape[3] > 1:
            self.flattened[node.output[0]] = tuple(shape[1:])
        self.emit(node, "flatten", {"start_axis": 1, "end_axis": -1}, {"input": [self.input_op(node.input[0], node)]})
        return None

    def _Flatten(self, node):
        return "axis other than 1" if attributes(node).get("axis", 1) != 1 else self._to_2d(node)

    def _Reshape(self, node):
        return self._to_2d(node)

    def _alias(self, node):
        self.op_of[node.output[0]] = self.input_op(node.input[0], node)
        if node.input[0] in self.flattened:
            self.flattened[node.output[0]] = self.flattened[node.input[0]]
        return None

    _Identity = _Dropout = _alias

    def _Slice(self, node):
        """A Slice keeping the whole tensor (GhostNet's cut of a concat back to
        the width it already has) is no op; any other would be a strided_slice,
        which is not lowered here."""
        shape = self.shapes.get(node.input[0], [])
        steps = self.constants.get(node.input[4]) if len(node.input) > 4 and node.input[4] else None
        if shape and shape == self.shapes.get(node.output[0]) and (steps is None or np.all(steps == 1)):
            return self._alias(node)
        return "it keeps part of its input (XIR's strided_slice is not lowered here)"


def lower(model: onnx.ModelProto, name: str = "model") -> XirGraph:
    """The XIR graph of a dpu-flavour QDQ model; CompileError naming every node
    XIR cannot express."""
    return _Lowering(model).run(name)
