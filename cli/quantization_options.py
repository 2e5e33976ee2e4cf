"""The command-line options of int8 quantization, one group for every command
that quantizes (as ncc.cli.options groups the model-input options)."""

import functools

import click

from ncc.core.errors import UsageError
from ncc.passes.quant_flavors import CALIBRATION_METHODS, FLAVORS

DATA_HELP = "FILE.npz (x: N,C,H,W float32 preprocessed, optional y: labels), a CIFAR-10/100 python folder, " \
            "a folder of images per class (TinyImageNet style)"


def quantization_options(func):
    """--quantize and its data and scheme options, passed on as `quantization`:
    the CompileOptions fields given on the command line."""

    @click.option("--quantize", type=click.Choice(["int8"]),
                  help="Quantize to int8 (QDQ) after scaling and BatchNorm folding.")
    @click.option("--calib", metavar="DATA",
                  help=f"Calibration data: {DATA_HELP}, or `random` (the default; accuracy is then unknown).")
    @click.option("--calib-method", type=click.Choice(CALIBRATION_METHODS),
                  help="How activation ranges are set from the calibration data.  [default: minmax]")
    @click.option("--calib-samples", type=click.IntRange(min=1), metavar="N",
                  help="Calibrate on a seeded subset of N samples (all if fewer).  [default: 256]")
    @click.option("--quant-flavor", type=click.Choice(("auto", *FLAVORS)),
                  help="int8 scheme: tensorrt, dpu, generic, or the target's (auto).  [default: auto]")
    @click.option("--eval", "eval_data", metavar="DATA",
                  help="Held-out data in the same formats: int8 against fp32 (top-1, agreement, SQNR).")
    @click.option("--eval-samples", type=click.IntRange(min=1), metavar="N",
                  help="Evaluate on a seeded subset of N samples.  [default: all]")
    @functools.wraps(func)
    def wrapper(*args, quantize, calib, calib_method, calib_samples, quant_flavor, eval_data, eval_samples,
                **kwargs):
        given = {"--calib": calib, "--calib-method": calib_method, "--calib-samples": calib_samples,
                 "--quant-flavor": quant_flavor, "--eval": eval_data, "--eval-samples": eval_samples}
        given = {flag: value for flag, value in given.items() if value is not None}
        if given and not quantize:
            raise UsageError(f"{', '.join(given)} only apply with --quantize int8")
        fields = {"quantize": quantize, "calib": calib, "calib_method": calib_method, "calib_samples": calib_samples,
                  "quant_flavor": quant_flavor, "eval_data": eval_data, "eval_samples": eval_samples}
        # what is not given keeps CompileOptions' default
        return func(*args, quantization={k: v for k, v in fields.items() if v is not None}, **kwargs)

    return wrapper
