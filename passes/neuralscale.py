"""NeuralScale (Lee & Lee, CVPR 2020): per-group power laws that give the width
of every scalable channel group as a function of the model's parameter count.

A profile holds, for every scalable group g, alpha_g and beta_g: at a total
parameter count tau the group is `floor(alpha_g * tau ** beta_g)` channels wide
(at least 1). Scaling to ratio R, the parameter budget is the count of the
uniformly scaled model with un-rounded widths `w * R` (NeuralScale's
definition), and tau is solved so that the model's count comes as close to the
budget as integer widths allow.

Profiles are ncc's own JSON (`load_profile`, `save_profile`), imported from the
original implementation's files (`import_profile`: its pickled
`prune_record/*.pk`, or JSON conversions of them), or fitted to a pruning record
as the original's fit_params.py does (`read_records`, `fit_profile`).
Everything is float64 and deterministic.
"""

import codecs
import csv
import io
import json
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ncc.core import safe_pickle
from ncc.core.errors import UsageError
from ncc.core.files import write_atomically

FORMAT = "ncc-neuralscale-profile"
VERSION = 1
MIN_FIT_ROWS = 6  # with fewer pruning steps the original falls back to uniform scaling
MAX_WIDTH = 2 ** 24  # far above any real layer; keeps widths finite at absurd tau
LOG_TAU_RANGE = (-700.0, 700.0)  # ln tau the solver searches; exp() overflows float64 near 709


# --- the profile and its file format ----------------------------------------------------

class ProfileGroup(NamedTuple):
    id: str
    alpha: float
    beta: float


@dataclass
class Profile:
    groups: list[ProfileGroup]
    origin: str = field(default="", compare=False)  # where it came from, for messages; not saved

    def __post_init__(self):
        self.groups = [ProfileGroup(str(gid), float(alpha), float(beta)) for gid, alpha, beta in self.groups]
        _check_groups(self.groups)


def _check_groups(groups):
    if not groups:
        raise UsageError("the profile has no groups")
    seen = set()
    for group in groups:
        if not (math.isfinite(group.alpha) and group.alpha > 0):
            raise UsageError(f"group '{group.id}': alpha must be a positive finite number, got {group.alpha!r}")
        if not math.isfinite(group.beta):
            raise UsageError(f"group '{group.id}': beta must be a finite number, got {group.beta!r}")
        if group.id in seen:
            raise UsageError(f"group '{group.id}' appears twice")
        seen.add(group.id)


def load_profile(path) -> Profile:
    data = _parse_json(path, _read_bytes(path))
    with _in_file(path):
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UsageError(f'not an ncc NeuralScale profile (no "format": "{FORMAT}")')
        if not _is_number(data.get("version")) or data["version"] != VERSION:
            raise UsageError(f"profile version {data.get('version')!r} is not supported "
                             f"(this ncc reads version {VERSION})")
        if not isinstance(data.get("groups"), list):
            raise UsageError('"groups" must be a list')
        return Profile([_group_entry(i, entry) for i, entry in enumerate(data["groups"])], origin=str(path))


def _group_entry(index, entry) -> ProfileGroup:
    where = f"groups[{index}]"
    if not isinstance(entry, dict):
        raise UsageError(f"{where} must be an object with id, alpha and beta")
    missing = [key for key in ProfileGroup._fields if key not in entry]
    if missing:
        raise UsageError(f"{where} has no {', '.join(missing)}")
    if not isinstance(entry["id"], str) or not entry["id"]:
        raise UsageError(f"{where}: id must be a non-empty string, got {entry['id']!r}")
    for key in ("alpha", "beta"):
        if not _is_number(entry[key]):
            raise UsageError(f"{where}: {key} must be a number, got {entry[key]!r}")
    return ProfileGroup(entry["id"], entry["alpha"], entry["beta"])


def save_profile(profile: Profile, path) -> None:
    """Write `profile` as JSON; atomically, so a failure never leaves half a file."""
    data = {"format": FORMAT, "version": VERSION,
            "groups": [{"id": g.id, "alpha": g.alpha, "beta": g.beta} for g in profile.groups]}
    write_atomically(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


# --- from a profile to widths -----------------------------------------------------------

def match_profile(profile: Profile, group_ids) -> dict:
    """{group id: (alpha, beta)} in the order of `group_ids`; the profile must
    cover exactly the model's scalable groups."""
    params = {g.id: (g.alpha, g.beta) for g in profile.groups}
    missing = [gid for gid in group_ids if gid not in params]
    unknown = [gid for gid in params if gid not in set(group_ids)]
    problems = []
    if missing:
        problems.append(f"it has no entry for scalable group(s) {_names(missing)}")
    if unknown:
        problems.append(f"it names group(s) {_names(unknown)} that are not scalable groups of the model")
    if problems:
        raise UsageError(f"the profile does not match the model: {'; '.join(problems)}")
    return {gid: params[gid] for gid in group_ids}


def widths_at(params: dict, tau: float) -> dict:
    """{group id: floor(alpha * tau ** beta)}, at least 1 (and at most MAX_WIDTH)."""
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau!r}")
    alpha, beta = (np.array([pair[k] for pair in params.values()], dtype=np.float64) for k in (0, 1))
    with np.errstate(over="ignore"):
        widths = np.clip(np.floor(alpha * np.power(np.float64(tau), beta)), 1, MAX_WIDTH)
    return {gid: int(width) for gid, width in zip(params, widths)}


def uniform_budget(groups, ratio: float) -> float:
    """NeuralScale's budget: the parameter count at un-rounded widths `w * ratio`."""
    if not (math.isfinite(ratio) and ratio > 0):
        raise UsageError(f"the scaling ratio must be a positive number, got {ratio!r}")
    return groups.param_count({g.id: g.width * ratio for g in groups.scalable})


def solve_tau(params: dict, param_count, budget: float):
    """The tau whose widths give the parameter count nearest to `budget`:
    (tau, {group id: width}, achieved count).

    The count is a step function of tau, non-decreasing when every beta >= 0
    (as NeuralScale's fits give). Bisection on ln tau finds the step where it
    crosses the budget, and the nearer side wins (a tie goes to the side
    under the budget). A budget the profile cannot reach at any tau (below its
    count with every width at its minimum, or above its count at the largest
    tau float64 holds) is a UsageError rather than the nearest model, which
    would ignore the ratio asked for: e.g. a profile whose betas are all 0
    (the original's fallback) gives one model only.
    """
    def solve_at(log_tau):
        widths = widths_at(params, math.exp(log_tau))
        return _Solution(log_tau, widths, param_count(widths))

    low, high = (solve_at(log_tau) for log_tau in LOG_TAU_RANGE)
    if not low.count <= budget <= high.count:
        raise UsageError(f"the profile cannot reach a budget of {budget:,.0f} parameters: "
                         f"at any tau it gives between {low.count:,} and {high.count:,}")
    if high.count == budget:
        low = high
    while True:  # invariant: low.count <= budget < high.count, unless low is high
        middle = (low.log_tau + high.log_tau) / 2
        if not low.log_tau < middle < high.log_tau:
            break
        trial = solve_at(middle)
        if trial.count <= budget:
            low = trial
        else:
            high = trial
    best = min(low, high, key=lambda s: abs(s.count - budget))
    return math.exp(best.log_tau), best.widths, best.count


class _Solution(NamedTuple):
    log_tau: float
    widths: dict
    count: float


# --- fitting a pruning record -----------------------------------------------------------

_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


def read_records(path) -> np.ndarray:
    """NeuralScale's prune record: one CSV row per pruning step, the width of
    every scalable group, no header. Blank lines are skipped."""
    text = _decode(path, _read_bytes(path))
    rows = []  # (line number, widths)
    try:
        reader = csv.reader(io.StringIO(text))
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, [_width(path, reader.line_num, col, cell)
                                               for col, cell in enumerate(row, 1)]))
    except csv.Error as err:
        raise UsageError(f"{path} is not a CSV file: {err}") from None
    if not rows:
        raise UsageError(f"{path} holds no records")
    for line, widths in rows:
        if len(widths) != len(rows[0][1]):
            raise UsageError(f"{path}:{line}: {len(widths)} widths, but line {rows[0][0]} has {len(rows[0][1])}")
    return np.array([widths for _, widths in rows], dtype=np.int64)


def _width(path, line, column, cell) -> int:
    if not _INTEGER.fullmatch(cell):
        raise UsageError(f"{path}:{line}: column {column}: {cell.strip()!r} is not an integer width")
    if int(cell) < 1:
        raise UsageError(f"{path}:{line}: column {column}: width {int(cell)} is not positive")
    return int(cell)


def fit_profile(records, group_ids, param_count) -> Profile:
    """Least squares of ln(width) = beta * ln(tau) + ln(alpha) per group, tau
    being the model's parameter count at each row's widths; with fewer than
    MIN_FIT_ROWS rows, uniform scaling (beta = 0, alpha = the first row)."""
    records = np.asarray(records)
    if records.ndim != 2 or records.shape[1] != len(group_ids):
        columns = records.shape[-1] if records.ndim else 0
        raise UsageError(f"the records have {columns} widths per row, but the model has "
                         f"{len(group_ids)} scalable channel groups")
    if len(records) < MIN_FIT_ROWS:
        alpha, beta = records[0].astype(np.float64), np.zeros(len(group_ids))
        origin = f"{len(records)} rows, fewer than {MIN_FIT_ROWS}: uniform fallback, beta = 0"
    else:
        alpha, beta = _least_squares(records, group_ids, param_count)
        origin = f"least-squares fit over {len(records)} rows"
    return Profile(list(zip(group_ids, alpha, beta)), origin=origin)


def _least_squares(records, group_ids, param_count):
    taus = np.array([param_count(dict(zip(group_ids, map(int, row)))) for row in records], dtype=np.float64)
    design = np.stack([np.log(taus), np.ones_like(taus)], axis=1)
    theta, _, rank, _ = np.linalg.lstsq(design, np.log(records.astype(np.float64)), rcond=None)
    if rank < 2:
        raise UsageError("cannot fit the records: every row gives the same parameter count")
    return np.exp(theta[1]), theta[0]


# --- importing the original's profiles --------------------------------------------------

def import_profile(path, group_ids, iteration=None) -> Profile:
    """A profile from the original implementation's pickle (`{"param": [[alpha,
    beta], ...]}`, one pair per architecture-descent iteration; the last one
    unless `iteration` says) or from a JSON file with `alpha` and `beta` lists.
    Layer i becomes group_ids[i]."""
    data = _read_bytes(path)
    if data.removeprefix(codecs.BOM_UTF8).lstrip()[:1] == b"{":
        if iteration is not None:
            raise UsageError(f"{path} is a JSON profile, which holds one iteration; "
                             "an iteration applies only to NeuralScale pickles")
        layers, origin = _json_layers(path, data), str(path)
    else:
        iterations = _pickle_iterations(path, data)
        k = len(iterations) - 1 if iteration is None else iteration
        if not 0 <= k < len(iterations):
            raise UsageError(f"{path} holds iterations 0 to {len(iterations) - 1}; there is no iteration {k}")
        layers, origin = iterations[k], f"{path}, iteration {k} of 0..{len(iterations) - 1}"
    alpha, beta = layers
    if len(alpha) != len(group_ids):
        raise UsageError(f"{path} has {len(alpha)} layers, but the model has "
                         f"{len(group_ids)} scalable channel groups")
    with _in_file(path):
        return Profile(list(zip(group_ids, alpha, beta)), origin=origin)


def _json_layers(path, data):
    loaded = _parse_json(path, data)
    if not isinstance(loaded, dict) or "alpha" not in loaded or "beta" not in loaded:
        raise UsageError(f'{path}: expected an object with "alpha" and "beta" lists')
    return _layer_arrays(loaded["alpha"], loaded["beta"], str(path))


def _pickle_iterations(path, data) -> list:
    loaded = _unpickle(path, data)
    params = loaded.get("param") if isinstance(loaded, dict) else None
    if not isinstance(params, (list, tuple)) or not params:
        raise UsageError(f"{path} is not a NeuralScale profile pickle (expected {{'param': [[alpha, beta], ...]}})")
    iterations = []
    for k, pair in enumerate(params):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise UsageError(f"{path}: param[{k}] is not a pair [alpha, beta]")
        iterations.append(_layer_arrays(*pair, where=f"{path}: param[{k}]"))
    return iterations


def _layer_arrays(alpha, beta, where):
    arrays = []
    for name, values in (("alpha", alpha), ("beta", beta)):
        if not _is_real_vector(values):
            raise UsageError(f"{where}: {name} must be a non-empty list of numbers")
        arrays.append(np.asarray(values, dtype=np.float64))
    if len(arrays[0]) != len(arrays[1]):
        raise UsageError(f"{where}: alpha has {len(arrays[0])} values, beta {len(arrays[1])}")
    return arrays


def _is_real_vector(values) -> bool:
    if isinstance(values, np.ndarray):
        return values.ndim == 1 and values.size > 0 and values.dtype.kind in "iuf"
    return isinstance(values, (list, tuple)) and len(values) > 0 and all(
        _is_number(v) or (isinstance(v, np.generic) and v.dtype.kind in "iuf") for v in values)


def _unpickle(path, data: bytes):
    try:
        return safe_pickle.loads(data)
    except safe_pickle.Rejected as err:
        raise UsageError(f"refusing to load {path}: the pickle asks for {err}, "
                         "and only numpy arrays and plain containers are read") from None
    except Exception as err:  # any malformed input, whatever the exception, is the file's fault
        raise UsageError(f"{path} is neither JSON nor a readable pickle ({type(err).__name__}: {err})") from None


# --- files and small helpers ------------------------------------------------------------

def _read_bytes(path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a file") from None
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from None


def _decode(path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text file") from None


def _parse_json(path, data: bytes):
    try:
        return json.loads(_decode(path, data))
    except json.JSONDecodeError as err:
        raise UsageError(f"{path} is not JSON ({err.msg} at line {err.lineno})") from None



@contextmanager
def _in_file(path):
    """Prefix the UsageErrors raised inside with the file they are about."""
    try:
        yield
    except UsageError as err:
        raise UsageError(f"{path}: {err}") from None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _names(ids, limit=8) -> str:
    shown = ", ".join(f"'{gid}'" for gid in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
