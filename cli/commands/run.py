"""ncc run: run a bundle's model once on given input, through the bundle's own
harness: natively when it is built for this machine, else under qemu (for
correctness only: an emulated time is never reported as latency)."""

import click

from ncc.cli.options import debug_option


@click.command("run")
@click.argument("bundle", type=click.Path(file_okay=False, path_type=str))
@click.option("--input", "inputs", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=str),
              metavar="X.npy", help="Input of the model, one per graph input in order (default: seeded random).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=str), metavar="Y.npy",
              help="Write the model's first output here.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1), help="Intra-op threads.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random input.")
@debug_option
def command(bundle, inputs, output, threads, seed):
    """Run BUNDLE's model once on X.npy and write Y.npy."""
    from ncc.runtime_harness.rt_rules import RunRules
    from ncc.runtime_harness.runner import run_bundle

    rules = RunRules(warmup=0, warmup_seconds=0.0, iterations=1, threads=threads, seed=seed)
    extra = [flag for path in inputs for flag in ("--input", path)] + (["--output", output] if output else [])
    results = run_bundle(bundle, rules, emulate=True, extra_argv=extra)
    where = f" to {output}" if output else ""
    if results["emulated"]:
        click.echo(f"ran {bundle} emulated (qemu){where}; an emulated time says nothing about the board "
                   "and is not reported")
    else:
        click.echo(f"ran {bundle} ({results['harness']}, {threads} thread(s)){where} in "
                   f"{results['latency_ms']['min']:.3f} ms (one cold run; time it with `ncc bench`)")
