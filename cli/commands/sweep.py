"""ncc sweep: the study in one command: every model x scaling method x ratio
x precision compiled for a target, benchmarked here, and reported."""

import os
import shlex
import sys

import click

from ncc.cli.options import TargetOptionsCommand, debug_option, target_values
from ncc.cli.quantization_options import DATA_HELP
from ncc.cli.run_options import run_rule_options
from ncc.compiler.specs import parse_round_to
from ncc.core.errors import CompileError, UsageError


def _split(text: str) -> list:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ratios(text: str) -> list:
    try:
        return sorted({float(part) for part in _split(text)})
    except ValueError:
        raise UsageError(f"bad --ratios '{text}': expected numbers such as 0.25,0.5,0.75,1.0") from None


def _profiles(specs) -> dict:
    profiles = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"bad --profile '{spec}': expected MODEL=P.json, e.g. vgg11=vgg11.profile.json")
        if name in profiles:
            raise UsageError(f"--profile given twice for {name}")
        profiles[name] = path
    return profiles


@click.command("sweep", cls=TargetOptionsCommand)
@click.option("--models", required=True, metavar="M1,M2,...",
              help="Zoo models (vgg11, mobilenetv2, resnet50) or ONNX files; a file's name is its stem.")
@click.option("--dataset", type=click.Choice(["cifar10", "tinyimagenet"]), default="cifar10", show_default=True,
              help="Input size and classes of the zoo models.")
@click.option("--ratios", default="0.25,0.5,0.75,1.0", show_default=True, metavar="R1,R2,...",
              help="Scaling ratios (1.0 is the unscaled width for uniform, the profile's widths at the "
                   "original parameter count for neuralscale).")
@click.option("--methods", default="uniform,neuralscale", show_default=True, metavar="uniform,neuralscale")
@click.option("--precision", "precisions", default="fp32,int8", show_default=True, metavar="fp32,int8")
@click.option("--target", default="host", show_default=True, help="Board to compile for; its bundles must run here.")
@click.option("-o", "--output", "study_dir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Study folder: records, results.csv, report.md, plots/ (an existing one is resumed).")
@click.option("--profile", "profiles", multiple=True, metavar="MODEL=P.json",
              help="NeuralScale profile of MODEL: ncc's format, or the original's JSON or pickle (imported onto the "
                   "model's channel groups). A model without one is swept with uniform scaling only.")
@click.option("--calib", metavar="DATA", help=f"int8 calibration data: {DATA_HELP} (default: random input).")
@click.option("--calib-samples", type=click.IntRange(min=1), default=256, show_default=True, metavar="N")
@click.option("--eval", "eval_data", metavar="DATA",
              help="Labelled held-out data: adds top-1/top-5 accuracy of every compiled model to the report.")
@click.option("--eval-samples", type=click.IntRange(min=1), metavar="N", help="Evaluate on a seeded subset.")
@click.option("--round-to", metavar="N|auto", help="Round every scaled width to a multiple of N.")
@run_rule_options
@click.option("--keep-bundles", is_flag=True, help="Keep every compiled bundle under STUDY/bundles/.")
@debug_option
def command(models, dataset, ratios, methods, precisions, target, study_dir, profiles, calib, calib_samples,
            eval_data, eval_samples, round_to, rules, rules_given, keep_bundles, **keywords):
    """Compile and benchmark every configuration of the grid, resuming an
    earlier run in the same folder, and write results.csv, report.md and
    plots. --deadline-ms D marks the configurations whose p99 meets D."""
    from ncc.study.sweep import SweepSettings, run_sweep, write_study

    settings = SweepSettings(models=_split(models), ratios=_ratios(ratios), methods=_split(methods),
                             precisions=_split(precisions), dataset=dataset, target=target,
                             profiles=_profiles(profiles), calib=calib, calib_samples=calib_samples,
                             eval_data=eval_data, eval_samples=eval_samples, round_to=parse_round_to(round_to) or 1,
                             target_values=target_values(keywords), rules=rules, keep_bundles=keep_bundles, seed=rules.seed)
    records = run_sweep(settings, study_dir, progress=lambda line: click.echo(line, err=True))
    invoked_as_ncc = os.path.basename(sys.argv[0]) == "ncc"
    command_line = "ncc " + shlex.join(sys.argv[1:]) if invoked_as_ncc else "ncc sweep"
    paths = write_study(records, settings, study_dir, command_line)
    measured = sum(record["status"] == "ok" for record in records)
    click.echo(f"{measured} of {len(records)} configurations measured; wrote {paths['results']} and {paths['report']}")
    if measured < len(records):
        raise CompileError(f"{len(records) - measured} of {len(records)} configurations failed "
                           f"(the reasons are in {paths['report']})")
