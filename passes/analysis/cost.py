"""Cost counting: parameters, MACs, weight bytes and peak activation memory.

Parameters are counted as PyTorch counts learnable parameters, per use: every
constant operand in a parameter position of a counted op (the `_OPS` table)
contributes its element count, so a tensor that torch's exporter deduplicated
into one initializer still counts once for each layer that uses it. An operand
is constant when it is an initializer or a Constant output, possibly reached
through Identity nodes (the exporter's deduplication) or Q/DQ nodes (int8 weights).

MACs follow the usual convention: one multiply-accumulate per weight per output
element, bias additions not counted. BatchNormalization has parameters
(scale and bias, as torch counts them) but no MACs, because deployment folds it
into the preceding convolution.

Activation memory assumes the graph's own node order, which valid ONNX makes
topological. Tensors in subgraphs (If/Loop bodies) are not looked into; CNNs
have none.
"""

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import onnx
from onnx import shape_inference

from ncc.core.errors import CompileError


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


def tensor_info(value: onnx.ValueInfoProto) -> TensorInfo | None:
    """Static shape and element type of a value, or None if either is unknown."""
    if not value.type.HasField("tensor_type"):
        return None
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape") or not tensor_type.elem_type:
        return None
    dims = tensor_type.shape.dim
    if any(not d.HasField("dim_value") for d in dims):
        return None
    return TensorInfo(tuple(d.dim_value for d in dims), _np_dtype(tensor_type.elem_type))


@dataclass(frozen=True)
class LayerCost:
    name: str
    op_type: str
    params: int
    macs: int
    weight_bytes: int  # every constant operand, learnable or not (BN mean/var included)
    output_shape: tuple[int, ...]
    in_channels: int | None = None
    out_channels: int | None = None

    def to_dict(self) -> dict:
        return _sorted_dict(asdict(self) | {"output_shape": list(self.output_shape)})


@dataclass(frozen=True)
class ModelCost:
    params: int
    macs: int
    weight_bytes: int  # every constant tensor used by some node, each once
    peak_activation_bytes: int
    layers: list[LayerCost] = field(default_factory=list)

    def to_dict(self) -> dict:
        return _sorted_dict(asdict(self) | {"layers": [layer.to_dict() for layer in self.layers]})


# --- how each counted op costs -------------------------------------------------

@dataclass(frozen=True)
class _Work:
    macs: int
    in_channels: int | None
    out_channels: int | None


@dataclass(frozen=True)
class _OpCost:
    param_inputs: tuple[int, ...]  # operand positions that hold parameters when constant
    work: Callable  # (node, operand infos, output info) -> _Work


def _conv_work(node, ins, out):
    # weight (M, C/group, k...): each output element takes C/group * prod(k) MACs
    return _Work(out.size * math.prod(ins[1].shape[1:]), ins[0].shape[1], out.shape[1])


def _conv_transpose_work(node, ins, out):
    # weight (C, M/group, k...): each input element is scattered over M/group * prod(k) outputs
    return _Work(ins[0].size * math.prod(ins[1].shape[1:]), ins[0].shape[1], out.shape[1])


def _gemm_work(node, ins, out):
    trans_a = _int_attribute(node, "transA")
    k = ins[0].shape[0 if trans_a else 1]
    return _Work(out.size * k, k, out.shape[1])


def _matmul_work(node, ins, out):
    a, b = ins[0].shape, ins[1].shape
    k = a[-1]
    return _Work(out.size * k, k, b[-1] if len(b) > 1 else None)


def _batch_norm_work(node, ins, out):
    return _Work(0, ins[0].shape[1], out.shape[1])


_OPS: dict[str, _OpCost] = {
    "Conv": _OpCost((1, 2), _conv_work),
    "ConvTranspose": _OpCost((1, 2), _conv_transpose_work),
    "Gemm": _OpCost((0, 1, 2), _gemm_work),
    "MatMul": _OpCost((0, 1), _matmul_work),
    "BatchNormalization": _OpCost((1, 2), _batch_norm_work),  # scale, bias; not mean/var
}


# A constant through these is still the same parameter: the exporter's
# deduplication (Identity) and int8 quantization (weights behind Q/DQ nodes).
_CONSTANT_PRESERVING = ("Identity", "QuantizeLinear", "DequantizeLinear")


# --- public API ------------------------------------------------------------------

def parameter_inputs(op_type: str) -> tuple[int, ...]:
    """Operand positions of `op_type` whose constants count as parameters."""
    op = _OPS.get(op_type)
    return op.param_inputs if op else ()


def count_parameters(model: onnx.ModelProto) -> int:
    """Learnable parameters as torch counts them; needs no shape inference."""
    graph = _Graph(model.graph)
    return sum(graph.params(node) for node in graph.nodes if node.op_type in _OPS)


def layer_costs(model: onnx.ModelProto) -> list[LayerCost]:
    return _layer_costs(_shaped_graph(model))


def model_cost(model: onnx.ModelProto) -> ModelCost:
    graph = _shaped_graph(model)
    layers = _layer_costs(graph)
    return ModelCost(
        params=sum(layer.params for layer in layers),
        macs=sum(layer.macs for layer in layers),
        weight_bytes=sum(graph.constants[name].nbytes for name in graph.used_constants()),
        peak_activation_bytes=_peak_activation_bytes(graph),
        layers=layers,
    )


# --- internals -------------------------------------------------------------------

class _Graph:
    """A graph's tensors sorted into constants and activations."""

    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.nodes = list(graph.node)
        self.constants = {init.name: TensorInfo(tuple(init.dims), _np_dtype(init.data_type))
                          for init in graph.initializer}
        for node in self.nodes:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = _constant_info(node)
        self._roots = {name: name for name in self.constants}  # constant name -> stored tensor
        for node in self.nodes:
            if node.op_type in _CONSTANT_PRESERVING and node.input[0] in self._roots:
                self._roots[node.output[0]] = self._roots[node.input[0]]
        self._typed = {v.name: tensor_info(v) for v in (*graph.input, *graph.value_info, *graph.output)}

    def fully_typed(self) -> bool:
        return all(self.is_constant(name) or self._typed.get(name)
                   for node in self.nodes for name in node.output if name)

    def is_constant(self, name: str) -> bool:
        return name in self._roots

    def constant(self, name: str) -> TensorInfo | None:
        root = self._roots.get(name)
        return self.constants[root] if root is not None else None

    def used_constants(self) -> set[str]:
        return {self._roots[name] for node in self.nodes for name in node.input if name in self._roots}

    def info(self, name: str) -> TensorInfo:
        constant = self.constant(name)
        if constant is not None:
            return constant
        info = self._typed.get(name)
        if info is None:
            raise CompileError(f"tensor '{name}' has no static shape and element type; "
                               "cannot count its cost")
        return info

    def params(self, node: onnx.NodeProto) -> int:
        operands = (self.constant(name) for name in _inputs_at(node, _OPS[node.op_type].param_inputs))
        return sum(info.size for info in operands if info is not None)

    def constant_bytes(self, node: onnx.NodeProto) -> int:
        return sum(self.constant(name).nbytes for name in node.input if self.is_constant(name))


def _layer_costs(graph: _Graph) -> list[LayerCost]:
    layers = []
    for node in graph.nodes:
        op = _OPS.get(node.op_type)
        if op is None:
            continue
        ins = [graph.info(name) if name else None for name in node.input]
        out = graph.info(node.output[0])
        work = op.work(node, ins, out)
        layers.append(LayerCost(
            name=node.name or node.output[0],  # unnamed nodes are known by their first output
            op_type=node.op_type,
            params=graph.params(node),
            macs=work.macs,
            weight_bytes=graph.constant_bytes(node),
            output_shape=out.shape,
            in_channels=work.in_channels,
            out_channels=work.out_channels,
        ))
    return layers


def _peak_activation_bytes(graph: _Graph) -> int:
    """Each activation is live from its producer (graph inputs: from the start)
    through its last consumer (graph outputs: to the end); a node's inputs and
    outputs are live while it runs."""
    end = len(graph.nodes) - 1
    live_from, live_to = {}, {}
    for value in graph.graph.input:
        if not graph.is_constant(value.name):
            live_from[value.name] = live_to[value.name] = 0
    for index, node in enumerate(graph.nodes):
        for name in node.input:
            if name in live_from:
                live_to[name] = index
        for name in node.output:
            if name and not graph.is_constant(name):
                live_from[name] = live_to[name] = index
    for value in graph.graph.output:
        if value.name in live_from:
            live_to[value.name] = end

    # bytes entering and leaving the live set at each step, summed as a running total
    delta = [0] * (len(graph.nodes) + 1)
    for name in sorted(live_from):
        size = graph.info(name).nbytes
        delta[live_from[name]] += size
        delta[live_to[name] + 1] -= size
    peak = live = 0
    for change in delta[:-1]:
        live += change
        peak = max(peak, live)
    return peak


def _shaped_graph(model: onnx.ModelProto) -> _Graph:
    """The model's graph, shape-inferred on a copy if some activation lacks a type."""
    graph = _Graph(model.graph)
    if graph.fully_typed():
        return graph
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except (shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError) as err:
        raise CompileError(f"shape inference failed: {str(err).strip().splitlines()[0]}") from None
    return _Graph(inferred.graph)


_CONSTANT_LIST_TYPES = {"value_float": np.float32, "value_floats": np.float32,
                        "value_int": np.int64, "value_ints": np.int64,
                        "value_string": np.object_, "value_strings": np.object_}


def _constant_info(node: onnx.NodeProto) -> TensorInfo:
    attribute = node.attribute[0]  # a Constant node has exactly one value attribute
    value = onnx.helper.get_attribute_value(attribute)
    if attribute.name == "value":
        return TensorInfo(tuple(value.dims), _np_dtype(value.data_type))
    if attribute.name == "sparse_value":
        return TensorInfo(tuple(value.dims), _np_dtype(value.values.data_type))
    return TensorInfo(np.shape(value), np.dtype(_CONSTANT_LIST_TYPES[attribute.name]))


def _inputs_at(node, positions):
    return [node.input[i] for i in positions if i < len(node.input) and node.input[i]]


def _int_attribute(node, name, default=0) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return attribute.i
    return default


def _np_dtype(elem_type: int) -> np.dtype:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


def _sorted_dict(mapping: dict) -> dict:
    return dict(sorted(mapping.items()))
