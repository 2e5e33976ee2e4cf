"""The results schema (results_schema.json) and its validator.

jsonschema checks the layout, because the schema is a standard JSON Schema
document any harness author can check against with any tool; validate() then
recomputes every statistic from times_ms with rt_results, so a harness in
another language that computes a percentile differently is caught too.
"""

import functools
import json
import os

import jsonschema

from ncc.core.errors import UsageError
from ncc.runtime_harness.harnesses import HARNESS_DIR
from ncc.runtime_harness.rt_results import (FORMAT, MIN_SAMPLES, SCHEMA_VERSION, VALIDITY_PERCENTILE,
                                            summarize, to_csv)

SCHEMA_PATH = os.path.join(HARNESS_DIR, "results_schema.json")
TOLERANCE_MS = 2e-6  # times are kept to 1e-6 ms; a C++ harness may round the last digit the other way


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    with open(SCHEMA_PATH) as handle:
        return json.load(handle)


def validate(results) -> list:
    """Every way `results` breaks the schema or its own times; empty when it is sound."""
    if not isinstance(results, dict) or results.get("format") != FORMAT:
        return [f"not an {FORMAT} document (format is {_get(results, 'format')!r})"]
    if results.get("version") != SCHEMA_VERSION:
        return [f"version {results.get('version')!r} is not {SCHEMA_VERSION}, the version this ncc reads"]
    validator = jsonschema.Draft202012Validator(schema())
    problems = [f"{error.json_path}: {error.message}"
                for error in sorted(validator.iter_errors(results), key=lambda e: list(e.absolute_path))]
    return problems or _consistency(results)


def _get(results, key):
    return results.get(key) if isinstance(results, dict) else type(results).__name__


def _consistency(results) -> list:
    times = results["times_ms"]
    problems = []
    if results["run"]["iterations"] != len(times):
        problems.append(f"$.run.iterations is {results['run']['iterations']} but times_ms holds {len(times)}")
    if results["valid"] == bool(results["invalid_reasons"]):
        problems.append("$.valid must be true exactly when $.invalid_reasons is empty")
    if results["valid"] and len(times) < MIN_SAMPLES[VALIDITY_PERCENTILE]:
        problems.append(f"$.valid is true with {len(times)} samples; a {VALIDITY_PERCENTILE} needs "
                        f"{MIN_SAMPLES[VALIDITY_PERCENTILE]}")
    deadline = results["deadline"]
    expected = summarize(times, deadline["deadline_ms"], deadline["max_miss_rate"])
    for section, values in expected.items():
        for key, value in values.items():
            if not _same(results[section][key], value):
                problems.append(f"$.{section}.{key} is {results[section][key]!r}; times_ms give {value!r}")
    return problems


def _same(reported, expected) -> bool:
    if reported is None or expected is None or isinstance(expected, bool):
        return reported == expected
    if isinstance(expected, float):
        return abs(reported - expected) <= TOLERANCE_MS * max(1.0, abs(expected))
    return reported == expected


def read_results(path: str) -> dict:
    """A results file, checked against the schema; UsageError when it is not one."""
    return check(load_json(path), path)


def check(results, path: str) -> dict:
    """`results` (read from `path`) when it is sound, else UsageError naming its first problem."""
    problems = validate(results)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"{path} is not valid ncc results: {problems[0]}{more}")
    return results


def load_json(path: str):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UsageError(f"cannot read {path} as JSON: {err}") from None


def write_results(results: dict, json_path=None, csv_path=None) -> None:
    if json_path:
        _write(json_path, json.dumps(results, indent=2, sort_keys=True) + "\n")
    if csv_path:
        _write(csv_path, to_csv(results))


def _write(path, text):
    try:
        with open(path, "w") as handle:
            handle.write(text)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror}") from None
