"""SIGTERM unwinds like Ctrl-C: every `ncc` command runs under this, so a
stopped compile removes its staging folder and a stopped bench its harness
process, and the command ends with exit code 130 either way."""

import signal
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
