"""`ncc zoo`: write one of the study's networks (VGG-11, MobileNetV2, ResNet-50) as ONNX."""

import io
from pathlib import Path

import click

from ncc.study import zoo
from ncc.core.errors import UsageError
from ncc.core.files import write_atomically
from ncc.cli.options import debug_option


@click.command("zoo")
@click.argument("model", type=click.Choice(zoo.MODELS), metavar="MODEL")
@click.option("--dataset", type=click.Choice(tuple(zoo.DATASETS)), default="cifar10",
              show_default=True, help="Sets the input size and the number of classes.")
@click.option("-o", "--output", required=True, metavar="FILE.onnx",
              type=click.Path(dir_okay=False, path_type=Path), help="Where to write the model.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True,
              help="Seed of the weight initialisation.")
@click.option("--width-mult", type=float, default=1.0, show_default=True,
              help="Scale every internal width w to max(1, floor(w * R)).")
@click.option("--checkpoint", metavar="FILE.pt", type=click.Path(dir_okay=False, path_type=Path),
              help="Load trained weights (a torch state_dict) instead of random ones.")
@click.option("--force", is_flag=True, help="Overwrite FILE.onnx if it exists.")
@debug_option
def command(model, dataset, output, seed, width_mult, checkpoint, force):
    """Build MODEL (vgg11, mobilenetv2 or resnet50) in its CIFAR form for the
    dataset and export it to ONNX: opset 17, BatchNorm kept unfused, static
    1x3xHxW input named `input`, output `logits`."""
    if output.exists() and not force:
        raise UsageError(f"'{output}' already exists (use --force to overwrite it)")
    if not output.parent.is_dir():
        raise UsageError(f"folder '{output.parent}' does not exist")

    module = zoo.build(model, dataset, width_mult=width_mult, seed=seed)
    if checkpoint is not None:
        zoo.load_checkpoint(module, checkpoint)
    buffer = io.BytesIO()
    zoo.export_onnx(module, dataset, buffer)
    write_atomically(output, buffer.getvalue())

    params = sum(p.numel() for p in module.parameters())
    click.echo(f"wrote {model} ({dataset}, width x{width_mult:g}, {params} params) to {output}")
