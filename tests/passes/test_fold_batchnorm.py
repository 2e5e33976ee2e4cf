import numpy as np
import onnx
import pytest
from ncc.core import numerics
from ncc.compiler.loader import load_model
from ncc.passes import EliminateDeadCode, FoldBatchNorm, FoldConstants
from onnx import helper
from onnx_builders import ZOO_CASES, apply_passes, make_model, ops


def _bn_inputs(rng, n, prefix="bn"):
    return {f"{prefix}.scale": rng.uniform(0.5, 1.5, n).astype(np.float32),
            f"{prefix}.bias": rng.normal(0, 0.1, n).astype(np.float32),
            f"{prefix}.mean": rng.normal(0, 0.1, n).astype(np.float32),
            f"{prefix}.var": rng.uniform(0.5, 2, n).astype(np.float32)}


def _bn(x, y, prefix="bn"):
    return helper.make_node("BatchNormalization", [x, *(f"{prefix}.{k}" for k in ("scale", "bias", "mean", "var"))],
                            [y], epsilon=1e-3)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("group", [1, 3])
def test_folds_conv_bn(rng, bias, group):
    weight = rng.normal(size=(6, 3 // group, 3, 3)).astype(np.float32)
    inits = {"w": weight, **_bn_inputs(rng, 6)}
    conv_inputs = ["x", "w"]
    if bias:
        inits["b"] = rng.normal(size=6).astype(np.float32)
        conv_inputs.append("b")
    model = make_model([helper.make_node("Conv", conv_inputs, ["c"], pads=[1] * 4, group=group), _bn("c", "y")],
                       inits, outputs={"y": [1, 6, 8, 8]})
    folded, records = apply_passes(model, FoldBatchNorm())
    assert ops(folded) == ["Conv"]
    assert folded.graph.output[0].name == "y"
    assert records[0].stats["folded"] == 1
    assert records[0].verified["max_rel_error"] <= 1e-5


@pytest.mark.parametrize("trans_b", [0, 1])
def test_folds_gemm_bn_with_alpha_beta(rng, trans_b):
    weight = rng.normal(size=(5, 4) if trans_b else (4, 5)).astype(np.float32)
    inits = {"w": weight, "c": rng.normal(size=5).astype(np.float32), **_bn_inputs(rng, 5)}
    model = make_model([helper.make_node("Gemm", ["x", "w", "c"], ["g"], transB=trans_b, alpha=0.5, beta=2.0),
                        _bn("g", "y")], inits, inputs={"x": [2, 4]}, outputs={"y": [2, 5]})
    folded, records = apply_passes(model, FoldBatchNorm())
    assert ops(folded) == ["Gemm"]
    assert records[0].verified["max_rel_error"] <= 1e-5


def test_keeps_bn_that_follows_no_layer_or_a_shared_output(rng):
    weight = rng.normal(size=(3, 3, 1, 1)).astype(np.float32)
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), _bn("r", "a", "bn"),
         helper.make_node("Conv", ["a", "w"], ["c"]), _bn("c", "d", "bn2"),
         helper.make_node("Add", ["c", "d"], ["y"])],
        {"w": weight, **_bn_inputs(rng, 3, "bn"), **_bn_inputs(rng, 3, "bn2")})
    folded, records = apply_passes(model, FoldBatchNorm())
    assert ops(folded).count("BatchNormalization") == 2
    kept = records[0].stats["kept"]
    assert len(kept) == 2 and any("not Conv or Gemm" in why for why in kept.values())
    assert any("also used elsewhere" in why for why in kept.values())
    assert not records[0].changed


@pytest.mark.parametrize("name,dataset", ZOO_CASES)
def test_zoo_models_fold_to_equivalent_graphs(zoo_onnx, name, dataset):
    original = load_model(zoo_onnx(name, dataset))
    folded, records = apply_passes(original, FoldConstants(), EliminateDeadCode(), FoldBatchNorm())
    assert "BatchNormalization" not in ops(folded)
    assert "Identity" not in ops(folded)
    onnx.checker.check_model(folded, full_check=True)
    assert numerics.max_relative_error(original, folded, seed=3) <= 1e-5
    assert records[-1].stats["folded"] == ops(original).count("BatchNormalization")
