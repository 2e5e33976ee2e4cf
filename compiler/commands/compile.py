"""ncc compile: one walk from an ONNX model to a bundle for one board."""

import click

from ncc.compiler.options import debug_option, json_option, model_input_options, parse_round_to, parse_scale
from ncc.compiler.quantization_options import quantization_options
from ncc.compiler.tuning_options import tuning_options
from ncc.passes.analysis.channel_importance import METHODS as IMPORTANCE_METHODS


@click.command("compile")
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
@tuning_options
@click.option("--fp16", is_flag=True, help="TensorRT targets (xavier): build the engine with fp16 kernels enabled.")
@click.option("--dla", type=click.IntRange(0, 1), is_flag=False, flag_value=0, metavar="[CORE]",
              help="TensorRT targets (xavier): build for DLA core CORE (default 0), GPU fallback allowed; "
                   "with --quantize int8 the bundle also gets the fp32 model and a TensorRT calibration cache.")
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
def command(model, input_shapes, out_dir, target, scale, profile, importance, round_to, quantization, tuning,
            fp16, dla, deadline_ms, depfile, dump_after, verify, seed, force, reproducible, as_json):
    """Compile MODEL (ONNX) into a bundle for a target board."""
    from ncc.compiler import api, summary
    from ncc.compiler.driver import CompileOptions
    from ncc.compiler.errors import UsageError
    from ncc.targets import get_target

    trt_only = [flag for flag, given in (("--fp16", fp16), ("--dla", dla is not None)) if given]
    if trt_only and get_target(target).quant_flavor != "tensorrt":
        raise UsageError(f"{' and '.join(trt_only)} apply only to TensorRT targets (xavier)")
    fields = dict(target=target, input_shapes=input_shapes, scale=parse_scale(scale), profile=profile,
                  importance=importance, round_to=parse_round_to(round_to) or 1, verify=verify,
                  dump_after=dump_after, force=force, seed=seed, timing=not reproducible, fp16=fp16, dla=dla,
                  **quantization, **tuning)
    options = CompileOptions(**fields)
    if deadline_ms is not None:
        from ncc.compiler.deadline_search import search

        bundle = search(model, out_dir, options, deadline_ms, progress=lambda line: click.echo(line, err=True))
    else:
        bundle = api.compile(model, out=out_dir, **fields)
    if depfile:
        from ncc.compiler import depfile as depfiles

        depfiles.write(depfile, bundle.path, model, options)
    if as_json:
        import json

        click.echo(json.dumps(summary.compile_json(bundle.path, bundle.manifest), sort_keys=True, indent=2))
    else:
        click.echo(summary.compile_summary(bundle.path, bundle.manifest))
