"""The TVM targets (Relax): host and cortex-a72 share the build, tuning, integer kernels, runtime and C++ harness here; each board is one module."""
