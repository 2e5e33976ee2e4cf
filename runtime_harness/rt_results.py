"""The results document every harness writes: its statistics, its validity
rules and its CSV form.

Copied into bundles beside the harness (numpy and the standard library only);
ncc imports the same module as ncc.runtime_harness.rt_results, so the harness,
`ncc bench` and `ncc bench --import` compute every figure the same way. The
layout is runtime_harness/results_schema.json; a C++ harness must reproduce
the rules below exactly (ncc's validator recomputes them from times_ms).

Percentiles are nearest-rank (Hyndman & Fan type 1): of n sorted times
x[1..n], pQ is x[ceil(Q/100 * n)], always a time that was measured. The rank
is computed in integers (Q in hundredths of a percent): in floating point
0.999 * 1000 is 999.0000000000001, whose ceiling would pick the maximum (as
numpy's method="inverted_cdf" does).

A percentile pQ is reported only from n >= 1 / (1 - Q/100) samples (2 for
p50, 10 for p90, 100 for p99, 1000 for p99.9), so that at least one sample
lies above it; below that it is null. A run with fewer samples than its p99
needs is invalid.
"""

from __future__ import annotations  # boards may run Python 3.8

import json
import os
import sys

import numpy as np

FORMAT = "ncc-results"
SCHEMA_VERSION = 2

PERCENTILES = (("p50", 5000), ("p90", 9000), ("p99", 9900), ("p99_9", 9990))  # per ten thousand
MIN_SAMPLES = {name: -(-10000 // (10000 - q)) for name, q in PERCENTILES}
VALIDITY_PERCENTILE = "p99"
DECIMALS = 6  # times in ms to the nanosecond


def percentile(sorted_ms, per_ten_thousand: int) -> float:
    rank = max(1, -(-per_ten_thousand * len(sorted_ms) // 10000))
    return float(sorted_ms[rank - 1])


def summarize(times_ms, deadline_ms=None, max_miss_rate=None) -> dict:
    """latency_ms, jitter_ms and deadline sections of the document for these times."""
    times = np.sort(np.asarray(times_ms, dtype=np.float64))
    n = times.size
    latency = dict.fromkeys(("min", *(name for name, _q in PERCENTILES), "max", "mean", "std"))
    if n:
        latency.update(min=times[0], max=times[-1], mean=times.mean(), std=times.std(ddof=1) if n > 1 else None)
        latency.update({name: percentile(times, q) for name, q in PERCENTILES if n >= MIN_SAMPLES[name]})
    latency = {key: _round(value) for key, value in latency.items()}
    jitter = {"p99_minus_p50": _difference(latency["p99"], latency["p50"]),
              "max_minus_min": _difference(latency["max"], latency["min"])}
    return {"latency_ms": latency, "jitter_ms": jitter,
            "deadline": _deadline(np.asarray(times_ms, dtype=np.float64), deadline_ms, max_miss_rate)}


def _deadline(times, deadline_ms, max_miss_rate) -> dict:
    """A miss is a run strictly slower than the deadline."""
    section = {"deadline_ms": deadline_ms, "misses": None, "miss_rate": None, "max_consecutive_misses": None,
               "max_miss_rate": max_miss_rate, "passed": None}
    if deadline_ms is None:
        return section
    missed = times > deadline_ms
    section.update(misses=int(missed.sum()), max_consecutive_misses=_longest_run(missed))
    if times.size:
        section["miss_rate"] = _round(section["misses"] / times.size)
        if max_miss_rate is not None:
            section["passed"] = section["misses"] / times.size <= max_miss_rate
    return section


def _longest_run(flags) -> int:
    longest = current = 0
    for flagged in flags:
        current = current + 1 if flagged else 0
        longest = max(longest, current)
    return longest


def verdict(n: int) -> dict:
    needed = MIN_SAMPLES[VALIDITY_PERCENTILE]
    reasons = [] if n >= needed else [
        f"{n} timed iterations; a {VALIDITY_PERCENTILE} needs at least {needed} (raise --iterations or --min-seconds)"]
    return {"valid": not reasons, "invalid_reasons": reasons}


def judge(results: dict, deadline_ms=None, max_miss_rate=None) -> dict:
    """Recompute the statistics and validity of `results` from its times_ms."""
    results.update(summarize(results["times_ms"], deadline_ms, max_miss_rate))
    results.update(verdict(len(results["times_ms"])))
    return results


def document(*, harness, model, environment, warmup, run, memory, power, times_ms,
             deadline_ms=None, max_miss_rate=None, emulated=False, started_at=None, notes=()) -> dict:
    times = [_round(t) for t in times_ms]
    results = {"format": FORMAT, "version": SCHEMA_VERSION, "harness": harness, "model": model,
               "started_at": started_at, "emulated": emulated, "environment": environment,
               "warmup": warmup, "run": dict(run, iterations=len(times)), "memory": memory, "power": power,
               "notes": list(notes), "times_ms": times}
    return judge(results, deadline_ms, max_miss_rate)


def phases(rules, warm_iterations: int, warm_seconds: float, seconds: float, input_file: bool) -> dict:
    """The warmup and run sections of a harness's document, from its run rules
    (rt_rules.RunRules) and what the timed loops did."""
    return {"warmup": {"iterations": warm_iterations, "seconds": round(warm_seconds, 6),
                       "min_iterations": rules.warmup, "min_seconds": rules.warmup_seconds},
            "run": {"seconds": round(seconds, 6), "min_iterations": rules.iterations, "min_seconds": rules.min_seconds,
                    "seed": None if input_file else rules.seed, "input": "file" if input_file else "random"}}


def write(results: dict, json_path=None, csv_path=None) -> None:
    """A harness's output: the document to json_path (else stdout), the times to csv_path."""
    text = json.dumps(results, indent=2, sort_keys=True)
    if json_path:
        with open(json_path, "w") as handle:
            handle.write(text + "\n")
    else:
        print(text)
    if csv_path:
        with open(csv_path, "w") as handle:
            handle.write(to_csv(results))


def harness_document(*, harness, path, started_at, environment, rules, timed, input_file, peak_rss_bytes) -> dict:
    """The document of one harness run of the model or engine at `path`;
    `timed` is rt_power.timed_run's (warm-up times, warm-up seconds, times in
    ms, seconds, power)."""
    warm, warm_seconds, times_ms, seconds, power = timed
    return document(harness=harness, model=os.path.basename(path), started_at=started_at, environment=environment,
                    **phases(rules, len(warm), warm_seconds, seconds, input_file),
                    memory={"peak_rss_bytes": peak_rss_bytes, **model_memory(bundle_manifest(path))},
                    power=power, times_ms=times_ms, deadline_ms=rules.deadline_ms, max_miss_rate=rules.max_miss_rate)


def report(results: dict, json_path=None, csv_path=None) -> bool:
    """Write the results; whether the run passed (why not is said on stderr)."""
    write(results, json_path, csv_path)
    found = failures(results)
    if found:
        print("harness: " + "; ".join(found), file=sys.stderr)
    return not found


def failures(results: dict) -> list:
    """Why this run must end with a non-zero exit code; empty when it passes."""
    lines = [f"run invalid: {reason}" for reason in results["invalid_reasons"]]
    deadline = results["deadline"]
    if deadline["passed"] is False:
        lines.append(f"{deadline['misses']} of {results['run']['iterations']} iterations "
                     f"({deadline['miss_rate']:.2%}) missed the {deadline['deadline_ms']:g} ms deadline, "
                     f"more than --max-miss-rate {deadline['max_miss_rate']:g}")
    return lines


def to_csv(results: dict) -> str:
    """Per-iteration times: iteration (from 0), latency_ms."""
    rows = ["iteration,latency_ms"] + [f"{i},{t!r}" for i, t in enumerate(results["times_ms"])]
    return "\n".join(rows) + "\n"


def model_memory(manifest: dict | None) -> dict:
    """The model's weight and peak activation bytes, as the bundle's manifest states them."""
    after = ((manifest or {}).get("model") or {}).get("after") or {}
    return {"model_weight_bytes": after.get("weight_bytes"),
            "model_activation_bytes": after.get("peak_activation_bytes")}


def bundle_manifest(path: str) -> dict | None:
    """The manifest of the bundle `path` (a model or engine) lies in, if it is in one."""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(path)), "manifest.json")) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _round(value):
    return None if value is None else round(float(value), DECIMALS)


def _difference(a, b):
    return None if a is None or b is None else _round(a - b)
