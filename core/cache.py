"""Where ncc keeps what it downloads or builds once and reuses (tuning
databases, other architectures' runtimes, board sysroots): $NCC_CACHE, else
~/.cache/ncc."""

import os


def cache_dir() -> str:
    return os.environ.get("NCC_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ncc")
