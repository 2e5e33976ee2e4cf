"""What every fuzz case asserts, the hypothesis settings of the fuzz suites,
and the CLI run in-process with each case bounded in time and memory."""

import os
import resource
import signal
from contextlib import contextmanager

from hypothesis import HealthCheck, settings

from cli_helpers import invoke as invoke_unbounded

DOCUMENTED = {0, 1, 2, 3}  # exit codes a bad input may end with (README "Exit codes"); never 70


# NCC_FUZZ_SCALE=K runs K times the cases, drawn afresh each run (a nightly job's deeper search);
# unset, every run draws the same cases, so CI is stable
SCALE = int(os.environ.get("NCC_FUZZ_SCALE", "1"))


def FUZZ(n):
    """Settings for `n` cases (times NCC_FUZZ_SCALE)."""
    return settings(max_examples=n * SCALE, deadline=None, database=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def tree(root) -> list:
    """Every file below `root`, relative and sorted."""
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names)


def check_outcome(code, stderr, output=""):
    """A documented exit code, no traceback, and on failure exactly one `ncc: error:` line."""
    assert code in DOCUMENTED, (code, stderr)
    assert "Traceback" not in stderr + output
    if code:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ncc: error:"), stderr


CASE_SECONDS = 120  # far above any case's time here: a case over it is a hang, not a slow machine
CASE_MEMORY = 4 << 30  # address space a case may add to the test process's own


class CaseOverrun(BaseException):
    """A case ran over its time (BaseException, so no `except Exception` in ncc swallows it)."""


def _address_space() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def bounded(seconds: float = CASE_SECONDS, memory: int = CASE_MEMORY):
    """Within `seconds` (SIGALRM ends the case) and `memory` more bytes of
    address space (RLIMIT_AS's soft limit, restored afterwards: an allocation
    over it fails as MemoryError, which ncc must report like any bad input)."""
    def overrun(_signum, _frame):
        raise CaseOverrun(f"the case ran over {seconds} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + memory
    previous = signal.signal(signal.SIGALRM, overrun)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def invoke(*args):
    """The CLI in-process (click's CliRunner), the case bounded by `bounded()`."""
    with bounded():
        return invoke_unbounded(*args)
