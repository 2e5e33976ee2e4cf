"""Power sampling in the C++ harnesses (runtime_harness/cpp/power.h), on the
fake hwmon trees of test_power.py: the TVM harness of a tiny host bundle must
report what rt_power computes for the same tree, in the results schema."""

import numpy as np
import pytest
from cli_helpers import invoke
from ncc.runtime_harness import rt_power
from ncc.runtime_harness.results import validate
from ncc.runtime_harness.rt_rules import RunRules
from ncc.runtime_harness.runner import run_bundle
from onnx import helper
from onnx_builders import make_model, save
from test_power import JETSON, energy_per_inference, make_hwmon

RULES = RunRules(warmup=1, warmup_seconds=0, iterations=100, min_seconds=0.1)
SUMMED = [  # no total rail: INA226 and a PMBus regulator whose input rail is dropped
    {"name": "ina226", "power1_input": 2_500_000, "curr1_input": 500, "in1_input": 5000},
    {"name": "irps5401", "power1_label": "pin", "power1_input": 3_000_000,
     "power2_label": "pout1", "power2_input": 1_200_000},
    {"name": "ucd9248", "power1_input": 700_000, "power2_label": "VCCINT", "power2_input": "garbage"},
]


@pytest.fixture(scope="module")
def tvm_bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tvm-power")
    weight = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)
    path = save(make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4)], {"w": weight},
                           outputs={"y": [1, 4, 8, 8]}), folder)
    result = invoke("compile", path, "-o", folder / "b", "--target", "host")
    assert result.exit_code == 0, result.output
    return folder / "b"


def python_power(root, iterations, seconds):
    """What rt_power reports for the tree at root (values constant, so the averages are exact)."""
    return rt_power.finish(rt_power.start(root=str(root)), iterations, seconds, root=str(root))


def without_sample_counts(power):
    power = dict(power, samples=None, energy_per_inference_j=None)
    power["rails"] = [dict(rail, samples=None) for rail in power["rails"]]
    return power


@pytest.mark.parametrize("tree,total,watts", [(JETSON, "VDD_IN", 5.0), (SUMMED, "sum", 2.5 + 1.2 + 0.7)])
def test_cpp_harness_reports_what_rt_power_computes(tvm_bundle, tmp_path, monkeypatch, tree, total, watts):
    root = make_hwmon(tmp_path / "hwmon", tree)
    monkeypatch.setenv(rt_power.HWMON_ROOT_ENV, str(root))
    results = run_bundle(str(tvm_bundle), RULES)  # raises unless the document validates
    power, run = results["power"], results["run"]
    assert results["harness"] == "tvm-cpp" and validate(results) == []
    assert power["total"] == total and power["average_w"] == pytest.approx(watts, abs=1e-6)
    assert power["samples"] >= 2 and power["interval_ms"] == 20.0
    assert power["energy_per_inference_j"] == energy_per_inference(watts, run, rel=1e-4)
    expected = python_power(root, run["iterations"], run["seconds"])
    assert without_sample_counts(power) == without_sample_counts(expected)


def test_a_rail_that_fails_to_read_keeps_its_place_without_an_average(tvm_bundle, tmp_path, monkeypatch):
    root = make_hwmon(tmp_path / "hwmon", SUMMED)
    monkeypatch.setenv(rt_power.HWMON_ROOT_ENV, str(root))
    rails = run_bundle(str(tvm_bundle), RULES)["power"]["rails"]
    assert [(r["label"], r["average_w"], r["samples"]) for r in rails][-1] == ("VCCINT", None, 0)


def test_every_rail_failing_makes_power_absent_with_the_reason(tvm_bundle, tmp_path, monkeypatch):
    root = make_hwmon(tmp_path / "hwmon", [{"name": "ina226", "power1_label": "VDD_IN", "power1_input": "n/a"}])
    monkeypatch.setenv(rt_power.HWMON_ROOT_ENV, str(root))
    power = run_bundle(str(tvm_bundle), RULES)["power"]
    assert power["available"] is False and power["reason"].startswith("every rail failed to read: VDD_IN: ")
    assert python_power(root, 1, 1.0)["reason"].startswith("every rail failed to read: VDD_IN: ")


def test_absent_sensors_are_reported_as_rt_power_reports_them(tvm_bundle, tmp_path, monkeypatch):
    root = make_hwmon(tmp_path / "hwmon", [{"name": "coretemp", "temp1_input": 40000}])
    monkeypatch.setenv(rt_power.HWMON_ROOT_ENV, str(root))
    power = run_bundle(str(tvm_bundle), RunRules(warmup=0, warmup_seconds=0, iterations=3))["power"]
    assert power == python_power(root, 3, 1.0) == {
        "available": False, "reason": f"no INA2xx, INA3221 or PMBus sensor under {root}"}
