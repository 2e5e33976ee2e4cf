"""The harness kinds a bundle can ship: one `Harness` per kind, naming the
files it copies into the bundle, the script that runs it on the board, the
manifest entry it gets, and (for the kinds this machine can run) the command
`ncc bench` starts before the run-rule flags every harness takes alike.

A target picks its kind (`harness.install(bundle)`, `harness.entry(...)`);
the runner dispatches on the kind the manifest names. Adding a kind is one
`Harness` here.
"""

import os
import shutil
import sys
from dataclasses import dataclass
from typing import Callable

from ncc.runtime_harness import vart_harness
from ncc.runtime_harness.cpp_build import CPP_HEADERS

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class HarnessFile:
    source: str  # in runtime_harness/
    path: str  # in the bundle
    kind: str  # artifact kind in the manifest
    description: str
    executable: bool = False


@dataclass(frozen=True)
class Harness:
    kind: str
    runs: str  # the bundle-relative script that runs it on its board
    files: tuple  # HarnessFile, copied into every bundle of this kind
    command: Callable | None = None  # (bundle_dir, manifest entry) -> argv here; None: only on its board
    sysroot: Callable | None = None  # (cache, force) -> the board's sysroot path, to cross-build the harness here

    def install(self, bundle) -> list:
        """Copy the files into `bundle` (a BundleWriter); their Artifacts."""
        return [bundle.add_copy(f.path, os.path.join(HARNESS_DIR, f.source), f.kind, f.description, f.executable)
                for f in self.files]

    def copy_to(self, folder: str) -> None:
        """Copy the files into a plain folder laid out as a bundle (to build or run the harness outside one)."""
        for f in self.files:
            path = os.path.join(folder, f.path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copyfile(os.path.join(HARNESS_DIR, f.source), path)
            os.chmod(path, 0o755 if f.executable else 0o644)

    def entry(self, **facts) -> dict:
        """The manifest's `harness` entry: the kind, its script, and what the command needs."""
        return {"kind": self.kind, "entry": self.runs, **facts}


def _python(bundle_dir: str, entry: dict) -> list:
    return [sys.executable, os.path.join(bundle_dir, entry["entry"]), "--model", os.path.join(bundle_dir, entry["model"])]


def _tvm_cpp(bundle_dir: str, entry: dict) -> list:
    return [os.path.join(bundle_dir, entry["binary"]), "--model", os.path.join(bundle_dir, entry["model"]),
            "--inputs", os.path.join(bundle_dir, entry["inputs"])]


PYTHON_SUPPORT = (
    HarnessFile("rt_rules.py", "harness/rt_rules.py", "harness", "run rules and their flags"),
    HarnessFile("rt_results.py", "harness/rt_results.py", "harness", "statistics and the results document"),
    HarnessFile("rt_env.py", "harness/rt_env.py", "harness", "environment and scheduling requests"),
    HarnessFile("rt_power.py", "harness/rt_power.py", "harness", "hwmon power sampling"),
)


def _cpp_headers(what: str) -> tuple:
    return tuple(HarnessFile(f"cpp/{name}", f"harness/{name}", what, f"shared C++ harness header {name}")
                 for name in CPP_HEADERS)


ONNXRUNTIME = Harness("onnxruntime-python", "harness/ort_harness.py", (
    HarnessFile("ort_harness.py", "harness/ort_harness.py", "harness", "ONNX Runtime timing harness (Python)"),
    *PYTHON_SUPPORT,
    HarnessFile("run_ort.sh", "harness/run.sh", "script", "runs the harness on model.onnx", executable=True),
), command=_python)

TVM_CPP = Harness("tvm-cpp", "harness/run.sh", (
    HarnessFile("tvm/harness.cc", "harness/harness.cc", "harness-source", "harness source"),
    HarnessFile("tvm/Makefile", "harness/Makefile", "harness-source", "harness source"),
    HarnessFile("tvm/CMakeLists.txt", "harness/CMakeLists.txt", "harness-source", "harness source"),
    HarnessFile("tvm/run.sh", "harness/run.sh", "script", "runs the harness on model.so", executable=True),
    *_cpp_headers("harness-source"),
), command=_tvm_cpp)

TENSORRT = Harness("tensorrt-trtexec", "bench.sh", (
    HarnessFile("tensorrt/trt_harness.py", "harness/trt_harness.py", "harness",
                "TensorRT runtime timing harness (Python)"),
    *PYTHON_SUPPORT,
))

VART = Harness("vart", "harness/run.sh", (
    HarnessFile("vart/harness.cc", "harness/harness.cc", "harness", "VART timing harness (C++)"),
    *_cpp_headers("harness"),
    HarnessFile("vart/Makefile", "harness/Makefile", "harness", "builds the harness on the board or its sysroot"),
    HarnessFile("vart/run.sh", "harness/run.sh", "script", "runs the harness on out/model.xmodel", executable=True),
), sysroot=vart_harness.sysroot)

KINDS = {harness.kind: harness for harness in (ONNXRUNTIME, TVM_CPP, TENSORRT, VART)}


def runnable_here() -> list[str]:
    return sorted(kind for kind, harness in KINDS.items() if harness.command is not None)
