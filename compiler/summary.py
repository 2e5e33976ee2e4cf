"""What `ncc compile` and `ncc bench` print when they finish."""

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


def bench_table(bundle_dir: str, results: dict) -> str:
    latency = results["latency_ms"]
    keys = ["min", "p50", "p90", "p99", "max", "mean", "std"]
    env = results["environment"]
    header = (f"{bundle_dir}: {results['harness']}, {results['iterations']} iterations after "
              f"{results['warmup']} warm-up, {env['threads']} thread(s) on {env['processor']}")
    return header + "\n" + format_table([[f"{latency[k]:.3f}" for k in keys]], [f"{k} ms" for k in keys],
                                        align="r" * len(keys), indent=2)
