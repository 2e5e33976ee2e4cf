"""Command-line options shared by several subcommands, so that each means the
same thing everywhere (as Polygraphy's argument groups do)."""

import functools

import click

from ncc.compiler.specs import parse_input_shapes

_DEBUG_KEY = "ncc.debug"


def _set_debug(ctx, _param, value):
    if value:
        ctx.find_root().meta[_DEBUG_KEY] = True


def is_debug(ctx) -> bool:
    return bool(ctx.find_root().meta.get(_DEBUG_KEY))


debug_option = click.option(
    "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
    help="Show the Python traceback of an error.")


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
        from ncc.study.training import TrainOptions

        train = TrainOptions(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                             augment=not no_augment, seed=seed, device=device)
        return func(*args, train=train, **kwargs)

    return wrapper


class TargetOptionsCommand(click.Command):
    """A command that also takes every registered target's own options (each
    target's TargetOptions dataclass is its option group), read from the
    registry when the command parses or prints help, and passed to the
    callback as keywords named for the dataclass fields."""

    def get_params(self, ctx):
        from ncc.targets import option_types

        params = super().get_params(ctx)
        help_option = [p for p in params if p.name == "help"]
        own = [p for p in params if p.name != "help"]
        return own + [p for group in option_types() for p in group.params()] + help_option


def target_values(keywords: dict) -> dict:
    """The target-option keywords a TargetOptionsCommand's callback received."""
    from ncc.targets import option_names

    names = option_names()
    return {name: keywords.pop(name) for name in list(keywords) if name in names}
