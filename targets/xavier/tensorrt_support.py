"""Which ONNX nodes TensorRT 8.5's ONNX parser (onnx-tensorrt, release 8.5,
JetPack 5.1.x on the Jetson AGX Xavier) accepts, as a data table, and the
per-op restrictions that matter for CNNs.

The table follows onnx-tensorrt's docs/operators.md for TensorRT 8.5 as ncc's
authors know it (it was written without network access to that file). Ops
whose 8.5 status is uncertain are left out on purpose (GridSample and
LayerNormalization arrived with 8.6): refusing a model here costs a clear error,
accepting one the board's parser rejects costs a failed build.sh there.
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
Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND
Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GRU
HardSigmoid HardSwish Identity If ImageScaler InstanceNormalization IsInf IsNaN
LeakyRelu Less LessOrEqual Log LogSoftmax Loop LpNormalization LpPool LRN LSTM
MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg
NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu
QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike
Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements
ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus
Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile
TopK Transpose Trilu Unsqueeze Upsample Where Xor
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


def _restriction(node, constants) -> str | None:
    if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
        return _qdq_restriction(node, constants)
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        return "its Indices output is not supported"
    return None


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
    for index, node in enumerate(model.graph.node):
        if node.domain not in STANDARD_DOMAINS:
            found.append(f"{node.op_type} (node '{_name(node, index)}', custom domain '{node.domain}')")
        elif node.op_type not in SUPPORTED_OPS:
            found.append(f"{node.op_type} (node '{_name(node, index)}')")
        else:
            problem = _restriction(node, constants)
            if problem:
                found.append(f"{node.op_type} (node '{_name(node, index)}': {problem})")
    return found


def check_tensorrt_support(model: onnx.ModelProto, target_name: str):
    found = unsupported(model)
    if found:
        raise CompileError(f"target {target_name} (TensorRT {TENSORRT_VERSION} ONNX parser) cannot parse "
                           f"{listing(found)}")
