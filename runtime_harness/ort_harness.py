#!/usr/bin/env python3
"""Timing harness for a bundle's model.onnx on ONNX Runtime (CPU).

Copied into every host bundle as harness/ort_harness.py; it needs only numpy
and onnxruntime, so the bundle can be timed without ncc installed:

    python3 harness/ort_harness.py --model model.onnx --iterations 200 --json results.json
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import onnxruntime as ort

SCHEMA = {"format": "ncc-results", "version": 1}
PERCENTILES = (50, 90, 99)


def make_session(model_path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


def make_feeds(session, input_path, seed):
    inputs = session.get_inputs()
    if input_path:
        if len(inputs) != 1:
            raise SystemExit("harness: --input takes one .npy, the model has several inputs")
        return {inputs[0].name: np.load(input_path)}
    rng = np.random.default_rng(seed)
    dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
    return {i.name: rng.standard_normal(i.shape).astype(dtypes.get(i.type, np.float32)) for i in inputs}


def time_runs(session, feeds, iterations, warmup):
    for _ in range(warmup):
        session.run(None, feeds)
    times = np.empty(iterations, dtype=np.float64)
    for i in range(iterations):
        start = time.perf_counter_ns()
        session.run(None, feeds)
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return times


def summarize(times_ms):
    summary = {"min": times_ms.min(), "max": times_ms.max(), "mean": times_ms.mean(),
               "std": times_ms.std(ddof=1) if times_ms.size > 1 else 0.0}
    summary.update({f"p{p}": np.percentile(times_ms, p) for p in PERCENTILES})
    return {key: round(float(value), 6) for key, value in sorted(summary.items())}


def environment(threads):
    return {"machine": platform.machine(), "processor": _cpu_model(), "system": platform.system(),
            "kernel": platform.release(), "python": platform.python_version(),
            "onnxruntime": ort.__version__, "cpus_available": len(os.sched_getaffinity(0)),
            "threads": threads}


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "model.onnx"))
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input", help=".npy input (default: seeded random)")
    parser.add_argument("--output", help="write the first output to this .npy")
    parser.add_argument("--json", help="write results here (default: stdout)")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--iterations and --threads must be >= 1, --warmup >= 0")

    session = make_session(args.model, args.threads)
    feeds = make_feeds(session, args.input, args.seed)
    if args.output:
        np.save(args.output, session.run(None, feeds)[0])
    times = time_runs(session, feeds, args.iterations, args.warmup)
    results = dict(SCHEMA, harness="onnxruntime-python", model=os.path.basename(args.model),
                   environment=environment(args.threads), iterations=args.iterations,
                   warmup=args.warmup, latency_ms=summarize(times),
                   times_ms=[round(float(t), 6) for t in times])
    text = json.dumps(results, indent=2, sort_keys=True)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
