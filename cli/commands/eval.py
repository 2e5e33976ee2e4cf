"""ncc eval: top-1 and top-5 accuracy of a model or a bundle's model."""

import json
import os

import click

from ncc.cli.options import data_option, debug_option, json_option, model_input_options


@click.command("eval")
@model_input_options
@data_option(help_text="Labelled evaluation data: .npz (x, y), a CIFAR python folder (its test batch), "
                       "or an image folder per class.")
@click.option("--samples", type=click.IntRange(min=1), help="Evaluate on a seeded subset of this many samples.")
@json_option()
@debug_option
def command(model, input_shapes, data, samples, as_json):
    """Evaluate MODEL (an ONNX file, or a bundle folder: its model.onnx) on
    DATA with ONNX Runtime and print top-1 and top-5 accuracy."""
    from ncc.core.bundle import MODEL
    from ncc.core.datasets import load_dataset
    from ncc.compiler.loader import input_shape, load_model
    from ncc.core.numerics import batched_predictor
    from ncc.study.training import evaluate

    path = os.path.join(model, MODEL) if os.path.isdir(model) else model
    loaded = load_model(path, input_shapes)
    dataset = load_dataset(data, input_shape(loaded), samples=samples, split="test")
    scores = evaluate(batched_predictor(loaded), dataset)
    if as_json:
        click.echo(json.dumps({"model": path, "data": dataset.description, **scores}, indent=2, sort_keys=True))
    else:
        click.echo(f"{path} on {dataset.summary()}: top-1 {scores['top1']:.2%}, top-5 {scores['top5']:.2%}")
