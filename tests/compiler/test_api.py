import json
import os

import pytest


def test_compile_returns_the_committed_bundle(tmp_path, zoo_onnx):
    from ncc.compiler import compile

    bundle = compile(zoo_onnx("vgg11"), out=tmp_path / "b", target="onnxruntime", scale="uniform:0.5")
    assert bundle.path == str(tmp_path / "b")
    with open(os.path.join(bundle.path, "manifest.json")) as f:
        assert json.load(f)["target"]["name"] == bundle.manifest["target"]["name"] == "onnxruntime"


def test_errors_are_typed_not_printed(tmp_path, capsys, zoo_onnx):
    from ncc.compiler import UsageError, compile

    with pytest.raises(UsageError) as raised:
        compile(zoo_onnx("vgg11"), out=tmp_path / "b", target="onnxruntime", scale="uniform:-1")
    assert raised.value.exit_code == 2
    assert capsys.readouterr() == ("", "")
    assert not (tmp_path / "b").exists()


def test_inspect_matches_the_cli_json(zoo_onnx):
    from ncc.compiler import inspect

    summary = inspect(zoo_onnx("vgg11"))
    assert summary["inputs"] and summary["ops"]


def test_compile_json_is_one_document_on_stdout(tmp_path, zoo_onnx):
    from cli_helpers import invoke

    result = invoke("compile", zoo_onnx("vgg11"), "-o", tmp_path / "b", "--target", "onnxruntime", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == "ncc-compile-summary/1"
    assert document["bundle"] == str(tmp_path / "b") and document["target"] == "onnxruntime"
    assert {a["path"] for a in document["artifacts"]} >= {"model.onnx"}
    assert document["model"]["after"]["params"] > 0


def test_bench_returns_the_results_and_raises_typed_failures(tmp_path, zoo_onnx):
    from ncc.compiler import BenchmarkFailed, UsageError, bench, compile

    bundle = compile(zoo_onnx("vgg11", width_mult=0.125), out=tmp_path / "b", target="onnxruntime")
    results = bench(bundle.path, iterations=100, warmup=1)
    assert results["format"] == "ncc-results" and len(results["times_ms"]) == 100

    with pytest.raises(BenchmarkFailed) as failed:
        bench(bundle.path, iterations=100, warmup=1, deadline_ms=1e-6, max_miss_rate=0)
    assert failed.value.exit_code == 4 and failed.value.results["deadline"]["passed"] is False

    with pytest.raises(UsageError):
        bench(bundle.path, iterations=-1)
    with pytest.raises(UsageError):
        bench(bundle.path, no_such_rule=1)


def test_unknown_compile_keyword_is_a_usage_error(tmp_path, zoo_onnx):
    from ncc.compiler import UsageError, compile

    with pytest.raises(UsageError, match="no_such_option"):
        compile(zoo_onnx("vgg11", width_mult=0.125), out=tmp_path / "b", no_such_option=1)
    assert not (tmp_path / "b").exists()
