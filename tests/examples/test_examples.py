"""examples/make and examples/cmake: ncc as a build step, rebuilt exactly when
an input ncc read changes (its --depfile), and the bundle's harness built and run."""

import json
import os
import shutil
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def _env():
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return env


class Make:
    tool = "make"

    def __init__(self, build):
        self.build = build
        self.source = os.path.join(EXAMPLES, "make")

    def run(self, target="all"):
        return _run(["make", "-C", self.source, f"BUILD={self.build}", target])


class CMake:
    tool = "cmake"

    def __init__(self, build):
        self.build = build
        _run(["cmake", "-S", os.path.join(EXAMPLES, "cmake"), "-B", build])

    def run(self, target="all"):
        return _run(["cmake", "--build", self.build, "--target", target])


def _run(args):
    done = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _stamp(path):
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns


def _touch_after(path, reference):
    """Make `path` newer than `reference`, whatever the file system's clock resolution."""
    later = os.stat(reference).st_mtime + 2
    os.utime(path, (later, later))


@pytest.mark.parametrize("system", [Make, CMake], ids=["make", "cmake"])
def test_example_builds_runs_and_rebuilds_exactly_when_an_input_changes(tmp_path, system):
    if not shutil.which(system.tool):
        pytest.skip(f"{system.tool} is not installed (.ci/apt-packages.txt)")
    build = str(tmp_path / "build")
    project = system(build)
    project.run()
    manifest = os.path.join(build, "vgg11.host", "manifest.json")
    with open(manifest) as handle:
        assert json.load(handle)["target"]["name"] == "host"

    project.run("run")
    with open(os.path.join(build, "results.json")) as handle:
        results = json.load(handle)
    assert results["format"] == "ncc-results" and len(results["times_ms"]) == 200
    assert results["environment"]["runtime_version"] not in ("", "unknown"), "the harness build missed build.mk"

    compiled = _stamp(manifest)
    project.run()
    assert _stamp(manifest) == compiled, "a build with nothing changed reran ncc"

    for changed in ("vgg11.onnx", "vgg11.profile.json"):
        _touch_after(os.path.join(build, changed), manifest)
        project.run()
        assert _stamp(manifest) != compiled, f"touching {changed} did not rerun ncc"
        compiled = _stamp(manifest)
