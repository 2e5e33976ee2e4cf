"""The TVM runtime a bundle ships in lib/ (libtvm_runtime.so and
libtvm_ffi.so), of the same versions as the compiler that built model.so.

For this machine they come from the installed wheels; for another
architecture from that architecture's wheels of the same versions, downloaded
with pip once and kept in the cache.
"""

import glob
import importlib.util
import os
import platform
import sys
import tempfile
import zipfile
from importlib import metadata

from ncc.core.cache import cache_dir
from ncc.core.errors import ToolchainError
from ncc.core.interrupts import run_tool

# (distribution, import package, library file inside the package)
LIBRARIES = (("apache-tvm", "tvm", "lib/libtvm_runtime.so"),
             ("apache-tvm-ffi", "tvm_ffi", "lib/libtvm_ffi.so"))
WHEEL_PLATFORMS = {"aarch64": "manylinux_2_28_aarch64"}


def versions() -> dict:
    return {dist: metadata.version(dist) for dist, _package, _lib in LIBRARIES}


def include_dir() -> str:
    """The tvm-ffi C++ headers (architecture-independent) of the installed wheel."""
    return os.path.join(_package_dir("tvm_ffi"), "include")


def runtime_libs(arch: str) -> list[str]:
    """Paths of libtvm_runtime.so and libtvm_ffi.so for `arch` (e.g. "x86_64", "aarch64")."""
    if arch == platform.machine():
        return [os.path.join(_package_dir(package), lib) for _dist, package, lib in LIBRARIES]
    return _wheel_libs(arch)


def _package_dir(package: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ToolchainError(f"the Python package {package} is not installed")
    return spec.submodule_search_locations[0]


def _cache_folder(arch: str) -> str:
    tag = "-".join(f"{dist}-{version}" for dist, version in versions().items())
    return os.path.join(cache_dir(), "runtime", arch, tag)


def _wheel_libs(arch: str) -> list[str]:
    folder = _cache_folder(arch)
    wanted = [os.path.join(folder, os.path.basename(lib)) for _dist, _package, lib in LIBRARIES]
    if all(os.path.exists(path) for path in wanted):
        return wanted
    if arch not in WHEEL_PLATFORMS:
        raise ToolchainError(f"no TVM runtime wheels are known for {arch}")
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ncc-wheels-") as download:
        requirements = [f"{dist}=={version}" for dist, version in versions().items()]
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps",
                "--platform", WHEEL_PLATFORMS[arch], "--python-version",
                f"{sys.version_info.major}.{sys.version_info.minor}", "-d", download, *requirements]
        done = run_tool(argv)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ToolchainError(f"cannot download the {arch} TVM runtime ({' '.join(requirements)}) "
                                 f"with pip: {last}")
        for (dist, package, lib), path in zip(LIBRARIES, wanted):
            _extract(download, dist, f"{package}/{lib}", path)
    return wanted


def _extract(download: str, dist: str, member: str, path: str):
    wheels = glob.glob(os.path.join(download, f"{dist.replace('-', '_')}-*.whl"))
    if len(wheels) != 1:
        raise ToolchainError(f"pip did not download one wheel of {dist} (found {len(wheels)})")
    with zipfile.ZipFile(wheels[0]) as wheel:
        try:
            data = wheel.read(member)
        except KeyError:
            raise ToolchainError(f"{os.path.basename(wheels[0])} has no {member}") from None
    partial = f"{path}.partial"
    with open(partial, "wb") as handle:
        handle.write(data)
    os.chmod(partial, 0o755)
    os.replace(partial, path)  # a concurrent or interrupted download never leaves half a library
