"""The model zoo: the study's three networks, built in torch and exported to ONNX."""

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from ncc.study import zoo
from ncc.core.errors import UsageError
from torch import nn

CASES = [(model, dataset) for model in zoo.MODELS for dataset in zoo.DATASETS]


def export_bytes(module, dataset) -> bytes:
    buffer = io.BytesIO()
    zoo.export_onnx(module, dataset, buffer)
    return buffer.getvalue()


def random_input(dataset, seed=0) -> np.ndarray:
    _, size = zoo.DATASETS[dataset]
    return np.random.default_rng(seed).standard_normal((1, 3, size, size), dtype=np.float32)


def run_torch(module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def run_onnx(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x})[0]


def conv_widths(module) -> list:
    return [m.out_channels for m in module.modules() if isinstance(m, nn.Conv2d)]


class Exported:
    def __init__(self, model, dataset):
        self.model, self.dataset = model, dataset
        self.module = zoo.build(model, dataset)
        self.bytes = export_bytes(self.module, dataset)
        self.onnx = onnx.load_from_string(self.bytes)


@pytest.fixture(scope="module", params=CASES, ids=[f"{m}-{d}" for m, d in CASES])
def exported(request):
    return Exported(*request.param)


# --- build and export ----------------------------------------------------------

def test_output_has_one_logit_per_class(exported):
    classes, _ = zoo.DATASETS[exported.dataset]
    assert run_torch(exported.module, random_input(exported.dataset)).shape == (1, classes)


def test_export_is_valid_opset17_onnx_with_unfused_batchnorm(exported, tmp_path):
    model = exported.onnx
    path = tmp_path / "model.onnx"
    path.write_bytes(exported.bytes)
    onnx.checker.check_model(str(path), full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert "BatchNormalization" in {node.op_type for node in model.graph.node}
    _, size = zoo.DATASETS[exported.dataset]
    [graph_input], [graph_output] = model.graph.input, model.graph.output
    assert graph_input.name == "input"
    assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim] == [1, 3, size, size]
    assert graph_output.name == "logits"


def test_onnxruntime_matches_torch(exported):
    x = random_input(exported.dataset)
    np.testing.assert_allclose(run_onnx(exported.bytes, x), run_torch(exported.module, x),
                               rtol=1e-4, atol=1e-5)


def test_onnx_parameter_count_matches_torch(exported):
    from ncc.passes.analysis.cost import count_parameters

    assert count_parameters(exported.onnx) == sum(p.numel() for p in exported.module.parameters())


def test_export_is_deterministic_per_seed(exported):
    model, dataset = exported.model, exported.dataset
    assert export_bytes(zoo.build(model, dataset, seed=0), dataset) == exported.bytes
    assert export_bytes(zoo.build(model, dataset, seed=1), dataset) != exported.bytes


def test_vgg11_cifar10_has_the_usual_parameter_count():
    assert sum(p.numel() for p in zoo.build("vgg11", "cifar10").parameters()) == 9231114


@pytest.mark.parametrize("model", zoo.MODELS)
def test_half_width_halves_every_conv_and_keeps_input_and_classes(model):
    full, half = zoo.build(model, "cifar10"), zoo.build(model, "cifar10", width_mult=0.5)
    assert conv_widths(half) == [w // 2 for w in conv_widths(full)]
    assert next(m for m in half.modules() if isinstance(m, nn.Conv2d)).in_channels == 3
    assert run_torch(half, random_input("cifar10")).shape == (1, 10)


def test_width_rule_rounds_down_and_mobilenet_expands_the_scaled_width():
    assert conv_widths(zoo.build("vgg11", "cifar10", width_mult=0.3)) == [19, 38, 76, 76, 153, 153, 153, 153]
    mobilenet = conv_widths(zoo.build("mobilenetv2", "cifar10", width_mult=0.3))
    # stem 32 -> 9; t=1 block: depthwise 9, project 16 -> 4; next block expands 4 * 6 = 24
    assert mobilenet[:4] == [9, 9, 4, 24]
    assert mobilenet[-1] == 384  # head 1280 -> 384
    assert zoo.scale_width(3, 0.1) == 1


# --- checkpoints ---------------------------------------------------------------

@pytest.fixture
def trained_state():
    """A vgg11 state_dict unlike the seed-0 initialisation, as training would leave it."""
    module = zoo.build("vgg11", "cifar10", seed=5)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith(("running_mean", "running_var", "weight", "bias")):
                tensor.add_(torch.rand(tensor.shape) * 0.1)
    return module, module.state_dict()


@pytest.mark.parametrize("wrap", [None, "state_dict", "model"])
def test_checkpoint_round_trip(trained_state, tmp_path, wrap):
    trained, state = trained_state
    path = tmp_path / "trained.pt"
    torch.save(state if wrap is None else {wrap: state, "epoch": 3}, path)
    module = zoo.build("vgg11", "cifar10")
    zoo.load_checkpoint(module, path)
    x = random_input("cifar10")
    np.testing.assert_allclose(run_onnx(export_bytes(module, "cifar10"), x), run_torch(trained, x),
                               rtol=1e-4, atol=1e-5)


def bad_checkpoints(tmp_path):
    def save(obj, name):
        torch.save(obj, tmp_path / name)
        return tmp_path / name

    (tmp_path / "garbage.pt").write_text("not a checkpoint")
    state = zoo.build("vgg11", "cifar10").state_dict()
    return {
        "missing file": tmp_path / "absent.pt",
        "not a torch file": tmp_path / "garbage.pt",
        "not a state_dict": save([1, 2, 3], "list.pt"),
        "other model": save(zoo.build("mobilenetv2", "cifar10").state_dict(), "mobilenet.pt"),
        "missing key": save({k: v for k, v in state.items() if k != "0.weight"}, "partial.pt"),
        "other width": save(zoo.build("vgg11", "cifar10", width_mult=0.5).state_dict(), "half.pt"),
    }


def test_bad_checkpoint_is_a_one_line_usage_error(tmp_path):
    for case, path in bad_checkpoints(tmp_path).items():
        with pytest.raises(UsageError) as info:
            zoo.load_checkpoint(zoo.build("vgg11", "cifar10"), path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message, case


def test_unknown_model_dataset_or_width_is_a_usage_error():
    for args in [("vgg16", "cifar10"), ("vgg11", "imagenet")]:
        with pytest.raises(UsageError):
            zoo.build(*args)
    for width_mult in (0, -1, float("nan")):
        with pytest.raises(UsageError):
            zoo.build("vgg11", "cifar10", width_mult=width_mult)


# --- ncc zoo -------------------------------------------------------------------

def ncc(*args):
    from ncc.cli.main import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_writes_the_model(tmp_path):
    path = tmp_path / "vgg.onnx"
    result = ncc("zoo", "vgg11", "--dataset", "tinyimagenet", "--width-mult", "0.5", "-o", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert "vgg11" in result.stdout and "tinyimagenet" in result.stdout and str(path) in result.stdout
    model = onnx.load(path)
    widths = [init.dims[0] for init in model.graph.initializer
              if any(n.op_type == "Conv" and n.input[1] == init.name for n in model.graph.node)]
    assert widths == [32, 64, 128, 128, 256, 256, 256, 256]
    assert model.graph.input[0].type.tensor_type.shape.dim[2].dim_value == 64
    assert [p.name for p in tmp_path.iterdir()] == ["vgg.onnx"]


def test_cli_reports_parameters_and_loads_a_checkpoint(trained_state, tmp_path):
    trained, state = trained_state
    torch.save(state, tmp_path / "trained.pt")
    path = tmp_path / "vgg.onnx"
    result = ncc("zoo", "vgg11", "-o", path, "--checkpoint", tmp_path / "trained.pt", "--seed", 3)
    assert result.exit_code == 0, result.output
    assert "9231114" in result.stdout
    x = random_input("cifar10")
    np.testing.assert_allclose(run_onnx(path.read_bytes(), x), run_torch(trained, x),
                               rtol=1e-4, atol=1e-5)


def assert_usage_error(result):
    assert result.exit_code == 2
    assert result.stderr.startswith("ncc: error:") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_cli_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("keep me")
    assert_usage_error(ncc("zoo", "vgg11", "-o", path))
    assert path.read_text() == "keep me"
    assert ncc("zoo", "vgg11", "-o", path, "--force").exit_code == 0
    onnx.checker.check_model(str(path))


@pytest.mark.parametrize("args", [["--width-mult", "0"], ["--checkpoint", "absent.pt"],
                                  ["--dataset", "imagenet"]])
def test_cli_usage_errors(tmp_path, args):
    path = tmp_path / "model.onnx"
    assert_usage_error(ncc("zoo", "resnet50", "-o", path, *args))
    assert list(tmp_path.iterdir()) == []
