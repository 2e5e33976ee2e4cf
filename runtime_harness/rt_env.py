"""The machine a harness runs on, and the scheduling it asked for and got.

Copied into bundles beside the harness (standard library only). Every request
(CPU pinning, SCHED_FIFO, mlockall) is recorded as granted or refused with the
system's reason; a refusal never stops the run and is never silent.
"""

from __future__ import annotations  # boards may run Python 3.8

import ctypes
import os
import platform
import re
import resource
import sys

# what lscpu prints for the (implementer, part) pairs of /proc/cpuinfo on the study's boards and their kin
ARM_CORES = {
    (0x41, 0xD03): "Cortex-A53", (0x41, 0xD04): "Cortex-A35", (0x41, 0xD05): "Cortex-A55",
    (0x41, 0xD07): "Cortex-A57", (0x41, 0xD08): "Cortex-A72", (0x41, 0xD09): "Cortex-A73",
    (0x41, 0xD0A): "Cortex-A75", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD0D): "Cortex-A77", (0x41, 0xD41): "Cortex-A78", (0x41, 0xD42): "Cortex-A78AE",
    (0x4E, 0x004): "NVIDIA Carmel",
}
MCL_CURRENT, MCL_FUTURE = 1, 2  # <sys/mman.h> on x86 and ARM Linux

KEYS = ("os", "kernel", "kernel_version", "rt_kernel", "machine", "board", "cpu_model", "cores_online",
        "affinity", "cores_used", "threads", "governors", "runtime", "runtime_version",
        "pin", "pin_granted", "pin_error", "fifo_requested", "fifo_granted", "fifo_priority", "fifo_error",
        "mlock_requested", "mlock_granted", "mlock_error", "extra")


def unknown() -> dict:
    """An environment nobody recorded (results imported from another tool)."""
    return dict.fromkeys(KEYS)


def describe(threads: int, runtime: str, runtime_version: str, requests: dict, extra=None) -> dict:
    """The environment section; `requests` is what pin(), fifo() and mlock() returned."""
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    kernel_version = platform.version()
    env = {
        "os": platform.system(), "kernel": platform.release(), "kernel_version": kernel_version,
        "rt_kernel": bool(re.search(r"PREEMPT[_ ]RT", kernel_version)) or read_text("/sys/kernel/realtime") == "1",
        "machine": platform.machine(), "board": _board(), "cpu_model": cpu_model(),
        "cores_online": _cores_online(), "affinity": affinity,
        "cores_used": len(affinity) if affinity is not None else None, "threads": threads,
        "governors": {str(cpu): read_text(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor")
                      for cpu in affinity or ()},
        "runtime": runtime, "runtime_version": runtime_version, "extra": dict(extra or {}),
    }
    env.update(requests)
    return {key: env.get(key) for key in KEYS}


def pin(cpus) -> dict:
    if not cpus:
        return {"pin": None, "pin_granted": None, "pin_error": None}
    error = _attempt(lambda: os.sched_setaffinity(0, cpus))
    return {"pin": list(cpus), "pin_granted": error is None, "pin_error": error}


def fifo(requested: bool, priority: int) -> dict:
    if not requested:
        return {"fifo_requested": False, "fifo_granted": None, "fifo_priority": None, "fifo_error": None}
    error = _attempt(lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority)))
    if error is not None and "permitted" in error:
        error += " (needs CAP_SYS_NICE or an rtprio limit)"
    return {"fifo_requested": True, "fifo_granted": error is None, "fifo_priority": priority, "fifo_error": error}


def mlock(requested: bool) -> dict:
    if not requested:
        return {"mlock_requested": False, "mlock_granted": None, "mlock_error": None}
    error = _attempt(_mlockall)
    if error is not None and ("permitted" in error or "memory" in error):
        error += " (needs CAP_IPC_LOCK or a large enough memlock limit)"
    return {"mlock_requested": True, "mlock_granted": error is None, "mlock_error": error}


def refusals(env: dict) -> list:
    """One line per request the system refused."""
    names = (("pin", "pinning to CPUs " + ",".join(map(str, env.get("pin") or ()))),
             ("fifo", f"SCHED_FIFO priority {env.get('fifo_priority')}"), ("mlock", "mlockall"))
    return [f"{what} refused: {env[key + '_error']}" for key, what in names if env.get(key + "_granted") is False]


def _mlockall():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _attempt(action):
    """None when `action` succeeded, else the system's reason."""
    try:
        action()
    except AttributeError:
        return f"not supported on {platform.system()}"
    except OSError as err:
        return err.strerror or str(err)
    return None


def cpu_model():
    fields = {}
    for line in (read_text("/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if fields.get("model name"):
        return fields["model name"]
    try:
        core = ARM_CORES.get((int(fields["CPU implementer"], 16), int(fields["CPU part"], 16)))
    except (KeyError, ValueError):
        core = None
    return core or fields.get("Hardware") or platform.processor() or None


def _board():
    model = read_text("/proc/device-tree/model")
    return model.rstrip("\x00") if model else None


def _cores_online():
    try:
        return os.sysconf("SC_NPROCESSORS_ONLN")
    except (AttributeError, ValueError, OSError):
        return os.cpu_count()


def read_text(path):
    """A small text file (sysfs, procfs) stripped, or None when it cannot be read."""
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def peak_rss_bytes():
    """Peak resident memory of this process image: VmHWM, because ru_maxrss
    keeps the high-water mark of the image before exec (a harness started from
    a large process would report that one's memory); ru_maxrss without /proc."""
    status = read_text("/proc/self/status") or ""
    match = re.search(r"^VmHWM:\s*(\d+)\s*kB", status, re.MULTILINE)
    if match:
        return int(match.group(1)) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux counts kB
