"""Fixtures shared across the test suite (hand-built graphs: onnx_builders.py)."""

import os

import numpy as np
import pytest


def _randomize_batchnorm(module, seed):
    """Default BatchNorm init (mean 0, var 1, scale 1, shift 0) would make folding
    trivially exact; give every BatchNorm statistics a trained network could have."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                n = layer.num_features
                layer.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                layer.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
                layer.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                layer.bias.copy_(torch.randn(n, generator=generator) * 0.1)


@pytest.fixture(scope="session")
def zoo_onnx(tmp_path_factory):
    """zoo_onnx(name, dataset, width_mult=1.0) -> path of that zoo model with
    random BatchNorm statistics (a small width_mult keeps TVM builds quick)."""
    from ncc.study import zoo

    cache = {}
    folder = tmp_path_factory.mktemp("zoo")

    def get(name, dataset="cifar10", width_mult=1.0):
        key = name, dataset, width_mult
        if key not in cache:
            module = zoo.build(name, dataset, width_mult=width_mult, seed=1)
            _randomize_batchnorm(module, seed=2)
            suffix = "" if width_mult == 1.0 else f"-x{width_mult:g}"
            path = os.path.join(folder, f"{name}-{dataset}{suffix}.onnx")
            zoo.export_onnx(module, dataset, path)
            cache[key] = path
        return cache[key]

    return get


@pytest.fixture
def rng():
    return np.random.default_rng(0)
