"""Real data for tests: scikit-learn's handwritten digits (8x8, 10 classes),
upsampled to a small RGB input, and a small VGG-style CNN to learn them."""

import numpy as np

SIZE = 16


def digits_arrays(size=SIZE, train=1400, seed=0):
    """(x_train, y_train, x_test, y_test): float32 N x 3 x size x size, normalised."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    x = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear").repeat(1, 3, 1, 1).numpy()
    x = ((x - 0.3) / 0.4).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order[:train]], y[order[:train]], x[order[train:]], y[order[train:]]


def save_digits(folder, size=SIZE):
    """digits_train.npz and digits_test.npz in `folder`; returns their paths."""
    x_train, y_train, x_test, y_test = digits_arrays(size)
    paths = folder / "digits_train.npz", folder / "digits_test.npz"
    np.savez(paths[0], x=x_train, y=y_train)
    np.savez(paths[1], x=x_test, y=y_test)
    return paths


def small_vgg(path, size=SIZE, seed=0):
    """Three conv-BN-ReLU blocks and a Linear on a flattened 4x4 map, exported
    as a training framework would (BatchNorm kept)."""
    import torch
    from ncc.study.zoo import export_module
    from torch import nn

    torch.manual_seed(seed)

    def block(inputs, outputs):
        return [nn.Conv2d(inputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs), nn.ReLU()]

    model = nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 32),
                          nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, 10)).eval()
    export_module(model, size, str(path))
    return path
