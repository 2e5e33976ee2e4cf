"""`ncc profile`: make the NeuralScale profile that `--scale neuralscale:R`
reads, for one model: import the original implementation's, or fit one to a
pruning record. Either way the profile names the model's scalable channel
groups, as the scaling pass finds them."""

import functools

import click

from ncc.core.files import check_output
from ncc.cli.options import data_option, debug_option, model_input_options, training_options
from ncc.compiler.specs import parse_input_shapes
from ncc.passes import neuralscale


@click.group("profile")
def command():
    """Make NeuralScale profiles (per-group width power laws) for a model."""


def _model_and_output_options(func):
    """--model, --input-shape, -o and --force: what every subcommand reads and writes."""

    @click.option("--model", required=True, metavar="MODEL.onnx", type=click.Path(dir_okay=False, path_type=str),
                  help="The model the profile is for: its scalable channel groups, in order.")
    @click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME:DIMS",
                  help="Static shape of a graph input of MODEL, e.g. input:1x3x32x32 (repeatable). "
                       "A dynamic batch dimension defaults to 1.")
    @click.option("-o", "--output", required=True, metavar="P.json", type=click.Path(dir_okay=False, path_type=str),
                  help="Where to write the profile.")
    @click.option("--force", is_flag=True, help="Overwrite P.json if it exists.")
    @debug_option
    @functools.wraps(func)
    def wrapper(*args, input_shapes, output, force, **kwargs):
        check_output(output, force)
        return func(*args, input_shapes=parse_input_shapes(input_shapes), output=output, **kwargs)

    return wrapper


@command.command("import", short_help="Import a profile of the original NeuralScale code.")
@click.argument("source", metavar="FILE", type=click.Path(dir_okay=False, path_type=str))
@click.option("--iteration", type=click.IntRange(min=0), metavar="K",
              help="Architecture-descent iteration to take from a pickle (default: the last).")
@_model_and_output_options
def import_command(source, model, input_shapes, output, iteration):
    """Import FILE, a profile of the original NeuralScale code: its pickled
    prune_record/*.pk, or a JSON file with `alpha` and `beta` lists. Layer i
    becomes MODEL's i-th scalable channel group. Pickles are read without
    running anything they ask for: only numpy arrays and plain containers."""
    ids = [g.id for g in _scalable_groups(model, input_shapes).scalable]
    _write(neuralscale.import_profile(source, ids, iteration), output)


@command.command("fit", short_help="Fit a profile to a NeuralScale prune record.")
@click.argument("records", metavar="RECORDS.csv", type=click.Path(dir_okay=False, path_type=str))
@_model_and_output_options
def fit_command(records, model, input_shapes, output):
    """Fit a profile to RECORDS.csv, NeuralScale's prune record: one row per
    pruning step holding the width of each of MODEL's scalable channel groups,
    no header. Least squares of ln(width) = beta * ln(tau) + ln(alpha) per
    group, tau being the model's parameter count at the row's widths; fewer
    than 6 rows give uniform scaling (beta = 0), as the original does."""
    widths = neuralscale.read_records(records)
    groups = _scalable_groups(model, input_shapes)
    _write(neuralscale.fit_profile(widths, [g.id for g in groups.scalable], groups.param_count), output)


@command.command("search", short_help="Search a profile by NeuralScale's architecture descent.")
@model_input_options
@data_option()
@click.option("-o", "--output", required=True, metavar="P.json", type=click.Path(dir_okay=False, path_type=str))
@click.option("--iterations", default=5, show_default=True, type=click.IntRange(min=1),
              help="Architecture-descent iterations (each trains from scratch, prunes and fits).")
@click.option("--prune-step", type=click.IntRange(min=1),
              help="Channels pruned per pruning step (default: 1% of all scalable channels).")
@click.option("--prune-every", default=10, show_default=True, type=click.IntRange(min=1),
              help="Minibatches between pruning steps.")
@click.option("--warmup-epochs", default=1, show_default=True, type=click.IntRange(min=0),
              help="Epochs of each iteration trained before pruning starts.")
@click.option("--fraction", default=0.95, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Fraction of all scalable channels pruned before an iteration stops.")
@click.option("--records", metavar="DIR", type=click.Path(file_okay=False, path_type=str),
              help="Keep prune records and per-iteration profiles here (default: P.json.records); "
                   "iterations found there are not run again.")
@click.option("--force", is_flag=True, help="Overwrite P.json if it exists.")
@training_options
@debug_option
def search_command(model, input_shapes, data, output, iterations, prune_step, prune_every, warmup_epochs, fraction,
                   records, force, train):
    """Search a profile for MODEL on DATA by architecture descent: train,
    prune channels by the Taylor score of per-group gates, record the widths,
    fit the power laws, restart from the fitted widths; --epochs bounds each
    iteration."""
    from ncc.study.architecture_descent import SearchOptions, search
    from ncc.core.datasets import load_dataset
    from ncc.compiler.loader import input_shape, load_model
    from ncc.compiler.pipeline import channel_groups

    check_output(output, force)
    simplified = channel_groups(load_model(model, input_shapes))[0]
    dataset = load_dataset(data, input_shape(simplified), split="train", seed=train.seed)
    options = SearchOptions(iterations=iterations, epochs=train.epochs, warmup_epochs=warmup_epochs,
                            prune_step=prune_step, prune_every=prune_every, fraction=fraction, train=train)
    profile = search(simplified, dataset, options, records or f"{output}.records",
                     progress=lambda line: click.echo(line, err=True))
    _write(profile, output)


def _scalable_groups(model_path, input_shapes):
    from ncc.compiler.loader import load_model
    from ncc.compiler.pipeline import channel_groups

    _, groups = channel_groups(load_model(model_path, input_shapes))
    return groups


def _write(profile, output):
    neuralscale.save_profile(profile, output)
    click.echo(f"wrote {output}: {len(profile.groups)} groups ({profile.origin})")
