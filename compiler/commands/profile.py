"""`ncc profile`: make the NeuralScale profile that `--scale neuralscale:R`
reads, for one model: import the original implementation's, or fit one to a
pruning record. Either way the profile names the model's scalable channel
groups, as the scaling pass finds them."""

import functools
import os

import click

from ncc.compiler.errors import UsageError
from ncc.compiler.options import debug_option, parse_input_shapes
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
        _check_output(output, force)
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


def _check_output(output, force):
    """Fail before any work is done if the profile could not be written."""
    if os.path.isdir(output):
        raise UsageError(f"{output} is a directory")
    if os.path.lexists(output) and not force:
        raise UsageError(f"{output} already exists (use --force to overwrite it)")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise UsageError(f"folder '{folder}' does not exist")


def _scalable_groups(model_path, input_shapes):
    from ncc.compiler.loader import load_model
    from ncc.compiler.pipeline import channel_groups

    _, groups = channel_groups(load_model(model_path, input_shapes))
    return groups


def _write(profile, output):
    neuralscale.save_profile(profile, output)
    click.echo(f"wrote {output}: {len(profile.groups)} groups ({profile.origin})")
