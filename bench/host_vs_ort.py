"""ncc's TVM host target against ONNX Runtime on this machine: the study's
three networks (CIFAR-10 forms, seeded weights), each compiled by ncc for
`host` (TVM, kernels tuned with a stated MetaSchedule trial budget) and for
`onnxruntime`, and timed by each bundle's own harness with the same run rules
and thread count. Prints median and p99 latency and the ratio ncc / ORT.

    .venv/bin/python bench/host_vs_ort.py [--trials 320] [--threads 2] [--iterations 200]
                                          [--models vgg11,mobilenetv2,resnet50] [--tuning-db DIR]

Tuning is the slow part (minutes per model and hundred trials on a small
machine); its records are kept in the tuning database, so a second run with
the same budget only measures. --trials counts the trials of this run: with a
database already holding records, the schedules may be better than the budget
alone would give, and the table says how many kernels had tuned schedules.
"""

import argparse
import os
import tempfile
import time

from ncc.study import zoo
from ncc.compiler.driver import CompileOptions, compile_model
from ncc.runtime_harness.rt_rules import RunRules
from ncc.runtime_harness.runner import run_bundle

MODELS = ("vgg11", "mobilenetv2", "resnet50")


def export(name: str, folder: str) -> str:
    path = os.path.join(folder, f"{name}.onnx")
    zoo.export_onnx(zoo.build(name, "cifar10", seed=0), "cifar10", path)
    return path


def measure(bundle: str, rules: RunRules) -> dict:
    latency = run_bundle(bundle, rules)["latency_ms"]
    return {"p50": latency["p50"], "p99": latency["p99"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=320, help="MetaSchedule trials per model (this run)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--tuning-db", help="tuning database folder (default: ncc's cache)")
    args = parser.parse_args(argv)
    if args.iterations < 100:
        parser.error("--iterations must be at least 100 for a p99")
    rules = RunRules(warmup=args.warmup, iterations=args.iterations, threads=args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ncc-host-vs-ort-") as folder:
        for name in args.models.split(","):
            model = export(name, folder)
            started = time.perf_counter()
            host = compile_model(model, os.path.join(folder, f"{name}.host"), CompileOptions.create(
                target="host", tune_trials=args.trials, tuning_db=args.tuning_db))
            compile_s = time.perf_counter() - started
            compile_model(model, os.path.join(folder, f"{name}.ort"), CompileOptions(target="onnxruntime"))
            tuning = host.manifest["target"]["tuning"]
            ours, theirs = measure(host.path, rules), measure(os.path.join(folder, f"{name}.ort"), rules)
            rows.append((name, tuning, compile_s, ours, theirs))
            print(f"{name}: compiled in {compile_s:.0f} s", flush=True)
    print(f"\nhost vs ONNX Runtime, {args.threads} thread(s), {args.iterations} iterations after {args.warmup} "
          f"warm-up; {args.trials} tuning trials per model in this run\n")
    print("| model | tuned kernels | ncc p50 ms | ncc p99 ms | ORT p50 ms | ORT p99 ms | p50 ratio | p99 ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, tuning, _compile_s, ours, theirs in rows:
        print(f"| {name} | {tuning['kernels_with_tuned_schedules']}/{tuning['kernels']} "
              f"| {ours['p50']:.2f} | {ours['p99']:.2f} | {theirs['p50']:.2f} | {theirs['p99']:.2f} "
              f"| {ours['p50'] / theirs['p50']:.2f}x | {ours['p99'] / theirs['p99']:.2f}x |")


if __name__ == "__main__":
    main()
