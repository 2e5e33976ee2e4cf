"""The three networks of the study, built in torch and exported to ONNX.

`build` returns VGG-11, MobileNetV2 or ResNet-50 in their CIFAR forms for
CIFAR-10 (32x32, 10 classes) or TinyImageNet (64x64, 200 classes), optionally
thinned by `width_mult` with the same rule ncc's uniform channel scaling uses
(`scale_width`). torch is imported only when a model is built, so importing
this package (as the CLI does) stays cheap.
"""

import math
import pickle
import warnings
from collections.abc import Mapping

from ncc.core.errors import UsageError

MODELS = ("vgg11", "mobilenetv2", "resnet50")
DATASETS = {"cifar10": (10, 32), "tinyimagenet": (200, 64)}  # name -> (classes, input H=W)
OPSET = 17


def scale_width(width: int, width_mult: float) -> int:
    """Internal width `width` scaled by `width_mult`, rounded down, at least 1."""
    return max(1, int(math.floor(width * width_mult + 1e-6)))


def build(name: str, dataset: str, width_mult: float = 1.0, seed: int = 0):
    """The network `name` for `dataset`, initialised from `seed`, in eval mode."""
    if name not in MODELS:
        raise UsageError(f"unknown model '{name}' (choose from {', '.join(MODELS)})")
    classes, size = _dataset(dataset)
    if not (math.isfinite(width_mult) and width_mult > 0):
        raise UsageError(f"width multiplier must be a positive number, got {width_mult:g}")

    import torch

    from ncc.study.zoo import mobilenetv2, resnet, vgg

    constructors = {"vgg11": vgg.vgg11, "mobilenetv2": mobilenetv2.mobilenetv2,
                    "resnet50": resnet.resnet50}
    # Seed a forked RNG so building a model leaves the caller's random state alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = constructors[name](classes=classes, input_size=size, width_mult=width_mult)
    return module.eval()


def export_onnx(module, dataset: str, path, opset: int = OPSET) -> None:
    """Export `module` for the dataset's 1x3xHxW input to `path` (a path or binary file)."""
    export_module(module, _dataset(dataset)[1], path, opset)


def export_module(module, size: int, path, opset: int = OPSET) -> None:
    """Export `module` for a static 1x3x`size`x`size` input.

    The legacy TorchScript exporter with TrainingMode.PRESERVE and no constant
    folding keeps BatchNormalization nodes unfused, which the passes need to
    see; the dynamo exporter and EVAL mode fold them into the convolutions.
    """
    import torch

    x = torch.zeros(1, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(module.eval(), (x,), path, opset_version=opset,
                          input_names=["input"], output_names=["logits"], dynamo=False,
                          training=torch.onnx.TrainingMode.PRESERVE,
                          do_constant_folding=False)


def load_checkpoint(module, path) -> None:
    """Load a state_dict saved with torch.save (bare, or under "state_dict"/"model")."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"checkpoint '{path}' does not exist") from None
    except pickle.UnpicklingError:  # torch's own message suggests weights_only=False: not for us
        raise UsageError(f"cannot read checkpoint '{path}': not a torch.save file holding "
                         "only tensors and plain containers") from None
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise UsageError(f"cannot read checkpoint '{path}': {type(err).__name__}: {first_line}") from err
    if isinstance(state, Mapping):
        state = next((state[key] for key in ("state_dict", "model")
                      if isinstance(state.get(key), Mapping)), state)
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise UsageError(f"checkpoint '{path}' is not a state_dict of tensors")
    problem = _state_dict_mismatch(module.state_dict(), state)
    if problem:
        raise UsageError(f"checkpoint '{path}' does not fit the model: {problem}")
    module.load_state_dict(state)


def _state_dict_mismatch(expected: Mapping, given: Mapping) -> str:
    def some(keys):
        keys = sorted(keys)
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    problems = []
    if missing := set(expected) - set(given):
        problems.append(f"missing {some(missing)}")
    if unexpected := set(given) - set(expected):
        problems.append(f"unexpected {some(unexpected)}")
    for key in sorted(set(expected) & set(given)):
        if expected[key].shape != given[key].shape:
            problems.append(f"{key} has shape {tuple(given[key].shape)}, "
                            f"expected {tuple(expected[key].shape)}")
            break
    return "; ".join(problems)


def _dataset(dataset: str) -> tuple:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise UsageError(f"unknown dataset '{dataset}' (choose from {', '.join(DATASETS)})") from None
