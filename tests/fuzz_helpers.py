"""What every fuzz case asserts, and the hypothesis settings of the fuzz suites."""

import os

from hypothesis import HealthCheck, settings

DOCUMENTED = {0, 1, 2, 3}  # exit codes a bad input may end with (README "Exit codes"); never 70


def FUZZ(n):
    """Settings for `n` derandomized cases (the same every run, so CI is stable)."""
    return settings(max_examples=n, deadline=None, database=None, derandomize=True,
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
