"""What a sweep's records say, as a table (results.csv) and a report
(report.md) with the study's comparisons: NeuralScale against uniform scaling,
int8 against fp32, and each scaled model against its 1.0x.

Every comparison is a ratio of medians (p50) of two configurations that differ
in one setting only; a pair with a missing or failed side is left out.
"""

import csv
import io
import os
import platform
from collections import defaultdict

from ncc.compiler.report import format_bytes, format_count

COLUMNS = ["model", "method", "ratio", "precision", "target", "status", "reason",
           "params", "macs", "weight_bytes", "activation_bytes",
           "p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "min_ms", "max_ms", "mean_ms", "std_ms",
           "jitter_p99_p50_ms", "iterations", "valid", "peak_rss_bytes", "power_w", "energy_per_inference_j",
           "deadline_ms", "meets_deadline", "top1", "top5"]


def rows(records: list, deadline_ms=None) -> list[dict]:
    """One flat row per record, in COLUMNS."""
    return [_row(record, deadline_ms) for record in records]


def _row(record, deadline_ms) -> dict:
    config = record["config"]
    row = dict.fromkeys(COLUMNS)
    row.update(model=config["model"], method=config["method"], ratio=config["ratio"],
               precision=config["precision"], target=record["target"], status=record["status"],
               reason=record.get("reason"), deadline_ms=deadline_ms)
    row.update({k: v for k, v in (record.get("manifest") or {}).items() if k in row})
    results = record.get("results")
    if results:
        latency, power = results["latency_ms"], results["power"]
        row.update({f"{k}_ms": latency[k] for k in ("p50", "p90", "p99", "p99_9", "min", "max", "mean", "std")})
        row.update(jitter_p99_p50_ms=results["jitter_ms"]["p99_minus_p50"], iterations=results["run"]["iterations"],
                   valid=results["valid"], peak_rss_bytes=results["memory"]["peak_rss_bytes"])
        if power.get("available"):
            row.update(power_w=power["average_w"], energy_per_inference_j=power["energy_per_inference_j"])
        if deadline_ms is not None:
            row["meets_deadline"] = latency["p99"] <= deadline_ms
    row.update({k: v for k, v in (record.get("accuracy") or {}).items() if k in ("top1", "top5")})
    return row


def to_csv(table: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


# --- the comparisons ---------------------------------------------------------------------

def _measured(table):
    return {(r["model"], r["method"], r["ratio"], r["precision"]): r for r in table if r["status"] == "ok"}


def neuralscale_vs_uniform(table) -> list[dict]:
    """NeuralScale's speed relative to uniform scaling at the same model,
    ratio and precision: uniform p50 / NeuralScale p50 (100% = as fast)."""
    measured = _measured(table)
    pairs = []
    for (model, method, ratio, precision), ns in sorted(measured.items()):
        uniform = measured.get((model, "uniform", ratio, precision))
        if method == "neuralscale" and uniform:
            pairs.append({"model": model, "ratio": ratio, "precision": precision,
                          "relative_speed": uniform["p50_ms"] / ns["p50_ms"],
                          "params": (ns["params"], uniform["params"]), "macs": (ns["macs"], uniform["macs"])})
    return pairs


def int8_vs_fp32(table) -> list[dict]:
    """int8's speed-up (fp32 p50 / int8 p50) and memory reduction (weights and
    peak resident memory: 1 - int8 / fp32) for each model, method and ratio."""
    measured = _measured(table)
    pairs = []
    for (model, method, ratio, precision), int8 in sorted(measured.items()):
        fp32 = measured.get((model, method, ratio, "fp32"))
        if precision == "int8" and fp32:
            pairs.append({"model": model, "method": method, "ratio": ratio,
                          "speedup": fp32["p50_ms"] / int8["p50_ms"],
                          "weight_reduction": 1 - int8["weight_bytes"] / fp32["weight_bytes"],
                          "rss_reduction": 1 - int8["peak_rss_bytes"] / fp32["peak_rss_bytes"]})
    return pairs


def scaling_speedup(table) -> list[dict]:
    """Each ratio's speed-up over the same model, method and precision at 1.0x."""
    measured = _measured(table)
    pairs = []
    for (model, method, ratio, precision), row in sorted(measured.items()):
        full = measured.get((model, method, 1.0, precision))
        if full:
            pairs.append({"model": model, "method": method, "precision": precision, "ratio": ratio,
                          "speedup": full["p50_ms"] / row["p50_ms"]})
    return pairs


# --- report.md ----------------------------------------------------------------------------

def markdown(table: list[dict], *, command: str, machine: dict, plots: dict, deadline_ms=None) -> str:
    """The report: how it was measured, every configuration, the comparisons, the plots."""
    lines = ["# ncc sweep", "", f"`{command}`", ""]
    lines += [f"- {label}: {value}" for label, value in machine.items()]
    lines += ["", "Latency is the harness's per-inference time on this machine (batch 1); p50 and p99 are",
              "nearest-rank percentiles of every timed iteration. Memory is the harness process's peak",
              "resident set; weights are the compiled model's parameter bytes.", ""]
    failed = [r for r in table if r["status"] != "ok"]
    lines += ["## Configurations", "", *_configurations(table, deadline_ms), ""]
    if failed:
        lines += ["## Failed", ""] + [f"- {_label(r)}: {r['reason']}" for r in failed] + [""]
    lines += _section("NeuralScale vs uniform (relative speed = uniform p50 / NeuralScale p50)",
                      ["model", "precision", "ratio", "relative speed", "params NS / uniform", "MACs NS / uniform"],
                      [[p["model"], p["precision"], f"{p['ratio']:g}", f"{p['relative_speed']:.0%}",
                        f"{format_count(p['params'][0])} / {format_count(p['params'][1])}",
                        f"{format_count(p['macs'][0])} / {format_count(p['macs'][1])}"]
                       for p in neuralscale_vs_uniform(table)])
    lines += _section("int8 vs fp32", ["model", "method", "ratio", "speed-up", "weights saved", "peak RSS saved"],
                      [[p["model"], p["method"], f"{p['ratio']:g}", f"{p['speedup']:.2f}x",
                        f"{p['weight_reduction']:.0%}", f"{p['rss_reduction']:.0%}"] for p in int8_vs_fp32(table)])
    lines += _section("Scaling speed-up vs 1.0x", ["model", "method", "precision", "ratio", "speed-up"],
                      [[p["model"], p["method"], p["precision"], f"{p['ratio']:g}", f"{p['speedup']:.2f}x"]
                       for p in scaling_speedup(table)])
    if plots:
        lines += ["## Plots", ""] + [f"![{title}]({path})" for title, path in plots.items()] + [""]
    return "\n".join(lines)


def _configurations(table, deadline_ms) -> list:
    accuracy = any(r["top1"] is not None for r in table)
    headers = ["model", "method", "ratio", "precision", "params", "MACs", "weights", "p50 ms", "p99 ms",
               "jitter ms", "peak RSS"]
    headers += ["top-1"] if accuracy else []
    headers += [f"p99 <= {deadline_ms:g} ms"] if deadline_ms is not None else []
    body = []
    for r in table:
        if r["status"] != "ok":
            continue
        cells = [r["model"], r["method"], f"{r['ratio']:g}", r["precision"], format_count(r["params"]),
                 format_count(r["macs"]), format_bytes(r["weight_bytes"]), f"{r['p50_ms']:.3f}",
                 f"{r['p99_ms']:.3f}", f"{r['jitter_p99_p50_ms']:.3f}", format_bytes(r["peak_rss_bytes"])]
        cells += [f"{r['top1']:.2%}" if r["top1"] is not None else "-"] if accuracy else []
        cells += ["yes" if r["meets_deadline"] else "no"] if deadline_ms is not None else []
        body.append(cells)
    return _table(headers, body)


def _section(title, headers, body) -> list:
    if not body:
        return []
    return [f"## {title}", "", *_table(headers, body), ""]


def _table(headers, body) -> list:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + \
           ["| " + " | ".join(str(c) for c in cells) + " |" for cells in body]


def _label(row) -> str:
    return f"{row['model']} {row['method']} x{row['ratio']:g} {row['precision']}"


def machine_facts(records: list, target: str) -> dict:
    """The machine as the harness saw it (from the first measured record)."""
    env = next((r["results"]["environment"] for r in records if r.get("results")), {})
    threads = env.get("threads")
    loads = [r["load_average"] for r in records if r.get("load_average") is not None]
    load = {"load average (1 min) as runs started": f"{min(loads):.2f} to {max(loads):.2f}"} if loads else {}
    return {"target": target, "CPU": f"{env.get('cpu_model') or platform.processor() or platform.machine()}, "
                                     f"{env.get('cores_online') or os.cpu_count()} cores online",
            "kernel": f"{env.get('os', platform.system())} {env.get('kernel', platform.release())}"
                      f"{' (PREEMPT_RT)' if env.get('rt_kernel') else ''}",
            "runtime": f"{env.get('runtime')} {env.get('runtime_version')}, {threads} inference thread(s)", **load}


def by(table, *keys) -> dict:
    """Measured rows grouped by the values of `keys`."""
    groups = defaultdict(list)
    for row in table:
        if row["status"] == "ok":
            groups[tuple(row[k] for k in keys)].append(row)
    return dict(groups)
