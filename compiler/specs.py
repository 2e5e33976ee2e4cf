"""The spec strings a user writes for a compile, parsed once for the CLI and the
Python API alike: --input-shape NAME:DIMS, --scale METHOD:R, --round-to N|auto."""

import math
import re

from ncc.core.errors import UsageError

MAX_DIM = 2**31 - 1  # elements of one tensor: ONNX Runtime's and TVM's int32 indexing

_SHAPE = re.compile(r"^(?P<name>.+):(?P<dims>\d+(?:[x,]\d+)*)$")


def parse_input_shapes(specs) -> dict:
    """`NAME:1x3x32x32` (or `NAME:1,3,32,32`) → {NAME: (1, 3, 32, 32)}."""
    shapes = {}
    for spec in specs:
        match = _SHAPE.match(spec)
        if not match:
            raise UsageError(f"bad --input-shape '{spec}': expected NAME:DIMS such as input:1x3x32x32")
        dims = tuple(int(d) for d in re.split(r"[x,]", match["dims"]))
        if any(d <= 0 for d in dims):
            raise UsageError(f"bad --input-shape '{spec}': every dimension must be positive")
        if any(d > MAX_DIM for d in dims) or math.prod(dims) > MAX_DIM:
            raise UsageError(f"bad --input-shape '{spec}': the input would hold {math.prod(dims):,} elements, "
                             f"more than a tensor may ({MAX_DIM:,})")
        if match["name"] in shapes:
            raise UsageError(f"--input-shape given twice for input '{match['name']}'")
        shapes[match["name"]] = dims
    return shapes


_SCALE = re.compile(r"^(?P<method>[a-z]+):(?P<ratio>[0-9.eE+-]+)$")
SCALE_METHODS = ("uniform", "neuralscale")


def parse_scale(spec):
    """`uniform:0.5` or `neuralscale:0.5` -> (method, ratio); None passes through."""
    if spec is None:
        return None
    match = _SCALE.match(spec)
    try:
        ratio = float(match["ratio"]) if match else None
    except ValueError:
        ratio = None
    if not match or match["method"] not in SCALE_METHODS or ratio is None:
        raise UsageError(f"bad --scale '{spec}': expected uniform:R or neuralscale:R, e.g. uniform:0.5")
    if not (ratio > 0 and ratio < 1e6):
        raise UsageError(f"bad --scale '{spec}': the ratio must be a positive number")
    return match["method"], ratio


def parse_round_to(value):
    if value is None or value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"bad --round-to '{value}': expected a positive integer or auto")
    return int(value)
