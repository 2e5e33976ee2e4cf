"""The VART C++ timing harness of a zcu104 bundle (runtime_harness/vart/ and
the headers every C++ harness shares, runtime_harness/cpp/), and its build
here against the Debian Vitis AI 2.5 packages (libvart-dev, libxir-dev).

On the board the bundle's harness/ is built with its Makefile (natively, or
with the Petalinux/Vitis sysroot: make SYSROOT=... CXX=aarch64-linux-gnu-g++)
and run with run.sh on out/model.xmodel, which vai_c_xir compiles.
"""

import os

from ncc.runtime_harness.cpp_build import make

BINARY = "harness"


def build_here(harness_dir: str, cxx: str = "g++") -> str:
    """Build the harness in `harness_dir` (a bundle's harness/) with this
    machine's compiler and VART; the binary's path."""
    make(harness_dir, cxx, "VART timing harness", BINARY)
    return os.path.join(harness_dir, BINARY)
