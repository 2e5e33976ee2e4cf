"""The sweep's plots (PNG, matplotlib without a display): latency and memory
against parameters and MACs, and the report's three comparisons."""

import os

from ncc.study import report as study_report

SERIES_STYLE = {("uniform", "fp32"): "tab:blue", ("uniform", "int8"): "tab:cyan",
                ("neuralscale", "fp32"): "tab:red", ("neuralscale", "int8"): "tab:orange"}
MIB = 2 ** 20


def write_plots(table: list[dict], out_dir: str) -> dict:
    """{title: path relative to out_dir's parent} of the plots the measured rows allow."""
    import matplotlib

    matplotlib.use("Agg")
    models = sorted({r["model"] for r in table if r["status"] == "ok"})
    if not models:
        return {}
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    figures = {
        "Latency and memory against parameters": ("vs_params.png", lambda: _against(table, models, "params")),
        "Latency and memory against MACs": ("vs_macs.png", lambda: _against(table, models, "macs")),
        "NeuralScale vs uniform: relative speed": ("neuralscale_vs_uniform.png", lambda: _neuralscale(table)),
        "int8 vs fp32: speed-up and memory saved": ("int8_vs_fp32.png", lambda: _int8(table)),
        "Scaling speed-up vs 1.0x": ("scaling_speedup.png", lambda: _scaling(table, models)),
    }
    for title, (name, draw) in figures.items():
        figure = draw()
        if figure is None:
            continue
        figure.suptitle(title)
        figure.tight_layout()
        figure.savefig(os.path.join(out_dir, name), dpi=110, metadata={"Software": None})
        _close(figure)
        written[title] = f"{os.path.basename(out_dir)}/{name}"
    return written


def _close(figure):
    import matplotlib.pyplot as plt

    plt.close(figure)


def _subplots(rows, columns, width=4.2, height=3.4):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    return figure, axes


def _against(table, models, x_key):
    """Row 1: p50 (solid) and p99 (dashed) latency; row 2: peak RSS; one column per model."""
    figure, axes = _subplots(2, len(models))
    series = study_report.by(table, "model", "method", "precision")
    for column, model in enumerate(models):
        latency_axis, memory_axis = axes[0][column], axes[1][column]
        for (name, method, precision), points in sorted(series.items()):
            if name != model:
                continue
            points = sorted(points, key=lambda r: r[x_key])
            x = [r[x_key] for r in points]
            color, label = SERIES_STYLE.get((method, precision)), f"{method} {precision}"
            latency_axis.plot(x, [r["p50_ms"] for r in points], "o-", color=color, label=f"{label} p50")
            latency_axis.plot(x, [r["p99_ms"] for r in points], "x--", color=color, label=f"{label} p99")
            memory_axis.plot(x, [r["peak_rss_bytes"] / MIB for r in points], "o-", color=color, label=label)
        latency_axis.set(title=model, xscale="log", ylabel="latency (ms)")
        memory_axis.set(xscale="log", xlabel="parameters" if x_key == "params" else "MACs",
                        ylabel="peak resident memory (MiB)")
        for axis in (latency_axis, memory_axis):
            _count_ticks(axis, [r[x_key] for r in table if r["model"] == model and r["status"] == "ok"])
        latency_axis.legend(fontsize=6)
        memory_axis.legend(fontsize=6)
    return figure


def _count_ticks(axis, values):
    """Log-scale x ticks at the measured values, labelled as counts (578K, 9.23M)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    from ncc.compiler.report import format_count

    ticks = []
    for value in sorted(values):  # ticks closer than 1.4x would overprint their labels
        if not ticks or value > ticks[-1] * 1.4:
            ticks.append(value)
    axis.xaxis.set_major_locator(FixedLocator(ticks))
    axis.xaxis.set_minor_locator(NullLocator())
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_count(value)))
    axis.tick_params(axis="x", labelsize=7, labelrotation=30)


def _bars(axis, groups: dict, categories: list, value_format):
    """Grouped bars: one group per category (x), one bar per series in `groups` ({label: {category: value}})."""
    width = 0.8 / max(1, len(groups))
    for index, (label, values) in enumerate(sorted(groups.items())):
        xs = [c + (index - (len(groups) - 1) / 2) * width for c in range(len(categories))]
        heights = [values.get(category, 0.0) for category in categories]
        bars = axis.bar(xs, heights, width, label=label)
        axis.bar_label(bars, [value_format(h) if h else "" for h in heights], fontsize=6)
    axis.set_xticks(range(len(categories)), [f"{c:g}x" for c in categories])
    axis.legend(fontsize=6)


def _neuralscale(table):
    pairs = study_report.neuralscale_vs_uniform(table)
    if not pairs:
        return None
    groups = {}
    for p in pairs:
        groups.setdefault(f"{p['model']} {p['precision']}", {})[p["ratio"]] = 100 * p["relative_speed"]
    figure, axes = _subplots(1, 1, width=7)
    _bars(axes[0][0], groups, sorted({p["ratio"] for p in pairs}), lambda v: f"{v:.0f}%")
    axes[0][0].axhline(100, color="grey", linewidth=0.8)
    axes[0][0].set(xlabel="ratio", ylabel="uniform p50 / NeuralScale p50 (%)")
    return figure


def _int8(table):
    pairs = study_report.int8_vs_fp32(table)
    if not pairs:
        return None
    ratios = sorted({p["ratio"] for p in pairs})
    figure, axes = _subplots(1, 2, width=6)
    for axis, key, label, fmt in ((axes[0][0], "speedup", "fp32 p50 / int8 p50", lambda v: f"{v:.2f}"),
                                  (axes[0][1], "weight_reduction", "weight bytes saved (%)", lambda v: f"{v:.0f}")):
        groups = {}
        for p in pairs:
            groups.setdefault(f"{p['model']} {p['method']}", {})[p["ratio"]] = \
                p[key] * (100 if key == "weight_reduction" else 1)
        _bars(axis, groups, ratios, fmt)
        axis.set(xlabel="ratio", ylabel=label)
    axes[0][0].axhline(1, color="grey", linewidth=0.8)
    return figure


def _scaling(table, models):
    pairs = study_report.scaling_speedup(table)
    if not pairs:
        return None
    figure, axes = _subplots(1, len(models))
    for column, model in enumerate(models):
        axis = axes[0][column]
        series = {}
        for p in pairs:
            if p["model"] == model:
                series.setdefault((p["method"], p["precision"]), []).append((p["ratio"], p["speedup"]))
        for (method, precision), points in sorted(series.items()):
            points.sort()
            axis.plot([r for r, _ in points], [s for _, s in points], "o-",
                      color=SERIES_STYLE.get((method, precision)), label=f"{method} {precision}")
        axis.set(title=model, xlabel="ratio", ylabel="p50 at 1.0x / p50")
        axis.legend(fontsize=6)
    return figure
