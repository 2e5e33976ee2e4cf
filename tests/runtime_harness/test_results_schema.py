"""The statistics every harness reports and the validator of the results schema."""

import copy
import math
from fractions import Fraction

import numpy as np
import pytest
from ncc.runtime_harness import rt_env, rt_power, rt_results
from ncc.runtime_harness.results import (
    MIN_SAMPLES,
    SCHEMA_VERSION,
    schema,
    summarize,
    to_csv,
    validate,
)


@pytest.mark.parametrize("n", [1, 2, 7, 10, 99, 100, 101, 999, 1000, 4321])
def test_percentiles_are_nearest_rank(n, rng):
    times = rng.lognormal(0.0, 0.5, size=n).round(6)
    latency = summarize(times)["latency_ms"]
    ordered = np.sort(times)
    for name, q in (("p50", "50"), ("p90", "90"), ("p99", "99"), ("p99_9", "99.9")):
        if n >= MIN_SAMPLES[name]:  # the smallest time with at least q% of the times at or below it
            assert latency[name] == ordered[math.ceil(Fraction(q) * n / 100) - 1]
        else:
            assert latency[name] is None
    assert latency["min"] == times.min() and latency["max"] == times.max()


def test_each_percentile_needs_its_minimum_sample_count():
    assert MIN_SAMPLES == {"p50": 2, "p90": 10, "p99": 100, "p99_9": 1000}
    assert rt_results.verdict(99)["valid"] is False and rt_results.verdict(100) == {"valid": True,
                                                                                     "invalid_reasons": []}


def test_integer_ranks_do_not_round_up():
    # 0.999 * 1000 is 999.0000000000001 in floating point: a float ceil would pick the maximum
    assert summarize(np.arange(1, 1001, dtype=float))["latency_ms"]["p99_9"] == 999.0


def test_jitter_and_deadline_misses():
    times = [1.0] * 95 + [3.0, 1.0, 3.0, 3.0, 3.0]
    summary = summarize(times, deadline_ms=2.0, max_miss_rate=0.05)
    assert summary["jitter_ms"] == {"p99_minus_p50": 2.0, "max_minus_min": 2.0}
    assert summary["deadline"] == {"deadline_ms": 2.0, "misses": 4, "miss_rate": 0.04, "max_consecutive_misses": 3,
                                   "max_miss_rate": 0.05, "passed": True}
    assert summarize(times, deadline_ms=3.0)["deadline"]["misses"] == 0  # a miss is strictly slower


def imported(times, **parts):
    """A document with nothing but times, as an import builds it."""
    return rt_results.document(
        harness="test", model=None, environment=rt_env.unknown(),
        warmup=dict.fromkeys(("iterations", "seconds", "min_iterations", "min_seconds")),
        run={"seconds": None, "min_iterations": None, "min_seconds": None, "seed": None, "input": None},
        memory=dict.fromkeys(("peak_rss_bytes", "model_weight_bytes", "model_activation_bytes")),
        power=rt_power.absent("none"), times_ms=times, **parts)


def test_a_document_validates_and_its_csv_holds_its_times():
    results = imported([1.5, 2.25, 1.75] * 40, deadline_ms=2.0)
    assert validate(results) == [] and results["version"] == SCHEMA_VERSION == schema()["properties"]["version"]["const"]
    lines = to_csv(results).splitlines()
    assert lines[0] == "iteration,latency_ms" and lines[1] == "0,1.5" and len(lines) == 121


@pytest.mark.parametrize("tamper,fragment", [
    (lambda r: r.pop("environment"), "'environment' is a required property"),
    (lambda r: r.update(version=1), "version 1 is not 2"),
    (lambda r: r.update(format="other"), "not an ncc-results document"),
    (lambda r: r["latency_ms"].update(p99=0.5), "$.latency_ms.p99 is 0.5"),
    (lambda r: r["run"].update(iterations=3), "$.run.iterations is 3 but times_ms holds 120"),
    (lambda r: r.update(valid=False), "$.valid must be true exactly when"),
    (lambda r: r.update(power={"available": True}), "$.power: 'source' is a required property"),
    (lambda r: r["environment"].update(threads=-1), "$.environment.threads"),
])
def test_the_validator_names_what_is_wrong(tamper, fragment):
    results = imported([1.0, 2.0, 3.0] * 40)
    broken = copy.deepcopy(results)
    tamper(broken)
    problems = validate(broken)
    assert any(fragment in p for p in problems), problems


def test_a_valid_flag_needs_enough_samples():
    results = imported([1.0] * 20)
    assert results["valid"] is False and validate(results) == []
    results.update(valid=True, invalid_reasons=[])
    assert any("needs 100" in p for p in validate(results))


def test_the_runner_completes_results_from_the_manifest_and_marks_emulation():
    from ncc.runtime_harness.runner import complete

    manifest = {"model": {"after": {"weight_bytes": 432, "peak_activation_bytes": 1024}}}
    results = complete(imported([1.0] * 100), manifest, emulator="qemu-aarch64")
    assert results["memory"] == {"peak_rss_bytes": None, "model_weight_bytes": 432, "model_activation_bytes": 1024}
    assert results["emulated"] is True and "emulated under qemu-aarch64" in results["notes"][0]
    assert results["power"]["available"] is False and validate(results) == []
