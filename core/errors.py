"""The errors ncc reports to users. Each carries the exit code the CLI returns.

Exit codes are a contract for scripts and build systems:
0 success, 1 compile error, 2 usage error, 3 missing toolchain,
4 failed benchmark run, 70 internal error (a bug in ncc), 130 interrupted.
"""

EXIT_OK = 0
EXIT_COMPILE = 1
EXIT_USAGE = 2
EXIT_TOOLCHAIN = 3
EXIT_BENCHMARK = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class NccError(Exception):
    """Base of every error that is the user's to fix; its message is one line."""

    exit_code = EXIT_COMPILE

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class CompileError(NccError):
    """The model cannot be compiled as asked (bad model, pass cannot apply)."""


class UsageError(NccError):
    """The command line or a file named on it is wrong."""

    exit_code = EXIT_USAGE


class ToolchainError(NccError):
    """A requested step needs a tool that is not installed here."""

    exit_code = EXIT_TOOLCHAIN


class BenchmarkFailed(NccError):
    """A timed run failed: its harness crashed, it has too few samples for its
    p99, or it missed its deadline more often than --max-miss-rate allows."""

    exit_code = EXIT_BENCHMARK

    def __init__(self, message: str, results: dict | None = None):
        super().__init__(message)
        self.results = results  # the results document of the failed run, when there is one
