"""ncc compile --deadline-ms: the largest model that meets a deadline here."""

import json

import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc.study import deadline_search
from ncc.runtime_harness.results import validate


@pytest.fixture(scope="module")
def tiny_vgg(tmp_path_factory):
    path = tmp_path_factory.mktemp("deadline-model") / "tinyvgg.onnx"
    assert invoke("zoo", "vgg11", "--width-mult", "0.125", "-o", path).exit_code == 0
    return path


def leftovers(folder, out):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{out}"))


def test_a_loose_deadline_keeps_the_full_model_after_one_candidate(tmp_path, tiny_vgg):
    result = invoke("compile", tiny_vgg, "-o", tmp_path / "b", "--target", "onnxruntime", "--deadline-ms", "10000")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    search = manifest["deadline"]
    assert search["chosen"]["ratio"] == 1.0 and search["chosen"]["precision"] == "fp32"
    assert len(search["candidates"]) == 1 and search["candidates"][0]["meets"]
    assert manifest["options"]["scale"] == "uniform:1" and manifest["options"]["quantize"] is None
    results = json.loads((tmp_path / "b" / search["results"]).read_text())
    assert validate(results) == [] and results["deadline"]["deadline_ms"] == 10000
    assert results["latency_ms"]["p99"] == search["chosen"]["p99_ms"] <= 10000
    assert "chosen: uniform:1 fp32" in result.stderr
    assert leftovers(tmp_path, "b") == []


def test_an_impossible_deadline_is_a_compile_error_that_leaves_nothing(tmp_path, tiny_vgg):
    result = invoke("compile", tiny_vgg, "-o", tmp_path / "b", "--target", "onnxruntime", "--quantize", "int8",
                    "--scale", "uniform:0.5", "--deadline-ms", "0.000001")
    assert result.exit_code == 1 and "Traceback" not in result.output
    *progress, error = result.stderr.strip().splitlines()
    assert error.startswith("ncc: error: no candidate meets p99 <= 1e-06 ms here: the fastest, uniform:")
    assert [line.split(":")[0] for line in progress] == ["candidate uniform"] * 2  # 0.5, then 1/64 of it
    assert all(" int8: " in line for line in progress)
    assert not (tmp_path / "b").exists() and leftovers(tmp_path, "b") == []


def test_the_deadline_search_measures_only_where_its_bundles_run(tmp_path, tiny_vgg):
    result = invoke("compile", tiny_vgg, "-o", tmp_path / "b", "--target", "xavier", "--deadline-ms", "5")
    assert_one_line_error(result, 2, "runs on its board")


class FakeTrials(deadline_search._Trials):
    """Latency proportional to the ratio squared (times 4 for fp32), no compiles."""

    def __init__(self):
        super().__init__("m.onnx", None, "uniform", 1.0, None, None, progress=lambda _line: None)
        self.deadline = 1.0
        self.asked = []

    def measure(self, k, precision):
        ratio = self._ratio(k)
        self.asked.append(k)
        p99 = ratio ** 2 * (4 if precision == "fp32" else 1)
        candidate = deadline_search.Candidate(ratio, precision, int(1e6 * ratio ** 2), p99, p99, p99 <= self.deadline)
        self.measured[(ratio, precision)] = candidate
        return candidate


@pytest.mark.parametrize("deadline,precision,expected", [
    (1.0, "fp32", 16 / 32),  # 4 r^2 <= 1  ->  r <= 0.5
    (1.0, "int8", 1.0),
    (0.25, "int8", 16 / 32),
    (0.1, "int8", 10 / 32),  # r <= 0.316
    (0.0001, "int8", None),
])
def test_bisection_finds_the_largest_ratio_on_the_grid(deadline, precision, expected):
    trials = FakeTrials()
    trials.deadline = deadline
    found = trials.largest_meeting(precision)
    assert (found.ratio if found else None) == expected
    assert len(set(trials.asked)) <= 2 + 5  # both ends, then log2(32) halvings
