"""Command-line options shared by several subcommands, so that each means the
same thing everywhere (as Polygraphy's argument groups do)."""

import functools
import re

import click

from ncc.compiler.errors import UsageError

_DEBUG_KEY = "ncc.debug"


def _set_debug(ctx, _param, value):
    if value:
        ctx.find_root().meta[_DEBUG_KEY] = True


def is_debug(ctx) -> bool:
    return bool(ctx.find_root().meta.get(_DEBUG_KEY))


debug_option = click.option(
    "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
    help="Show the Python traceback of an error.")

_SHAPE = re.compile(r"^(?P<name>.+):(?P<dims>\d+(?:[x,]\d+)*)$")


def parse_input_shapes(specs) -> dict:
    """`NAME:1x3x32x32` (or `NAME:1,3,32,32`) → {NAME: (1, 3, 32, 32)}."""
    shapes = {}
    for spec in specs:
        match = _SHAPE.match(spec)
        if not match:
            raise UsageError(f"bad --input-shape '{spec}': expected NAME:DIMS such as input:1x3x32x32")
        dims = tuple(int(d) for d in re.split(r"[x,]", match["dims"]))
        if any(d <= 0 for d in dims):
            raise UsageError(f"bad --input-shape '{spec}': every dimension must be positive")
        if match["name"] in shapes:
            raise UsageError(f"--input-shape given twice for input '{match['name']}'")
        shapes[match["name"]] = dims
    return shapes


def model_input_options(func):
    """MODEL argument and --input-shape: how a model is named and shaped."""

    @click.argument("model", type=click.Path(dir_okay=False, path_type=str))
    @click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME:DIMS",
                  help="Static shape of a graph input, e.g. input:1x3x32x32 (repeatable). "
                       "A dynamic batch dimension defaults to 1.")
    @functools.wraps(func)
    def wrapper(*args, input_shapes, **kwargs):
        return func(*args, input_shapes=parse_input_shapes(input_shapes), **kwargs)

    return wrapper


def json_option(help_text="Print machine-readable JSON instead of a table."):
    return click.option("--json", "as_json", is_flag=True, help=help_text)


_SCALE = re.compile(r"^(?P<method>[a-z]+):(?P<ratio>[0-9.eE+-]+)$")
SCALE_METHODS = ("uniform", "neuralscale")


def parse_scale(spec):
    """`uniform:0.5` or `neuralscale:0.5` -> (method, ratio); None passes through."""
    if spec is None:
        return None
    match = _SCALE.match(spec)
    try:
        ratio = float(match["ratio"]) if match else None
    except ValueError:
        ratio = None
    if not match or match["method"] not in SCALE_METHODS or ratio is None:
        raise UsageError(f"bad --scale '{spec}': expected uniform:R or neuralscale:R, e.g. uniform:0.5")
    if not (ratio > 0 and ratio < 1e6):
        raise UsageError(f"bad --scale '{spec}': the ratio must be a positive number")
    return match["method"], ratio


def parse_round_to(value):
    if value is None or value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"bad --round-to '{value}': expected a positive integer or auto")
    return int(value)


def data_option(required=True, help_text="Training data: .npz (x, y), a CIFAR python folder, or an "
                                         "image folder per class (see README)."):
    return click.option("--data", required=required, metavar="DATA", help=help_text)


def training_options(func):
    """How a model is trained: the same flags for `ncc train` and `ncc profile search`."""

    @click.option("--epochs", default=10, show_default=True, type=click.IntRange(min=1), help="Training epochs.")
    @click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
    @click.option("--lr", default=0.05, show_default=True, type=click.FloatRange(min=0, min_open=True),
                  help="Peak learning rate of SGD (momentum 0.9, cosine schedule).")
    @click.option("--weight-decay", default=5e-4, show_default=True, type=click.FloatRange(min=0))
    @click.option("--no-augment", is_flag=True, help="Train without random crops and flips.")
    @click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
    @click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
    @functools.wraps(func)
    def wrapper(*args, epochs, batch_size, lr, weight_decay, no_augment, device, seed, **kwargs):
        from ncc.compiler.training import TrainOptions

        train = TrainOptions(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                             augment=not no_augment, seed=seed, device=device)
        return func(*args, train=train, **kwargs)

    return wrapper
