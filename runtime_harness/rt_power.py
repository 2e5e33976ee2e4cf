"""Power rails under /sys/class/hwmon, sampled on a thread while a run is timed.

Copied into bundles beside the harness (standard library only). A rail is one
channel of a current/power monitor: INA3221 (Jetson), INA226 and its INA2xx
kin, or a PMBus regulator (ZCU104). Its power is power<N>_input (microwatts)
or, on a chip that reports no power (INA3221), curr<N>_input (mA) times
in<N>_input (mV). Its name is the channel's label file, else device/channel.

The run's power is the rail labelled as the board's total input when there is
one (VDD_IN, POM_5V_IN, VIN), else the sum of all rails; a PMBus device's
input rails (pin*) are dropped when it also reports outputs, so a regulator is
not counted twice. NCC_HWMON_ROOT replaces /sys/class/hwmon (tests, or a copy).
"""

from __future__ import annotations  # boards may run Python 3.8

import glob
import os
import re
import threading

try:  # imported by ncc as ncc.runtime_harness.rt_power
    from .rt_env import read_text
except ImportError:  # beside the harness in a bundle, where the rt_* modules are top-level
    from rt_env import read_text

HWMON_ROOT_ENV = "NCC_HWMON_ROOT"
HWMON_ROOT = "/sys/class/hwmon"
SENSORS = re.compile(r"^(ina2\d\d|ina2xx|ina3221|pmbus|irps\d+|ir3\d+|ucd9\d+|tps5\d+|max20\d+)")
TOTAL_LABELS = ("VDD_IN", "POM_5V_IN", "VIN")
INTERVAL_S = 0.02


class Rail:
    def __init__(self, label, device, path, power=None, current=None, voltage=None):
        self.label, self.device, self.path = label, device, path
        self.power, self.current, self.voltage = power, current, voltage

    def read_w(self) -> float:
        if self.power:
            return _read_number(self.power) / 1e6
        return _read_number(self.current) * _read_number(self.voltage) / 1e6


def hwmon_root() -> str:
    return os.environ.get(HWMON_ROOT_ENV) or HWMON_ROOT


def discover(root=None) -> list:
    root = root or hwmon_root()
    rails = []
    for folder in sorted(glob.glob(os.path.join(root, "hwmon*"))):
        device = read_text(os.path.join(folder, "name"))
        if device and SENSORS.match(device):
            rails += _device_rails(folder, device)
    return rails


def _device_rails(folder, device) -> list:
    def path(name):
        full = os.path.join(folder, name)
        return full if os.path.exists(full) else None

    inputs = [m.groups() for m in map(re.compile(r"^(power|curr)(\d+)_input$").match, os.listdir(folder)) if m]
    # a chip that reports power (INA2xx, PMBus) numbers its curr/in channels otherwise; only INA3221 needs the product
    kind = "power" if any(k == "power" for k, _i in inputs) else "curr"
    rails = []
    for i in sorted({int(i) for k, i in inputs if k == kind}):
        if kind == "power":
            labels, files = [f"power{i}_label"], {"power": path(f"power{i}_input")}
        elif read_text(os.path.join(folder, f"in{i}_enable")) != "0" and path(f"in{i}_input"):
            labels, files = [f"curr{i}_label", f"in{i}_label"], {"current": path(f"curr{i}_input"),
                                                                  "voltage": path(f"in{i}_input")}
        else:
            continue  # a disabled INA3221 channel
        label = next((read_text(p) for p in map(path, labels) if p), None)
        rails.append(Rail(label or f"{device}/{os.path.basename(folder)}/{i}", device, folder, **files))
    if any(r.label.lower().startswith("pout") for r in rails):
        rails = [r for r in rails if not r.label.lower().startswith("pin")]
    return rails


class Sampler(threading.Thread):
    """Reads every rail each interval until stopped: once at start, once at stop."""

    def __init__(self, rails, interval_s=INTERVAL_S, avoid_cpus=None):
        super().__init__(name="ncc-power", daemon=True)
        self.rails, self.interval_s, self.avoid_cpus = rails, interval_s, avoid_cpus
        self.sums = [0.0] * len(rails)
        self.counts = [0] * len(rails)
        self.errors = {}
        self._stop_event = threading.Event()

    def run(self):
        _step_aside(self.avoid_cpus)
        self._sample()
        while not self._stop_event.wait(self.interval_s):
            self._sample()
        self._sample()

    def stop(self):
        self._stop_event.set()
        self.join()

    def _sample(self):
        for i, rail in enumerate(self.rails):
            try:
                self.sums[i] += rail.read_w()
                self.counts[i] += 1
            except (OSError, ValueError) as err:
                self.errors[rail.label] = str(err)


def _step_aside(avoid_cpus):
    """Keep the sampler off the CPUs the run is pinned to, and out of SCHED_FIFO,
    which it inherits from the harness; both only when the system allows."""
    try:
        others = set(os.sched_getaffinity(0)) - set(avoid_cpus or ())
        if avoid_cpus and others:
            os.sched_setaffinity(0, others)
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def start(avoid_cpus=None, root=None):
    """A running Sampler, or None when there is no rail to read."""
    rails = discover(root)
    if not rails:
        return None
    sampler = Sampler(rails, avoid_cpus=avoid_cpus)
    sampler.start()
    return sampler


def finish(sampler, iterations: int, seconds: float, root=None) -> dict:
    """Stop `sampler` and give the results' power section."""
    if sampler is None:
        return absent(f"no INA2xx, INA3221 or PMBus sensor under {root or hwmon_root()}")
    sampler.stop()
    rails = [{"label": r.label, "device": r.device, "path": r.path, "samples": c,
              "average_w": round(s / c, 6) if c else None}
             for r, s, c in zip(sampler.rails, sampler.sums, sampler.counts)]
    read = [r for r in rails if r["average_w"] is not None]
    if not read:
        return absent("every rail failed to read: " + "; ".join(f"{k}: {v}" for k, v in sampler.errors.items()))
    total = next((r for r in read if r["label"].upper() in TOTAL_LABELS), None)
    average_w = total["average_w"] if total else sum(r["average_w"] for r in read)
    return {"available": True, "source": "hwmon", "total": total["label"] if total else "sum",
            "average_w": round(average_w, 6), "samples": max(r["samples"] for r in read),
            "interval_ms": sampler.interval_s * 1000,
            "energy_per_inference_j": round(average_w * seconds / iterations, 9) if iterations else None,
            "rails": rails}


def absent(reason: str) -> dict:
    return {"available": False, "reason": reason}


def _read_number(path) -> float:
    with open(path) as handle:
        return float(handle.read().strip())


def timed_run(run_for, step, rules):
    """Warm up, then time with power sampled: run_for(step, count, seconds)
    gives (times, seconds). Returns (warm times, warm seconds, times, seconds,
    the results' power section)."""
    warm, warm_seconds = run_for(step, rules.warmup, rules.warmup_seconds)
    sampler = start(avoid_cpus=rules.pin)
    times, seconds = run_for(step, rules.iterations, rules.min_seconds)
    return warm, warm_seconds, times, seconds, finish(sampler, len(times), seconds)
