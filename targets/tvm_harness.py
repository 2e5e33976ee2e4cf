"""The C++ timing harness of a TVM bundle: its sources copied into harness/,
the tvm-ffi headers beside them (so the board can rebuild it), and the binary
built here with the target's compiler against the bundle's lib/."""

import hashlib
import json
import os
import shutil
import subprocess

import onnx

from ncc.runtime_harness import HARNESS_DIR
from ncc.runtime_harness.cpp_build import CPP_HEADERS, make, require
from ncc.targets.tvm_runtime_libs import include_dir, versions

SOURCES = ("tvm/harness.cc", "tvm/Makefile", "tvm/CMakeLists.txt", "tvm/run.sh",
           *(f"cpp/{name}" for name in CPP_HEADERS))  # in runtime_harness/; all beside harness.cc in the bundle
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


def write_harness(model: onnx.ModelProto, harness_dir: str, cxx: str) -> list[str]:
    """Sources, headers, inputs.txt and the built binary; returns their paths relative to harness_dir."""
    os.makedirs(harness_dir)
    for source in SOURCES:
        shutil.copyfile(os.path.join(HARNESS_DIR, source), os.path.join(harness_dir, os.path.basename(source)))
    os.chmod(os.path.join(harness_dir, "run.sh"), 0o755)
    with open(os.path.join(harness_dir, INPUTS), "w") as handle:
        handle.write(input_specs(model))
    with open(os.path.join(harness_dir, BUILD_SETTINGS), "w") as handle:
        handle.write(f"TVM_VERSION = {versions()['apache-tvm']}\n")
    for folder in HEADER_FOLDERS:
        shutil.copytree(os.path.join(include_dir(), folder), os.path.join(harness_dir, "include", folder))
    _build(harness_dir, cxx)
    return [*map(os.path.basename, SOURCES), INPUTS, BUILD_SETTINGS, "harness"]


def _build(harness_dir: str, cxx: str):
    """Build the binary, or take it from the cache: it depends only on the
    sources, the compiler and the runtime versions, never on the model."""
    from ncc.targets.tvm_tuning import cache_dir

    require(cxx, "timing harness")
    digest = hashlib.sha256(json.dumps([cxx, _compiler_version(cxx), versions()]).encode())
    for name in (*map(os.path.basename, SOURCES), BUILD_SETTINGS):
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
    os.chmod(binary, 0o755)


def _compiler_version(cxx: str) -> str:
    return subprocess.run([cxx, "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
