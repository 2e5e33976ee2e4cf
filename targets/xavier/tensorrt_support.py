"""Which ONNX nodes TensorRT 8.5's ONNX parser (onnx-tensorrt, release 8.5,
JetPack 5.1.x on the Jetson AGX Xavier) accepts, as a data table, and the
per-op restrictions that matter for CNNs.

The table is the "Y" rows of onnx-tensorrt 8.5's docs/operators.md (a test
compares them when ../shared/reference holds that file); the restrictions are
that file's Restrictions column for the ops a CNN uses. Where it says an
operand "must be an initializer", onnx-tensorrt takes any weights, and a
Constant node's output is weights to it, so both count as constant here.
"""

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ncc.core.errors import CompileError
from ncc.targets.base import listing

TENSORRT_VERSION = "8.5.2"
MAX_OPSET = 17  # the newest ONNX opset TensorRT 8.5's parser reads
STANDARD_DOMAINS = ("", "ai.onnx")

SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool
BatchNormalization Cast Ceil Celu Clip Concat Constant ConstantOfShape Conv
ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout Einsum
Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU Gather GatherElements
GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater
GreaterOrEqual GridSample HardSigmoid Identity If ImageScaler
InstanceNormalization IsNaN LRN LSTM LeakyRelu Less LessOrEqual Log LogSoftmax
Loop LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization
Min Mul Neg NonMaxSuppression NonZero Not Or PRelu Pad ParametricSoftplus Pow
QuantizeLinear RNN RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare Relu Reshape Resize ReverseSequence RoiAlign Round ScaledTanh
Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh
Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum
Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

# element types TensorRT 8.5 has no tensors of (int64 is narrowed to int32 by the parser)
UNSUPPORTED_TYPES = {TensorProto.DOUBLE: "float64", TensorProto.COMPLEX64: "complex64",
                     TensorProto.COMPLEX128: "complex128", TensorProto.STRING: "string",
                     TensorProto.UINT16: "uint16", TensorProto.UINT32: "uint32", TensorProto.UINT64: "uint64",
                     TensorProto.INT16: "int16"}


def _name(node, index) -> str:
    return node.name or f"#{index}"


def _qdq_restriction(node, constants) -> str | None:
    """TensorRT 8.5 explicit quantization: int8 only, zero point constant 0,
    scale a constant."""
    if len(node.input) < 2 or node.input[1] not in constants:
        return "its scale is not a constant"
    if len(node.input) < 3 or not node.input[2]:
        return None if node.op_type == "DequantizeLinear" else "it has no int8 zero point (uint8 by default)"
    zero = constants.get(node.input[2])
    if zero is None:
        return "its zero point is not a constant"
    if zero.data_type != TensorProto.INT8:
        return f"its zero point is {TensorProto.DataType.Name(zero.data_type).lower()}, not int8"
    if np.any(numpy_helper.to_array(zero) != 0):
        return "its zero point is not 0"
    return None


# operand index -> its name, for the ops whose operand must be constant
CONSTANT_OPERANDS = {"Slice": {3: "axes"}, "Squeeze": {1: "axes"}, "Unsqueeze": {1: "axes"},
                     "InstanceNormalization": {1: "scale", 2: "B"}, "CumSum": {1: "axis"}, "TopK": {1: "K"}}
POOLS = ("AveragePool", "MaxPool")
RESIZE_MODES = (b"nearest", b"linear")
RESIZE_TRANSFORMS = (b"half_pixel", b"pytorch_half_pixel", b"tf_half_pixel_for_nn", b"asymmetric", b"align_corners")
RESIZE_NEAREST = (b"floor", b"ceil", b"round_prefer_floor", b"round_prefer_ceil")


def _constant_operand(node, constants) -> str | None:
    for index, operand in CONSTANT_OPERANDS.get(node.op_type, {}).items():
        if index < len(node.input) and node.input[index] and node.input[index] not in constants:
            return f"its {operand} must be an initializer"
    return None


def _resize_restriction(attrs) -> str | None:
    for name, allowed, default in (("mode", RESIZE_MODES, b"nearest"),
                                   ("coordinate_transformation_mode", RESIZE_TRANSFORMS, b"half_pixel"),
                                   ("nearest_mode", RESIZE_NEAREST, b"round_prefer_floor")):
        value = attrs.get(name, default)
        if value not in allowed:
            return f"{name} '{value.decode()}' is not supported (only {', '.join(v.decode() for v in allowed)})"
    return None


def _restriction(node, constants, ranks) -> str | None:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
        return _qdq_restriction(node, constants)
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        return "its Indices output is not supported"
    if node.op_type in POOLS and len(attrs.get("kernel_shape", [])) not in (2, 3):
        return f"{len(attrs.get('kernel_shape', []))}D pooling (TensorRT pools in 2D or 3D only)"
    if node.op_type == "Resize":
        return _resize_restriction(attrs)
    if node.op_type == "InstanceNormalization" and not 3 <= ranks.get(node.input[0], 4) <= 5:
        return f"its input has rank {ranks[node.input[0]]} (TensorRT takes 3 to 5)"
    return _constant_operand(node, constants)


def unsupported(model: onnx.ModelProto) -> list[str]:
    """One line per problem, each naming the node (or the opset or tensor)."""
    found = []
    for opset in model.opset_import:
        if opset.domain in STANDARD_DOMAINS and opset.version > MAX_OPSET:
            found.append(f"opset {opset.version} (TensorRT {TENSORRT_VERSION} parses up to {MAX_OPSET})")
    for value in [*model.graph.input, *model.graph.output]:
        elem = value.type.tensor_type.elem_type
        if elem in UNSUPPORTED_TYPES:
            found.append(f"tensor '{value.name}' of type {UNSUPPORTED_TYPES[elem]}")
    constants = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = node.attribute[0].t
    ranks = {value.name: len(value.type.tensor_type.shape.dim)
             for value in (*model.graph.input, *model.graph.value_info, *model.graph.output)
             if value.type.tensor_type.HasField("shape")}
    for index, node in enumerate(model.graph.node):
        if node.domain not in STANDARD_DOMAINS:
            found.append(f"{node.op_type} (node '{_name(node, index)}', custom domain '{node.domain}')")
        elif node.op_type not in SUPPORTED_OPS:
            found.append(f"{node.op_type} (node '{_name(node, index)}')")
        else:
            problem = _restriction(node, constants, ranks)
            if problem:
                found.append(f"{node.op_type} (node '{_name(node, index)}': {problem})")
    return found


def check_tensorrt_support(model: onnx.ModelProto, target_name: str):
    found = unsupported(model)
    if found:
        raise CompileError(f"target {target_name} (TensorRT {TENSORRT_VERSION} ONNX parser) cannot parse "
                           f"{listing(found)}")
