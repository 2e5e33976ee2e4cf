"""int8 against fp32 on this machine: ONNX Runtime latency and model size of
the study's three networks (CIFAR-10 forms, seeded weights), each compiled by
ncc for its onnxruntime target twice, float and int8, and timed alike: same session options
and thread count, warm-up runs, then the median and p99 of timed runs.

    .venv/bin/python bench/quantize_int8.py [--iterations 200] [--warmup 20] [--threads 1]
                                            [--calib-samples 32] [--flavor generic]

Calibration uses seeded random input: it sets the scales, not the speed.
"""

import argparse
import os
import tempfile
import time

import numpy as np
import onnxruntime as ort

from ncc.study import zoo
from ncc.compiler.driver import CompileOptions, compile_model
from ncc.compiler.report import format_bytes, format_table


ROUNDS = 10  # fp32 and int8 take turns, so a busy machine slows both alike


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calib-samples", type=int, default=32)
    parser.add_argument("--flavor", default="generic", choices=("generic", "tensorrt", "dpu"))
    args = parser.parse_args()
    variants = {"fp32": CompileOptions(target="onnxruntime"),
                "int8": CompileOptions(target="onnxruntime", quantize="int8", quant_flavor=args.flavor,
                                       calib_samples=args.calib_samples)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="ncc-bench-int8-") as work:
        for name in zoo.MODELS:
            source = os.path.join(work, f"{name}.onnx")
            zoo.export_onnx(zoo.build(name, "cifar10", seed=0), "cifar10", source)
            models = {kind: _compile(source, os.path.join(work, f"{name}.{kind}"), options)
                      for kind, options in variants.items()}
            fp32, int8 = (_figures(times, models[kind]) for kind, times in _time(models, args).items())
            rows.append([name, f"{fp32['p50']:.3f}", f"{int8['p50']:.3f}", f"{fp32['p50'] / int8['p50']:.2f}x",
                         f"{fp32['p99']:.3f}", f"{int8['p99']:.3f}", format_bytes(fp32["bytes"]),
                         format_bytes(int8["bytes"]), f"{fp32['bytes'] / int8['bytes']:.2f}x"])
    print(f"ONNX Runtime {ort.__version__} CPU, {args.threads} thread(s), {args.warmup} warm-up + "
          f"{args.iterations} timed runs each, in {ROUNDS} alternating rounds; int8 = {args.flavor} flavour; "
          "speed-up and size ratio are fp32 / int8")
    print(format_table(rows, ["model", "fp32 p50 ms", "int8 p50 ms", "speed-up", "fp32 p99 ms", "int8 p99 ms",
                              "fp32 size", "int8 size", "size ratio"], align="lrrrrrrrr"))


def _compile(source, bundle, options) -> str:
    compile_model(source, bundle, options)
    return os.path.join(bundle, "model.onnx")


def _time(models: dict, args) -> dict:
    """Latencies in ms per model, same session options and input for all."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    sessions = {kind: ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                for kind, path in models.items()}
    (name, shape), = {(i.name, tuple(i.shape)) for s in sessions.values() for i in s.get_inputs()}
    feeds = {name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    times = {kind: [] for kind in sessions}
    for session in sessions.values():
        for _ in range(args.warmup):
            session.run(None, feeds)
    for _ in range(ROUNDS):
        for kind, session in sessions.items():
            for _ in range(max(1, args.iterations // ROUNDS)):
                start = time.perf_counter()
                session.run(None, feeds)
                times[kind].append((time.perf_counter() - start) * 1000)
    return times


def _figures(times, model) -> dict:
    return {"p50": float(np.median(times)), "p99": float(np.percentile(times, 99)), "bytes": os.path.getsize(model)}


if __name__ == "__main__":
    main()
