#!/usr/bin/env python3
"""Timing harness for a bundle's TensorRT engine, on the TensorRT runtime API.

Copied into xavier bundles as harness/trt_harness.py with its sibling modules
rt_rules.py, rt_results.py, rt_env.py and rt_power.py. On the board it needs
TensorRT's Python bindings (JetPack's python3-libnvinfer), numpy, and CUDA
bindings from cuda-python (`pip install cuda-python==11.8.*` on JetPack 5):

    python3 harness/trt_harness.py --iterations 1000 --deadline-ms 5 --pin 2 --fifo --json results.json

Each timed inference is host-to-device copy, enqueue and device-to-host copy
on one CUDA stream, timed with CUDA events and then synchronized (trtexec's
latencyMs covers the same span); --compute-only times the enqueue alone.
Tensors are bound by name (TensorRT 8.5's set_tensor_address and
execute_async_v3), not by the binding indices 8.5 deprecates and 10.0 removes.
Results follow ncc's results schema, as every ncc harness's do.

Exit codes: 0 the run passed; 4 the run is invalid or missed its deadline more
often than --max-miss-rate allows (results still written); 2 a bad command
line; 3 TensorRT or CUDA is missing or failed.
"""

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np

import rt_env
import rt_power
import rt_results
import rt_rules

EXIT_FAILED_RUN = 4
EXIT_NO_RUNTIME = 3
HARNESS = "tensorrt-python"


def load_cudart():
    """cuda-python's CUDA runtime module: cuda.bindings.runtime from 11.8.4 on,
    where cuda.cudart is deprecated (and gone in 13.0); cuda.cudart before."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime
    return runtime


def cuda_call(result):
    """cuda-python returns (error, values...); raise on an error, give the values."""
    cudart = load_cudart()
    error, *values = result
    if error != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(f"CUDA error {error}")
    return values[0] if len(values) == 1 else values


class Engine:
    """A deserialized engine, its context, and device buffers for every tensor."""

    def __init__(self, path, seed, input_path=None):
        import tensorrt as trt

        cudart = load_cudart()
        self.trt, self.cudart = trt, cudart
        self.logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(self.logger, "")
        with open(path, "rb") as handle:
            self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(handle.read())
        if self.engine is None:
            raise RuntimeError(f"{path}: TensorRT could not deserialize the engine (built by another TensorRT "
                               "version or for another GPU?)")
        self.context = self.engine.create_execution_context()
        self.stream = cuda_call(cudart.cudaStreamCreate())
        self.start, self.end = cuda_call(cudart.cudaEventCreate()), cuda_call(cudart.cudaEventCreate())
        rng = np.random.default_rng(seed)
        self.inputs, self.outputs = [], []
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            shape = tuple(self.context.get_tensor_shape(name))
            if any(size < 0 for size in shape):
                raise RuntimeError(f"{path}: tensor {name} has a dynamic shape {shape}; the harness times "
                                   "engines of static shapes, as ncc compiles them")
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if is_input:
                host = np.load(input_path).astype(dtype) if input_path else \
                    rng.standard_normal(shape).astype(dtype)
                host = np.ascontiguousarray(host.reshape(shape))
            else:
                host = np.empty(shape, dtype)
            device = cuda_call(cudart.cudaMalloc(host.nbytes))
            if not self.context.set_tensor_address(name, int(device)):
                raise RuntimeError(f"TensorRT refused the device buffer of tensor {name}")
            (self.inputs if is_input else self.outputs).append((name, host, device))

    def step(self, compute_only=False):
        """One inference; its milliseconds by CUDA events."""
        cudart = self.cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_call(cudart.cudaEventRecord(self.start, self.stream))
        if not compute_only:
            for _name, host, device in self.inputs:
                cuda_call(cudart.cudaMemcpyAsync(device, host.ctypes.data, host.nbytes, h2d, self.stream))
        if not self.context.execute_async_v3(int(self.stream)):
            raise RuntimeError("TensorRT failed to enqueue the inference")
        if not compute_only:
            for _name, host, device in self.outputs:
                cuda_call(cudart.cudaMemcpyAsync(host.ctypes.data, device, host.nbytes, d2h, self.stream))
        cuda_call(cudart.cudaEventRecord(self.end, self.stream))
        cuda_call(cudart.cudaEventSynchronize(self.end))
        return cuda_call(cudart.cudaEventElapsedTime(self.start, self.end))

    def device(self) -> dict:
        props = cuda_call(self.cudart.cudaGetDeviceProperties(0))
        name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
        return {"gpu": name.rstrip("\x00"), "compute_capability": f"{props.major}.{props.minor}"}


def run_for(step, min_count, min_seconds):
    """Call step() at least min_count times and for at least min_seconds; the
    milliseconds step() reports, and the seconds taken."""
    times = []
    start = now = time.perf_counter()
    while len(times) < min_count or now - start < min_seconds:
        times.append(step())
        now = time.perf_counter()
    return times, now - start


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                         "model.engine"), help="engine (default: the bundle's)")
    rt_rules.add_arguments(parser)
    parser.add_argument("--compute-only", action="store_true", help="time the enqueue alone, without copies")
    rt_rules.add_io_arguments(parser)
    args = parser.parse_args(argv)
    return args, rt_rules.from_args(parser, args)


def main(argv=None):
    args, rules = parse_args(argv)
    if not os.path.isfile(args.engine):
        print(f"harness: {args.engine} is missing; build it with build.sh first", file=sys.stderr)
        return EXIT_NO_RUNTIME
    started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    requests = {**rt_env.pin(rules.pin), **rt_env.fifo(rules.fifo, rules.priority)}
    try:
        import tensorrt

        engine = Engine(args.engine, rules.seed, args.input)
    except (ImportError, RuntimeError) as err:
        print(f"harness: {err}", file=sys.stderr)
        return EXIT_NO_RUNTIME
    requests.update(rt_env.mlock(rules.mlock))
    environment = rt_env.describe(1, "tensorrt", tensorrt.__version__, requests,
                                  extra={"python": platform.python_version(), **engine.device(),
                                         "timed_span": "enqueue" if args.compute_only else "h2d+enqueue+d2h"})
    for refusal in rt_env.refusals(environment):
        print(f"harness: warning: {refusal}", file=sys.stderr)

    def step():
        return engine.step(args.compute_only)

    if args.output:
        engine.step(False)
        np.save(args.output, engine.outputs[0][1])
    timed = rt_power.timed_run(run_for, step, rules)
    results = rt_results.harness_document(harness=HARNESS, path=args.engine, started_at=started_at,
                                          environment=environment, rules=rules, timed=timed,
                                          input_file=bool(args.input), peak_rss_bytes=rt_env.peak_rss_bytes())
    return 0 if rt_results.report(results, args.json, args.csv) else EXIT_FAILED_RUN


if __name__ == "__main__":
    sys.exit(main())
