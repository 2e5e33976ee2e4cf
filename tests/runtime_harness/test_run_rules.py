"""Each run rule of `ncc bench`, through the bundle's own harness."""

import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc.runtime_harness.results import validate


def test_min_seconds_extends_the_iterations(bench):
    result, results = bench("--iterations", "2", "--min-seconds", "0.3")
    assert result.exit_code in (0, 4), result.output
    assert results["run"]["seconds"] >= 0.3 and results["run"]["min_seconds"] == 0.3
    assert results["run"]["iterations"] > 2 and validate(results) == []


def test_warmup_runs_by_count_and_by_time(bench):
    _result, results = bench("--iterations", "3", "--warmup", "5", "--warmup-seconds", "0.1")
    warmup = results["warmup"]
    assert warmup["iterations"] >= 5 and warmup["seconds"] >= 0.1
    assert (warmup["min_iterations"], warmup["min_seconds"]) == (5, 0.1)


def test_too_few_samples_for_a_p99_make_the_run_invalid(bench):
    result, results = bench("--iterations", "20")
    assert_one_line_error(result, 4, "run invalid: 20 timed iterations; a p99 needs at least 100")
    assert results["valid"] is False and results["invalid_reasons"]
    assert results["latency_ms"]["p99"] is None and results["latency_ms"]["p90"] is not None
    assert "INVALID" in result.stdout


def test_deadline_misses_are_counted(bench):
    result, results = bench("--iterations", "100", "--deadline-ms", "1e-6")
    assert result.exit_code == 0, result.output
    deadline = results["deadline"]
    assert deadline["misses"] == results["run"]["iterations"] == deadline["max_consecutive_misses"]
    assert deadline["miss_rate"] == 1.0 and deadline["passed"] is None
    assert "100 missed (100.00%)" in result.stdout


def test_max_miss_rate_fails_the_run_but_keeps_the_results(bench):
    result, results = bench("--iterations", "100", "--deadline-ms", "1e-6", "--max-miss-rate", "0.5")
    assert_one_line_error(result, 4, "missed the 1e-06 ms deadline, more than --max-miss-rate 0.5")
    assert results["deadline"]["passed"] is False and results["valid"] is True
    assert validate(results) == []


def test_pin_is_recorded(bench):
    _result, results = bench("--iterations", "3", "--pin", "0")
    env = results["environment"]
    assert env["pin"] == [0] and env["pin_granted"] in (True, False)
    if env["pin_granted"]:
        assert env["affinity"] == [0] and env["pin_error"] is None
    else:
        assert env["pin_error"]


@pytest.mark.parametrize("flag,key", [("--fifo", "fifo"), ("--mlock", "mlock")])
def test_fifo_and_mlock_are_recorded_granted_or_refused(bench, flag, key):
    result, results = bench("--iterations", "3", "--priority", "1", flag)
    env = results["environment"]
    assert env[f"{key}_requested"] is True and env[f"{key}_granted"] in (True, False)
    assert (env[f"{key}_error"] is None) == env[f"{key}_granted"]
    assert ("granted" if env[f"{key}_granted"] else "REFUSED") in result.stdout


@pytest.mark.parametrize("args,fragment", [
    (["--max-miss-rate", "0.1"], "--max-miss-rate needs --deadline-ms"),
    (["--pin", "zero"], "bad CPU list 'zero'"),
    (["--iterations", "0"], "--iterations must be at least 1"),
    (["--priority", "100", "--fifo"], "--priority must be within 1..99"),
])
def test_bad_run_rules_are_usage_errors(ort_bundle, args, fragment):
    assert_one_line_error(invoke("bench", ort_bundle, *args), 2, fragment)
