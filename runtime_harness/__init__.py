"""Timing harnesses copied into bundles (their kinds: harnesses.py), and the
code that runs them here.

The rt_*.py modules travel into bundles beside a Python harness and need only
the standard library and numpy; ncc imports the very same modules, so a
statistic or a rule has one implementation.
"""
