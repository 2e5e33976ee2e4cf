"""The C++ timing harness of a TVM bundle (runtime_harness.harnesses.TVM_CPP):
its sources copied into harness/, the tvm-ffi headers beside them (so the
board can rebuild it), and the binary built here with the target's compiler
against the bundle's lib/."""

import hashlib
import json
import os
import shutil
import subprocess

import onnx

from ncc.core.cache import cache_dir
from ncc.runtime_harness.cpp_build import make, require
from ncc.runtime_harness.harnesses import TVM_CPP
from ncc.targets.tvm.runtime_libs import include_dir, versions

INPUTS = "inputs.txt"
BUILD_SETTINGS = "build.mk"
HEADER_FOLDERS = ("tvm/ffi", "dlpack")


def input_specs(model: onnx.ModelProto) -> str:
    """inputs.txt: NAME DTYPE D0 D1 ... for each graph input, what the harness feeds."""
    initializers = {init.name for init in model.graph.initializer}
    lines = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        dims = " ".join(str(d.dim_value) for d in tensor.shape.dim)
        lines.append(f"{value.name} {dtype} {dims}\n")
    return "".join(lines)


def write_harness(model: onnx.ModelProto, bundle, cxx: str) -> None:
    """Sources, headers, inputs.txt and the binary, added to `bundle` (a BundleWriter)."""
    TVM_CPP.install(bundle)
    bundle.add_bytes(f"harness/{INPUTS}", input_specs(model), "harness-source", "the model's inputs: name, dtype, shape")
    bundle.add_bytes(f"harness/{BUILD_SETTINGS}", f"TVM_VERSION = {versions()['apache-tvm']}\n", "harness-source",
                     "harness source")
    harness_dir = bundle.folder("harness")
    for folder in HEADER_FOLDERS:
        shutil.copytree(os.path.join(include_dir(), folder), os.path.join(harness_dir, "include", folder))
    _build(harness_dir, cxx)
    bundle.add_existing("harness/harness", "harness", "timing harness (C++, tvm-ffi)", executable=True)


def _build(harness_dir: str, cxx: str):
    """Build the binary, or take it from the cache: it depends only on the
    sources, the compiler and the runtime versions, never on the model."""
    require(cxx, "timing harness")
    digest = hashlib.sha256(json.dumps([cxx, _compiler_version(cxx), versions()]).encode())
    for name in (*(os.path.basename(f.path) for f in TVM_CPP.files), BUILD_SETTINGS):
        with open(os.path.join(harness_dir, name), "rb") as handle:
            digest.update(handle.read())
    cached = os.path.join(cache_dir(), "harness", digest.hexdigest()[:24], "harness")
    binary = os.path.join(harness_dir, "harness")
    if not os.path.exists(cached):
        make(harness_dir, cxx, "timing harness")
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        shutil.copyfile(binary, f"{cached}.partial")
        os.replace(f"{cached}.partial", cached)
    else:
        shutil.copyfile(cached, binary)


def _compiler_version(cxx: str) -> str:
    return subprocess.run([cxx, "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
