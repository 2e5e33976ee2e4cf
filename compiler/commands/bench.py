"""ncc bench: time a bundle's harness on this machine."""

import json

import click

from ncc.compiler.options import debug_option


@click.command("bench")
@click.argument("bundle", type=click.Path(file_okay=False, path_type=str))
@click.option("--iterations", default=100, show_default=True, type=click.IntRange(min=1),
              help="Timed runs.")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(min=0), help="Untimed runs first.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1), help="Intra-op threads.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random input.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=str),
              help="Also write the full results (every iteration's time) to this file.")
@debug_option
def command(bundle, iterations, warmup, threads, seed, json_path):
    """Run BUNDLE's timing harness here and print its latency."""
    from ncc.compiler import summary
    from ncc.runtime_harness.runner import run_bundle

    results = run_bundle(bundle, iterations=iterations, warmup=warmup, threads=threads, seed=seed)
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(results, handle, indent=2, sort_keys=True)
            handle.write("\n")
    click.echo(summary.bench_table(bundle, results))
