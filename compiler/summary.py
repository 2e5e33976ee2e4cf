"""What `ncc compile` and `ncc bench` print when they finish."""

import os

from ncc.compiler.report import format_bytes, format_count, format_table


def compile_summary(bundle_dir: str, manifest: dict) -> str:
    before, after = manifest["model"]["before"], manifest["model"]["after"]
    rows = [[p["name"], "yes" if p["changed"] else "no", _stats(p["stats"]),
             f"{p['time_s'] * 1000:.1f} ms" if "time_s" in p else "-"] for p in manifest["passes"]]
    lines = [f"compiled {manifest['input']['file']} for {manifest['target']['name']} -> {bundle_dir}",
             format_table(rows, ["pass", "changed", "stats", "time"], align="llll", indent=2),
             f"  params {format_count(before['params'])} -> {format_count(after['params'])}, "
             f"MACs {format_count(before['macs'])} -> {format_count(after['macs'])}, "
             f"peak activations {format_bytes(after['peak_activation_bytes'])}"]
    lines += [f"  {_int8_accuracy(p['stats']['eval'])}" for p in manifest["passes"]
              if p["name"] == "quantize-int8"]
    lines += [f"  {a['path']}  {format_bytes(a['bytes'])}  {a['sha256'][:12]}" for a in manifest["artifacts"]]
    lines += [f"  on the board: {step}" for step in manifest["board_steps"]]
    return "\n".join(lines)


def _stats(stats: dict) -> str:
    shown = []
    for key, value in stats.items():
        if isinstance(value, dict):
            value = len(value)
        if value:
            shown.append(f"{key}={value}")
    return ", ".join(shown) or "-"


def _int8_accuracy(figures: dict) -> str:
    if not figures["measured"]:
        return f"int8 accuracy not measured: {figures['why']}"
    top1 = (f"top-1 {figures['top1_fp32_pct']:.2f}% -> {figures['top1_int8_pct']:.2f}%, "
            if "top1_fp32_pct" in figures else "")
    sqnr = f"SQNR {figures['sqnr_db']:.1f} dB" if figures["sqnr_db"] is not None else "outputs identical"
    return (f"int8 vs fp32 on {figures['samples']} held-out samples: {top1}"
            f"top-1 agreement {figures['top1_agreement_pct']:.2f}%, {sqnr}")


_LATENCY = (("min", "min"), ("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99_9", "p99.9"), ("max", "max"),
            ("mean", "mean"), ("std", "std"))


def bench_table(source: str, results: dict) -> str:
    """What `ncc bench` prints: the latency table, then one line each for
    jitter, deadline, memory, power, scheduling and the verdict."""
    latency = results["latency_ms"]
    lines = [_bench_header(source, results),
             format_table([[_ms(latency[key]) for key, _ in _LATENCY]], [f"{label} ms" for _, label in _LATENCY],
                          align="r" * len(_LATENCY), indent=2),
             f"  jitter: p99-p50 {_ms(results['jitter_ms']['p99_minus_p50'])} ms, "
             f"max-min {_ms(results['jitter_ms']['max_minus_min'])} ms",
             f"  deadline: {_deadline(results['deadline'])}",
             f"  memory: {_memory(results['memory'])}",
             f"  power: {_power(results['power'])}",
             f"  scheduling: {_scheduling(results['environment'])}",
             "  valid" if results["valid"] else f"  INVALID: {'; '.join(results['invalid_reasons'])}"]
    return "\n".join(lines + [f"  note: {note}" for note in results["notes"]])


def _bench_header(source, results) -> str:
    run, warmup, env = results["run"], results["warmup"], results["environment"]
    parts = [f"{source}: {results['harness']}" + (" (EMULATED)" if results["emulated"] else ""),
             f"{run['iterations']} iterations" + (f" in {run['seconds']:.2f} s" if run["seconds"] is not None else "")]
    if warmup["iterations"] is not None:
        parts[-1] += f" after {warmup['iterations']} warm-up"
    if env["threads"] is not None:
        parts.append(f"{env['threads']} thread(s)" + (f" on {env['cpu_model']}" if env["cpu_model"] else ""))
    return ", ".join(parts)


def _ms(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _deadline(deadline) -> str:
    if deadline["deadline_ms"] is None:
        return "none"
    text = f"{deadline['deadline_ms']:g} ms, {deadline['misses']} missed"
    if deadline["miss_rate"] is not None:
        text += f" ({deadline['miss_rate']:.2%}), at most {deadline['max_consecutive_misses']} in a row"
    if deadline["passed"] is not None:
        text += f"; limit {deadline['max_miss_rate']:.2%}: {'passed' if deadline['passed'] else 'FAILED'}"
    return text


def _memory(memory) -> str:
    shown = [(label, memory[key]) for key, label in (("peak_rss_bytes", "peak RSS"), ("model_weight_bytes", "weights"),
                                                     ("model_activation_bytes", "activations"))]
    return ", ".join(f"{label} {format_bytes(value) if value is not None else '-'}" for label, value in shown)


def _power(power) -> str:
    if not power["available"]:
        return f"absent ({power['reason']})"
    energy = power["energy_per_inference_j"]
    return (f"{power['average_w']:.3g} W ({power['total']} of {len(power['rails'])} rail(s), {power['samples']} samples)"
            + (f", {energy * 1000:.3g} mJ per inference" if energy is not None else ""))


def _scheduling(env) -> str:
    shown = [f"CPUs {_cpus(env['affinity'])}" if env["affinity"] is not None else "CPUs unknown"]
    for key, label in (("pin", f"pin {_cpus(env['pin'] or [])}"), ("fifo", f"SCHED_FIFO {env['fifo_priority']}"),
                       ("mlock", "mlockall")):
        granted = env[f"{key}_granted"]
        if granted is not None:
            shown.append(f"{label} " + ("granted" if granted else f"REFUSED ({env[f'{key}_error']})"))
    return ", ".join(shown)


def _cpus(cpus) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    ranges = []
    for cpu in cpus:
        if ranges and ranges[-1][1] == cpu - 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in ranges)


COMPILE_JSON_SCHEMA = "ncc-compile-summary/1"


def compile_json(bundle_dir: str, manifest: dict) -> dict:
    """What `ncc compile --json` prints: a stable document keyed by `schema`."""
    return {"schema": COMPILE_JSON_SCHEMA, "bundle": bundle_dir,
            "manifest": os.path.join(bundle_dir, "manifest.json"),
            "input": manifest["input"]["file"], "target": manifest["target"]["name"],
            "artifacts": manifest["artifacts"], "model": manifest["model"],
            "passes": [{"name": p["name"], "stats": p.get("stats", {})} for p in manifest["passes"]],
            "board_steps": manifest["board_steps"]}
