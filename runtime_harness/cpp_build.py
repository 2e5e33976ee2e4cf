"""Building a C++ timing harness with its Makefile on this machine (the TVM
and VART harnesses alike): a missing tool or a failed build is one
ToolchainError line."""

import shutil

from ncc.core.errors import ToolchainError
from ncc.core.interrupts import run_tool

# the headers every C++ harness shares (runtime_harness/cpp/), beside harness.cc in a bundle
CPP_HEADERS = ("env.h", "npy.h", "power.h", "results.h", "rules.h")


def require(cxx: str, what: str) -> None:
    for tool in ("make", cxx):
        if not shutil.which(tool):
            raise ToolchainError(f"{tool} is not installed (needed to build the {what})")


def make(harness_dir: str, cxx: str, what: str, target: str = "harness", variables: dict | None = None) -> None:
    """`make CXX=cxx [NAME=VALUE...] target` in harness_dir; `what` names the harness in errors."""
    require(cxx, what)
    settings = [f"{name}={value}" for name, value in (variables or {}).items()]
    done = run_tool(["make", "--no-print-directory", "-C", harness_dir, f"CXX={cxx}", *settings, target])
    if done.returncode != 0:
        error = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip()[-300:])
        raise ToolchainError(f"building the {what} with {cxx} failed: {error}")
