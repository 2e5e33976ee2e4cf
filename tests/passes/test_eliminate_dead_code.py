import numpy as np
from ncc.passes import EliminateDeadCode
from onnx import helper
from onnx_builders import apply_passes, make_model, ops


def test_removes_identity_dropout_and_unused_nodes_keeping_output_names():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("Dropout", ["r"], ["d"], name="drop"),
         helper.make_node("Mul", ["x", "orphan"], ["unused"]),
         helper.make_node("Identity", ["d"], ["y"])],
        {"orphan": np.ones((1, 3, 1, 1), np.float32)})
    cleaned, records = apply_passes(model, EliminateDeadCode())
    assert ops(cleaned) == ["Relu"]
    assert [o.name for o in cleaned.graph.output] == ["y"]
    assert not cleaned.graph.initializer
    assert records[0].stats == {"identity_removed": 1, "dropout_removed": 1, "dead_nodes_removed": 1,
                                "initializers_removed": 1}
    assert records[0].verified["max_rel_error"] == 0


def test_keeps_dropout_whose_mask_is_used_and_identity_of_graph_input():
    model = make_model(
        [helper.make_node("Dropout", ["x"], ["d", "mask"]),
         helper.make_node("Cast", ["mask"], ["m"], to=1),
         helper.make_node("Add", ["d", "m"], ["y"]),
         helper.make_node("Identity", ["x"], ["z"])],
        outputs={"y": [1, 3, 8, 8], "z": [1, 3, 8, 8]})
    cleaned, records = apply_passes(model, EliminateDeadCode())
    assert sorted(ops(cleaned)) == ["Add", "Cast", "Dropout", "Identity"]
    assert not records[0].changed


def test_keeps_unused_graph_inputs():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], inputs={"x": [1, 3, 8, 8], "extra": [2]})
    cleaned, _ = apply_passes(model, EliminateDeadCode())
    assert [i.name for i in cleaned.graph.input] == ["x", "extra"]
