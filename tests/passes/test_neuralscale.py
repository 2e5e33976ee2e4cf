"""NeuralScale profiles: the file format, matching to a model, solving tau for
a budget, fitting a prune record and importing the original's files."""

import json
import os
import pickle
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from ncc.core.errors import UsageError
from ncc.passes import neuralscale
from ncc.passes.neuralscale import Profile

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "neuralscale"
VGG_WIDTHS = (64, 128, 256, 256, 512, 512, 512, 512)
RATIOS = ("0.25", "0.5", "0.75", "1.0")


class ReferenceVgg:
    """ChannelGroups' interface with the reference's param_count rule for VGG-11
    (per conv in*out*9 + out bias + 2*out BatchNorm; classifier last*classes + classes)."""

    def __init__(self, widths=VGG_WIDTHS, classes=10):
        self.scalable = [SimpleNamespace(id=f"conv{i}", width=w) for i, w in enumerate(widths)]
        self.classes = classes

    @property
    def ids(self):
        return [g.id for g in self.scalable]

    def param_count(self, widths):
        count, previous = 0, 3
        for group in self.scalable:
            width = widths.get(group.id, group.width)
            count += previous * width * 9 + 3 * width
            previous = width
        return count + previous * self.classes + self.classes


@pytest.fixture(scope="module")
def reference():
    if not REFERENCE.is_dir():
        pytest.skip(f"NeuralScale reference data not found at {REFERENCE}")
    return json.loads((REFERENCE / "vgg_10_eff_c10.json").read_text())


@pytest.fixture(scope="module")
def zoo_vgg_groups(zoo_onnx):
    """The real channel-group analysis of the zoo's VGG-11 for CIFAR-10."""
    from ncc.compiler.loader import load_model
    from ncc.compiler.pipeline import channel_groups

    return channel_groups(load_model(zoo_onnx("vgg11")))[1]


def reference_profile(reference, ids) -> Profile:
    return Profile(list(zip(ids, reference["alpha"], reference["beta"])))


def assert_one_line_usage_error(excinfo, *fragments):
    message = str(excinfo.value)
    assert isinstance(excinfo.value, UsageError) and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def write(path, content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


# --- the profile file -------------------------------------------------------------------

def test_save_then_load_gives_the_same_profile_in_the_documented_format(tmp_path):
    profile = Profile([("conv0", 1.143606765617339, 0.3264261896723013), ("conv1", 0.1, -0.0)])
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    neuralscale.save_profile(profile, first)
    neuralscale.save_profile(profile, second)
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_text()) == {
        "format": "ncc-neuralscale-profile", "version": 1,
        "groups": [{"id": "conv0", "alpha": 1.143606765617339, "beta": 0.3264261896723013},
                   {"id": "conv1", "alpha": 0.1, "beta": -0.0}]}
    assert first.read_text().startswith('{\n  "format"')
    assert neuralscale.load_profile(first) == profile
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]  # no temporary file left behind


def profile_json(*groups, **top) -> str:
    data = {"format": "ncc-neuralscale-profile", "version": 1, "groups": list(groups)}
    data.update(top)
    return json.dumps(data)


GOOD = {"id": "conv0", "alpha": 1.0, "beta": 0.5}


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "is not JSON"),
    (b"\x80\x04\x95", "is not a text file"),
    ("[1, 2]", "not an ncc NeuralScale profile"),
    (profile_json(GOOD, format="something-else"), "not an ncc NeuralScale profile"),
    (profile_json(GOOD, version=2), "version 2 is not supported"),
    (profile_json(GOOD, groups={"conv0": 1}), '"groups" must be a list'),
    (profile_json(), "has no groups"),
    (profile_json({"id": "conv0", "alpha": 1.0}), "groups[0] has no beta"),
    (profile_json({"id": 3, "alpha": 1.0, "beta": 0.5}), "id must be a non-empty string"),
    (profile_json({"id": "conv0", "alpha": "1", "beta": 0.5}), "alpha must be a number"),
    (profile_json({"id": "conv0", "alpha": True, "beta": 0.5}), "alpha must be a number"),
    (profile_json({"id": "conv0", "alpha": 0.0, "beta": 0.5}), "alpha must be a positive finite number"),
    (profile_json({"id": "conv0", "alpha": -1.0, "beta": 0.5}), "alpha must be a positive finite number"),
    (profile_json(GOOD).replace("1.0", "NaN"), "alpha must be a positive finite number"),
    (profile_json(GOOD).replace("0.5", "Infinity"), "beta must be a finite number"),
    (profile_json(GOOD, GOOD), "group 'conv0' appears twice"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_a_bad_profile_file_is_a_one_line_usage_error_naming_the_file(tmp_path, content, fragment):
    path = write(tmp_path / "p.json", content)
    with pytest.raises(UsageError) as excinfo:
        neuralscale.load_profile(path)
    assert_one_line_usage_error(excinfo, str(path), fragment)


def test_a_missing_profile_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError) as excinfo:
        neuralscale.load_profile(tmp_path / "absent.json")
    assert_one_line_usage_error(excinfo, "no such file")


# --- matching a profile to a model ------------------------------------------------------

def test_match_gives_the_parameters_in_the_models_group_order():
    profile = Profile([("b", 2.0, 0.2), ("a", 1.0, 0.1)])
    assert list(neuralscale.match_profile(profile, ["a", "b"]).items()) == [("a", (1.0, 0.1)), ("b", (2.0, 0.2))]


@pytest.mark.parametrize("model_ids, fragments", [
    (["a", "b", "c"], ["no entry for scalable group(s) 'c'"]),
    (["a"], ["group(s) 'b' that are not scalable groups"]),
    (["a", "c"], ["no entry for scalable group(s) 'c'", "group(s) 'b' that are not"]),
])
def test_a_profile_must_cover_exactly_the_scalable_groups(model_ids, fragments):
    profile = Profile([("a", 1.0, 0.1), ("b", 2.0, 0.2)])
    with pytest.raises(UsageError) as excinfo:
        neuralscale.match_profile(profile, model_ids)
    assert_one_line_usage_error(excinfo, "does not match the model", *fragments)


# --- widths, budget and tau -------------------------------------------------------------

def test_widths_are_the_floor_of_the_power_law_and_at_least_one():
    params = {"a": (1.5, 0.5), "b": (0.001, 0.1), "c": (7.0, 0.0), "d": (1.0, 5.0)}
    assert neuralscale.widths_at(params, 100.0) == {"a": 15, "b": 1, "c": 7, "d": neuralscale.MAX_WIDTH}


@pytest.mark.parametrize("ratio", RATIOS)
def test_uniform_budget_is_the_count_at_unrounded_scaled_widths(reference, ratio):
    budget = neuralscale.uniform_budget(ReferenceVgg(), float(ratio))
    assert budget == reference["expected_widths_original_solver"][ratio]["budget_params"]


def test_uniform_budget_rejects_a_non_positive_ratio():
    with pytest.raises(UsageError):
        neuralscale.uniform_budget(ReferenceVgg(), 0.0)


@pytest.mark.parametrize("ratio", RATIOS)
def test_solved_widths_match_the_original_solver_and_the_count_is_nearest_the_budget(reference, ratio):
    model = ReferenceVgg()
    expected = reference["expected_widths_original_solver"][ratio]
    params = neuralscale.match_profile(reference_profile(reference, model.ids), model.ids)
    budget = neuralscale.uniform_budget(model, float(ratio))
    tau, widths, achieved = neuralscale.solve_tau(params, model.param_count, budget)

    assert widths == neuralscale.widths_at(params, tau)
    assert achieved == model.param_count(widths)
    assert max(abs(w - e) for w, e in zip(widths.values(), expected["widths"])) <= 1
    assert abs(achieved - budget) / budget < 2e-3  # 0.14% at 0.25, 0.011-0.015% at the others
    # no tau nearby gets nearer the budget
    nearby = [model.param_count(neuralscale.widths_at(params, t)) for t in np.geomspace(tau / 2, tau * 2, 3001)]
    assert abs(achieved - budget) <= min(abs(c - budget) for c in nearby)


def test_solve_is_deterministic(reference):
    model = ReferenceVgg()
    params = neuralscale.match_profile(reference_profile(reference, model.ids), model.ids)
    runs = [neuralscale.solve_tau(params, model.param_count, 1234567.0) for _ in range(2)]
    assert runs[0] == runs[1]


def test_a_budget_below_the_smallest_model_is_a_usage_error(reference):
    model = ReferenceVgg()
    params = neuralscale.match_profile(reference_profile(reference, model.ids), model.ids)
    smallest = model.param_count({gid: 1 for gid in model.ids})
    with pytest.raises(UsageError) as excinfo:
        neuralscale.solve_tau(params, model.param_count, smallest - 1)
    assert_one_line_usage_error(excinfo, "cannot reach a budget", f"between {smallest:,}")
    assert neuralscale.solve_tau(params, model.param_count, smallest)[1] == {gid: 1 for gid in model.ids}


def test_a_profile_of_fixed_widths_reaches_only_its_own_count():
    model = ReferenceVgg()
    params = {gid: (float(w), 0.0) for gid, w in zip(model.ids, VGG_WIDTHS)}
    full = model.param_count({})
    assert neuralscale.solve_tau(params, model.param_count, full)[1:] == (dict(zip(model.ids, VGG_WIDTHS)), full)
    with pytest.raises(UsageError) as excinfo:
        neuralscale.solve_tau(params, model.param_count, full / 2)
    assert_one_line_usage_error(excinfo, f"between {full:,} and {full:,}")


# --- prune records and the fit ----------------------------------------------------------

def test_fit_reproduces_the_reference_profile(reference):
    model = ReferenceVgg()
    records = neuralscale.read_records(REFERENCE / "vgg_10_eff_c10_records_iter14.csv")
    profile = neuralscale.fit_profile(records, model.ids, model.param_count)
    assert [g.id for g in profile.groups] == model.ids
    np.testing.assert_allclose([g.alpha for g in profile.groups], reference["alpha"], rtol=1e-6)
    np.testing.assert_allclose([g.beta for g in profile.groups], reference["beta"], rtol=1e-6)


def test_fit_with_the_real_channel_groups_of_the_zoo_vgg(reference, zoo_vgg_groups):
    ids = [g.id for g in zoo_vgg_groups.scalable]
    assert [g.width for g in zoo_vgg_groups.scalable] == list(VGG_WIDTHS)
    records = neuralscale.read_records(REFERENCE / "vgg_10_eff_c10_records_iter14.csv")
    profile = neuralscale.fit_profile(records, ids, zoo_vgg_groups.param_count)
    np.testing.assert_allclose([g.alpha for g in profile.groups], reference["alpha"], rtol=1e-6)
    np.testing.assert_allclose([g.beta for g in profile.groups], reference["beta"], rtol=1e-6)


@pytest.mark.parametrize("ratio", RATIOS)
def test_solve_with_the_real_channel_groups_of_the_zoo_vgg(reference, zoo_vgg_groups, ratio):
    ids = [g.id for g in zoo_vgg_groups.scalable]
    params = neuralscale.match_profile(reference_profile(reference, ids), ids)
    budget = neuralscale.uniform_budget(zoo_vgg_groups, float(ratio))
    _, widths, _ = neuralscale.solve_tau(params, zoo_vgg_groups.param_count, budget)
    expected = reference["expected_widths_original_solver"][ratio]["widths"]
    assert max(abs(w - e) for w, e in zip(widths.values(), expected)) <= 1


def test_fewer_than_six_rows_fall_back_to_uniform_scaling():
    model = ReferenceVgg()
    records = np.array([[60 - i, 120 - i, 250, 250, 500, 500 - i, 500, 500] for i in range(5)])
    profile = neuralscale.fit_profile(records, model.ids, model.param_count)
    assert [(g.alpha, g.beta) for g in profile.groups] == [(float(w), 0.0) for w in records[0]]
    assert "uniform fallback" in profile.origin


def test_six_rows_are_fitted():
    model = ReferenceVgg()
    records = np.array([[64 - 2 * i, 128 - 4 * i, 256 - 8 * i, 256, 512, 512, 512, 512] for i in range(6)])
    profile = neuralscale.fit_profile(records, model.ids, model.param_count)
    assert profile.groups[0].beta > 0 and profile.groups[3].beta == pytest.approx(0, abs=1e-12)


def test_fit_needs_rows_of_different_parameter_counts():
    model = ReferenceVgg()
    with pytest.raises(UsageError) as excinfo:
        neuralscale.fit_profile(np.tile(VGG_WIDTHS, (6, 1)), model.ids, model.param_count)
    assert_one_line_usage_error(excinfo, "same parameter count")


def test_fit_needs_one_column_per_group():
    model = ReferenceVgg()
    with pytest.raises(UsageError) as excinfo:
        neuralscale.fit_profile(np.ones((6, 7), dtype=int), model.ids, model.param_count)
    assert_one_line_usage_error(excinfo, "7 widths per row", "8 scalable channel groups")


def test_records_are_read_as_integers_skipping_blank_lines(tmp_path):
    path = write(tmp_path / "r.csv", "3, 4,5\n\n 6,7 ,8\n\n")
    records = neuralscale.read_records(path)
    assert records.dtype.kind == "i" and records.tolist() == [[3, 4, 5], [6, 7, 8]]


@pytest.mark.parametrize("content, fragment", [
    ("", "holds no records"),
    ("\n\n", "holds no records"),
    ("1,2,3\n4,5\n", "r.csv:2: 2 widths, but line 1 has 3"),
    ("1,2,3\n4,5.5,6\n", "r.csv:2: column 2: '5.5' is not an integer width"),
    ("1,x,3\n", "r.csv:1: column 2: 'x' is not an integer width"),
    ("1,,3\n", "r.csv:1: column 2: '' is not an integer width"),
    ("1,2,0\n", "r.csv:1: column 3: width 0 is not positive"),
    ("-1,2,3\n", "r.csv:1: column 1: width -1 is not positive"),
    (b"\xff\xfe\x00\x01", "is not a text file"),
])
def test_bad_records_are_one_line_usage_errors(tmp_path, content, fragment):
    path = write(tmp_path / "r.csv", content)
    with pytest.raises(UsageError) as excinfo:
        neuralscale.read_records(path)
    assert_one_line_usage_error(excinfo, fragment)


# --- importing the original's files -----------------------------------------------------

def test_import_from_the_reference_json(reference):
    model = ReferenceVgg()
    profile = neuralscale.import_profile(REFERENCE / "vgg_10_eff_c10.json", model.ids)
    assert profile == reference_profile(reference, model.ids)


@pytest.mark.parametrize("prefix", ["", "\ufeff\n "])
def test_import_maps_the_layers_of_the_file_to_the_groups_in_order(tmp_path, prefix):
    path = tmp_path / "p.json"
    path.write_text(prefix + json.dumps({"alpha": [1.0, 2.0], "beta": [0.1, 0.2]}), encoding="utf-8")
    profile = neuralscale.import_profile(path, ["x", "y"])
    assert profile.groups == [("x", 1.0, 0.1), ("y", 2.0, 0.2)]


def original_pickle(path, iterations=3, protocol=pickle.DEFAULT_PROTOCOL) -> Path:
    """A profile pickle as the original's fit_params.py writes it."""
    param = [[np.array([1.0 + k, 2.0 + k]), np.array([0.1 * (k + 1), 0.2])] for k in range(iterations)]
    return write(path, pickle.dumps({"param": param}, protocol=protocol))


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_import_from_an_original_pickle_takes_the_last_iteration_unless_told(tmp_path, protocol):
    path = original_pickle(tmp_path / "p.pk", protocol=protocol)
    last = neuralscale.import_profile(path, ["a", "b"])
    assert last.groups == [("a", 3.0, 0.1 * 3), ("b", 4.0, 0.2)]
    assert "iteration 2" in last.origin
    assert neuralscale.import_profile(path, ["a", "b"], iteration=0).groups == [("a", 1.0, 0.1), ("b", 2.0, 0.2)]


def test_import_reads_numpy_1_pickles(tmp_path):
    data = original_pickle(tmp_path / "p.pk", protocol=2).read_bytes()
    assert b"numpy._core." in data  # pickles from numpy 2 name numpy._core; numpy 1 wrote numpy.core
    path = write(tmp_path / "p1.pk", data.replace(b"numpy._core.", b"numpy.core."))
    assert neuralscale.import_profile(path, ["a", "b"]).groups == [("a", 3.0, 0.1 * 3), ("b", 4.0, 0.2)]


def test_import_reads_integer_arrays_and_numpy_scalars(tmp_path):
    # the original's uniform fallback stores its first row of widths (integers) as alpha
    param = [[np.array([64, 128]), [np.float64(0.0), np.float64(0.5)]]]
    path = write(tmp_path / "p.pk", pickle.dumps({"param": param}))
    assert neuralscale.import_profile(path, ["a", "b"]).groups == [("a", 64.0, 0.0), ("b", 128.0, 0.5)]


@pytest.mark.parametrize("make, fragment", [
    (lambda p: json.dumps({"alpha": [1.0, 2.0], "beta": [0.1, 0.2, 0.3]}), "alpha has 2 values, beta 3"),
    (lambda p: json.dumps({"alpha": [1.0, 2.0, 3.0], "beta": [0.1, 0.2, 0.3]}), "has 3 layers, but the model has 2"),
    (lambda p: json.dumps({"alpha": [1.0, 2.0]}), 'expected an object with "alpha" and "beta"'),
    (lambda p: json.dumps({"alpha": [1.0, "2"], "beta": [0.1, 0.2]}), "alpha must be a non-empty list of numbers"),
    (lambda p: json.dumps({"alpha": [1.0, -2.0], "beta": [0.1, 0.2]}), "group 'b': alpha must be a positive"),
    (lambda p: pickle.dumps({"params": []}), "is not a NeuralScale profile pickle"),
    (lambda p: pickle.dumps({"param": [[np.ones(2)]]}), "param[0] is not a pair"),
    (lambda p: pickle.dumps({"param": [[np.ones(2), np.ones((2, 1))]]}), "param[0]: beta must be"),
    (lambda p: pickle.dumps({"param": [[np.ones(2, dtype=complex), np.ones(2)]]}), "param[0]: alpha must be"),
    (lambda p: pickle.dumps({"param": [[np.ones(2), np.ones(2)]]})[:-9], "neither JSON nor a readable pickle"),
    (lambda p: b"", "neither JSON nor a readable pickle"),
])
def test_bad_files_to_import_are_one_line_usage_errors(tmp_path, make, fragment):
    path = write(tmp_path / "p.in", make(tmp_path))
    with pytest.raises(UsageError) as excinfo:
        neuralscale.import_profile(path, ["a", "b"])
    assert_one_line_usage_error(excinfo, str(path), fragment)


def test_an_iteration_must_exist_and_applies_only_to_pickles(tmp_path):
    with pytest.raises(UsageError) as excinfo:
        neuralscale.import_profile(original_pickle(tmp_path / "p.pk"), ["a", "b"], iteration=3)
    assert_one_line_usage_error(excinfo, "holds iterations 0 to 2; there is no iteration 3")
    path = write(tmp_path / "p.json", json.dumps({"alpha": [1.0, 2.0], "beta": [0.1, 0.2]}))
    with pytest.raises(UsageError) as excinfo:
        neuralscale.import_profile(path, ["a", "b"], iteration=0)
    assert_one_line_usage_error(excinfo, "applies only to NeuralScale pickles")


# --- pickles that ask for more than arrays are refused, not run ---------------------------

class Payload:
    """Pickles as a call of `func(*args)` (then `__setstate__(state)`), as an attacker's object would."""

    def __init__(self, func, *args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def malicious_pickles(marker: Path) -> dict:
    touch = f"touch {marker}"
    return {
        # written by hand: pickle itself spells os.system as posix.system on Linux
        "os.system": b"cos\nsystem\n(S'" + touch.encode() + b"'\ntR.",
        "posix.system": pickle.dumps(Payload(os.system, touch)),
        "builtins.eval": pickle.dumps(Payload(eval, f"open({str(marker)!r}, 'w')")),
        "subprocess.Popen": pickle.dumps(Payload(subprocess.Popen, ["touch", str(marker)])),
        # a __reduce__ payload inside a well-formed profile (builtins.open is io.open)
        "io.open": pickle.dumps({"param": [[np.ones(2), Payload(open, str(marker), "w")]]}),
    }


@pytest.mark.parametrize("name", ["os.system", "posix.system", "builtins.eval", "subprocess.Popen",
                                  "io.open"])
def test_a_pickle_asking_for_anything_else_is_refused_without_running_it(tmp_path, name):
    marker = tmp_path / "pwned"
    path = write(tmp_path / "evil.pk", malicious_pickles(marker)[name])
    with pytest.raises(UsageError) as excinfo:
        neuralscale.import_profile(path, ["a", "b"])
    assert_one_line_usage_error(excinfo, f"refusing to load {path}", f"asks for {name}")
    assert not marker.exists()


def test_the_payloads_are_real(tmp_path):
    """The control: an ordinary unpickler does create the marker file."""
    marker = tmp_path / "pwned"
    pickle.loads(malicious_pickles(marker)["io.open"])["param"][0][1].close()
    assert marker.exists()


def test_object_arrays_are_refused(tmp_path):
    path = write(tmp_path / "p.pk", pickle.dumps({"param": [[np.array([1.0, 2.0], dtype=object), np.ones(2)]]}))
    with pytest.raises(UsageError) as excinfo:
        neuralscale.import_profile(path, ["a", "b"])
    assert_one_line_usage_error(excinfo, "refusing to load", "only numeric dtypes")


def test_a_dtype_state_claiming_object_pointers_is_not_trusted(tmp_path):
    # numpy's own unpickling accepts these flags and then treats the floats as
    # PyObject pointers; the reader rebuilds the dtype from its name only.
    reconstruct, args, _ = np.zeros(2).__reduce__()
    dtype = Payload(np.dtype, "f8", False, True, state=(3, "<", None, None, None, -1, -1, 63))
    array = Payload(reconstruct, *args, state=(1, (2,), dtype, False, np.array([1.5, 2.5]).tobytes()))
    path = write(tmp_path / "p.pk", pickle.dumps({"param": [[array, np.ones(2)]]}, protocol=2))
    assert [g.alpha for g in neuralscale.import_profile(path, ["a", "b"]).groups] == [1.5, 2.5]
