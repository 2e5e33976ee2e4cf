"""A sysroot of another architecture's Debian packages, to cross-build a C++
harness against them and run it under qemu with `-L SYSROOT`.

apt resolves the packages' dependencies for that architecture and downloads
them, with every file it keeps (package lists, its cache, an empty dpkg
status, so that nothing counts as installed) in a scratch folder: this
machine's package database and its list of architectures are not touched, and
no root is needed beyond what reading this machine's apt sources takes. Each
.deb is unpacked with `dpkg-deb -x` and its absolute symlinks
(libm.so -> /lib/aarch64-linux-gnu/libm.so.6) are made relative, so they
resolve inside the sysroot. The sysroot is built beside its cache folder and
renamed into place whole; a failed or interrupted build leaves none.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile

from ncc.core.cache import cache_dir
from ncc.core.errors import ToolchainError, UsageError
from ncc.core.interrupts import run_tool

DEBIAN_ARCHS = {"aarch64": "arm64"}
RECORD = "ncc-sysroot.json"  # in the sysroot: what it was built from
_INST = re.compile(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) ")


class SysrootDownloadError(ToolchainError):
    """apt could not fetch its lists or the packages (no network, no mirror for the architecture)."""


def sysroot(name: str, arch: str, packages: tuple, cache: str | None = None, force: bool = False) -> str:
    """The path of the `arch` sysroot holding `packages` and their dependencies,
    built on first use under `cache` (default: ncc's cache folder)/sysroot."""
    if arch not in DEBIAN_ARCHS:
        raise UsageError(f"ncc knows no Debian architecture for {arch} (it knows {', '.join(DEBIAN_ARCHS)})")
    digest = hashlib.sha256(json.dumps(sorted(packages)).encode()).hexdigest()[:12]
    parent = os.path.join(cache or cache_dir(), "sysroot")
    final = os.path.join(parent, f"{name}-{arch}-{digest}")
    if os.path.isfile(os.path.join(final, RECORD)) and not force:
        return final
    for tool in ("apt-get", "dpkg-deb"):
        if not shutil.which(tool):
            raise ToolchainError(f"{tool} is not installed: the {name} sysroot is made of Debian packages")
    try:
        os.makedirs(parent, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=f".{name}-{arch}.partial-", dir=parent)
    except OSError as err:
        raise UsageError(f"cannot create the sysroot under {parent}: {err.strerror}") from None
    try:
        root = _build(scratch, DEBIAN_ARCHS[arch], packages)
        _install(root, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final


def _build(scratch: str, debian_arch: str, packages: tuple) -> str:
    apt = _Apt(os.path.join(scratch, "apt"), debian_arch)
    apt.run(["update"], SysrootDownloadError, f"cannot fetch the {debian_arch} package lists")
    chosen = apt.resolve(packages)
    debs = os.path.join(scratch, "debs")
    os.mkdir(debs)
    apt.run(["download", *(f"{pkg}:{debian_arch}={version}" for pkg, version in chosen)], SysrootDownloadError,
            f"cannot download the {debian_arch} packages", cwd=debs)
    root = os.path.join(scratch, "root")
    os.mkdir(root)
    for deb in sorted(os.listdir(debs)):
        done = run_tool(["dpkg-deb", "-x", os.path.join(debs, deb), root])
        if done.returncode != 0:
            raise ToolchainError(f"dpkg-deb cannot unpack {deb}: {_last_line(done)}")
    _relative_symlinks(root)
    record = {"architecture": debian_arch, "requested": sorted(packages),
              "packages": {pkg: version for pkg, version in chosen}}
    with open(os.path.join(root, RECORD), "w") as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
        handle.write("\n")
    return root


def _install(root: str, final: str) -> None:
    """Rename `root` to `final`, replacing an older one; a sysroot another
    process finished first is as good as this one."""
    old = None
    if os.path.exists(final):
        old = tempfile.mkdtemp(prefix=".old-", dir=os.path.dirname(final))
        os.rename(final, os.path.join(old, "sysroot"))
    try:
        os.rename(root, final)
    except OSError:
        if not os.path.isfile(os.path.join(final, RECORD)):
            raise
    if old:
        shutil.rmtree(old, ignore_errors=True)


class _Apt:
    """apt-get for `debian_arch` with this machine's sources and every other file of its own."""

    def __init__(self, folder: str, debian_arch: str):
        for sub in ("lists/partial", "cache/archives/partial"):
            os.makedirs(os.path.join(folder, sub))
        status = os.path.join(folder, "status")
        open(status, "w").close()
        self.options = []
        for key, value in (("APT::Architecture", debian_arch), ("APT::Architectures::", debian_arch),
                           ("Dir::State::Lists", os.path.join(folder, "lists")), ("Dir::State::status", status),
                           ("Dir::Cache", os.path.join(folder, "cache")), ("Acquire::Languages", "none"),
                           ("APT::Install-Recommends", "false"),
                           # apt's _apt user cannot write into a private scratch folder
                           ("APT::Sandbox::User", "root" if os.geteuid() == 0 else "")):
            if value:
                self.options += ["-o", f"{key}={value}"]

    def run(self, args, error, what, cwd=None):
        done = run_tool(["apt-get", "-q", *self.options, *args], cwd=cwd)
        errors = [line for line in done.stderr.splitlines() if line.startswith(("E:", "Err:"))]
        if done.returncode != 0 or errors:
            raise error(f"{what}: {(errors or [_last_line(done)])[0]}")
        return done.stdout

    def resolve(self, packages: tuple) -> list:
        """(package, version) of `packages` and everything they depend on, as apt would install them."""
        plan = self.run(["--simulate", "install", *packages], ToolchainError, "apt cannot resolve the packages")
        chosen = sorted({(m.group(1).split(":")[0], m.group(2)) for m in map(_INST.match, plan.splitlines()) if m})
        if not chosen:
            raise ToolchainError(f"apt planned no packages for {' '.join(packages)}")
        return chosen


def _relative_symlinks(root: str) -> None:
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.islink(path) and os.readlink(path).startswith("/"):
                target = os.path.relpath(root + os.readlink(path), folder)
                os.unlink(path)
                os.symlink(target, path)


def _last_line(done) -> str:
    return ((done.stderr + done.stdout).strip().splitlines() or [f"exit {done.returncode}"])[-1]
