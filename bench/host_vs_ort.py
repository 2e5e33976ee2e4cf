"""ncc's TVM host target against ONNX Runtime on this machine, in one run:
the study's three networks (CIFAR-10 forms, seeded weights), fp32 and int8,
each compiled by ncc for `host` untuned (ncc's default schedules only) and
tuned (MetaSchedule, starting from those schedules, a stated trial budget),
and for `onnxruntime`; every bundle timed by its own harness with the same
run rules at one thread and at all cores. Prints median latency, the ratios
to ORT, and int8 against fp32.

    .venv/bin/python bench/host_vs_ort.py [--trials 0] [--threads 1,2] [--iterations 200] [--rounds 3]
                                          [--models vgg11,mobilenetv2,resnet50] [--precisions fp32,int8]
                                          [--tuning-db DIR]

--trials 0 (the default) measures untuned ncc only. With a budget, the
tuning database (a fresh temporary one unless --tuning-db names one) gets
that many trials per model and precision, and the tuned bundles are timed
too. int8 is calibrated on random input (latency only; accuracy is measured
elsewhere).
"""

import argparse
import os
import statistics
import tempfile
import time

from ncc.compiler import bench, compile
from ncc.study import zoo

MODELS = ("vgg11", "mobilenetv2", "resnet50")


def export(name: str, folder: str) -> str:
    path = os.path.join(folder, f"{name}.onnx")
    zoo.export_onnx(zoo.build(name, "cifar10", seed=0), "cifar10", path)
    return path


def p50(bundle: str, threads: int, args) -> float:
    results = bench(bundle, warmup=args.warmup, iterations=args.iterations, threads=threads)
    return results["latency_ms"]["p50"]


def interleaved_p50s(built: dict, threads, args) -> dict:
    """{(variant, threads): median over --rounds of the p50}, the bundles timed in turn each round,
    so that a slow spell of the machine (a virtual machine's moves 1.3-1.8x) falls on all of them."""
    rounds = {key: [] for key in ((variant, t) for variant in built for t in threads)}
    for _ in range(args.rounds):
        for variant, bundle in built.items():
            for t in threads:
                rounds[(variant, t)].append(p50(bundle.path, t, args))
    return {key: statistics.median(values) for key, values in rounds.items()}


def schedules(manifest: dict) -> str:
    kernels = manifest["target"]["schedules"]
    counts = {}
    for source in kernels.values():
        counts[source.split(":")[0]] = counts.get(source.split(":")[0], 0) + 1
    return " ".join(f"{counts.get(k, 0)} {k}" for k in ("default", "tuned", "none"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=0, help="MetaSchedule trials per model and precision")
    parser.add_argument("--threads", default=f"1,{len(os.sched_getaffinity(0))}")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="timings per bundle, interleaved; the median is shown")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--tuning-db", help="tuning database folder (default: a fresh temporary one)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.iterations < 100:
        parser.error("--iterations must be at least 100 for a p99")
    threads = sorted({int(t) for t in args.threads.split(",")})
    rows = []
    with tempfile.TemporaryDirectory(prefix="ncc-host-vs-ort-") as folder:
        database = args.tuning_db or os.path.join(folder, "tuning")
        for name in args.models.split(","):
            model = export(name, folder)
            for precision in args.precisions.split(","):
                quantize = {"quantize": "int8"} if precision == "int8" else {}
                built, compile_s = {}, {}
                variants = {"ort": {"target": "onnxruntime"},
                            "untuned": {"target": "host", "tuning_db": os.path.join(folder, "empty-db")}}
                if args.trials:
                    variants["tuned"] = {"target": "host", "tune_trials": args.trials, "tuning_db": database}
                for variant, options in variants.items():
                    started = time.perf_counter()
                    built[variant] = compile(model, out=os.path.join(folder, f"{name}.{precision}.{variant}"),
                                             **options, **quantize)
                    compile_s[variant] = time.perf_counter() - started
                times = interleaved_p50s(built, threads, args)
                rows.append((name, precision, times, compile_s, {v: schedules(b.manifest) for v, b in built.items()
                                                                   if v != "ort"}))
                print(f"{name} {precision}: compiled untuned in {compile_s['untuned']:.0f} s"
                      + (f", tuned in {compile_s['tuned']:.0f} s" if "tuned" in compile_s else ""), flush=True)
    print(f"\nncc host vs ONNX Runtime: p50 ms (median of {args.rounds} interleaved rounds), "
          f"{args.iterations} iterations after {args.warmup} warm-up; "
          f"{args.trials} tuning trials per model and precision\n")
    variants = ["untuned", *(["tuned"] if args.trials else [])]
    header = ["model", "precision", "threads", "ORT", *variants, *[f"{v}/ORT" for v in variants]]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, precision, times, _compile_s, _kinds in rows:
        for t in threads:
            ort = times[("ort", t)]
            cells = [name, precision, str(t), f"{ort:.2f}", *[f"{times[(v, t)]:.2f}" for v in variants],
                     *[f"{times[(v, t)] / ort:.2f}x" for v in variants]]
            print("| " + " | ".join(cells) + " |")
    print("\nint8 against fp32 (p50 ratio, same backend and threads):\n")
    print("| model | threads | ORT int8/fp32 | " + " | ".join(f"ncc {v} int8/fp32" for v in variants) + " |")
    print("|" + "---|" * (3 + len(variants)))
    by_key = {(name, precision): times for name, precision, times, _c, _k in rows}
    for name in args.models.split(","):
        if (name, "fp32") in by_key and (name, "int8") in by_key:
            fp32, int8 = by_key[(name, "fp32")], by_key[(name, "int8")]
            for t in threads:
                cells = [name, str(t), f"{int8[('ort', t)] / fp32[('ort', t)]:.2f}x",
                         *[f"{int8[(v, t)] / fp32[(v, t)]:.2f}x" for v in variants]]
                print("| " + " | ".join(cells) + " |")
    print("\nkernel schedules (default / tuned / none) and compile seconds:\n")
    for name, precision, _times, compile_s, kinds in rows:
        print(f"- {name} {precision}: " + "; ".join(f"{v}: {kinds[v]}, {compile_s[v]:.0f} s" for v in kinds))


if __name__ == "__main__":
    main()
