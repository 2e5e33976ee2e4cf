#!/bin/sh
# Time this bundle's compiled model on the DPU: out/model.xmodel (compile.sh
# writes it), or the xmodel given with --model. Builds the harness on first
# use. Arguments go to the harness: the run-rule flags of every ncc harness
# (--iterations N --warmup N --min-seconds S --deadline-ms D --pin CPUS --fifo
# --mlock --json FILE ...), --input X.npy --output Y.npy, --runner dummy.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$here/harness" ]; then
    make --no-print-directory -C "$here" harness >&2
fi
model="$here/../out/model.xmodel"
for arg in "$@"; do
    if [ "$arg" = "--model" ]; then
        exec "$here/harness" "$@"
    fi
done
exec "$here/harness" --model "$model" "$@"
