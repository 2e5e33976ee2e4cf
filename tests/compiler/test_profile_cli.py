"""`ncc profile import` and `ncc profile fit` on the zoo's VGG-11."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc.passes import neuralscale

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "neuralscale"
VGG_JSON = REFERENCE / "vgg_10_eff_c10.json"
VGG_RECORDS = REFERENCE / "vgg_10_eff_c10_records_iter14.csv"




@pytest.fixture(scope="module")
def reference():
    if not REFERENCE.is_dir():
        pytest.skip(f"NeuralScale reference data not found at {REFERENCE}")
    return json.loads(VGG_JSON.read_text())


@pytest.fixture(scope="module")
def vgg(zoo_onnx):
    return zoo_onnx("vgg11")


@pytest.fixture(scope="module")
def vgg_ids(vgg):
    from ncc.compiler.loader import load_model
    from ncc.compiler.pipeline import channel_groups

    return [g.id for g in channel_groups(load_model(vgg))[1].scalable]


def written(path):
    return neuralscale.load_profile(path).groups


def test_import_json_writes_the_reference_profile_for_the_models_groups(tmp_path, reference, vgg, vgg_ids):
    out = tmp_path / "p.json"
    result = invoke("profile", "import", VGG_JSON, "--model", vgg, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {out}: 8 groups ({VGG_JSON})"
    assert written(out) == list(zip(vgg_ids, reference["alpha"], reference["beta"]))
    assert os.listdir(tmp_path) == ["p.json"]


def test_import_pickle_takes_the_last_iteration_or_the_one_asked_for(tmp_path, vgg, vgg_ids):
    alphas = [np.linspace(0.5, 1.0, 8) * (k + 1) for k in range(3)]
    param = [[alpha, np.full(8, 0.4)] for alpha in alphas]
    source = tmp_path / "vgg.pk"
    source.write_bytes(pickle.dumps({"param": param}))

    result = invoke("profile", "import", source, "--model", vgg, "-o", tmp_path / "last.json")
    assert result.exit_code == 0, result.output
    assert "8 groups" in result.stdout and "iteration 2 of 0..2" in result.stdout
    assert [g.alpha for g in written(tmp_path / "last.json")] == alphas[2].tolist()

    result = invoke("profile", "import", source, "--model", vgg, "-o", tmp_path / "first.json", "--iteration", 0)
    assert result.exit_code == 0, result.output
    assert "iteration 0 of 0..2" in result.stdout
    assert [g.alpha for g in written(tmp_path / "first.json")] == alphas[0].tolist()
    assert [g.id for g in written(tmp_path / "first.json")] == vgg_ids


def test_fit_reproduces_the_reference_profile(tmp_path, reference, vgg):
    out = tmp_path / "fit.json"
    result = invoke("profile", "fit", VGG_RECORDS, "--model", vgg, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {out}: 8 groups (least-squares fit over 237 rows)"
    groups = written(out)
    np.testing.assert_allclose([g.alpha for g in groups], reference["alpha"], rtol=1e-6)
    np.testing.assert_allclose([g.beta for g in groups], reference["beta"], rtol=1e-6)


def test_fit_of_five_rows_falls_back_to_uniform(tmp_path, vgg):
    records = tmp_path / "r.csv"
    records.write_text("".join(f"{64 - i},128,256,256,512,512,512,{512 - i}\n" for i in range(5)))
    result = invoke("profile", "fit", records, "--model", vgg, "-o", tmp_path / "p.json")
    assert result.exit_code == 0, result.output
    assert "uniform fallback" in result.stdout
    assert [(g.alpha, g.beta) for g in written(tmp_path / "p.json")] == \
        [(64.0, 0.0), (128.0, 0.0), (256.0, 0.0), (256.0, 0.0), (512.0, 0.0), (512.0, 0.0), (512.0, 0.0),
         (512.0, 0.0)]


def test_an_existing_output_is_replaced_only_with_force(tmp_path, vgg, reference):
    out = tmp_path / "p.json"
    out.write_text("keep me")
    assert_one_line_error(invoke("profile", "import", VGG_JSON, "--model", vgg, "-o", out), 2,
                          "already exists (use --force")
    assert out.read_text() == "keep me"
    result = invoke("profile", "import", VGG_JSON, "--model", vgg, "-o", out, "--force")
    assert result.exit_code == 0, result.output
    assert len(written(out)) == 8
    assert os.listdir(tmp_path) == ["p.json"]


def bad_inputs(tmp_path, vgg):
    """(arguments, fragment of the error) for one usage error each."""
    evil, marker = tmp_path / "evil.pk", tmp_path / "pwned"
    evil.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,3,4,5,6,7,8\n1,2,3\n")
    seven = tmp_path / "seven.csv"
    seven.write_text("1,2,3,4,5,6,7\n")
    out = tmp_path / "p.json"
    return [
        (["import", REFERENCE / "resnet18_eff_c10.json", "--model", vgg, "-o", out],
         "has 17 layers, but the model has 8 scalable channel groups"),
        (["import", evil, "--model", vgg, "-o", out], "asks for os.system"),
        (["import", tmp_path / "absent.pk", "--model", vgg, "-o", out], "no such file"),
        (["import", VGG_JSON, "--model", vgg, "-o", out, "--iteration", 1], "applies only to NeuralScale pickles"),
        (["import", VGG_JSON, "--model", vgg, "-o", out, "--iteration", -1], "--iteration"),
        (["import", VGG_JSON, "--model", tmp_path / "absent.onnx", "-o", out], "no such file"),
        (["import", VGG_JSON, "--model", vgg, "-o", tmp_path / "no" / "p.json"], "does not exist"),
        (["import", VGG_JSON, "--model", vgg, "-o", tmp_path], "is a directory"),
        (["import", VGG_JSON, "--model", vgg], "Missing option '-o'"),
        (["import", VGG_JSON, "--model", vgg, "-o", out, "--input-shape", "input=1x3x32x32"], "bad --input-shape"),
        (["fit", ragged, "--model", vgg, "-o", out], "ragged.csv:2: 3 widths, but line 1 has 8"),
        (["fit", seven, "--model", vgg, "-o", out], "7 widths per row, but the model has 8"),
    ]


def test_usage_errors_exit_2_with_one_line_and_write_nothing(tmp_path, vgg, reference):
    for args, fragment in bad_inputs(tmp_path, vgg):
        before = sorted(os.listdir(tmp_path))
        assert_one_line_error(invoke("profile", *args), 2, fragment)
        assert sorted(os.listdir(tmp_path)) == before, args
    assert not (tmp_path / "pwned").exists()


def test_debug_shows_the_traceback(tmp_path, vgg):
    result = invoke("profile", "fit", tmp_path / "absent.csv", "--model", vgg, "-o", tmp_path / "p.json", "--debug")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and result.stderr.strip().splitlines()[-1].startswith("ncc: error:")
