import os
import pickle

import numpy as np
import pytest
from ncc.core.datasets import (
    CIFAR_NORMALIZATION,
    IMAGENET_NORMALIZATION,
    load_dataset,
)
from ncc.core.errors import UsageError
from PIL import Image

SHAPE = (1, 3, 32, 32)


def write_cifar_batch(path, images, labels, key="labels", str_keys=False):
    """A batch in CIFAR's python format: a pickled dict of (N, 3072) uint8 rows and labels."""
    batch = {"data": images.reshape(len(images), -1), key: [int(v) for v in labels], "batch_label": "fake"}
    if not str_keys:  # CIFAR's own files come from Python 2: unpickled with encoding="bytes", keys are bytes
        batch = {k.encode(): v for k, v in batch.items()}
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)


@pytest.fixture
def cifar10(tmp_path, rng):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, n in (("data_batch_1", 6), ("data_batch_2", 4), ("test_batch", 5)):
        images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        write_cifar_batch(folder / name, images, rng.integers(0, 10, size=n))
    return folder


def test_npz_is_taken_as_is_and_subsets_are_seeded(tmp_path, rng):
    x, y = rng.standard_normal((10, 3, 32, 32)).astype(np.float32), np.arange(10)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = load_dataset(str(tmp_path / "d.npz"), SHAPE)
    assert np.array_equal(data.x, x) and data.y.dtype == np.int64 and np.array_equal(data.y, y)
    assert data.description["file"] == "d.npz" and len(data.description["sha256"]) == 64
    subset = load_dataset(str(tmp_path / "d.npz"), SHAPE, samples=4, seed=3)
    assert len(subset.x) == 4 and np.array_equal(subset.x, x[subset.y])  # rows stay paired with labels
    assert np.array_equal(subset.y, load_dataset(str(tmp_path / "d.npz"), SHAPE, samples=4, seed=3).y)
    assert subset.description["samples"] == 4 and subset.description["available"] == 10
    assert load_dataset(str(tmp_path / "d.npz"), SHAPE, samples=50).x.shape[0] == 10


def test_npz_without_labels(tmp_path, rng):
    np.savez(tmp_path / "d.npz", x=rng.standard_normal((3, 3, 32, 32)).astype(np.float32))
    assert load_dataset(str(tmp_path / "d.npz"), SHAPE).y is None


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((2, 1, 8, 8), np.float32)}, "x has shape (2, 1, 8, 8), the model takes (N, 3, 32, 32)"),
    ({"x": np.zeros((2, 3, 32, 32), np.float64)}, "x is float64, expected float32"),
    ({"x": np.zeros((0, 3, 32, 32), np.float32)}, "x holds no samples"),
    ({"images": np.zeros((2, 3, 32, 32), np.float32)}, "has no array 'x' (it holds: images)"),
    ({"x": np.full((2, 3, 32, 32), np.nan, np.float32)}, "NaN or infinity"),
    ({"x": np.zeros((2, 3, 32, 32), np.float32), "y": np.zeros(3, np.int64)}, "one integer label per sample"),
    ({"x": np.zeros((2, 3, 32, 32), np.float32), "y": np.zeros(2, np.float32)}, "one integer label per sample"),
    ({"x": np.zeros((2, 3, 32, 32), np.float32), "y": np.array([0, -1])}, "negative labels"),
])
def test_npz_errors_name_the_file_and_the_problem(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(UsageError) as err:
        load_dataset(str(tmp_path / "d.npz"), SHAPE)
    assert "d.npz" in str(err.value) and message in str(err.value)


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(UsageError, match="cannot read .*bad.npz as .npz"):
        load_dataset(str(tmp_path / "bad.npz"), SHAPE)
    np.savez(tmp_path / "objects.npz", x=np.array([object()], dtype=object))
    with pytest.raises(UsageError, match="cannot read .*objects.npz"):
        load_dataset(str(tmp_path / "objects.npz"), SHAPE)
    with pytest.raises(UsageError, match="no such file or folder"):
        load_dataset(str(tmp_path / "absent.npz"), SHAPE)


def test_cifar_folder_splits_and_normalisation(cifar10):
    train = load_dataset(str(cifar10), SHAPE)
    test = load_dataset(str(cifar10), SHAPE, split="test")
    assert train.x.shape == (10, 3, 32, 32) and test.x.shape == (5, 3, 32, 32)
    assert train.description["format"] == "cifar10" and train.description["split"] == "train"
    with open(cifar10 / "test_batch", "rb") as handle:
        raw = pickle.load(handle, encoding="bytes")
    pixels = raw[b"data"].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    mean, std = (np.array(v, np.float32).reshape(1, 3, 1, 1) for v in CIFAR_NORMALIZATION["cifar10"])
    np.testing.assert_allclose(test.x, (pixels - mean) / std, rtol=1e-6)
    assert test.y.tolist() == raw[b"labels"]


def test_cifar_batch_file_cifar100_and_resizing(tmp_path, rng):
    images = rng.integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
    write_cifar_batch(tmp_path / "train", images, [5, 99, 0], key="fine_labels", str_keys=True)
    data = load_dataset(str(tmp_path / "train"), (1, 3, 64, 64))
    assert data.x.shape == (3, 3, 64, 64) and data.y.tolist() == [5, 99, 0]
    assert data.description["format"] == "cifar100" and data.description["file"] == "train"


def test_cifar_errors(tmp_path, cifar10, rng):
    os.remove(cifar10 / "test_batch")
    with pytest.raises(UsageError, match="has no test batches"):
        load_dataset(str(cifar10), SHAPE, split="test")
    with pytest.raises(UsageError, match="RGB images; the model takes 1 channel"):
        load_dataset(str(cifar10), (1, 1, 32, 32))
    (cifar10 / "data_batch_2").write_bytes(b"\x80\x02garbage")
    with pytest.raises(UsageError, match="cannot read .*data_batch_2 as a CIFAR python batch"):
        load_dataset(str(cifar10), SHAPE)


def test_cifar_batches_never_run_pickled_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    with open(tmp_path / "data_batch_1", "wb") as handle:
        pickle.dump({b"data": Exploit(), b"labels": []}, handle, protocol=2)
    with pytest.raises(UsageError, match="refers to"):
        load_dataset(str(tmp_path), SHAPE)
    assert not os.path.exists("pwned") and not (tmp_path / "pwned").exists()


def test_image_folder_in_tinyimagenet_layout(tmp_path, rng):
    root = tmp_path / "train"
    for wnid, sizes in (("n02", [(64, 64), (50, 40)]), ("n01", [(64, 64)])):
        (root / wnid / "images").mkdir(parents=True)
        for i, size in enumerate(sizes):
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / wnid / "images" / f"{wnid}_{i}.png")
    data = load_dataset(str(root), (1, 3, 64, 64))
    assert data.x.shape == (3, 3, 64, 64) and data.y.tolist() == [0, 1, 1]  # classes in sorted order
    assert data.description["format"] == "image-folder" and data.description["classes"] == 2
    first = np.asarray(Image.open(root / "n01" / "images" / "n01_0.png"), np.float32).transpose(2, 0, 1) / 255
    mean, std = (np.array(v, np.float32).reshape(3, 1, 1) for v in IMAGENET_NORMALIZATION)
    np.testing.assert_allclose(data.x[0], (first - mean) / std, rtol=1e-5, atol=1e-6)
    assert load_dataset(str(root), (1, 3, 64, 64), samples=2).x.shape[0] == 2


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(UsageError, match="no images found"):
        load_dataset(str(tmp_path / "empty"), SHAPE)
    (tmp_path / "broken" / "cat").mkdir(parents=True)
    (tmp_path / "broken" / "cat" / "x.png").write_bytes(b"not a png")
    with pytest.raises(UsageError, match="cannot read image .*x.png"):
        load_dataset(str(tmp_path / "broken"), SHAPE)


def test_random_data_is_seeded_and_unlabelled():
    data = load_dataset("random", SHAPE, samples=5, seed=7)
    assert data.x.shape == (5, 3, 32, 32) and data.x.dtype == np.float32 and data.y is None
    assert np.array_equal(data.x, load_dataset("random", SHAPE, samples=5, seed=7).x)
    assert not np.array_equal(data.x, load_dataset("random", SHAPE, samples=5, seed=8).x)
    assert data.description == {"format": "random", "seed": 7, "available": 5, "samples": 5, "labels": False}


def test_batches_and_label_range(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 3, 32, 32), np.float32), y=np.array([0, 1, 2, 3, 12]))
    data = load_dataset(str(tmp_path / "d.npz"), SHAPE)
    assert [len(b) for b in data.batches(2)] == [2, 2]
    with pytest.raises(UsageError, match="fewer samples than the model's batch size 8"):
        data.batches(8)
    with pytest.raises(UsageError, match="label 12 but the model scores 10 classes"):
        data.require_labels_below(10)
    with pytest.raises(UsageError, match="one N x C x H x W input"):
        load_dataset("random", (1, 16))
