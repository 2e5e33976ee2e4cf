"""`ncc compile --deadline-ms D`: the largest model whose measured p99 meets
a deadline on this machine.

Candidates are the --scale method at ratios k/STEPS of the given ratio
(1.0 when none is given), compiled and benchmarked here. Latency is taken to
grow with the ratio, so each precision's ratio is found by bisection over
that grid (at most log2(STEPS) + 2 candidates). Of the precisions' best
candidates the one with the most parameters wins (fp32 on a tie); it becomes
the bundle, and its manifest's `deadline` section lists every candidate
measured and where.
"""

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace

from ncc.core.bundle import BundleWriter, install, write_manifest
from ncc.core.errors import CompileError, UsageError
from ncc.runtime_harness.rt_rules import RunRules

STEPS = 32
RESULTS = "deadline_results.json"


@dataclass
class Candidate:
    ratio: float
    precision: str
    params: int
    p50_ms: float
    p99_ms: float
    meets: bool


def search(model_path: str, out_dir: str, options, deadline_ms: float, rules: RunRules = RunRules(),
           progress=print):
    """The bundle (ncc.compiler.driver.Bundle) of the largest candidate that
    meets `deadline_ms`; CompileError when none does."""
    from ncc.compiler.driver import Bundle
    from ncc.core.interrupts import interrupts_as_exceptions
    from ncc.targets import get_target

    if not get_target(options.target).measurable_here:
        raise UsageError(f"--deadline-ms measures candidates on this machine; target '{options.target}' runs on "
                         "its board (compile at fixed ratios, measure there, compare with `ncc bench --import`)")
    if not deadline_ms > 0:
        raise UsageError("--deadline-ms must be positive")
    BundleWriter(out_dir, force=options.force, protect=[model_path])  # fails now if out_dir may not be written
    method, top = options.scale or ("uniform", 1.0)
    precisions = ["int8"] if options.quantize else ["fp32", "int8"]
    if not options.quantize:
        progress("int8 candidates calibrate on random input (give --quantize int8 --calib DATA to search "
                 "int8 only, calibrated on data)")
    rules = replace(rules, deadline_ms=deadline_ms, max_miss_rate=None)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out_dir))}.", suffix=".deadline",
                               dir=parent)
    try:
        with interrupts_as_exceptions():
            trial = _Trials(model_path, options, method, top, rules, scratch, progress)
            best = {}
            for precision in precisions:
                best[precision] = trial.largest_meeting(precision)
                if best[precision] and best[precision].ratio == top:
                    break  # nothing larger exists; a lower precision cannot win
            found = [c for c in best.values() if c]
            if not found:
                fastest = min(trial.measured.values(), key=lambda c: c.p99_ms)
                raise CompileError(
                    f"no candidate meets p99 <= {deadline_ms:g} ms here: the fastest, {method}:{fastest.ratio:g} "
                    f"{fastest.precision}, has p99 {fastest.p99_ms:.3f} ms")
            chosen = max(found, key=lambda c: (c.params, c.precision == "fp32"))
            folder = trial.folders[(chosen.ratio, chosen.precision)]
            manifest = _record(folder, trial, chosen, method, deadline_ms, rules)
            install(folder, os.path.abspath(out_dir))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    progress(f"chosen: {method}:{chosen.ratio:g} {chosen.precision}, {chosen.params} params, "
             f"p99 {chosen.p99_ms:.3f} ms <= {deadline_ms:g} ms")
    return Bundle(os.path.abspath(out_dir), manifest)


class _Trials:
    """Compiles and measures candidates, each once."""

    def __init__(self, model_path, options, method, top, rules, scratch, progress):
        self.model_path, self.options, self.method, self.top = model_path, options, method, top
        self.rules, self.scratch, self.progress = rules, scratch, progress
        self.measured, self.folders, self.results = {}, {}, {}

    def largest_meeting(self, precision):
        """Bisection on k in 1..STEPS for the largest ratio top*k/STEPS that meets the deadline."""
        if self.measure(STEPS, precision).meets:
            return self.measured[(self.top, precision)]
        if not self.measure(1, precision).meets:
            return None
        low, high = 1, STEPS  # low meets, high misses
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if self.measure(middle, precision).meets else (low, middle)
        return self.measured[(self._ratio(low), precision)]

    def _ratio(self, k):
        return round(self.top * k / STEPS, 6)

    def measure(self, k, precision) -> Candidate:
        from ncc.compiler.driver import compile_model
        from ncc.runtime_harness.runner import run_bundle

        ratio = self._ratio(k)
        if (ratio, precision) in self.measured:
            return self.measured[(ratio, precision)]
        options = replace(self.options, scale=(self.method, ratio), force=True,
                          quantize="int8" if precision == "int8" else None)
        folder = os.path.join(self.scratch, f"{precision}-{ratio:g}")
        bundle = compile_model(self.model_path, folder, options)
        results = run_bundle(bundle.path, self.rules)
        if not results["valid"]:
            raise CompileError(f"the run of candidate {self.method}:{ratio:g} {precision} is invalid: "
                               f"{'; '.join(results['invalid_reasons'])}")
        latency = results["latency_ms"]
        candidate = Candidate(ratio, precision, bundle.manifest["model"]["after"]["params"], latency["p50"],
                              latency["p99"], latency["p99"] <= self.rules.deadline_ms)
        self.measured[(ratio, precision)] = candidate
        self.folders[(ratio, precision)], self.results[(ratio, precision)] = folder, results
        self.progress(f"candidate {self.method}:{ratio:g} {precision}: {candidate.params} params, "
                      f"p99 {candidate.p99_ms:.3f} ms ({'meets' if candidate.meets else 'misses'} the deadline)")
        return candidate


def _record(folder, trial, chosen, method, deadline_ms, rules) -> dict:
    """The chosen bundle's manifest with the search in it, and its run's results beside it."""
    results = trial.results[(chosen.ratio, chosen.precision)]
    with open(os.path.join(folder, RESULTS), "w") as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
        handle.write("\n")
    with open(os.path.join(folder, "manifest.json")) as handle:
        manifest = json.load(handle)
    environment = results["environment"]
    manifest["deadline"] = {
        "deadline_ms": deadline_ms, "method": method, "chosen": asdict(chosen), "results": RESULTS,
        "measured_on": f"{environment['cpu_model']} ({environment['machine']}, {environment['threads']} thread(s))",
        "rules": {"warmup": rules.warmup, "iterations": rules.iterations, "threads": rules.threads},
        "candidates": [asdict(c) for _, c in sorted(trial.measured.items(), key=lambda kv: (kv[0][1], kv[0][0]))],
    }
    write_manifest(folder, manifest)
    return manifest
