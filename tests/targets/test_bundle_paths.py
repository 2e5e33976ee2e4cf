"""A bundle whose path holds spaces, `$`, quotes and `;` compiles for every
target; its shell scripts pass shellcheck and run from there (no script or
subprocess builds a shell string from a path)."""

import glob
import os
import shutil
import subprocess
import sys

import pytest

from ncc.core.errors import EXIT_TOOLCHAIN
from ncc.targets import TARGETS, get_target

AWKWARD = """my models $HOME 'q' "dq" ;touch pwned"""


@pytest.mark.parametrize("target", [t.name for t in TARGETS])
def test_bundle_under_an_awkward_path(tmp_path, zoo_onnx, target):
    folder = tmp_path / AWKWARD
    folder.mkdir()
    model = folder / "m $1.onnx"
    shutil.copy(zoo_onnx("vgg11", width_mult=0.125), model)
    bundle = folder / "bundle ;$(touch pwned)"
    done = subprocess.run([sys.executable, "-m", "ncc.cli", "compile", model, "-o", bundle, "--target", target,
                           "--quantize", "int8", "--calib-samples", "8"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    if done.returncode == EXIT_TOOLCHAIN:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr
    assert not glob.glob(str(tmp_path / "**" / "pwned"), recursive=True)

    scripts = sorted(glob.glob(glob.escape(str(bundle)) + "/**/*.sh", recursive=True))
    assert scripts, "every bundle has a script to run or build it"
    if shutil.which("shellcheck"):
        for script in scripts:
            check = subprocess.run(["shellcheck", script], capture_output=True, text=True)
            assert check.returncode == 0, check.stdout

    if get_target(target).measurable_here:
        results = folder / "results $x.json"
        run = subprocess.run([bundle / "harness" / "run.sh", "--iterations", "100", "--warmup", "1",
                              "--json", results], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                             env={**os.environ, "PYTHON": sys.executable})
        assert run.returncode == 0, run.stderr
        assert results.exists()
        assert not glob.glob(str(tmp_path / "**" / "pwned"), recursive=True)
