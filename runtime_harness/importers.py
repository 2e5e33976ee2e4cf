"""`ncc bench --import`: results measured on a board, in ncc's schema.

- ncc results JSON (any ncc harness) is validated and passed through.
- trtexec --exportTimes JSON is a list with one record per timed inference
  (warm-up excluded). A record's latency is its `latencyMs` (trtexec's
  H2D + compute + D2H) when present; otherwise the sum of the phases it has,
  each from its interval (`h2dMs`, `computeMs`, `d2hMs`; older trtexec
  `inMs`, `outMs`) or else from its timestamps (`startComputeMs` to
  `endComputeMs`, ...). A record without a compute time fails the import. The
  run's seconds span its first start to its last end timestamp.
"""

import os

from ncc.core.errors import UsageError
from ncc.runtime_harness import rt_env, rt_power, rt_results
from ncc.runtime_harness.results import FORMAT, check, load_json

PHASES = (("h2d", "in"), ("compute",), ("d2h", "out"))  # trtexec's names, newer first
TRTEXEC_KEYS = {"latencyms", "computems", "startcomputems"}


def import_results(path: str, deadline_ms=None, max_miss_rate=None) -> dict:
    """The results in `path`; with a deadline, judged against it afresh."""
    data = load_json(path)
    if isinstance(data, dict) and data.get("format") == FORMAT:
        results = check(data, path)
    elif _is_trtexec(data):
        results = from_trtexec(data, os.path.basename(path))
    else:
        raise UsageError(f"{path}: unknown results format (expected ncc results JSON or trtexec --exportTimes JSON)")
    if deadline_ms is not None:
        results.update(rt_results.summarize(results["times_ms"], deadline_ms, max_miss_rate))
    return check(results, path)


def _is_trtexec(data) -> bool:
    return (isinstance(data, list) and bool(data)
            and all(isinstance(r, dict) and TRTEXEC_KEYS & {k.lower() for k in r} for r in data))


def from_trtexec(records: list, name: str) -> dict:
    records = [{key.lower(): value for key, value in record.items()} for record in records]
    latencies, sources = [], set()
    for index, record in enumerate(records):
        latency, source = _latency(record, index)
        latencies.append(latency)
        sources.add(source)
    return rt_results.document(
        harness="trtexec", model=None, environment=rt_env.unknown(),
        warmup=dict.fromkeys(("iterations", "seconds", "min_iterations", "min_seconds")),
        run={"seconds": _span_seconds(records), "min_iterations": None, "min_seconds": None,
             "seed": None, "input": None},
        memory=dict.fromkeys(("peak_rss_bytes", "model_weight_bytes", "model_activation_bytes")),
        power=rt_power.absent("trtexec --exportTimes records no power"), times_ms=latencies,
        notes=[f"imported from {name} (trtexec --exportTimes); latency from {' and '.join(sorted(sources))}"])


def _latency(record: dict, index: int):
    if "latencyms" in record:
        return float(record["latencyms"]), "latencyMs"
    total, source = 0.0, "phase intervals"
    for names in PHASES:
        interval = next((record[f"{n}ms"] for n in names if f"{n}ms" in record), None)
        if interval is None:
            interval = next((record[f"end{n}ms"] - record[f"start{n}ms"] for n in names
                             if f"start{n}ms" in record and f"end{n}ms" in record), None)
            source = "start/end timestamps" if interval is not None else source
        if interval is None and names == ("compute",):
            raise UsageError(f"trtexec record {index} has neither latencyMs nor a compute time")
        total += interval or 0.0
    return total, source


def _span_seconds(records):
    starts = [v for r in records for k, v in r.items() if k.startswith("start")]
    ends = [v for r in records for k, v in r.items() if k.startswith("end") and k != "endtoendms"]
    return round((max(ends) - min(starts)) / 1000, 6) if starts and ends else None
