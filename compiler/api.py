"""The Python API of ncc: compile a model, inspect it, time a bundle; the
CLI's `compile`, `inspect` and `bench` are thin layers over these.

Every function raises a typed `NccError` (`CompileError`, `UsageError`,
`ToolchainError`, ...) instead of printing; each error's `exit_code` is the
one the CLI would return.

    from ncc.compiler import bench, compile, inspect
    bundle = compile("model.onnx", target="onnxruntime", scale="uniform:0.5", out="build/bundle")
    print(bundle.path, bundle.manifest["target"]["name"])
    print(bench(bundle.path, iterations=200)["latency_ms"]["p99"])
"""

from ncc.compiler.driver import Bundle, CompileOptions, compile_model
from ncc.core.errors import BenchmarkFailed, UsageError
from ncc.compiler.specs import parse_scale


def compile(model: str, *, out: str, target: str = "host", scale: str | tuple | None = None,
            quantize: str | None = None, **options) -> Bundle:
    """Compile the ONNX file `model` into a bundle folder `out` for `target`.

    `scale` is "uniform:R" / "neuralscale:R" (or a (method, ratio) tuple);
    `quantize` is "int8" or None. Any other keyword is a field of
    `CompileOptions` (e.g. `calib=`, `profile=`, `force=True`, `timing=False`)
    or of the target's options (e.g. `tune_trials=` for host, `fp16=` for xavier).
    Returns the committed `Bundle` (its path and manifest)."""
    if isinstance(scale, str):
        scale = parse_scale(scale)
    compile_options = CompileOptions.create(target=target, scale=scale, quantize=quantize, **options)
    return compile_model(str(model), str(out), compile_options)


def inspect(model: str, input_shapes: dict | None = None) -> dict:
    """The summary `ncc inspect --json` prints: inputs, outputs, ops, costs."""
    from ncc.compiler.inspection import summarize
    from ncc.compiler.loader import load_model

    return summarize(load_model(str(model), input_shapes or {}))


def bench(bundle: str, *, emulate: bool = False, rules=None, **rule_values) -> dict:
    """Run `bundle`'s own timing harness here and return its results document.

    The run rules are `rules` (a `RunRules`) or keywords naming its fields
    (`iterations=`, `warmup=`, `deadline_ms=`, `max_miss_rate=`, `pin="0-1"`,
    ...). `emulate=True` runs a bundle for another architecture under qemu.
    Raises `BenchmarkFailed`, whose `results` holds the document, when the run
    is invalid or misses its deadline more often than `max_miss_rate` allows."""
    from ncc.runtime_harness import rt_results
    from ncc.runtime_harness.rt_rules import RunRules
    from ncc.runtime_harness.runner import run_bundle

    if rules is None:
        try:
            rules = RunRules.from_options(**rule_values)
        except (TypeError, ValueError) as err:
            raise UsageError(f"run rules: {err}") from None
    elif rule_values:
        raise UsageError("give run rules either as `rules` or as keywords, not both")
    results = run_bundle(str(bundle), rules, emulate=emulate)
    failures = rt_results.failures(results)
    if failures:
        raise BenchmarkFailed("; ".join(failures), results)
    return results
