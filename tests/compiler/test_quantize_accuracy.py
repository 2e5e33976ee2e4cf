"""int8 accuracy on real data: a small CNN trained on scikit-learn's digits
(8x8 images upsampled to 3x16x16), quantized with calibration data from the
training split and measured on the held-out split, through the CLI. The
target is onnxruntime: the int8 model is what the tests look at."""

import hashlib
import json
import os

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, invoke
from digits import SIZE, digits_arrays
from ncc.core.datasets import load_dataset
from ncc.compiler.driver import CompileOptions
from ncc.compiler.pipeline import build_pipeline
from ncc.study.zoo import export_module
from ncc.targets.base import Target

EPOCHS = 8
TRAIN, TEST = 1400, 397  # digits_arrays' split of sklearn's 1797 digits


def _train(x, y):
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(EPOCHS):
        net.train()
        order = torch.randperm(len(inputs))
        for start in range(0, len(inputs), 64):
            batch = order[start:start + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(inputs[batch]), labels[batch]).backward()
            optimizer.step()
    return net.eval()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """(model.onnx, train.npz, test.npz) of a CNN trained on sklearn's digits."""
    import torch

    folder = tmp_path_factory.mktemp("digits")
    x_train, y_train, x_test, y_test = digits_arrays()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches this small train ten times faster on one thread
    try:
        net = _train(x_train, y_train)
    finally:
        torch.set_num_threads(threads)
    export_module(net, SIZE, str(folder / "digits.onnx"))
    np.savez(folder / "train.npz", x=x_train, y=y_train)
    np.savez(folder / "test.npz", x=x_test, y=y_test)
    return folder / "digits.onnx", folder / "train.npz", folder / "test.npz"


def _compile(tmp_path, digits, *args):
    model, train, test = digits
    result = invoke("compile", model, "-o", tmp_path / "b", "--target", "onnxruntime", "--quantize", "int8",
                    "--calib", train, "--calib-samples", 128, "--eval", test, *args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    return result, next(p for p in manifest["passes"] if p["name"] == "quantize-int8"), manifest


@pytest.mark.parametrize("flavor, tolerance", [("generic", 1.0), ("tensorrt", 1.0), ("dpu", 2.0)])
def test_int8_top1_stays_close_to_fp32_on_held_out_data(tmp_path, digits, flavor, tolerance):
    _, quantize, _ = _compile(tmp_path, digits, "--quant-flavor", flavor)
    figures = quantize["stats"]["eval"]
    assert figures["measured"] and figures["samples"] == TEST
    assert figures["top1_fp32_pct"] > 90  # the network did learn
    assert figures["top1_int8_pct"] >= figures["top1_fp32_pct"] - tolerance, figures
    assert figures["top1_agreement_pct"] > 95 and figures["sqnr_db"] > 15


def test_manifest_and_summary_record_the_quantization(tmp_path, digits):
    result, quantize, manifest = _compile(tmp_path, digits)
    _, train, test = digits
    assert manifest["options"]["quantize"] == "int8" and manifest["options"]["calib"] == "train.npz"
    assert manifest["options"]["eval_data"] == "test.npz" and manifest["options"]["quant_flavor"] == "auto"
    assert [p["name"] for p in manifest["passes"]][-2:] == ["fold-batchnorm", "quantize-int8"]
    options = quantize["options"]
    assert options["flavor"] == "generic" and options["calib_method"] == "minmax"  # the target's flavour
    assert options["calib_samples"] == 128 and options["seed"] == 0
    assert options["calib_data"]["sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()
    assert options["calib_data"]["available"] == TRAIN and options["eval_data"]["file"] == "test.npz"
    figures = quantize["stats"]["eval"]
    assert (f"int8 vs fp32 on {TEST} held-out samples: top-1 {figures['top1_fp32_pct']:.2f}% -> "
            f"{figures['top1_int8_pct']:.2f}%") in result.stdout


def test_random_calibration_by_default_and_accuracy_not_measured(tmp_path, digits):
    result = invoke("compile", digits[0], "-o", tmp_path / "b", "--target", "ort", "--quantize", "int8",
                    "--calib-samples", 8,
                    "--calib-method", "percentile", "--quant-flavor", "dpu")
    assert result.exit_code == 0, result.output
    assert "int8 accuracy not measured: no evaluation data, calibrated on random input" in result.stdout
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    quantize = manifest["passes"][-1]
    assert manifest["options"]["calib"] == "random" and quantize["options"]["calib_data"]["format"] == "random"
    assert quantize["stats"]["eval"]["measured"] is False


def test_quantized_bundles_are_byte_identical(tmp_path, digits):
    for name in ("a", "b"):
        args = ("--target", "ort", "--quantize", "int8", "--calib", digits[1], "--calib-samples", 32, "--quant-flavor", "dpu",
                "--eval", digits[2], "--eval-samples", 50, "--reproducible")
        assert invoke("compile", digits[0], "-o", tmp_path / name, *args).exit_code == 0
    for file in ("model.onnx", "manifest.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file


def _npz(folder, **arrays):
    np.savez(folder / "data.npz", **arrays)
    return folder / "data.npz"


BAD_DATA = [
    (lambda d: d / "absent.npz", "no such file or folder"),
    (lambda d: _npz(d, x=np.zeros((4, 1, 16, 16), np.float32)), "the model takes (N, 3, 16, 16)"),
    (lambda d: _npz(d, x=np.zeros((4, 3, 16, 16), np.float64)), "x is float64, expected float32"),
    (lambda d: _npz(d, x=np.zeros((0, 3, 16, 16), np.float32)), "x holds no samples"),
]
LABEL_BEYOND_CLASSES = (lambda d: _npz(d, x=np.zeros((4, 3, 16, 16), np.float32), y=np.array([0, 1, 2, 10])),
                        "label 10")  # only evaluation reads labels


@pytest.mark.parametrize("flag, make, fragment", [("--calib", *case) for case in BAD_DATA] +
                         [("--eval", *case) for case in [*BAD_DATA, LABEL_BEYOND_CLASSES]])
def test_bad_data_is_a_usage_error_and_leaves_no_bundle(tmp_path, digits, flag, make, fragment):
    out = tmp_path / "out" / "b"
    result = invoke("compile", digits[0], "-o", out, "--quantize", "int8", flag, make(tmp_path))
    assert_one_line_error(result, 2, fragment)
    assert not os.path.exists(tmp_path / "out") or os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("args, fragment", [
    (["--calib", "random"], "--calib only apply with --quantize int8"),
    (["--eval", "x.npz", "--quant-flavor", "dpu"], "--quant-flavor, --eval only apply with --quantize int8"),
    (["--quantize", "int4"], "Invalid value for '--quantize'"),
    (["--quantize", "int8", "--quant-flavor", "fpga"], "Invalid value for '--quant-flavor'"),
    (["--quantize", "int8", "--calib-samples", "0"], "Invalid value for '--calib-samples'"),
])
def test_quantization_options_are_checked(tmp_path, digits, args, fragment):
    assert_one_line_error(invoke("compile", digits[0], "-o", tmp_path / "b", *args), 2, fragment)


def test_auto_flavour_is_the_targets_and_quantization_follows_folding():
    class Board(Target):
        quant_flavor = "dpu"

    data = (load_dataset("random", (1, 3, 8, 8), samples=1), None)
    passes = build_pipeline(CompileOptions(quantize="int8", scale=("uniform", 0.5)), Board(), data)
    assert [p.name for p in passes][-3:] == ["scale-channels", "fold-batchnorm", "quantize-int8"]
    assert passes[-1].options["flavor"] == "dpu"
    chosen = build_pipeline(CompileOptions(quantize="int8", quant_flavor="tensorrt"), Board(), data)[-1]
    assert chosen.options["flavor"] == "tensorrt"
