#!/bin/sh
# Time this bundle's model.so here; arguments go to the harness (the run-rule
# flags of every ncc harness: --iterations N --warmup N --min-seconds S
# --deadline-ms D --pin CPUS --fifo --mlock --threads T --json FILE ...,
# and --input X.npy --output Y.npy).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/harness" --model "$here/../model.so" --inputs "$here/inputs.txt" "$@"
