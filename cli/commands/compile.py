"""ncc compile: one walk from an ONNX model to a bundle for one board."""

import click

from ncc.cli.options import TargetOptionsCommand, debug_option, json_option, model_input_options, target_values
from ncc.cli.quantization_options import quantization_options
from ncc.compiler.specs import parse_round_to, parse_scale
from ncc.passes.analysis.channel_importance import METHODS as IMPORTANCE_METHODS


@click.command("compile", cls=TargetOptionsCommand)
@model_input_options
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=str),
              help="Bundle folder to write (written elsewhere and renamed into place when complete).")
@click.option("--target", default="host", show_default=True, help="Board to compile for.")
@click.option("--scale", metavar="METHOD:R",
              help="Rescale channels: uniform:R (every scalable width times R) or neuralscale:R "
                   "(per-layer widths from --profile at the parameter count of uniform:R).")
@click.option("--profile", type=click.Path(dir_okay=False, path_type=str),
              help="NeuralScale profile JSON (from `ncc profile import` or `ncc profile fit`).")
@click.option("--importance", type=click.Choice(IMPORTANCE_METHODS), default="l1", show_default=True,
              help="Which channels a shrink keeps: largest L1 or L2 norm of the producing weights, or the first.")
@click.option("--round-to", metavar="N|auto",
              help="Round every scaled width to a multiple of N (auto: the target's preferred multiple).")
@quantization_options
@click.option("--deadline-ms", type=click.FloatRange(min=0, min_open=True), metavar="D",
              help="Search the --scale ratio (up to its R, default uniform:1) and the precision for the largest "
                   "model whose p99 measured here meets D ms, and write that one (host and onnxruntime only).")
@click.option("--depfile", type=click.Path(dir_okay=False, path_type=str), metavar="FILE",
              help="After the bundle is written, write a Make/Ninja depfile to FILE: DIR/manifest.json depends "
                   "on the model, its external data, the profile, calibration/evaluation data and tuning database.")
@click.option("--dump-after", multiple=True, metavar="PASS",
              help="Write the graph after PASS to DIR/dumps/ (repeatable; `all` for every pass).")
@click.option("--verify", is_flag=True,
              help="Check that every semantics-preserving pass keeps the outputs (ONNX Runtime, seeded input).")
@click.option("--seed", default=0, show_default=True, help="Seed for every random choice of the compile.")
@click.option("--force", is_flag=True, help="Replace DIR if it exists.")
@click.option("--reproducible", is_flag=True,
              help="Leave pass times out of the manifest, so identical compiles give byte-identical bundles.")
@json_option("Print one JSON summary (schema ncc-compile-summary/1) on stdout instead of the text summary.")
@debug_option
def command(model, input_shapes, out_dir, target, scale, profile, importance, round_to, quantization,
            deadline_ms, depfile, dump_after, verify, seed, force, reproducible, as_json, **keywords):
    """Compile MODEL (ONNX) into a bundle for a target board. The options of
    each target (the TVM targets' tuning, xavier's --fp16 and --dla) apply to
    that target only."""
    from ncc.compiler import summary
    from ncc.compiler.driver import CompileOptions, compile_model

    options = CompileOptions.create(
        target=target, input_shapes=input_shapes, scale=parse_scale(scale), profile=profile,
        importance=importance, round_to=parse_round_to(round_to) or 1, verify=verify, dump_after=dump_after,
        force=force, seed=seed, timing=not reproducible, **quantization, **target_values(keywords))
    if deadline_ms is not None:
        from ncc.study.deadline_search import search

        bundle = search(model, out_dir, options, deadline_ms, progress=lambda line: click.echo(line, err=True))
    else:
        bundle = compile_model(model, out_dir, options)
    if depfile:
        from ncc.compiler import depfile as depfiles

        depfiles.write(depfile, bundle.path, model, options)
    if as_json:
        import json

        click.echo(json.dumps(summary.compile_json(bundle.path, bundle.manifest), sort_keys=True, indent=2))
    else:
        click.echo(summary.compile_summary(bundle.path, bundle.manifest))
