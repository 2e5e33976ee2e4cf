import numpy as np
import onnx_graphsurgeon as gs
import pytest
from ncc.compiler.loader import load_model, prepare_model
from ncc.compiler.pipeline import channel_groups
from ncc.passes.analysis.channel_groups import IN, analyze
from ncc.passes.analysis.cost import count_parameters
from onnx import helper
from onnx_builders import ZOO_CASES, make_model

RNG = np.random.default_rng(0)


def conv(name, x, y, cin, cout, group=1, k=3):
    weight = RNG.normal(size=(cout, cin // group, k, k)).astype(np.float32)
    node = helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [y], name=name, pads=[k // 2] * 4, group=group)
    return node, {f"{name}.w": weight, f"{name}.b": RNG.normal(size=cout).astype(np.float32)}


def build(parts, outputs, inputs=None):
    nodes, inits = [], {}
    for part in parts:
        if isinstance(part, tuple):
            nodes.append(part[0])
            inits.update(part[1])
        else:
            nodes.append(part)
    return prepare_model(make_model(nodes, inits, inputs=inputs, outputs=outputs))


def groups_of(model):
    return analyze(gs.import_onnx(model))


def by_id(groups):
    return {g.id: g for g in groups.groups}


def test_residual_add_merges_groups_and_io_is_frozen():
    model = build([conv("c1", "x", "a", 3, 8), helper.make_node("Relu", ["a"], ["r"]),
                   conv("c2", "r", "b", 8, 8), helper.make_node("Add", ["a", "b"], ["s"]),
                   conv("c3", "s", "y", 8, 3)], {"y": [1, 3, 8, 8]})
    groups = by_id(groups_of(model))
    assert groups["c1"].producers == ["c1", "c2"] and groups["c1"].scalable
    assert "c2" not in groups
    assert groups["x"].frozen == ["graph input 'x'"]
    assert groups["c3"].frozen == ["graph output 'y'"]


def test_depthwise_ties_and_grouped_conv_freezes():
    model = build([conv("c1", "x", "a", 3, 8), conv("dw", "a", "b", 8, 8, group=8),
                   conv("g2", "b", "c", 8, 8, group=2), conv("c4", "c", "y", 8, 3)], {"y": [1, 3, 8, 8]})
    groups = groups_of(model)
    named = by_id(groups)
    assert "dw" not in named and "dw" not in named["c1"].producers
    assert named["c1"].frozen == ["grouped convolution 'g2' (group=2)"]
    assert named["g2"].frozen == ["grouped convolution 'g2' (group=2)"]
    assert [g.id for g in groups.scalable] == []
    assert [node.name for node, _ in groups.depthwise] == ["dw"]


def test_concat_output_is_the_segments_of_its_inputs():
    model = build([conv("c1", "x", "a", 3, 4), conv("c2", "x", "b", 3, 6),
                   helper.make_node("Concat", ["a", "b"], ["cat"], axis=1), conv("c3", "cat", "y", 10, 3)],
                  {"y": [1, 3, 8, 8]})
    groups = groups_of(model)
    consumer = [a for a in groups.axes if a.node.name == "c3" and a.role == IN][0]
    assert [groups.group(s.group).id for s in consumer.segments] == ["c1", "c2"]
    assert {g.id for g in groups.scalable} == {"c1", "c2"}


def test_flatten_to_gemm_uses_spatial_blocks():
    weight = RNG.normal(size=(5, 4 * 2 * 2)).astype(np.float32)
    model = build([conv("c1", "x", "a", 3, 4), helper.make_node("Flatten", ["a"], ["f"]),
                   (helper.make_node("Gemm", ["f", "fc.w"], ["y"], name="fc", transB=1), {"fc.w": weight})],
                  {"y": [1, 5]}, inputs={"x": [1, 3, 2, 2]})
    groups = groups_of(model)
    consumer = [a for a in groups.axes if a.node.name == "fc" and a.role == IN][0]
    assert consumer.axis == 1 and consumer.segments[0].block == 4
    assert groups.param_count({"c1": 2}) == 3 * 2 * 9 + 2 + 5 * 2 * 4


def test_unknown_op_freezes_what_it_touches():
    model = build([conv("c1", "x", "a", 3, 8), helper.make_node("LRN", ["a"], ["n"], name="lrn", size=3),
                   conv("c2", "n", "b", 8, 8), conv("c3", "b", "y", 8, 3)], {"y": [1, 3, 8, 8]})
    named = by_id(groups_of(model))
    assert named["c1"].frozen == ["used by LRN node 'lrn'"]
    assert named["n"].frozen == ["produced by LRN node 'lrn'"]
    assert named["c2"].scalable


def test_per_channel_constants_follow_and_broadcasts_do_not():
    model = build([conv("c1", "x", "a", 3, 8),
                   (helper.make_node("Mul", ["a", "scale"], ["m"]), {"scale": np.ones((1, 8, 1, 1), np.float32)}),
                   (helper.make_node("Add", ["m", "shift"], ["s"]), {"shift": np.float32(1)}),
                   conv("c2", "s", "y", 8, 3)], {"y": [1, 3, 8, 8]})
    groups = groups_of(model)
    assert by_id(groups)["c1"].scalable
    channelwise = [(a.node.op, a.axis) for a in groups.axes if a.role == "channel"]
    assert channelwise == [("Mul", 1)]


@pytest.mark.parametrize("name,dataset", ZOO_CASES)
def test_zoo_groups_count_parameters_exactly(zoo_onnx, name, dataset):
    simplified, groups = channel_groups(load_model(zoo_onnx(name, dataset)))
    assert groups.param_count({}) == count_parameters(simplified)
    frozen = [g for g in groups.groups if not g.scalable]
    assert [g.frozen for g in frozen] == [["graph input 'input'"], ["graph output 'logits'"]]
    expected = {"vgg11": 8, "mobilenetv2": 25, "resnet50": 37}[name]
    assert len(groups.scalable) == expected


def _cut_model(cut_nodes, cut_width):
    """c1 (4) and c2 (6) concatenated, cut by `cut_nodes` into "part" (`cut_width` channels), then c3."""
    return build([conv("c1", "x", "a", 3, 4), conv("c2", "x", "b", 3, 6),
                  helper.make_node("Concat", ["a", "b"], ["cat"], axis=1), *cut_nodes,
                  conv("c3", "part", "y", cut_width, 3)], {"y": [1, 3, 8, 8]})


def _slice(start, end):
    return (helper.make_node("Slice", ["cat", "starts", "ends", "axes"], ["part"], name="cut"),
            {"starts": np.array([start]), "ends": np.array([end]), "axes": np.array([1])})


def _scaled_half(model):
    from ncc.compiler.pass_manager import PassManager
    from ncc.passes import ScaleChannels
    from ncc.passes.base import PassContext

    return PassManager([ScaleChannels("uniform", 0.5)]).run(model, PassContext())


@pytest.mark.parametrize("cut,width,kept", [
    ([_slice(4, 10)], 6, ["c2"]),  # a ShuffleNet-style split's second half
    ([_slice(0, 2**62)], 10, ["c1", "c2"]),  # GhostNet's cut back to the concatenated width
    ([(helper.make_node("Split", ["cat", "sizes"], ["first", "part"], name="cut", axis=1),
       {"sizes": np.array([4, 6])}), helper.make_node("Relu", ["first"], ["unused"])], 6, ["c2"]),
])
def test_a_channel_cut_on_group_boundaries_keeps_those_groups_and_scales(cut, width, kept):
    from ncc.core import numerics

    model = _cut_model(cut, width)
    groups = groups_of(model)
    consumer = [a for a in groups.axes if a.node.name == "c3" and a.role == IN][0]
    assert [groups.group(s.group).id for s in consumer.segments] == kept
    assert {g.id for g in groups.scalable} == {"c1", "c2"}
    scaled = _scaled_half(model)
    weights = {init.name: init.dims for init in scaled.graph.initializer}
    c3 = next(node for node in scaled.graph.node if node.name == "c3")
    assert weights[c3.input[1]][1] == width // 2
    assert numerics.run(scaled, numerics.random_inputs(scaled))[0].shape == (1, 3, 8, 8)


def test_a_channel_slice_inside_a_group_freezes_it_saying_where():
    groups = by_id(groups_of(_cut_model([_slice(0, 7)], 7)))
    assert groups["c2"].frozen == ["Slice 'cut' cuts the channel axis inside a group (at channels 7)"]
    assert groups["c1"].frozen == groups["c2"].frozen


def test_a_channel_shuffle_freezes_its_groups_with_the_reason():
    shuffle = [(helper.make_node("Reshape", ["cat", "split_shape"], ["grouped"], name="shuffle"),
                {"split_shape": np.array([1, 2, 5, 8, 8])}),
               helper.make_node("Transpose", ["grouped"], ["swapped"], perm=[0, 2, 1, 3, 4]),
               (helper.make_node("Reshape", ["swapped", "flat_shape"], ["part"]),
                {"flat_shape": np.array([1, 10, 8, 8])})]
    groups = by_id(groups_of(_cut_model(shuffle, 10)))
    reason = "channel shuffle at Reshape 'shuffle' (Reshape-Transpose-Reshape) interleaves the channels of its groups"
    assert groups["c1"].frozen == [reason] and groups["c2"].frozen == [reason]
