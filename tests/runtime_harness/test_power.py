"""Power from hwmon rails, on fake sysfs trees (NCC_HWMON_ROOT)."""

import pytest
from ncc.runtime_harness import rt_power
from ncc.runtime_harness.results import validate


def energy_per_inference(watts: float, run: dict, rel: float):
    """`watts` x the run's seconds per inference, within `rel` and the rounding of
    the results (seconds to 1 us, energy to 1 nJ), which on a fast run is more."""
    rounding = watts * 0.5e-6 / run["iterations"] + 0.5e-9
    return pytest.approx(watts * run["seconds"] / run["iterations"], rel=rel, abs=rounding)


def make_hwmon(root, devices):
    """devices: one {file: content} per hwmonN folder."""
    for index, files in enumerate(devices):
        folder = root / f"hwmon{index}"
        folder.mkdir(parents=True)
        for name, content in files.items():
            (folder / name).write_text(f"{content}\n")
    return root


JETSON = [  # INA3221: bus voltage in mV and current in mA per channel, no power files
    {"name": "ina3221", "in1_label": "VDD_IN", "in1_input": 5000, "curr1_input": 1000,
     "in2_label": "VDD_CPU_GPU_CV", "in2_input": 5000, "curr2_input": 200,
     "in3_label": "VDD_SOC", "in3_input": 5000, "curr3_input": 100, "in3_enable": 0},
    {"name": "coretemp", "temp1_input": 40000},
]


@pytest.fixture
def jetson(tmp_path):
    return make_hwmon(tmp_path / "hwmon", JETSON)


def test_ina3221_rails_are_found_by_label(jetson):
    rails = rt_power.discover(str(jetson))
    assert [(r.label, r.device, r.read_w()) for r in rails] == [("VDD_IN", "ina3221", 5.0),
                                                               ("VDD_CPU_GPU_CV", "ina3221", 1.0)]


def test_the_total_input_rail_gives_average_power_and_energy_per_inference(jetson):
    sampler = rt_power.start(root=str(jetson))
    power = rt_power.finish(sampler, iterations=10, seconds=0.5)
    assert power["available"] and power["total"] == "VDD_IN"
    assert power["average_w"] == 5.0 and power["energy_per_inference_j"] == pytest.approx(0.25)
    assert power["samples"] >= 2 and [r["average_w"] for r in power["rails"]] == [5.0, 1.0]


def test_without_a_total_rail_the_rails_are_summed_and_pmbus_inputs_dropped(tmp_path):
    root = make_hwmon(tmp_path / "hwmon", [
        {"name": "ina226", "power1_input": 2_500_000, "curr1_input": 500, "in1_input": 5000},
        {"name": "irps5401", "power1_label": "pin", "power1_input": 3_000_000,
         "power2_label": "pout1", "power2_input": 1_200_000},
    ])
    rails = rt_power.discover(str(root))
    assert [r.label for r in rails] == ["ina226/hwmon0/1", "pout1"]
    power = rt_power.finish(rt_power.start(root=str(root)), iterations=4, seconds=2.0)
    assert power["total"] == "sum" and power["average_w"] == pytest.approx(3.7)
    assert power["energy_per_inference_j"] == pytest.approx(3.7 * 2.0 / 4)


def test_absent_sensors_are_reported_absent(tmp_path):
    (tmp_path / "empty").mkdir()
    assert rt_power.start(root=str(tmp_path / "empty")) is None
    power = rt_power.finish(None, iterations=10, seconds=1.0, root=str(tmp_path / "empty"))
    assert power == {"available": False, "reason": f"no INA2xx, INA3221 or PMBus sensor under {tmp_path / 'empty'}"}


def test_the_harness_samples_the_rails_during_the_run(bench, jetson, monkeypatch):
    monkeypatch.setenv(rt_power.HWMON_ROOT_ENV, str(jetson))
    result, results = bench("--iterations", "100")
    assert result.exit_code == 0, result.output
    power, run = results["power"], results["run"]
    assert power["available"] and power["average_w"] == 5.0 and power["source"] == "hwmon"
    assert power["energy_per_inference_j"] == energy_per_inference(5.0, run, rel=1e-3)
    assert "5 W (VDD_IN of 2 rail(s)" in result.stdout
    assert validate(results) == []


def test_the_harness_reports_absent_sensors(bench, tmp_path, monkeypatch):
    (tmp_path / "none").mkdir()
    monkeypatch.setenv(rt_power.HWMON_ROOT_ENV, str(tmp_path / "none"))
    _result, results = bench("--iterations", "3")
    assert results["power"]["available"] is False and str(tmp_path / "none") in results["power"]["reason"]
