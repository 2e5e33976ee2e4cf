"""Loading and verifying an ONNX model: everything a pass may take for granted.

After `load_model` the model is checker-valid, at opset >= NCC_OPSET of the
default domain, has its shape subgraphs folded (shape_folding.py) and a static
shape and element type on every graph input, output and intermediate tensor.
"""

import os

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper, shape_inference, version_converter

from ncc.compiler import shape_folding
from ncc.core.errors import CompileError, UsageError

NCC_OPSET = 17  # what old models are converted to; TensorRT 8.5 parses up to 17
MIN_OPSET = 7  # onnx's version converter handles BatchNormalization and Dropout from here
PROTOBUF_LIMIT = 2**31  # bytes: protobuf cannot serialize or parse one message this large


def load_model(path: str, input_shapes: dict | None = None) -> onnx.ModelProto:
    return prepare_model(read_model(path), input_shapes)


def prepare_model(model: onnx.ModelProto, input_shapes: dict | None = None) -> onnx.ModelProto:
    """Verify an in-memory model and make its shapes static (see the module doc)."""
    model = _convert_opset(model)
    _drop_initializer_inputs(model)
    _name_nodes(model)
    _set_input_shapes(model, input_shapes or {})
    _clear_output_shapes(model, all_dims=bool(input_shapes))
    check_model(model)
    model = infer_shapes(model)
    if shape_folding.needs_folding(model):
        model = shape_folding.fold_shapes(model, infer_shapes)
    _require_static_tensors(model)
    _require_positive_dims(model)
    _check_pool_windows(model)
    _check_conv_channels(model)
    return model


def read_model(path: str) -> onnx.ModelProto:
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not an ONNX file")
    if not os.path.isfile(path):
        raise UsageError(f"{path} is not a regular file (a device, FIFO or socket); ncc reads ONNX files")
    if os.path.getsize(path) >= PROTOBUF_LIMIT:
        raise CompileError(f"{path} is {os.path.getsize(path) / 2**30:.1f} GiB, over protobuf's 2 GiB limit for one "
                           "ONNX file; save the weights as external data beside it")
    try:
        model = onnx.load(path, load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, OSError, MemoryError) as err:
        raise CompileError(f"{path} is not an ONNX model (cannot parse it: {type(err).__name__}"
                           f"{': ' + str(err) if str(err) else ''})") from None
    if not model.opset_import or not model.graph.node:
        raise CompileError(f"{path} is not an ONNX model (no graph or no opset; empty or truncated file?)")
    _load_external_data(model, os.path.dirname(os.path.abspath(path)))
    return model


def _load_external_data(model, base_dir):
    """External data may only come from inside the model's own folder."""
    base = os.path.realpath(base_dir)
    # onnx has no public walk over every tensor (initializers, Constant attributes, subgraphs)
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        _check_external_fields(tensor)
        info = external_data_helper.ExternalDataInfo(tensor)
        location = os.path.realpath(os.path.join(base, info.location))
        if os.path.isabs(info.location) or os.path.commonpath([base, location]) != base:
            raise CompileError(f"tensor '{tensor.name}' points to external data outside the "
                               f"model's folder ({info.location}); refusing to read it")
        if not os.path.isfile(location):
            raise CompileError(f"tensor '{tensor.name}': external data file {info.location} is missing")
        size = os.path.getsize(location)
        if (info.offset or 0) > size or (info.length is not None and (info.offset or 0) + info.length > size):
            raise CompileError(f"tensor '{tensor.name}': external data at offset {info.offset or 0} "
                               f"length {info.length} lies beyond the end of {info.location} ({size} bytes)")
    try:
        external_data_helper.load_external_data_for_model(model, base)
    except (OSError, ValueError) as err:
        raise CompileError(f"cannot read external data: {err}") from None


def _check_external_fields(tensor):
    """onnx parses offset and length with int() and hands the location to the
    file system as it is: check them first, so a corrupt entry is one line."""
    for entry in tensor.external_data:
        if entry.key == "location" and ("\0" in entry.value or not entry.value):
            raise CompileError(f"tensor '{tensor.name}': external data location is empty or holds a NUL byte")
        if entry.key in ("offset", "length") and not (entry.value.isascii() and entry.value.isdigit()):
            raise CompileError(f"tensor '{tensor.name}': external data {entry.key} '{entry.value}' "
                               "is not a non-negative integer")


def default_opset(model) -> int:
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return opset.version
    raise CompileError("the model imports no version of the default ONNX domain")


def _convert_opset(model):
    version = default_opset(model)
    newest = onnx.defs.onnx_opset_version()
    if version > newest:
        raise CompileError(f"the model uses opset {version}, newer than this onnx supports ({newest})")
    if version >= NCC_OPSET:
        return model
    if version < MIN_OPSET:
        raise CompileError(f"opset {version} is too old to convert (ncc converts opset {MIN_OPSET} and newer)")
    try:
        converted = version_converter.convert_version(model, NCC_OPSET)
    except Exception as err:  # the converter raises bare RuntimeErrors from C++
        raise CompileError(f"cannot convert opset {version} to {NCC_OPSET}: {err}") from None
    converted.metadata_props.add(key="ncc.converted_from_opset", value=str(version))
    return converted


def _drop_initializer_inputs(model):
    """Old exporters list weights as graph inputs; compiling freezes them."""
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != len(model.graph.input):
        del model.graph.input[:]
        model.graph.input.extend(inputs)


def _name_nodes(model):
    """Passes, errors and the manifest refer to nodes by name: give every node a unique one."""
    taken = {node.name for node in model.graph.node if node.name}
    seen = set()
    for index, node in enumerate(model.graph.node):
        if node.name and node.name not in seen:
            seen.add(node.name)
            continue
        base = f"{node.name or node.op_type}_{index}"
        name, n = base, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        node.name = name
        taken.add(name)
        seen.add(name)


def _set_input_shapes(model, input_shapes):
    inputs = {i.name: i for i in model.graph.input}
    unknown = sorted(set(input_shapes) - set(inputs))
    if unknown:
        raise UsageError(f"--input-shape names no graph input: {', '.join(unknown)} "
                         f"(inputs: {', '.join(inputs) or 'none'})")
    for name, value in inputs.items():
        if not value.type.HasField("tensor_type"):
            raise CompileError(f"graph input '{name}' is not a tensor")
        dims = value.type.tensor_type.shape.dim
        if name in input_shapes:
            shape = input_shapes[name]
            if value.type.tensor_type.HasField("shape") and len(dims) != len(shape):
                raise UsageError(f"--input-shape {name}: rank {len(shape)} given, the input has rank {len(dims)}")
            _assign(value, shape)
            continue
        if not value.type.tensor_type.HasField("shape"):
            raise UsageError(f"graph input '{name}' has no shape; give --input-shape {name}:DIMS")
        shape = []
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(dim.dim_value)
            elif axis == 0:
                shape.append(1)  # the batch dimension defaults to 1
            else:
                label = dim.dim_param or "?"
                raise UsageError(f"graph input '{name}' has dynamic dimension {axis} ('{label}'); "
                                 f"give --input-shape {name}:DIMS")
        _assign(value, shape)


def _assign(value, shape):
    tensor_shape = value.type.tensor_type.shape
    del tensor_shape.dim[:]
    for size in shape:
        tensor_shape.dim.add().dim_value = int(size)


def _clear_output_shapes(model, all_dims):
    """Declared output shapes may name a dynamic batch, or a batch that
    --input-shape changed; inference restates them."""
    for output in model.graph.output:
        for dim in output.type.tensor_type.shape.dim:
            if all_dims or not dim.HasField("dim_value"):
                dim.Clear()


def check_model(model):
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, shape_inference.InferenceError) as err:
        raise CompileError(f"invalid ONNX graph: {_first_line(err)}") from None
    except UnicodeDecodeError:  # the checker's message quotes a name that is not UTF-8 (a corrupt file)
        raise CompileError("invalid ONNX graph: a name or string in it is not valid UTF-8") from None
    except ValueError as err:  # onnx's own checks outside the C++ checker, e.g. an unknown tensor data type
        raise CompileError(f"invalid ONNX graph: {_first_line(err)}") from None


def infer_shapes(model) -> onnx.ModelProto:
    # strip stale value_info: a pass may have changed what it described
    del model.graph.value_info[:]
    try:
        return shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError) as err:
        raise CompileError(f"shape inference failed: {_first_line(err)}") from None


def _require_static_tensors(model):
    dynamic = shape_folding.first_dynamic_tensor(model)
    if dynamic:
        name, node = dynamic
        kind = "graph output" if name in {o.name for o in model.graph.output} else "tensor"
        raise CompileError(f"{kind} '{name}' (output of {node.op_type} '{node.name}') has no static shape "
                           "after folding shape subgraphs and shape inference: it depends on the input's values")


def _require_positive_dims(model):
    """onnx's checker passes a pool or convolution whose kernel exceeds its
    padded input, its output's size then being 0 or negative; no target runs it."""
    producers = {out: node for node in model.graph.node for out in node.output}
    for value in (*model.graph.value_info, *model.graph.output):
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim if d.HasField("dim_value")]
        if any(d < 1 for d in dims):
            node = producers.get(value.name)
            by = f" (output of {node.op_type} '{node.name}')" if node else ""
            raise CompileError(f"tensor '{value.name}'{by} would have shape {dims}: a dimension below 1 "
                               "(a kernel larger than its padded input?)")


def _check_pool_windows(model):
    """Refuse a ceil_mode pool whose last window would start in the end
    padding: ONNX's shape inference (opset <= 18) counts that window, ONNX
    Runtime, PyTorch and later opsets drop it, so its targets would disagree
    on the output's size."""
    shapes = {value.name: [d.dim_value for d in value.type.tensor_type.shape.dim]
              for value in (*model.graph.input, *model.graph.value_info, *model.graph.output)}
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type not in ("MaxPool", "AveragePool") or not attrs.get("ceil_mode"):
            continue
        source, result = shapes.get(node.input[0]), shapes.get(node.output[0])
        if attrs.get("auto_pad", b"NOTSET") != b"NOTSET" or not source or not result:
            continue
        axes = len(attrs["kernel_shape"])
        pads, strides = attrs.get("pads", [0] * 2 * axes), attrs.get("strides", [1] * axes)
        for axis, kernel in enumerate(attrs["kernel_shape"]):
            size, stride, begin = source[2 + axis], strides[axis], pads[axis]
            span = attrs.get("dilations", [1] * axes)[axis] * (kernel - 1) + 1
            windows = -(-(size + begin + pads[axes + axis] - span) // stride) + 1
            if (windows - 1) * stride >= size + begin:  # the last one starts in the end padding
                windows -= 1
            if windows != result[2 + axis]:
                raise CompileError(
                    f"{node.op_type} '{node.name}' (ceil_mode=1): its last window along axis {2 + axis} starts in "
                    f"the padding, so ONNX's shape inference gives {result[2 + axis]} outputs and ONNX Runtime "
                    f"and PyTorch {windows}; export it without ceil_mode or with less end padding")


def _check_conv_channels(model):
    """What ONNX's shape inference does not check and no runtime can run: a
    Conv's group must be at least 1 and divide its output channels, and its
    weight's input channels times group must be the input's channels."""
    shapes = {value.name: [d.dim_value for d in value.type.tensor_type.shape.dim]
              for value in (*model.graph.input, *model.graph.value_info, *model.graph.output)}
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        group = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "group"), 1)
        weight, source = weights.get(node.input[1]) or shapes.get(node.input[1]), shapes.get(node.input[0])
        if group < 1:
            raise CompileError(f"Conv '{node.name}' has group={group}; it must be at least 1")
        if not weight or not source or len(weight) < 2 or len(source) < 2:
            continue
        if weight[0] % group:
            raise CompileError(f"Conv '{node.name}': group={group} does not divide its {weight[0]} output channels")
        if weight[1] * group != source[1]:
            raise CompileError(f"Conv '{node.name}': its weight takes {weight[1]} input channels per group x "
                               f"group={group} = {weight[1] * group}, but its input '{node.input[0]}' has {source[1]}")


def input_shape(model, index: int = 0) -> list:
    """The static shape of a loaded model's graph input."""
    return [d.dim_value for d in model.graph.input[index].type.tensor_type.shape.dim]


def _first_line(err) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
