"""`ncc inspect`: what a model is made of and what it costs, without compiling it.

The command builds one summary dict; `--json` prints it, otherwise each entry
of `_SECTIONS` renders its part as text. A new kind of information is one more
key in `ncc.compiler.inspection.summarize` and one more section.
"""

import json

import click

from ncc.compiler.loader import load_model
from ncc.compiler.pipeline import channel_groups
from ncc.cli.options import debug_option, json_option, model_input_options
from ncc.compiler.report import format_bytes, format_count, format_shape, format_table


@click.command("inspect")
@model_input_options
@click.option("--groups", "show_groups", is_flag=True,
              help="Show the channel groups instead: which channels must keep one width, "
                   "and which can be scaled or are frozen (and why).")
@json_option()
@debug_option
def command(model, input_shapes, show_groups, as_json):
    """Show a model's inputs, outputs, op histogram, parameters, MACs,
    weight and activation memory, and per-layer costs."""
    if show_groups:
        summary = channel_groups(load_model(model, input_shapes))[1].to_dict()
    else:
        from ncc.compiler import api

        summary = api.inspect(model, input_shapes)
    sections = (_groups_section,) if show_groups else _SECTIONS
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True, indent=2))
    else:
        click.echo("\n\n".join(section(summary) for section in sections))


def _io_section(summary):
    rows = [(kind, v["name"], format_shape(v["shape"]), v["dtype"])
            for kind in ("inputs", "outputs") for v in summary[kind]]
    return format_table(rows, headers=("", "name", "shape", "dtype"))


def _ops_section(summary):
    histogram = sorted(summary["ops"].items(), key=lambda item: (-item[1], item[0]))
    return format_table(histogram, headers=("op", "count"))


def _totals_section(summary):
    figures = (("params", "params", format_count), ("MACs", "macs", format_count),
               ("weight bytes", "weight_bytes", format_bytes),
               ("peak activation bytes", "peak_activation_bytes", format_bytes))
    rows = [(label, f"{summary[key]:,}", short(summary[key])) for label, key, short in figures]
    return format_table(rows, align="lrl")


def _layers_section(summary):
    rows = [(layer["name"], layer["op_type"], format_shape(layer["output_shape"]),
             f"{layer['params']:,}", f"{layer['macs']:,}") for layer in summary["layers"]]
    return format_table(rows, headers=("layer", "op", "out shape", "params", "MACs"), align="lllrr")


def _groups_section(summary):
    rows = [(g["id"], g["width"], "scalable" if g["scalable"] else "frozen", len(g["producers"]),
             len(g["members"]), "; ".join(g["frozen"])) for g in summary["groups"]]
    table = format_table(rows, headers=("group", "width", "status", "producers", "tensors", "frozen because"),
                         align="lrlrrl")
    return f"{table}\n\n{summary['scalable']} scalable, {summary['frozen']} frozen"


_SECTIONS = (_io_section, _ops_section, _totals_section, _layers_section)
