"""The VART C++ timing harness of a zcu104 bundle (runtime_harness/vart/ and
the headers every C++ harness shares, runtime_harness/cpp/), and its builds
here: natively against the Debian Vitis AI 2.5 packages (libvart-dev,
libxir-dev), or for the board's aarch64 against a sysroot of those packages'
arm64 builds (ncc sysroot zcu104), which qemu-aarch64 -L also runs it with.

On the board the bundle's harness/ is built with its Makefile (natively, or
with the Petalinux/Vitis sysroot: make SYSROOT=... CXX=aarch64-linux-gnu-g++)
and run with run.sh on out/model.xmodel, which vai_c_xir compiles.
"""

import os

from ncc.runtime_harness import debian_sysroot
from ncc.runtime_harness.cpp_build import make

BINARY = "harness"
CROSS_CXX = "aarch64-linux-gnu-g++"
# what harness.cc includes and links (VART, XIR and the UniLog its headers include, glog),
# and the C library a compiler that brings none of its own links against
SYSROOT_PACKAGES = ("libvart-dev", "libxir-dev", "libunilog-dev", "libgoogle-glog-dev", "libc6-dev")


def build_here(harness_dir: str, cxx: str = "g++") -> str:
    """Build the harness in `harness_dir` (a bundle's harness/) with this
    machine's compiler and VART; the binary's path."""
    make(harness_dir, cxx, "VART timing harness", BINARY)
    return os.path.join(harness_dir, BINARY)


def sysroot(cache: str | None = None, force: bool = False) -> str:
    """The aarch64 sysroot of the Vitis AI 2.5 runtime (Debian's arm64 packages), built once and cached."""
    return debian_sysroot.sysroot("vart", "aarch64", SYSROOT_PACKAGES, cache=cache, force=force)


def cross_build(harness_dir: str, sysroot_dir: str, cxx: str = CROSS_CXX) -> str:
    """Build the harness in `harness_dir` for aarch64 against `sysroot_dir`; the binary's path."""
    make(harness_dir, cxx, "VART timing harness for aarch64", BINARY, {"SYSROOT": sysroot_dir})
    return os.path.join(harness_dir, BINARY)
