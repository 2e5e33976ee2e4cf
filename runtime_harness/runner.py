"""Running a bundle's harness on this machine and reading back its results."""

import json
import os
import subprocess
import sys
import tempfile

from ncc.compiler.bundle import read_manifest
from ncc.compiler.errors import CompileError, UsageError

RESULTS_FORMAT = "ncc-results"


def run_bundle(bundle_dir: str, iterations: int = 100, warmup: int = 10, threads: int = 1,
               seed: int = 0) -> dict:
    manifest = read_manifest(bundle_dir)
    harness = manifest.get("harness") or {}
    if harness.get("kind") != "onnxruntime-python":
        raise UsageError(f"{bundle_dir}: its harness ({harness.get('kind') or 'none'}) does not run on this machine")
    entry = os.path.join(bundle_dir, harness["entry"])
    model = os.path.join(bundle_dir, harness["model"])
    with tempfile.TemporaryDirectory(prefix="ncc-bench-") as scratch:
        results_path = os.path.join(scratch, "results.json")
        argv = [sys.executable, entry, "--model", model, "--iterations", str(iterations),
                "--warmup", str(warmup), "--threads", str(threads), "--seed", str(seed),
                "--json", results_path]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise CompileError(f"the bundle's harness failed (exit {done.returncode}): {last}")
        return read_results(results_path)


def read_results(path: str) -> dict:
    with open(path) as handle:
        results = json.load(handle)
    if results.get("format") != RESULTS_FORMAT:
        raise UsageError(f"{path} is not an ncc results file")
    return results
