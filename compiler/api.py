"""The Python API of ncc: compile a model, inspect it, without the CLI.

Every function raises a typed `NccError` (`CompileError`, `UsageError`,
`ToolchainError`, ...) instead of printing; each error's `exit_code` is the
one the CLI would return.

    from ncc.compiler import compile, inspect
    bundle = compile("model.onnx", target="onnxruntime", scale="uniform:0.5", out="build/bundle")
    print(bundle.path, bundle.manifest["target"]["name"])
"""

from ncc.compiler.driver import Bundle, CompileOptions, compile_model
from ncc.compiler.options import parse_scale


def compile(model: str, *, out: str, target: str = "host", scale: str | tuple | None = None,
            quantize: str | None = None, **options) -> Bundle:
    """Compile the ONNX file `model` into a bundle folder `out` for `target`.

    `scale` is "uniform:R" / "neuralscale:R" (or a (method, ratio) tuple);
    `quantize` is "int8" or None. Any other keyword is a field of
    `CompileOptions` (e.g. `calib=`, `profile=`, `force=True`, `timing=False`).
    Returns the committed `Bundle` (its path and manifest)."""
    if isinstance(scale, str):
        scale = parse_scale(scale)
    return compile_model(str(model), str(out),
                         CompileOptions(target=target, scale=scale, quantize=quantize, **options))


def inspect(model: str, input_shapes: dict | None = None) -> dict:
    """The summary `ncc inspect --json` prints: inputs, outputs, ops, costs."""
    from ncc.compiler.commands.inspect import summarize
    from ncc.compiler.loader import load_model

    return summarize(load_model(str(model), input_shapes or {}))
