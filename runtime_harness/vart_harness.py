"""The VART C++ timing harness of a zcu104 bundle (runtime_harness/vart/ and
the headers every C++ harness shares, runtime_harness/cpp/), and its build
here against the Debian Vitis AI 2.5 packages (libvart-dev, libxir-dev).

On the board the bundle's harness/ is built with its Makefile (natively, or
with the Petalinux/Vitis sysroot: make SYSROOT=... CXX=aarch64-linux-gnu-g++)
and run with run.sh on out/model.xmodel, which vai_c_xir compiles.
"""

import os

from ncc.runtime_harness import HarnessFile
from ncc.runtime_harness.cpp_build import CPP_HEADERS, make

VART_HARNESS_FILES = (
    HarnessFile("vart/harness.cc", "harness/harness.cc", "harness", "VART timing harness (C++)"),
    *(HarnessFile(f"cpp/{name}", f"harness/{name}", "harness", f"shared C++ harness header {name}")
      for name in CPP_HEADERS),
    HarnessFile("vart/Makefile", "harness/Makefile", "harness", "builds the harness on the board or its sysroot"),
    HarnessFile("vart/run.sh", "harness/run.sh", "script", "runs the harness on out/model.xmodel", executable=True),
)
BINARY = "harness"


def build_here(harness_dir: str, cxx: str = "g++") -> str:
    """Build the harness in `harness_dir` (a bundle's harness/) with this
    machine's compiler and VART; the binary's path."""
    make(harness_dir, cxx, "VART timing harness", BINARY)
    return os.path.join(harness_dir, BINARY)
