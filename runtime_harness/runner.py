"""Running a bundle's harness on this machine, natively or under qemu for a
smoke test, and completing its results from the bundle's manifest.

The manifest names the harness kind (ncc.runtime_harness.harnesses); a kind
with a command runs here, with the run-rule flags every harness takes alike. A bundle whose
manifest gives the harness an `arch` other than this machine's runs only with
--emulate, under that architecture's qemu user-mode emulator.
"""

import os
import platform
import shutil
import tempfile

from ncc.core.bundle import read_manifest
from ncc.core.errors import BenchmarkFailed, ToolchainError, UsageError
from ncc.core.interrupts import run_tool
from ncc.runtime_harness import rt_power, rt_results
from ncc.runtime_harness.harnesses import KINDS, runnable_here
from ncc.runtime_harness.results import load_json, validate
from ncc.runtime_harness.rt_rules import RunRules

EXIT_FAILED_RUN = 4  # a harness's exit code for a run it judged failed, results written
EMULATORS = {"aarch64": ("qemu-aarch64", "/usr/aarch64-linux-gnu")}  # arch -> (qemu user-mode, sysroot for -L)


def run_bundle(bundle_dir: str, rules: RunRules = RunRules(), emulate: bool = False, extra_argv=()) -> dict:
    """`extra_argv`: further harness flags every kind takes (--input X.npy --output Y.npy)."""
    manifest = read_manifest(bundle_dir)
    harness = manifest.get("harness") or {}
    kind = KINDS.get(harness.get("kind"))
    if kind is None or kind.command is None:
        raise UsageError(f"{bundle_dir}: ncc bench cannot run its harness ({harness.get('kind') or 'none'}) here; "
                         f"it runs {', '.join(runnable_here())}")
    emulator = _emulator(bundle_dir, harness.get("arch"), emulate)
    with tempfile.TemporaryDirectory(prefix="ncc-bench-") as scratch:
        results_path = os.path.join(scratch, "results.json")
        argv = emulator + kind.command(bundle_dir, harness) + rules.to_argv() + list(extra_argv) + ["--json", results_path]
        done = run_tool(argv)
        results = _written_results(results_path, done)
    return complete(results, manifest, emulator[0] if emulator else None)


def _emulator(bundle_dir, arch, emulate) -> list:
    if not arch or arch == platform.machine():
        return []
    if not emulate:
        raise UsageError(f"{bundle_dir}: its harness is built for {arch}; run it on the board and read the results "
                         "with `ncc bench --import`, or pass --emulate for a smoke test under qemu")
    if arch not in EMULATORS:
        raise ToolchainError(f"ncc knows no emulator for {arch}")
    qemu, sysroot = EMULATORS[arch]
    if not shutil.which(qemu):
        raise ToolchainError(f"{qemu} is not installed (apt-get install qemu-user); --emulate needs it")
    return [qemu, "-L", sysroot]


def _written_results(path, done) -> dict:
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    if done.returncode not in (0, EXIT_FAILED_RUN) or not os.path.exists(path):
        raise BenchmarkFailed(f"the bundle's harness failed (exit {done.returncode}): {last}")
    return load_json(path)


def complete(results: dict, manifest: dict, emulator=None) -> dict:
    """Fill in what the bundle knows and the harness may not (the model's
    memory), mark an emulated run, and check the schema."""
    memory = results.get("memory")
    if isinstance(memory, dict):
        for key, value in rt_results.model_memory(manifest).items():
            if memory.get(key) is None:
                memory[key] = value
    if emulator:
        results["emulated"] = True
        results["power"] = rt_power.absent("emulated run")
        results.setdefault("notes", []).append(
            f"emulated under {emulator}: latency, jitter and memory say nothing about the board")
    problems = validate(results)
    if problems:
        raise BenchmarkFailed(f"the harness wrote results that break the schema: {problems[0]}")
    return results
