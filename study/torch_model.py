"""An ONNX CNN as a trainable torch module, and its trained weights written back.

`TorchModel(model)` runs the ONNX graph's nodes in order with torch functions
(one small entry per op in `_OPS`); float initializers become parameters,
BatchNormalization statistics become buffers that training updates as
torch.nn.BatchNorm2d would. `write_back(model)` returns the ONNX model with
the trained values. Only the ops ncc scales are covered; anything else is a
clear error naming the node.

Gates: `gates={tensor name: (key, n)}` multiplies that tensor along its channel
axis by the learnable vector `gates[key]` of n ones (tensors may share a key),
the per-channel gate whose first-order Taylor score ((gate * grad)^2)
NeuralScale's architecture descent prunes by.
"""

import re

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

from ncc.core.errors import CompileError
from ncc.passes.analysis.cost import parameter_inputs


class TorchModel(torch.nn.Module):
    def __init__(self, model: onnx.ModelProto, gates: dict | None = None):
        super().__init__()
        self.graph = model.graph
        self.names = {}  # initializer name -> attribute name
        learnable = _learnable(model.graph)
        for init in model.graph.initializer:
            values = torch.from_numpy(numpy_helper.to_array(init).copy())
            attribute = _attribute_name(init.name, len(self.names))
            self.names[init.name] = attribute
            if values.is_floating_point() and init.name in learnable:
                self.register_parameter(attribute, torch.nn.Parameter(values))
            else:
                self.register_buffer(attribute, values)
        keys = sorted({key: n for key, n in (gates or {}).values()}.items())
        self.gate_keys = {key: _attribute_name(key, i) for i, (key, _) in enumerate(keys)}
        self.gates = torch.nn.ParameterDict({self.gate_keys[key]: torch.nn.Parameter(torch.ones(n)) for key, n in keys})
        self._gate_of = {name: self.gate_keys[key] for name, (key, _) in (gates or {}).items()}
        for node in model.graph.node:
            if node.op_type not in _OPS:
                raise CompileError(f"training does not support {node.op_type} (node '{node.name}')")

    def forward(self, *inputs):
        values = {v.name: x for v, x in zip(self._graph_inputs(), inputs)}
        for init_name, attribute in self.names.items():
            values[init_name] = getattr(self, attribute)
        for node in self.graph.node:
            args = [values[name] if name else None for name in node.input]
            outputs = _OPS[node.op_type](self, node, _attributes(node), *args)
            outputs = outputs if isinstance(outputs, tuple) else (outputs,)
            for name, value in zip(node.output, outputs):
                if name in self._gate_of:
                    gate = self.gates[self._gate_of[name]]
                    value = value * gate.view(1, -1, *([1] * (value.dim() - 2)))
                values[name] = value
        results = [values[v.name] for v in self.graph.output]
        return results[0] if len(results) == 1 else tuple(results)

    def gate(self, key) -> torch.nn.Parameter:
        return self.gates[self.gate_keys[key]]

    def weights(self):
        """The model's own parameters, without the gates."""
        return [p for name, p in self.named_parameters() if not name.startswith("gates.")]

    def _graph_inputs(self):
        return [v for v in self.graph.input if v.name not in self.names]

    def write_back(self, model: onnx.ModelProto) -> onnx.ModelProto:
        """A copy of `model` whose initializers hold this module's values."""
        updated = onnx.ModelProto()
        updated.CopyFrom(model)
        for init in updated.graph.initializer:
            values = getattr(self, self.names[init.name]).detach().cpu().numpy()
            init.CopyFrom(numpy_helper.from_array(values.astype(numpy_helper.to_array(init).dtype), init.name))
        return updated


def _attribute_name(name: str, index: int) -> str:
    return f"t{index}_" + re.sub(r"\W", "_", name)[:60]


def _learnable(graph) -> set:
    """Initializers at parameter positions (weights, biases, BatchNorm scale and
    shift), as ncc counts parameters; everything else is a buffer."""
    return {node.input[i] for node in graph.node for i in parameter_inputs(node.op_type) if i < len(node.input)}


def _attributes(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# --- ops: (module, node, attributes, *inputs) -> tensor or tuple ------------------------

def _conv(module, node, attrs, x, weight, bias=None):
    pads = attrs.get("pads", [0] * (2 * (x.dim() - 2)))
    half = len(pads) // 2
    if pads[:half] != pads[half:]:
        x = F.pad(x, [p for i in reversed(range(half)) for p in (pads[i], pads[i + half])])
        pads = [0] * len(pads)
    return F.conv2d(x, weight, bias, stride=attrs.get("strides", 1), padding=pads[:half],
                    dilation=attrs.get("dilations", 1), groups=attrs.get("group", 1))


def _gemm(module, node, attrs, a, b, c=None):
    a = a.t() if attrs.get("transA", 0) else a
    b = b.t() if attrs.get("transB", 0) else b
    y = attrs.get("alpha", 1.0) * (a @ b)
    return y if c is None else y + attrs.get("beta", 1.0) * c


def _batchnorm(module, node, attrs, x, scale, bias, mean, var):
    return F.batch_norm(x, mean, var, scale, bias, training=module.training,
                        momentum=1.0 - attrs.get("momentum", 0.9), eps=attrs.get("epsilon", 1e-5))


def _pool(function):
    def pool(module, node, attrs, x):
        pads = attrs.get("pads", [0, 0, 0, 0])
        if pads[:2] != pads[2:]:
            x = F.pad(x, [pads[1], pads[3], pads[0], pads[2]], value=-float("inf") if function is F.max_pool2d else 0)
            pads = [0, 0, 0, 0]
        extra = {} if function is F.max_pool2d else {"count_include_pad": bool(attrs.get("count_include_pad", 0))}
        return function(x, attrs["kernel_shape"], attrs.get("strides", attrs["kernel_shape"]), pads[:2],
                        ceil_mode=bool(attrs.get("ceil_mode", 0)), **extra)
    return pool


def _clip(module, node, attrs, x, low=None, high=None):
    return torch.clamp(x, min=None if low is None else low.item(), max=None if high is None else high.item())


def _reshape(module, node, attrs, x, shape):
    dims = [x.shape[i] if d == 0 else int(d) for i, d in enumerate(shape.tolist())]
    if dims and dims[0] > 0:
        dims[0] = x.shape[0]  # the exported batch (often 1) follows the batch being trained
    return x.reshape(dims)


def _axes(attrs, operand):
    axes = attrs.get("axes", operand.tolist() if operand is not None else None)
    return tuple(axes) if axes is not None else None


def _unsqueeze(module, node, attrs, x, axes=None):
    for axis in sorted(a % (x.dim() + len(_axes(attrs, axes))) for a in _axes(attrs, axes)):
        x = x.unsqueeze(axis)
    return x


def _squeeze(module, node, attrs, x, axes=None):
    axes = _axes(attrs, axes)
    return x.squeeze() if axes is None else x.squeeze(axes)


def _dropout(module, node, attrs, x, ratio=None, training_mode=None):
    rate = attrs.get("ratio", ratio.item() if ratio is not None else 0.5)
    return F.dropout(x, rate, module.training)


_OPS = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": lambda m, n, a, x, w: x @ w,
    "BatchNormalization": _batchnorm,
    "Relu": lambda m, n, a, x: F.relu(x),
    "LeakyRelu": lambda m, n, a, x: F.leaky_relu(x, a.get("alpha", 0.01)),
    "Sigmoid": lambda m, n, a, x: torch.sigmoid(x),
    "HardSigmoid": lambda m, n, a, x: torch.clamp(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0, 1),
    "HardSwish": lambda m, n, a, x: F.hardswish(x),
    "Tanh": lambda m, n, a, x: torch.tanh(x),
    "Clip": _clip,
    "Add": lambda m, n, a, x, y: x + y,
    "Sub": lambda m, n, a, x, y: x - y,
    "Mul": lambda m, n, a, x, y: x * y,
    "Div": lambda m, n, a, x, y: x / y,
    "MaxPool": _pool(F.max_pool2d),
    "AveragePool": _pool(F.avg_pool2d),
    "GlobalAveragePool": lambda m, n, a, x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    "GlobalMaxPool": lambda m, n, a, x: x.amax(dim=tuple(range(2, x.dim())), keepdim=True),
    "Flatten": lambda m, n, a, x: x.flatten(a.get("axis", 1)) if a.get("axis", 1) else x.reshape(1, -1),
    "Reshape": _reshape,
    "Concat": lambda m, n, a, *xs: torch.cat(xs, dim=a["axis"]),
    "Identity": lambda m, n, a, x: x,
    "Dropout": _dropout,
    "ReduceMean": lambda m, n, a, x, axes=None: x.mean(dim=_axes(a, axes), keepdim=bool(a.get("keepdims", 1))),
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Softmax": lambda m, n, a, x: F.softmax(x, dim=a.get("axis", -1)),
}


def numpy_output(module: TorchModel, x: np.ndarray) -> np.ndarray:
    module.eval()
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()
