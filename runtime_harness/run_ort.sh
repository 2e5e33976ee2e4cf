#!/bin/sh
# Time this bundle's model with ONNX Runtime here; arguments go to the harness
# (--iterations N --warmup N --threads T --json FILE --input X.npy --output Y.npy).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec "${PYTHON:-python3}" "$here/ort_harness.py" --model "$here/../model.onnx" "$@"
