"""What each quantization flavour promises about the model it emits, checked on
the final QDQ graph. A broken promise is a CompileError: the board's toolchain
would reject the model or run it other than measured here."""

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ncc.core.errors import CompileError
from ncc.passes.quant_flavors import Flavor

_STANDARD_DOMAINS = ("", "ai.onnx")
_LAYERS = ("Conv", "Gemm")
_ACTIVATIONS = ("Relu", "Clip")
_TYPES = {"int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "int32": TensorProto.INT32,
          "int8-pow2": TensorProto.INT8}


class QdqGraph:
    """Producers, consumers and constants of a QDQ model, for the checks."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.nodes = list(model.graph.node)
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.consumers = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.constants = {init.name: init for init in model.graph.initializer}

    def array(self, name) -> np.ndarray | None:
        return numpy_helper.to_array(self.constants[name]) if name in self.constants else None

    def elem_type(self, name) -> int | None:
        return self.constants[name].data_type if name in self.constants else None

    def made_by(self, name, op_type):
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def of_type(self, *op_types):
        return [node for node in self.nodes if node.op_type in op_types]


def check(model: onnx.ModelProto, flavor: Flavor):
    found = violations(model, flavor)
    if found:
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise CompileError(f"the {flavor.name} int8 model breaks its own rules: {'; '.join(found[:3])}{more}")


def violations(model: onnx.ModelProto, flavor: Flavor) -> list[str]:
    graph = QdqGraph(model)
    return (_opset_and_domains(model, flavor) + _qdq_parameters(graph, flavor) + _layers(graph, flavor)
            + _adds(graph) + _activation_placement(graph, flavor) + _pairs(graph, flavor))


def facts(model: onnx.ModelProto) -> dict:
    """Counts for the pass's stats."""
    graph = QdqGraph(model)
    layers = graph.of_type(*_LAYERS)
    quantized = [n for n in layers if graph.made_by(n.input[1], "DequantizeLinear")]
    return {"quantize_linear": len(graph.of_type("QuantizeLinear")),
            "dequantize_linear": len(graph.of_type("DequantizeLinear")),
            "quantized_layers": len(quantized),
            "float_layers": sorted(n.name for n in layers if n not in quantized),
            "opset": next(o.version for o in model.opset_import if o.domain in _STANDARD_DOMAINS)}


def _opset_and_domains(model, flavor) -> list[str]:
    found = []
    for opset in model.opset_import:
        if opset.domain in _STANDARD_DOMAINS and flavor.max_opset and opset.version > flavor.max_opset:
            found.append(f"opset {opset.version} > {flavor.max_opset}")
        elif opset.domain not in _STANDARD_DOMAINS and flavor.standard_domain_only:
            found.append(f"imports domain '{opset.domain}'")
    if flavor.standard_domain_only:
        found += [f"node {n.name} is in domain '{n.domain}'" for n in model.graph.node
                  if n.domain not in _STANDARD_DOMAINS]
    return found


def _qdq_parameters(graph, flavor) -> list[str]:
    found = []
    for node in graph.of_type("QuantizeLinear", "DequantizeLinear"):
        scale = graph.array(node.input[1])
        zero = graph.array(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None or zero is None:
            found.append(f"{node.name} has no constant scale and zero point")
            continue
        if flavor.symmetric_activations and np.any(zero != 0):
            found.append(f"{node.name} has a zero point other than 0")
        if flavor.power_of_two_scales and (scale.size != 1 or np.any(np.frexp(scale)[0] != 0.5)):
            found.append(f"{node.name} has scale {scale.ravel()[:3].tolist()}, not one power of two")
    for node in graph.of_type("QuantizeLinear"):
        if graph.elem_type(node.input[2]) != _TYPES[flavor.activations] and node.input[0] not in graph.constants:
            found.append(f"{node.name} quantizes an activation to another type than {flavor.activations}")
    return found


def _layers(graph, flavor) -> list[str]:
    found = []
    for layer in graph.of_type(*_LAYERS):
        weight = graph.made_by(layer.input[1], "DequantizeLinear")
        if weight is None:
            if layer.input[1] in graph.constants:
                found.append(f"the weight of {layer.name} is not quantized")
            continue
        found += _weight(graph, flavor, layer, weight)
        if len(layer.input) > 2 and layer.input[2]:
            found += _bias(graph, flavor, layer)
    return found


def _weight(graph, flavor, layer, dequantize) -> list[str]:
    found = []
    stored = graph.made_by(dequantize.input[0], "QuantizeLinear") if flavor.weight_qdq_pair else dequantize
    if stored is None or stored.input[0] not in graph.constants:
        return [f"the weight of {layer.name} is not a constant behind "
                f"{'QuantizeLinear/DequantizeLinear' if flavor.weight_qdq_pair else 'DequantizeLinear'}"]
    if graph.elem_type(dequantize.input[2]) != TensorProto.INT8 or np.any(graph.array(dequantize.input[2]) != 0):
        found.append(f"the weight of {layer.name} is not symmetric int8")
    scale = graph.array(dequantize.input[1])
    axis = next((a.i for a in dequantize.attribute if a.name == "axis"), 1)
    channels = graph.constants[stored.input[0]].dims[0]
    if flavor.per_channel_weights and (scale.ndim != 1 or scale.size != channels or axis != 0):
        found.append(f"the weight of {layer.name} is not quantized per output channel (axis 0)")
    if not flavor.per_channel_weights and scale.size != 1:
        found.append(f"the weight of {layer.name} is not quantized per tensor")
    values = graph.array(stored.input[0])
    if flavor.seven_bit_weights and values.dtype == np.int8 and np.abs(values.astype(np.int16)).max() > 64:
        found.append(f"the weight of {layer.name} uses more than 7 bits")
    return found


def _bias(graph, flavor, layer) -> list[str]:
    bias = layer.input[2]
    dequantize = graph.made_by(bias, "DequantizeLinear")
    if flavor.bias == "float":
        return [] if graph.elem_type(bias) == TensorProto.FLOAT else [f"the bias of {layer.name} is not float"]
    if dequantize is None or graph.elem_type(dequantize.input[0]) != _TYPES[flavor.bias]:
        return [f"the bias of {layer.name} is not {flavor.bias}"]
    return []


def _adds(graph) -> list[str]:
    return [f"input {name} of {add.name} is not quantized" for add in graph.of_type("Add")
            for name in add.input if not graph.made_by(name, "DequantizeLinear") and name not in graph.constants]


def _activation_placement(graph, flavor) -> list[str]:
    """Where outputs are not quantized, a layer's Relu reads it directly, so the
    two stay one fused operation."""
    if flavor.quantize_layer_outputs:
        return []
    found = []
    for activation in graph.of_type(*_ACTIVATIONS):
        dequantize = graph.made_by(activation.input[0], "DequantizeLinear")
        quantize = dequantize and graph.made_by(dequantize.input[0], "QuantizeLinear")
        source = quantize and graph.producer.get(quantize.input[0])
        if source is not None and source.op_type in (*_LAYERS, "Add"):
            found.append(f"Q/DQ between {source.name} and {activation.name}")
    return found


def _pairs(graph, flavor) -> list[str]:
    if not flavor.dedicated_pairs:
        return []
    # by distinct nodes: Add(t, t) reads its one pair twice, which is still one consumer
    readers = [(node, len({id(n) for n in graph.consumers.get(node.output[0], [])}))
               for node in graph.of_type("DequantizeLinear")]
    return [f"{node.name} feeds {count} nodes" for node, count in readers if count > 1]
