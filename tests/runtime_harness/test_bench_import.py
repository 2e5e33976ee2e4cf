"""`ncc bench --import`: results measured elsewhere, in ncc's schema."""

import json
import pathlib

import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc.runtime_harness.importers import from_trtexec
from ncc.runtime_harness.results import validate

TRTEXEC = pathlib.Path(__file__).parent / "fixtures" / "trtexec_times.json"


def test_trtexec_export_times_become_ncc_results(tmp_path):
    result = invoke("bench", "--import", TRTEXEC, "--json", tmp_path / "r.json", "--csv", tmp_path / "r.csv")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "r.json").read_text())
    records = json.loads(TRTEXEC.read_text())
    assert validate(results) == [] and results["harness"] == "trtexec" and results["valid"]
    assert results["times_ms"] == [r["latencyMs"] for r in records]
    assert results["run"]["seconds"] == pytest.approx((records[-1]["endD2hMs"] - records[0]["startEnqMs"]) / 1000)
    assert "latency from latencyMs" in results["notes"][0]
    assert results["power"]["available"] is False and results["environment"]["cpu_model"] is None
    assert len((tmp_path / "r.csv").read_text().splitlines()) == len(records) + 1
    assert "p99.9 ms" in result.stdout and "trtexec" in result.stdout


def test_without_latency_ms_the_phases_are_added_from_their_timestamps():
    records = [{"startInMs": 10.0 * i, "endInMs": 10.0 * i + 0.5, "startComputeMs": 10.0 * i + 1,
                "endComputeMs": 10.0 * i + 3, "startOutMs": 10.0 * i + 3, "endOutMs": 10.0 * i + 3.25}
               for i in range(4)]
    results = from_trtexec(records, "old.json")
    assert results["times_ms"] == [2.75] * 4 and "start/end timestamps" in results["notes"][0]
    assert results["valid"] is False  # four samples give no p99
    assert from_trtexec([{"h2dMs": 0.1, "computeMs": 1.0, "d2hMs": 0.2}], "x")["times_ms"] == [1.3]


def test_a_deadline_judges_imported_times_afresh(tmp_path):
    result = invoke("bench", "--import", TRTEXEC, "--deadline-ms", "1.5", "--max-miss-rate", "0.001",
                    "--json", tmp_path / "r.json")
    assert_one_line_error(result, 4, "2 of 120 iterations (1.67%) missed the 1.5 ms deadline")
    assert json.loads((tmp_path / "r.json").read_text())["deadline"]["misses"] == 2


def test_ncc_results_pass_through(tmp_path):
    first = tmp_path / "first.json"
    assert invoke("bench", "--import", TRTEXEC, "--json", first).exit_code == 0
    result = invoke("bench", "--import", first, "--json", tmp_path / "again.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads(first.read_text())


@pytest.mark.parametrize("content,fragment", [
    ('{"hello": 1}', "unknown results format"),
    ("[]", "unknown results format"),
    ("not json", "cannot read"),
    ('{"format": "ncc-results", "version": 1, "latency_ms": {}}', "version 1 is not 2"),
])
def test_what_is_not_results_is_a_usage_error(tmp_path, content, fragment):
    path = tmp_path / "x.json"
    path.write_text(content)
    assert_one_line_error(invoke("bench", "--import", path), 2, fragment)


def test_run_rules_that_need_a_run_do_not_apply_to_an_import():
    assert_one_line_error(invoke("bench", "--import", TRTEXEC, "--fifo"), 2, "--fifo does not apply to --import")
    assert_one_line_error(invoke("bench", "--import", TRTEXEC, "--emulate"), 2, "--emulate does not apply")
