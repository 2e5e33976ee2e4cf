"""SIGTERM unwinds like Ctrl-C: every `ncc` command runs under this, so a
stopped compile removes its staging folder and a stopped bench its harness
process, and the command ends with exit code 130 either way."""

import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager


@contextmanager
def interrupts_as_exceptions():
    def raise_interrupt(_signum, _frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, raise_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_tool(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run(argv, capture_output=True, text=True) in a process group
    of its own, stopped whole when ncc is interrupted: killing only the child
    (as subprocess.run does) would leave what it started (make's g++, a
    script's harness) running."""
    process = None
    try:
        with _held_interrupts():  # Popen() forks, then waits for exec: no interrupt may land between
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       start_new_session=True, **kwargs)
        stdout, stderr = process.communicate()
    except BaseException:
        if process is not None:
            _stop_group(process)
        raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


@contextmanager
def _held_interrupts():
    """SIGINT and SIGTERM that arrive within are raised (as KeyboardInterrupt) on leaving it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: arrived.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if arrived:
        raise KeyboardInterrupt


def _stop_group(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM to the group first, so its tools delete their own temporary
    files (g++'s in TMPDIR), then SIGKILL to what is left after `grace`
    seconds; returns once every process of the group has ended, so none still
    writes into a folder ncc is about to remove."""
    import psutil

    try:
        members = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        members = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while _running(members) and time.monotonic() < deadline:
            process.poll()  # reaps the leader; its descendants are reaped by whoever adopts them
            time.sleep(0.01)
        if not _running(members):
            break
    process.wait()


def _running(processes) -> bool:
    import psutil

    for member in processes:
        try:
            if member.status() != psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            pass
    return False
