import numpy as np
import pytest
from ncc.passes import HardActivations
from onnx import helper
from onnx_builders import apply_passes, make_model, ops

SCALARS = {"six": np.float32(6), "sixth": np.float32(1 / 6), "half": np.float32(0.5), "three": np.float32(3),
           "zero": np.float32(0), "one": np.float32(1), "point4": np.float32(0.4)}


def chain(*nodes):
    """x -> nodes -> y, the scalars above as initializers."""
    return make_model([helper.make_node(op, inputs, [out]) for op, inputs, out in nodes], SCALARS)


@pytest.mark.parametrize("model,kept", [
    (chain(("Div", ["x", "six"], "a"), ("Add", ["a", "half"], "b"), ("Clip", ["b", "zero", "one"], "y")),
     ["HardSigmoid"]),  # GhostNet's clamp(x / 6 + 0.5, 0, 1)
    (chain(("Mul", ["sixth", "x"], "a"), ("Add", ["half", "a"], "b"), ("Clip", ["b", "zero", "one"], "y")),
     ["HardSigmoid"]),
    (chain(("Add", ["x", "three"], "a"), ("Clip", ["a", "zero", "six"], "b"), ("Div", ["b", "six"], "y")),
     ["HardSigmoid"]),  # relu6(x + 3) / 6
    (chain(("HardSwish", ["x"], "y")), ["HardSigmoid", "Mul"]),
])
def test_hard_activations_become_hard_sigmoid_and_mul_with_the_same_outputs(model, kept):
    folded, records = apply_passes(model, HardActivations())
    assert ops(folded) == kept
    assert records[0].verified["max_rel_error"] <= 1e-5


@pytest.mark.parametrize("model", [
    chain(("Div", ["x", "six"], "a"), ("Add", ["a", "point4"], "b"), ("Clip", ["b", "zero", "one"], "y")),
    make_model([helper.make_node("Div", ["x", "six"], ["a"]), helper.make_node("Add", ["a", "half"], ["b"]),
                helper.make_node("Clip", ["b", "zero", "one"], ["c"]), helper.make_node("Add", ["b", "c"], ["y"])],
               SCALARS),  # the sum before the Clip has another reader
])
def test_what_is_not_a_hard_sigmoid_alone_is_left_alone(model):
    folded, records = apply_passes(model, HardActivations())
    assert ops(folded) == [node.op_type for node in model.graph.node] and not records[0].changed
