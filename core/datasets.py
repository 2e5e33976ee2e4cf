"""Calibration and evaluation data: user input, read into what the model takes.

`load_dataset(spec, input_shape)` returns float32 N x C x H x W arrays in the
model's input layout, preprocessed, with int64 labels where the format has
them. `spec` is one of:

- `FILE.npz` holding `x` (N, C, H, W) float32, already preprocessed exactly as
  the model expects, and optionally `y` (N,) integer labels. Taken as is.
- a CIFAR-10/100 "python version" folder (`data_batch_1`..`data_batch_5` and
  `test_batch`; CIFAR-100: `train` and `test`), or one batch file. Pixels are
  scaled to [0, 1], resized to the model's H x W when it differs from 32 x 32,
  and normalised per channel with the statistics most CIFAR training scripts
  use (CIFAR_NORMALIZATION). From a folder, calibration reads the training
  batches and evaluation the test batch.
- an image folder in TinyImageNet's style: one subfolder per class, images
  anywhere below it (`n01443537/images/*.JPEG` works). Labels number the
  classes in sorted order, as torchvision's ImageFolder does. Images are
  converted to RGB, resized bilinearly to H x W, scaled to [0, 1] and
  normalised with ImageNet's statistics (IMAGENET_NORMALIZATION).
- `random`: seeded standard-normal input without labels, for when no data is
  at hand (nothing can be said about accuracy then).

With `samples`, a larger set is cut to a seeded random subset of that size.
Every problem with the data is a UsageError naming the file and what is wrong.
"""

import os
import zipfile
from dataclasses import dataclass

import numpy as np

from ncc.core import safe_pickle
from ncc.core.errors import UsageError
from ncc.core.files import sha256_file

RANDOM = "random"
RANDOM_SAMPLES = 64  # how many random samples when no count is given
# (mean, std) per RGB channel of [0, 1] pixels
CIFAR_NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp")
# which files hold which split, per CIFAR flavour
_CIFAR_SPLITS = {
    "cifar10": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
    "cifar100": {"train": ["train"], "test": ["test"]},
}


@dataclass
class Dataset:
    x: np.ndarray  # float32 (N, C, H, W)
    y: np.ndarray | None  # int64 (N,)
    description: dict  # what was read, for the manifest

    def summary(self) -> str:
        d = self.description
        source = d.get("file") or d.get("folder") or f"seed {d.get('seed')}"
        labels = "labelled" if self.y is not None else "no labels"
        return f"{d['format']} {source}, {len(self.x)} of {d['available']} samples, {labels}"

    def require_labels_below(self, classes: int):
        if self.y is not None and len(self.y) and self.y.max() >= classes:
            raise UsageError(f"{self.summary()}: label {self.y.max()} but the model scores {classes} classes")

    def batches(self, size: int) -> list[np.ndarray]:
        """Consecutive batches of `size` samples, as the model takes them; a last
        partial batch is left out."""
        if len(self.x) < size:
            raise UsageError(f"{self.summary()}: fewer samples than the model's batch size {size}")
        return [self.x[i:i + size] for i in range(0, len(self.x) - size + 1, size)]


def load_dataset(spec: str, input_shape, samples: int | None = None, seed: int = 0,
                 split: str = "train") -> Dataset:
    """`input_shape` is the model input's (N, C, H, W); `split` picks CIFAR's
    training or test batches when `spec` is a CIFAR folder."""
    if len(input_shape) != 4:
        raise UsageError(f"quantization data needs a model with one N x C x H x W input, "
                         f"this one takes shape {tuple(input_shape)}")
    chw = tuple(int(d) for d in input_shape[1:])
    rng = np.random.default_rng(seed)
    if spec == RANDOM:
        return _random(chw, samples or RANDOM_SAMPLES, seed)
    if not os.path.exists(spec):
        raise UsageError(f"no such file or folder: {spec} (expected .npz, a CIFAR or image folder, or 'random')")
    if os.path.isdir(spec):
        flavour = _cifar_flavour(spec)
        if flavour:
            return _cifar(spec, _cifar_split_files(spec, flavour, split), chw, samples, rng, split)
        return _image_folder(spec, chw, samples, rng)
    if spec.endswith(".npz"):
        return _npz(spec, chw, samples, rng)
    return _cifar(spec, [spec], chw, samples, rng, split)


def _random(chw, samples, seed) -> Dataset:
    x = np.random.default_rng(seed).standard_normal((samples, *chw)).astype(np.float32)
    return Dataset(x, None, {"format": RANDOM, "seed": seed, "available": samples, "samples": samples,
                             "labels": False})


def _npz(path, chw, samples, rng) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UsageError(f"cannot read {path} as .npz: {' '.join(str(err).split()) or type(err).__name__}") from None
    if "x" not in arrays:
        raise UsageError(f"{path} has no array 'x' (it holds: {', '.join(sorted(arrays)) or 'nothing'})")
    x, y = arrays["x"], arrays.get("y")
    if x.dtype != np.float32:
        raise UsageError(f"{path}: x is {x.dtype}, expected float32 (input already preprocessed for the model)")
    if x.ndim != 4 or tuple(x.shape[1:]) != chw:
        raise UsageError(f"{path}: x has shape {tuple(x.shape)}, the model takes (N, {', '.join(map(str, chw))})")
    if len(x) == 0:
        raise UsageError(f"{path}: x holds no samples")
    if not np.isfinite(x).all():
        raise UsageError(f"{path}: x contains NaN or infinity")
    if y is not None:
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise UsageError(f"{path}: y must hold one integer label per sample, shape ({len(x)},); "
                             f"it is {y.dtype} of shape {y.shape}")
        if (y < 0).any():
            raise UsageError(f"{path}: y holds negative labels")
        y = y.astype(np.int64)
    keep = _subset(len(x), samples, rng)
    return Dataset(x[keep], None if y is None else y[keep],
                   {"format": "npz", "file": os.path.basename(path), "sha256": sha256_file(path),
                    "available": len(x), "samples": len(keep), "labels": y is not None})


def _cifar_flavour(folder) -> str | None:
    try:
        names = set(os.listdir(folder))
    except OSError as err:
        raise UsageError(f"cannot read folder {folder}: {err.strerror}") from None
    for flavour, splits in _CIFAR_SPLITS.items():
        if names & {*splits["train"], *splits["test"]}:
            return flavour
    return None


def _cifar_split_files(folder, flavour, split) -> list[str]:
    names = _CIFAR_SPLITS[flavour][split]
    files = [os.path.join(folder, name) for name in names if os.path.isfile(os.path.join(folder, name))]
    if not files:
        raise UsageError(f"{folder} has no {split} batches ({', '.join(names)})")
    return files


def _cifar(source, files, chw, samples, rng, split) -> Dataset:
    _require_rgb(source, chw)
    images, labels, flavour = [], [], None
    for path in files:
        batch = _read_cifar_batch(path)
        flavour = "cifar100" if b"fine_labels" in batch else "cifar10"
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[b"fine_labels" if flavour == "cifar100" else b"labels"], dtype=np.int64))
    images, labels = np.concatenate(images), np.concatenate(labels)
    if len(images) == 0 or len(images) != len(labels):
        raise UsageError(f"{source}: holds {len(images)} images and {len(labels)} labels")
    keep = _subset(len(images), samples, rng)
    x = _preprocess(images[keep].transpose(0, 2, 3, 1), chw, CIFAR_NORMALIZATION[flavour])
    described = {"folder": os.path.basename(os.path.normpath(source)), "split": split} if os.path.isdir(source) \
        else {"file": os.path.basename(source), "sha256": sha256_file(source)}
    return Dataset(x, labels[keep], {"format": flavour, **described, "available": len(images),
                                     "samples": len(keep), "labels": True,
                                     "normalization": _normalization(CIFAR_NORMALIZATION[flavour])})


def _read_cifar_batch(path) -> dict:
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such CIFAR batch file")
    try:
        with open(path, "rb") as handle:
            batch = safe_pickle.loads(handle.read(), encoding="bytes")
    except safe_pickle.Rejected as err:
        raise UsageError(f"refusing to read {path}: the pickle refers to {err}, and only numpy arrays "
                         "and plain containers are read") from None
    except Exception as err:  # OSError, a disallowed name or any malformed pickle: the file's fault
        raise UsageError(f"cannot read {path} as a CIFAR python batch (the file formats are .npz and CIFAR "
                         f"batches): {err or type(err).__name__}") from None
    if isinstance(batch, dict):  # batches pickled by Python 3 have str keys
        batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    if not isinstance(batch, dict) or b"data" not in batch or not ({b"labels", b"fine_labels"} & set(batch)):
        raise UsageError(f"{path} is not a CIFAR python batch (no data and labels entries)")
    if np.asarray(batch[b"data"]).ndim != 2 or np.asarray(batch[b"data"]).shape[1] != 3 * 32 * 32:
        raise UsageError(f"{path}: data is not N rows of 3x32x32 pixels")
    return batch


def _image_folder(folder, chw, samples, rng) -> Dataset:
    _require_rgb(folder, chw)
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    files = [(path, label) for label, name in enumerate(classes) for path in _images_below(os.path.join(folder, name))]
    if not files:
        raise UsageError(f"{folder}: no images found (expected one subfolder of images per class, "
                         f"a CIFAR batch folder or an .npz file)")
    keep = _subset(len(files), samples, rng)
    images = np.stack([_read_image(files[i][0], chw) for i in keep])
    x = _preprocess(images, chw, IMAGENET_NORMALIZATION)
    return Dataset(x, np.array([files[i][1] for i in keep], dtype=np.int64),
                   {"format": "image-folder", "folder": os.path.basename(os.path.normpath(folder)),
                    "classes": len(classes), "available": len(files), "samples": len(keep), "labels": True,
                    "normalization": _normalization(IMAGENET_NORMALIZATION)})


def _images_below(folder) -> list[str]:
    found = [os.path.join(root, name) for root, _dirs, names in os.walk(folder)
             for name in names if name.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(found)


def _read_image(path, chw) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return _resized(image.convert("RGB"), chw)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise UsageError(f"cannot read image {path}: {err}") from None


def _resized(image, chw) -> np.ndarray:
    from PIL import Image

    _, height, width = chw
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _preprocess(images_nhwc, chw, normalization) -> np.ndarray:
    """uint8 N x H x W x 3 -> normalised float32 N x 3 x H x W at the model's size."""
    if images_nhwc.shape[1:3] != chw[1:]:
        from PIL import Image

        images_nhwc = np.stack([_resized(Image.fromarray(image), chw) for image in images_nhwc])
    mean, std = (np.asarray(v, dtype=np.float32).reshape(1, 3, 1, 1) for v in normalization)
    x = images_nhwc.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return ((x - mean) / std).astype(np.float32)


def _require_rgb(source, chw):
    if chw[0] != 3:
        raise UsageError(f"{source} holds RGB images; the model takes {chw[0]} channel(s)")


def _normalization(normalization) -> dict:
    return {"mean": list(normalization[0]), "std": list(normalization[1])}


def _subset(available: int, samples: int | None, rng) -> np.ndarray:
    """Indices of a seeded random subset of `samples` (all when fewer), in order."""
    if samples is None or samples >= available:
        return np.arange(available)
    return np.sort(rng.choice(available, size=samples, replace=False))
