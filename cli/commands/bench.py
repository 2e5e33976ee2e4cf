"""ncc bench: time a bundle's harness on this machine, or read results
measured on a board, and judge the run."""

import click

from ncc.core.errors import BenchmarkFailed, UsageError
from ncc.cli.options import debug_option
from ncc.cli.run_options import run_rule_options
from ncc.runtime_harness.rt_rules import flag

IMPORT_RULES = {"deadline_ms", "max_miss_rate"}  # the run rules that still mean something for --import


@click.command("bench")
@click.argument("bundle", required=False, type=click.Path(file_okay=False, path_type=str))
@click.option("--import", "import_path", metavar="FILE", type=click.Path(dir_okay=False, path_type=str),
              help="Instead of running a bundle, convert FILE (ncc results JSON, or trtexec --exportTimes JSON) "
                   "into ncc's results schema.")
@run_rule_options
@click.option("--emulate", is_flag=True,
              help="Run a bundle built for another architecture under qemu, for a smoke test; "
                   "its results are marked emulated.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=str),
              help="Also write the full results (every iteration's time) to this file.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=str),
              help="Also write the per-iteration times to this CSV file.")
@debug_option
def command(bundle, import_path, rules, rules_given, emulate, json_path, csv_path):
    """Run BUNDLE's timing harness here, print its latency and judge the run
    (exit 4 when it is invalid or misses its deadline too often)."""
    from ncc.compiler import api, summary
    from ncc.runtime_harness import rt_results
    from ncc.runtime_harness.importers import import_results
    from ncc.runtime_harness.results import write_results

    if bool(bundle) == bool(import_path):
        raise UsageError("give a bundle folder or --import FILE" + (", not both" if bundle else ""))
    if import_path:
        foreign = sorted(rules_given - IMPORT_RULES) + (["emulate"] if emulate else [])
        if foreign:
            raise UsageError(f"{flag(foreign[0])} does not apply to --import (only --deadline-ms and --max-miss-rate do)")
        results = import_results(import_path, rules.deadline_ms, rules.max_miss_rate)
        failures = rt_results.failures(results)
        failed = BenchmarkFailed("; ".join(failures), results) if failures else None
    else:
        try:
            results, failed = api.bench(bundle, rules=rules, emulate=emulate), None
        except BenchmarkFailed as err:  # the table and files are written all the same
            results, failed = err.results, err
    write_results(results, json_path, csv_path)
    click.echo(summary.bench_table(bundle or import_path, results))
    if failed:
        raise failed
