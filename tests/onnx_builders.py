"""Building small ONNX models in tests."""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ZOO_CASES = [(m, d) for m in ("vgg11", "mobilenetv2", "resnet50") for d in ("cifar10", "tinyimagenet")]


def make_model(nodes, initializers=None, inputs=None, outputs=None, opset=17, extra_opsets=()):
    """A model from onnx.helper parts; inputs/outputs are {name: shape} (float32)."""
    inputs = inputs or {"x": [1, 3, 8, 8]}
    outputs = outputs or {"y": [1, 3, 8, 8]}
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])
    return model


def save(model, folder, name="model.onnx") -> str:
    path = os.path.join(folder, name)
    onnx.save(model, path)
    return path


def apply_passes(model, *passes, verify=True):
    """Run passes through the pass manager as a compile would: (model, records)."""
    from ncc.compiler.loader import prepare_model
    from ncc.compiler.pass_manager import PassManager
    from ncc.passes.base import PassContext

    manager = PassManager(list(passes), verify=verify)
    return manager.run(prepare_model(model), PassContext()), manager.records


def ops(model) -> list:
    return [node.op_type for node in model.graph.node]
