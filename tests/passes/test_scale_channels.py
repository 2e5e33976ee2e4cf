import numpy as np
import onnx
import pytest
from ncc.core import numerics
from ncc.compiler.loader import load_model
from ncc.compiler.pass_manager import PassManager
from ncc.compiler.pipeline import channel_groups
from ncc.passes import ScaleChannels
from ncc.passes.analysis.cost import count_parameters
from ncc.passes.base import PassContext
from ncc.passes.channel_widths import uniform_width
from onnx import helper, numpy_helper
from onnx_builders import ZOO_CASES, make_model

RATIOS = (0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def simplified(zoo_onnx):
    cache = {}

    def get(name, dataset):
        if (name, dataset) not in cache:
            cache[name, dataset] = channel_groups(load_model(zoo_onnx(name, dataset)))[0]
        return cache[name, dataset]

    return get


def scale(model, *args, **kwargs):
    manager = PassManager([ScaleChannels(*args, **kwargs)])
    return manager.run(model, PassContext()), manager.records[0].stats


def conv_widths(model) -> dict:
    inits = {i.name: i for i in model.graph.initializer}
    return {n.name: inits[n.input[1]].dims[0] for n in model.graph.node if n.op_type == "Conv"}


@pytest.mark.parametrize("name,dataset", ZOO_CASES)
def test_uniform_scaling_of_the_zoo(simplified, name, dataset):
    model = simplified(name, dataset)
    feeds = numerics.random_inputs(model)
    reference = numerics.run(model, feeds)[0]
    for ratio in RATIOS:
        scaled, stats = scale(model, "uniform", ratio)
        onnx.checker.check_model(scaled, full_check=True)
        output = numerics.run(scaled, feeds)[0]
        assert output.shape == reference.shape
        assert stats["params_after"] == count_parameters(scaled)
        for widths in stats["widths"]:
            assert widths["final"] == uniform_width(widths["original"], ratio)
        produced = conv_widths(scaled)
        for widths in stats["widths"]:
            if widths["id"] in produced:
                assert produced[widths["id"]] == widths["final"], widths["id"]
        if ratio == 1.0:
            assert np.array_equal(output, reference)


@pytest.mark.parametrize("name", ["vgg11", "mobilenetv2", "resnet50"])
def test_growth_keeps_outputs(simplified, name):
    model = simplified(name, "cifar10")
    grown, stats = scale(model, "uniform", 1.5, seed=7)
    assert stats["params_after"] > stats["params_before"]
    assert numerics.max_relative_error(model, grown, seed=1) <= 1e-5
    again, _ = scale(model, "uniform", 1.5, seed=7)
    assert again.SerializeToString() == grown.SerializeToString()


def test_dropping_all_zero_channels_keeps_outputs(zoo_onnx):
    """Zero half the channels of every VGG layer (weights, bias and BatchNorm
    shift): L1 importance must drop exactly those, and nothing changes."""
    model = load_model(zoo_onnx("vgg11"))
    inits = {i.name: i for i in model.graph.initializer}
    rng = np.random.default_rng(0)
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        weight = numpy_helper.to_array(inits[node.input[1]]).copy()
        dead = rng.permutation(weight.shape[0])[: weight.shape[0] // 2]
        weight[dead] = 0
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(weight, node.input[1]))
        _zero(inits, node.input[2], dead)
        bn = next(n for n in model.graph.node if n.input and n.input[0] == node.output[0])
        _zero(inits, bn.input[2], dead)  # shift
        _zero(inits, bn.input[3], dead)  # mean
    simplified = channel_groups(model)[0]
    halved, stats = scale(simplified, "uniform", 0.5)
    assert all(w["final"] * 2 == w["original"] for w in stats["widths"])
    assert numerics.max_relative_error(simplified, halved) <= 1e-5


def _zero(inits, name, rows):
    values = numpy_helper.to_array(inits[name]).copy()
    values[rows] = 0
    inits[name].CopyFrom(numpy_helper.from_array(values, name))


def _concat_flatten_model():
    rng = np.random.default_rng(3)
    w = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    nodes = [helper.make_node("Conv", ["x", "c1.w"], ["a"], name="c1", pads=[1] * 4),
             helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("Conv", ["x", "c2.w", "c2.b"], ["b"], name="c2", pads=[1] * 4),
             helper.make_node("BatchNormalization", ["b", "bn.s", "bn.b", "bn.m", "bn.v"], ["nb"]),
             helper.make_node("Concat", ["ra", "nb"], ["cat"], axis=1),
             helper.make_node("Mul", ["cat", "gain"], ["g"]),
             helper.make_node("MaxPool", ["g"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
    inits = {"c1.w": w(4, 3, 3, 3), "c2.w": w(6, 3, 3, 3), "c2.b": w(6),
             "bn.s": w(6) + 2, "bn.b": w(6), "bn.m": w(6), "bn.v": np.abs(w(6)) + 0.5,
             "gain": w(1, 10, 1, 1), "fc.w": w(5, 10 * 2 * 2), "fc.b": w(5)}
    return load_model_from(make_model(nodes, inits, inputs={"x": [1, 3, 4, 4]}, outputs={"y": [1, 5]}))


def load_model_from(model):
    from ncc.compiler.loader import prepare_model

    return prepare_model(model)


@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.0])
def test_concat_and_flatten_to_gemm_on_a_2x2_map(ratio):
    model = _concat_flatten_model()
    scaled, stats = scale(model, "uniform", ratio)
    widths = {w["id"]: w["final"] for w in stats["widths"]}
    assert widths == {"c1": uniform_width(4, ratio), "c2": uniform_width(6, ratio)}
    fc = next(i for i in scaled.graph.initializer if i.name.startswith("fc") and len(i.dims) == 2)
    assert list(fc.dims) == [5, (widths["c1"] + widths["c2"]) * 4]
    assert stats["params_after"] == count_parameters(scaled)
    output = numerics.run(scaled, numerics.random_inputs(scaled))[0]
    assert output.shape == (1, 5) and np.isfinite(output).all()
    if ratio >= 1:
        assert numerics.max_relative_error(model, scaled) <= 1e-5


def test_importance_methods_choose_and_keep_order():
    weight = np.zeros((6, 3, 1, 1), np.float32)
    weight[:, 0, 0, 0] = [1, 5, 2, 5, 3, 0.5]
    weight[:, 1, 0, 0] = [0, 0, 0, 0, 0, 4]  # L2 prefers row 5 more than L1 does
    consumer = np.tile(np.arange(6, dtype=np.float32), 2).reshape(2, 6, 1, 1)  # column j holds j
    model = load_model_from(make_model(
        [helper.make_node("Conv", ["x", "w"], ["a"], name="c1"), helper.make_node("Conv", ["a", "w2"], ["y"])],
        {"w": weight, "w2": consumer}, outputs={"y": [1, 2, 8, 8]}))

    def kept(importance):
        scaled, _ = scale(model, "uniform", 0.5, importance=importance)
        inits = {i.name: numpy_helper.to_array(i) for i in scaled.graph.initializer}
        return [int(c) for c in inits[scaled.graph.node[1].input[1]][0, :, 0, 0]]  # consumer columns

    assert kept("l1") == [1, 3, 5]  # 5, 5 (tie: lower index first), then 4.5
    assert kept("first") == [0, 1, 2]
    assert kept("l2") == [1, 3, 5]


def test_rounding_to_a_multiple(simplified):
    model = simplified("resnet50", "cifar10")
    _, stats = scale(model, "uniform", 0.3, round_to=16)
    for widths in stats["widths"]:
        assert widths["final"] % 16 == 0 and widths["final"] >= 16
        assert abs(widths["final"] - widths["unrounded"]) <= 8
    assert any(w["final"] != w["unrounded"] for w in stats["widths"])


def synthetic_records(groups, rows=10):
    """A prune record as architecture descent would leave it: every group
    shrinks, some faster than others."""
    record = []
    for step in range(rows):
        keep = 1 - 0.07 * step
        record.append([max(1, round(g.width * keep ** (0.5 + (i % 3) * 0.5))) for i, g in enumerate(groups.scalable)])
    return np.array(record)


@pytest.mark.parametrize("name,dataset", ZOO_CASES)
def test_neuralscale_scaling_of_the_zoo(simplified, tmp_path, name, dataset):
    import onnx_graphsurgeon as gs
    from ncc.passes import neuralscale
    from ncc.passes.analysis.channel_groups import analyze

    model = simplified(name, dataset)
    groups = analyze(gs.import_onnx(model))
    ids = [g.id for g in groups.scalable]
    profile = neuralscale.fit_profile(synthetic_records(groups), ids, groups.param_count)
    path = tmp_path / "profile.json"
    neuralscale.save_profile(profile, path)
    feeds = numerics.random_inputs(model)
    for ratio in RATIOS:
        scaled, stats = scale(model, "neuralscale", ratio, profile=str(path))
        onnx.checker.check_model(scaled, full_check=True)
        assert numerics.run(scaled, feeds)[0].shape == numerics.run(model, feeds)[0].shape
        assert stats["params_after"] == count_parameters(scaled)
        assert abs(stats["params_after"] - stats["budget"]) / stats["budget"] < 0.02
        produced = conv_widths(scaled)
        for widths in stats["widths"]:
            if widths["id"] in produced:
                assert produced[widths["id"]] == widths["final"], widths["id"]
