"""Timing harnesses copied into bundles, and the code that runs them here.

The rt_*.py modules travel into bundles beside a Python harness and need only
the standard library and numpy; ncc imports the very same modules, so a
statistic or a rule has one implementation.
"""

import os
from dataclasses import dataclass

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class HarnessFile:
    source: str  # in runtime_harness/
    path: str  # in the bundle
    kind: str  # artifact kind in the manifest
    description: str
    executable: bool = False


ORT_HARNESS_FILES = (
    HarnessFile("ort_harness.py", "harness/ort_harness.py", "harness", "ONNX Runtime timing harness (Python)"),
    HarnessFile("rt_rules.py", "harness/rt_rules.py", "harness", "run rules and their flags"),
    HarnessFile("rt_results.py", "harness/rt_results.py", "harness", "statistics and the results document"),
    HarnessFile("rt_env.py", "harness/rt_env.py", "harness", "environment and scheduling requests"),
    HarnessFile("rt_power.py", "harness/rt_power.py", "harness", "hwmon power sampling"),
    HarnessFile("run_ort.sh", "harness/run.sh", "script", "runs the harness on model.onnx", executable=True),
)


def harness_source(name: str) -> bytes:
    with open(os.path.join(HARNESS_DIR, name), "rb") as handle:
        return handle.read()


def install(files, bundle_dir: str) -> None:
    """Copy harness files into a bundle (their folders made), with their modes."""
    for file in files:
        path = os.path.join(bundle_dir, file.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(harness_source(file.source))
        os.chmod(path, 0o755 if file.executable else 0o644)
