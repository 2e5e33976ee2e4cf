"""ncc: compile convolutional networks for real-time embedded boards.

The Python API (`compile`, `inspect`, `bench`, the error classes) is documented in
`ncc.compiler.api`; it is imported on first use so the CLI starts fast.
"""

__version__ = "0.1.0"

_API = {"compile": "api", "inspect": "api", "bench": "api", "Bundle": "driver", "CompileOptions": "driver",
        "NccError": "errors", "CompileError": "errors", "UsageError": "errors",
        "ToolchainError": "errors", "BenchmarkFailed": "errors"}


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f"ncc.compiler.{_API[name]}"), name)
    raise AttributeError(name)
