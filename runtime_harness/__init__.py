"""Timing harnesses copied into bundles, and the code that runs them here."""

import os

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))


def harness_source(name: str) -> bytes:
    with open(os.path.join(HARNESS_DIR, name), "rb") as handle:
        return handle.read()
