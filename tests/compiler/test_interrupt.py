"""Ctrl-C or SIGTERM in the middle of `ncc compile` leaves no bundle, no
half-written staging folder beside it and nothing in TMPDIR."""

import os
import signal
import subprocess
import sys
import time

import pytest

from ncc.core.errors import EXIT_INTERRUPTED


def _staging(out):
    return [name for name in os.listdir(out) if name.endswith(".partial")]


def _reached(out, point):
    """`passes`: the staging folder exists (passes run); `emit`: the compiled
    model is written into it, so the target is building (TVM); `harness`: the
    harness sources are there and its binary is not, so make and g++ run."""
    for name in _staging(out):
        staging = os.path.join(out, name)
        if point == "passes" or (point == "emit" and os.path.exists(os.path.join(staging, "model.onnx"))):
            return True
        if point == "harness" and os.path.exists(os.path.join(staging, "harness", "build.mk")):
            return not os.path.exists(os.path.join(staging, "harness", "harness"))
    return False


def _running(processes) -> list:
    """The names of those of `processes` that still run (zombies excepted)."""
    import psutil

    names = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                names.append(process.name())
        except psutil.NoSuchProcess:
            pass
    return names


@pytest.mark.parametrize("point", ["passes", "emit", "harness"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_compile_leaves_nothing(tmp_path, zoo_onnx, sig, point):
    import psutil

    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    if point == "harness":  # an empty cache: the harness is built, not copied from an earlier build
        env["NCC_CACHE"] = str(tmp_path / "cache")
    # ONNX Runtime's import keeps a telemetry session file (.ses) in TMPDIR for
    # good; what is there after importing it is not the compile's to clean up.
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, check=True)
    before = sorted(os.listdir(tmp))
    compile_ = subprocess.Popen(
        [sys.executable, "-m", "ncc.cli", "compile", zoo_onnx("vgg11", width_mult=0.125),
         "-o", out / "bundle", "--target", "host", "--verify"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not (_reached(out, point) and (point != "harness" or {"make", "cc1plus"} <= set(_running(
                psutil.Process(compile_.pid).children(recursive=True))))):
            assert compile_.poll() is None, f"the compile ended before reaching {point}: {compile_.stderr.read()}"
            time.sleep(0.005)
        tools = psutil.Process(compile_.pid).children(recursive=True)  # make, g++, ... where they run
        names = _running(tools)
        compile_.send_signal(sig)
        _, stderr = compile_.communicate(timeout=300)
    finally:
        compile_.kill()
    if point == "harness":
        assert "cc1plus" in names, f"the harness build was not running: {names}"
    _, alive = psutil.wait_procs(tools, timeout=10)
    assert _running(alive) == [], "the interrupted compile left its tools running"
    assert compile_.returncode == EXIT_INTERRUPTED, stderr
    assert stderr.strip().splitlines() == ["ncc: interrupted"], stderr
    assert os.listdir(out) == []
    assert sorted(os.listdir(tmp)) == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_bench_stops_its_harness(tmp_path, zoo_onnx, sig):
    import psutil

    from ncc.compiler import compile

    bundle = compile(zoo_onnx("vgg11", width_mult=0.125), out=tmp_path / "b", target="onnxruntime").path
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, check=True)
    before = sorted(os.listdir(tmp))
    bench = subprocess.Popen([sys.executable, "-m", "ncc.cli", "bench", bundle, "--min-seconds", "3600"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not psutil.Process(bench.pid).children():
            assert bench.poll() is None, bench.stderr.read()
            time.sleep(0.005)
        harness = psutil.Process(bench.pid).children()[0]
        bench.send_signal(sig)
        _, stderr = bench.communicate(timeout=300)
    finally:
        bench.kill()
    assert bench.returncode == EXIT_INTERRUPTED, stderr
    assert stderr.strip().splitlines() == ["ncc: interrupted"], stderr
    try:
        ended = harness.status() == psutil.STATUS_ZOMBIE  # killed, not yet reaped by its new parent
    except psutil.NoSuchProcess:
        ended = True
    assert ended, "the harness outlived the interrupted bench"
    assert sorted(os.listdir(tmp)) == before
