"""ncc train: train an ONNX CNN with PyTorch and write it back to ONNX."""

import io

import click

from ncc.cli.options import data_option, debug_option, model_input_options, training_options


@click.command("train")
@model_input_options
@data_option()
@click.option("-o", "--output", required=True, metavar="TRAINED.onnx", type=click.Path(dir_okay=False, path_type=str))
@click.option("--reinit", is_flag=True, help="Start from a fresh initialisation instead of the model's weights.")
@click.option("--force", is_flag=True, help="Overwrite TRAINED.onnx if it exists.")
@training_options
@debug_option
def command(model, input_shapes, data, output, reinit, force, train):
    """Train MODEL on DATA (SGD with momentum, cosine schedule, CIFAR-style
    augmentation) and write the trained model to TRAINED.onnx."""
    import onnx

    from ncc.study import training
    from ncc.core.datasets import load_dataset
    from ncc.core.files import check_output, write_atomically
    from ncc.compiler.loader import input_shape, load_model
    from ncc.compiler.pipeline import channel_groups

    check_output(output, force)
    loaded = channel_groups(load_model(model, input_shapes))[0]
    dataset = load_dataset(data, input_shape(loaded), split="train", seed=train.seed)
    train.reinit = reinit
    module = training.train(loaded, dataset, train, progress=lambda e, n, loss: click.echo(
        f"epoch {e}/{n}: loss {loss:.4f}", err=True))
    buffer = io.BytesIO()
    onnx.save(module.write_back(loaded), buffer)
    write_atomically(output, buffer.getvalue())
    click.echo(f"wrote {output}: trained {train.epochs} epochs on {dataset.summary()}")
