#!/usr/bin/env python3
"""Timing harness for a bundle's model.onnx on ONNX Runtime (CPU).

Copied into every host bundle as harness/ort_harness.py with its sibling
modules rt_rules.py, rt_results.py, rt_env.py and rt_power.py; it needs only
numpy and onnxruntime, so the bundle can be timed without ncc installed:

    python3 harness/ort_harness.py --iterations 1000 --deadline-ms 5 --pin 2 --fifo --json results.json

Exit codes: 0 the run passed; 4 the run is invalid (too few samples for its
p99) or missed its deadline more often than --max-miss-rate allows, said on
stderr, the results still written; 2 a bad command line.
"""

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np
import onnxruntime as ort

import rt_env
import rt_power
import rt_results
import rt_rules

EXIT_FAILED_RUN = 4
HARNESS = "onnxruntime-python"
DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
          "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32,
          "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


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
    return {i.name: rng.standard_normal(i.shape).astype(DTYPES.get(i.type, np.float32)) for i in inputs}


def bind(session, feeds):
    """Inputs and outputs bound once, so the timed loop allocates no tensors
    where the output shapes are static (as a C++ harness would not)."""
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value))
    for output in session.get_outputs():
        if all(isinstance(d, int) for d in output.shape) and output.type in DTYPES:
            binding.bind_ortvalue_output(output.name, ort.OrtValue.ortvalue_from_shape_and_type(
                output.shape, DTYPES[output.type], "cpu", 0))
        else:
            binding.bind_output(output.name, "cpu")
    return lambda: session.run_with_iobinding(binding)


def run_for(step, min_count, min_seconds):
    """Call step() at least min_count times and for at least min_seconds;
    each call's time in ms, and the seconds taken."""
    times = []
    start = now = time.perf_counter_ns()
    until = start + int(min_seconds * 1e9)
    while len(times) < min_count or now < until:
        before = time.perf_counter_ns()
        step()
        now = time.perf_counter_ns()
        times.append((now - before) / 1e6)
    return times, (now - start) / 1e9


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                        "model.onnx"))
    rt_rules.add_arguments(parser)
    rt_rules.add_io_arguments(parser)
    args = parser.parse_args(argv)
    return args, rt_rules.from_args(parser, args)


def main(argv=None):
    args, rules = parse_args(argv)
    started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    # pinning and the scheduling policy first: ORT's worker threads inherit them when the session starts
    requests = {**rt_env.pin(rules.pin), **rt_env.fifo(rules.fifo, rules.priority)}
    session = make_session(args.model, rules.threads)
    feeds = make_feeds(session, args.input, rules.seed)
    requests.update(rt_env.mlock(rules.mlock))
    environment = rt_env.describe(rules.threads, "onnxruntime", ort.__version__, requests,
                                  extra={"python": platform.python_version(),
                                         "execution_provider": "CPUExecutionProvider", "io_binding": True})
    for refusal in rt_env.refusals(environment):
        print(f"harness: warning: {refusal}", file=sys.stderr)
    if args.output:
        np.save(args.output, session.run(None, feeds)[0])

    step = bind(session, feeds)
    timed = rt_power.timed_run(run_for, step, rules)
    results = rt_results.harness_document(harness=HARNESS, path=args.model, started_at=started_at,
                                          environment=environment, rules=rules, timed=timed,
                                          input_file=bool(args.input), peak_rss_bytes=rt_env.peak_rss_bytes())
    return 0 if rt_results.report(results, args.json, args.csv) else EXIT_FAILED_RUN


if __name__ == "__main__":
    sys.exit(main())
