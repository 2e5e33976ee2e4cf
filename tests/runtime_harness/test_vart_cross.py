"""The VART harness as the ZCU104 runs it: cross-built for aarch64 with the
bundle's Makefile against the sysroot `ncc sysroot zcu104` unpacks from
Debian's arm64 Vitis AI 2.5 packages, and run under qemu-aarch64 with that
sysroot and VART's dummy runner on zcu104 bundles of the zoo networks and of
a model with a CPU-placed layer (partitioned as a compiled xmodel is:
partitioned_xmodel). The sysroot is ncc's cached one, downloaded on first use."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc.core.bundle import read_manifest
from ncc.core.errors import ToolchainError
from ncc.runtime_harness import debian_sysroot
from ncc.runtime_harness.harnesses import VART
from ncc.runtime_harness.results import validate
from ncc.runtime_harness.runner import complete
from ncc.runtime_harness.vart_harness import CROSS_CXX, cross_build, sysroot

pytestmark = pytest.mark.skipif(
    not (shutil.which(CROSS_CXX) and shutil.which("qemu-aarch64") and shutil.which("make")
         and shutil.which("apt-get") and shutil.which("dpkg-deb")),
    reason="needs g++-aarch64-linux-gnu, qemu-user, make and apt (.ci/apt-packages.txt)")
SLEEP_MS = 1
EM_AARCH64 = 183  # ELF e_machine


@pytest.fixture(scope="module")
def vart_sysroot():
    try:
        return sysroot()
    except debian_sysroot.SysrootDownloadError as err:
        pytest.skip(f"apt cannot download the arm64 packages here: {err}")


@pytest.fixture(scope="module")
def cross_harness(vart_sysroot, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vart-aarch64")
    VART.copy_to(str(folder))
    return cross_build(str(folder / "harness"), vart_sysroot)


def qemu_run(sysroot_dir, binary, *args):
    """The aarch64 harness under qemu with the sysroot's loader and libraries; (exit code, stderr, results)."""
    out = os.path.join(os.path.dirname(binary), "results.json")
    if os.path.exists(out):
        os.unlink(out)
    libraries = ":".join(os.path.join(sysroot_dir, d) for d in ("usr/lib/aarch64-linux-gnu", "lib/aarch64-linux-gnu"))
    done = subprocess.run(["qemu-aarch64", "-L", sysroot_dir, "-E", f"LD_LIBRARY_PATH={libraries}",
                           "-E", f"DUMMY_RUNNER_PROCESS_TIME={SLEEP_MS}", binary, *map(str, args), "--json", out],
                          capture_output=True, text=True, check=False)
    results = json.loads(pathlib.Path(out).read_text()) if os.path.exists(out) else None
    return done.returncode, done.stderr.strip().splitlines(), results


def test_the_harness_cross_builds_for_aarch64_against_the_sysroot(cross_harness, vart_sysroot):
    with open(cross_harness, "rb") as handle:
        header = handle.read(20)
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == EM_AARCH64
    record = json.loads(pathlib.Path(vart_sysroot, debian_sysroot.RECORD).read_text())
    assert record["architecture"] == "arm64"
    assert record["packages"]["libvart2"].startswith("2.5") and record["packages"]["libxir2"].startswith("2.5")
    assert os.path.isfile(os.path.join(vart_sysroot, "usr/lib/aarch64-linux-gnu/libvart-dummy-runner.so.2"))
    libm = os.path.join(vart_sysroot, "usr/lib/aarch64-linux-gnu/libm.so")  # was absolute: /lib/aarch64-linux-gnu/...
    assert not os.readlink(libm).startswith("/") and os.path.exists(libm)


@pytest.mark.parametrize("name,ran", [("vgg11", ["DPU"]), ("resnet50", ["DPU"]), ("cpu-layer", ["DPU", "CPU", "DPU"])])
def test_under_qemu_the_dummy_run_is_schema_valid_and_says_no_dpu_ran(cross_harness, vart_sysroot, zcu104_bundle,
                                                                       name, ran):
    bundle, devices = zcu104_bundle(name)
    code, stderr, results = qemu_run(vart_sysroot, cross_harness, "--model", bundle / "out" / "model.xmodel",
                                     "--runner", "dummy", "--iterations", "100", "--warmup", "1",
                                     "--warmup-seconds", "0")
    assert code == 0, stderr
    assert validate(results) == [] and results["valid"]
    assert results["environment"]["machine"] == "aarch64" and results["environment"]["runtime_version"] == "2.5.0"
    subgraphs = results["environment"]["extra"]["subgraphs"]
    assert [s["device"] for s in subgraphs] == devices
    assert [s["device"] for s in subgraphs if s["ran"]] == ran
    assert any("no DPU ran" in note for note in results["notes"])
    assert results["latency_ms"]["min"] >= len(ran) * SLEEP_MS
    completed = complete(results, read_manifest(str(bundle)), "qemu-aarch64")
    assert completed["emulated"] and validate(completed) == []


def test_ncc_sysroot_prints_the_cached_sysroot(vart_sysroot):
    result = invoke("sysroot", "zcu104")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == vart_sysroot


def test_ncc_sysroot_of_a_target_without_one_is_one_error_line():
    assert_one_line_error(invoke("sysroot", "host"), 2,
                          "target host has no sysroot to prepare (targets with one: zcu104)")
    assert_one_line_error(invoke("sysroot", "zcu105"), 2, "unknown target 'zcu105'")


def test_a_sysroot_that_cannot_be_built_leaves_nothing_behind(tmp_path):
    try:
        debian_sysroot.sysroot("broken", "aarch64", ("libvart-dev", "no-such-package-ncc"), cache=str(tmp_path))
    except debian_sysroot.SysrootDownloadError as err:
        pytest.skip(f"apt cannot download the arm64 package lists here: {err}")
    except ToolchainError as err:
        assert "apt cannot resolve the packages: E: Unable to locate package no-such-package-ncc" in str(err)
    else:
        pytest.fail("a sysroot of a package Debian does not have was built")
    assert os.listdir(tmp_path / "sysroot") == []
