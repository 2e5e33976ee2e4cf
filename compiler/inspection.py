"""What a model is made of and what it costs, without compiling it: the summary
`ncc inspect` prints and `ncc.compiler.inspect` returns."""

from collections import Counter

import onnx

from ncc.passes.analysis.cost import model_cost, tensor_info


def summarize(model: onnx.ModelProto) -> dict:
    initializers = {init.name for init in model.graph.initializer}
    return {
        "inputs": [_describe(v) for v in model.graph.input if v.name not in initializers],
        "outputs": [_describe(v) for v in model.graph.output],
        "ops": dict(sorted(Counter(node.op_type for node in model.graph.node).items())),
        **model_cost(model).to_dict(),  # params, macs, weight_bytes, peak_activation_bytes, layers
    }


def _describe(value: onnx.ValueInfoProto) -> dict:
    info = tensor_info(value)  # the loader guarantees static inputs and outputs
    return {"name": value.name, "shape": list(info.shape), "dtype": info.dtype.name}
