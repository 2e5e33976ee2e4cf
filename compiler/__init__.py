"""ncc: compile convolutional networks for real-time embedded boards.

The Python API (`compile`, `inspect`, `bench`, the error classes) is documented in
`ncc.compiler.api`; it is imported on first use so the CLI starts fast.
"""

__version__ = "0.1.0"

_API = {"compile": "ncc.compiler.api", "inspect": "ncc.compiler.api", "bench": "ncc.compiler.api",
        "Bundle": "ncc.compiler.driver", "CompileOptions": "ncc.compiler.driver", "compile_model": "ncc.compiler.driver",
        **{error: "ncc.core.errors"
           for error in ("NccError", "CompileError", "UsageError", "ToolchainError", "BenchmarkFailed")}}


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(name)
