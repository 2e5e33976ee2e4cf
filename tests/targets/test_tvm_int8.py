"""int8 models on the TVM targets execute integer kernels: every convolution
and matmul of a QDQ model reads uint8/int8 operands (no float convolution
remains), and the outputs equal ONNX Runtime's QDQ execution within one
quantization step."""

import json
import os
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from cli_helpers import invoke

needs_cross = pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-g++") and shutil.which("qemu-aarch64")),
                                 reason="needs g++-aarch64-linux-gnu and qemu-user (.ci/apt-packages.txt)")
INTEGER = {"int8", "uint8"}


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory, zoo_onnx):
    folder = tmp_path_factory.mktemp("int8")

    def get(model, target, ratio=0.25):
        out = folder / f"{model}-{target}-{ratio}"
        if not out.exists():
            result = invoke("compile", zoo_onnx(model), "-o", out, "--target", target, "--quantize", "int8",
                            "--calib-samples", "8", "--scale", f"uniform:{ratio}")
            assert result.exit_code == 0, result.output
        return out

    return get


def run_against_onnxruntime(bundle, folder):
    """The bundle's output on one input and ORT's QDQ output on it, and one quantization step."""
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.save(folder / "x.npy", x)
    result = invoke("run", bundle, "--input", folder / "x.npy", "--output", folder / "y.npy")
    assert result.exit_code == 0, result.output
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    return np.load(folder / "y.npy"), expected, output_step(onnx.load(bundle / "model.onnx"))


def output_step(model: onnx.ModelProto) -> float:
    """The scale of the DequantizeLinear that gives the graph output: one quantization step."""
    output = model.graph.output[0].name
    node = next(n for n in model.graph.node if output in n.output)
    assert node.op_type == "DequantizeLinear"
    scale = next(i for i in model.graph.initializer if i.name == node.input[1])
    return float(onnx.numpy_helper.to_array(scale))


@pytest.mark.parametrize("model,target,ratio", [
    *[(model, "host", ratio) for model in ("vgg11", "mobilenetv2", "resnet50") for ratio in (0.25, 0.5, 0.75, 1)],
    pytest.param("vgg11", "cortex-a72", 0.5, marks=needs_cross),
    pytest.param("mobilenetv2", "cortex-a72", 0.25, marks=needs_cross),
    pytest.param("resnet50", "cortex-a72", 0.25, marks=needs_cross),
])
def test_int8_bundle_equals_onnxruntime_qdq_within_one_step(int8_bundle, tmp_path, model, target, ratio):
    got, expected, step = run_against_onnxruntime(int8_bundle(model, target, ratio), tmp_path)
    assert np.abs(got - expected).max() <= step * (1 + 1e-5)


NEURALSCALE_VGG = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "reference",
                               "neuralscale", "vgg_10_eff_c10.json")


@pytest.mark.skipif(not os.path.isfile(NEURALSCALE_VGG), reason="shared/reference is not beside this checkout")
def test_neuralscale_widths_run_scheduled_integer_kernels(tmp_path, zoo_onnx):
    """NeuralScale's VGG-11 widths (137, 230, ...) fill no vector block: the
    integer convolutions are computed with zero-weight channels up to one and
    sliced, so every kernel still takes a default schedule, exactly."""
    profile = tmp_path / "vgg.json"
    imported = invoke("profile", "import", NEURALSCALE_VGG, "--model", zoo_onnx("vgg11"), "-o", profile)
    assert imported.exit_code == 0, imported.output
    bundle = tmp_path / "b"
    result = invoke("compile", zoo_onnx("vgg11"), "-o", bundle, "--target", "host", "--quantize", "int8",
                    "--calib-samples", "8", "--scale", "neuralscale:0.5", "--profile", profile)
    assert result.exit_code == 0, result.output
    model = onnx.load(bundle / "model.onnx")
    widths = [int(i.dims[0]) for i in model.graph.initializer if len(i.dims) == 4]
    assert any(w % 8 for w in widths), widths
    schedules = json.loads((bundle / "manifest.json").read_text())["target"]["schedules"]
    convolutions = [rule for kernel, rule in schedules.items() if "conv2d" in kernel]
    assert convolutions == ["default:conv2d-int8"] * len(widths)
    assert all(rule == "default:pool2d" for kernel, rule in schedules.items() if "pool" in kernel)
    got, expected, step = run_against_onnxruntime(bundle, tmp_path)
    assert np.abs(got - expected).max() <= step * (1 + 1e-5)


@pytest.mark.parametrize("model", ["vgg11", "mobilenetv2", "resnet50"])
def test_no_float_convolution_remains_in_an_int8_model(int8_bundle, model):
    from ncc.targets.tvm import build as tvm_build
    from ncc.targets.tvm.host import HostTarget
    from ncc.targets.tvm.integer_ops import integer_layers_pass
    from tvm import relax, tirx

    qdq = onnx.load(int8_bundle(model, "host") / "model.onnx")
    layers = []

    def collect(expr):
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") in ("relax.nn.conv2d", "relax.matmul"):
            layers.append((expr.op.name, [str(arg.ty.dtype) for arg in expr.args], str(expr.ty.dtype)))

    relax.analysis.post_order_visit(integer_layers_pass()(tvm_build.import_onnx(qdq))["main"], collect)
    convolutions = sum(n.op_type == "Conv" for n in qdq.graph.node)
    assert sum(name == "relax.nn.conv2d" for name, _, _ in layers) == convolutions > 0
    for name, operands, result in layers:
        # wide depthwise convs sum their integers in float32 (exact; integer_ops._sums_in_float)
        assert operands[0] in INTEGER and (operands[1], result) in (("int8", "int32"), ("float32", "float32")), \
            (name, operands, result)

    # and so the compiled kernels: each convolution or matmul kernel reads integer activations
    prepared = tvm_build.prepare(tvm_build.import_onnx(qdq), tvm_build.tvm_target(HostTarget().machine()))
    for gvar, func in prepared.functions.items():
        if isinstance(func, tirx.PrimFunc) and ("conv2d" in gvar.name_hint or "matmul" in gvar.name_hint):
            assert {str(p.dtype) for p in func.params} & set(INTEGER), gvar.name_hint


def test_strided_pointwise_convolutions_become_strided_slices(int8_bundle):
    """ResNet-50's downsampling shortcuts (1x1, stride 2) run as a strided slice
    and a stride-1 integer conv, which the flattened-pixel schedule takes."""
    from ncc.targets.tvm import build as tvm_build
    from ncc.targets.tvm.integer_ops import integer_layers_pass
    from ncc.targets.tvm.strided_pointwise import strided_pointwise_pass
    from tvm import relax

    qdq = onnx.load(int8_bundle("resnet50", "host") / "model.onnx")
    strided = [n for n in qdq.graph.node if n.op_type == "Conv"
               and [a.ints for a in n.attribute if a.name == "strides"] == [[2, 2]]
               and [a.ints for a in n.attribute if a.name == "kernel_shape"] == [[1, 1]]]
    convs, slices = [], []

    def collect(expr):
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.nn.conv2d":
            convs.append(([int(d) for d in expr.args[1].ty.shape][2:], [int(s) for s in expr.attrs.strides],
                          expr.attrs.out_dtype))
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.strided_slice":
            slices.append(expr)

    integer = integer_layers_pass()(tvm_build.import_onnx(qdq))
    relax.analysis.post_order_visit(strided_pointwise_pass()(integer)["main"], collect)
    assert convs and all(c[0] != [1, 1] or str(c[2]) == "int32" for c in convs)
    assert strided and not [c for c in convs if c[:2] == ([1, 1], [2, 2])]
    assert len(slices) >= len(strided)


@pytest.mark.parametrize("model", ["resnet50", "mobilenetv2"])
def test_residual_adds_read_quantized_tensors(int8_bundle, model):
    """A residual Add is one integer kernel of both quantized tensors: no kernel
    hands a float32 tensor to the next except in the head (last conv, global
    pool, classifier: the last four calls)."""
    from ncc.targets.tvm import build as tvm_build
    from ncc.targets.tvm.host import HostTarget

    qdq = onnx.load(int8_bundle(model, "host") / "model.onnx")
    prepared = tvm_build.prepare(tvm_build.import_onnx(qdq), tvm_build.tvm_target(HostTarget().machine()))
    calls = [line for line in prepared["main"].script().splitlines() if "R.call_tir(" in line]
    assert sum("quantized_add" in line for line in calls) > 0
    floats = [i for i, line in enumerate(calls) if 'dtype="float32"' in line.split("out_ty")[-1]]
    assert floats and all(i >= len(calls) - 4 for i in floats), [calls[i][:100] for i in floats]
