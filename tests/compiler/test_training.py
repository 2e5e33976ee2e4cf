import json

import numpy as np
import onnx
import pytest
from cli_helpers import assert_one_line_error, invoke
from digits import save_digits, small_vgg
from ncc.core import numerics
from ncc.compiler.loader import load_model
from ncc.compiler.pipeline import channel_groups
from ncc.study.torch_model import TorchModel, numpy_output
from onnx_builders import ZOO_CASES


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    train, test = save_digits(folder)
    return {"train": train, "test": test, "model": small_vgg(folder / "small.onnx")}


@pytest.mark.parametrize("name,dataset", ZOO_CASES)
def test_torch_model_computes_what_onnx_runtime_does(zoo_onnx, name, dataset):
    model = channel_groups(load_model(zoo_onnx(name, dataset)))[0]
    module = TorchModel(model)
    feeds = numerics.random_inputs(model, seed=4)
    expected = numerics.run(model, feeds)[0]
    assert np.abs(numpy_output(module, feeds["input"]) - expected).max() <= 1e-4 * np.abs(expected).max()
    assert sum(p.numel() for p in module.weights()) == channel_groups(model)[1].param_count({})
    assert numerics.max_relative_error(model, module.write_back(model)) == 0


def test_train_then_eval(tmp_path, digits):
    trained = tmp_path / "trained.onnx"
    result = invoke("train", digits["model"], "--data", digits["train"], "--epochs", "4", "-o", trained,
                    "--no-augment")
    assert result.exit_code == 0, result.output
    onnx.checker.check_model(onnx.load(trained), full_check=True)
    scores = {}
    for name, path in (("before", digits["model"]), ("after", trained)):
        shown = invoke("eval", path, "--data", digits["test"], "--json")
        assert shown.exit_code == 0, shown.output
        scores[name] = json.loads(shown.stdout)
    assert scores["after"]["samples"] == 397
    assert scores["after"]["top1"] >= 0.8 > scores["before"]["top1"]
    assert scores["after"]["top5"] >= scores["after"]["top1"]


def test_training_needs_labels(tmp_path, digits):
    unlabelled = tmp_path / "x.npz"
    np.savez(unlabelled, x=np.load(digits["train"])["x"])
    result = invoke("train", digits["model"], "--data", unlabelled, "-o", tmp_path / "t.onnx")
    assert_one_line_error(result, 2, "needs labels")
    assert not (tmp_path / "t.onnx").exists()


def test_profile_search_end_to_end_and_resume(tmp_path, digits):
    profile, records = tmp_path / "p.json", tmp_path / "records"
    args = ["profile", "search", digits["model"], "--data", digits["train"], "-o", profile, "--records", records,
            "--epochs", "2", "--prune-every", "4", "--prune-step", "2", "--no-augment"]
    first = invoke(*args, "--iterations", "1")
    assert first.exit_code == 0, first.output
    rows = np.loadtxt(records / "iteration_0.csv", delimiter=",", dtype=int)
    assert rows.shape[1] == 3 and len(rows) >= 6
    assert (np.diff(rows.sum(axis=1)) == -2).all()  # two channels per pruning step
    assert rows[0].tolist() == [16, 32, 32]
    again = invoke(*args, "--iterations", "2", "--force")
    assert again.exit_code == 0, again.output
    assert "done before, resumed" in again.stderr and (records / "iteration_1.csv").exists()
    compiled = invoke("compile", digits["model"], "-o", tmp_path / "b", "--scale", "neuralscale:0.5",
                      "--profile", profile, "--target", "onnxruntime")
    assert compiled.exit_code == 0, compiled.output


def test_profile_search_on_resnet50_gives_a_valid_profile(tmp_path, zoo_onnx):
    rng = np.random.default_rng(0)
    data = tmp_path / "random.npz"
    np.savez(data, x=rng.standard_normal((32, 3, 32, 32)).astype(np.float32), y=rng.integers(0, 10, 32))
    profile = tmp_path / "p.json"
    result = invoke("profile", "search", zoo_onnx("resnet50"), "--data", data, "-o", profile, "--iterations", "1",
                    "--epochs", "1", "--warmup-epochs", "0", "--batch-size", "4", "--prune-every", "1",
                    "--prune-step", "16", "--no-augment")
    assert result.exit_code == 0, result.output
    groups = json.loads(profile.read_text())["groups"]
    assert len(groups) == 37 and all(g["alpha"] > 0 for g in groups)
    assert any(g["beta"] != 0 for g in groups)
