import numpy as np
from ncc.passes import FoldConstants
from onnx import helper
from onnx_builders import apply_passes, make_model, ops


def test_folds_shape_arithmetic_of_a_flatten_written_as_reshape():
    model = make_model(
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Gather", ["s", "index"], ["n"], axis=0),
         helper.make_node("Unsqueeze", ["n", "zero"], ["n1"]),
         helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
         helper.make_node("Reshape", ["x", "target"], ["flat"]),
         helper.make_node("Mul", ["w", "two"], ["w2"]),
         helper.make_node("MatMul", ["flat", "w2"], ["y"])],
        {"index": np.int64(0), "zero": np.array([0], np.int64), "minus1": np.array([-1], np.int64),
         "w": np.ones((192, 4), np.float32), "two": np.float32(2)},
        outputs={"y": [1, 4]})
    folded, records = apply_passes(model, FoldConstants())
    assert ops(folded) == ["Reshape", "MatMul"]
    assert records[0].stats["nodes_folded"] == 1  # the weight's Mul; loading folded the shape arithmetic
    assert records[0].verified["max_rel_error"] <= 1e-5
    weights = {init.name: init for init in folded.graph.initializer}
    assert len(weights) == 2
