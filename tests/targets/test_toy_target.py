"""A new target is one module and one registry line: this module is the
module, the monkeypatched TARGETS the line. It declares its own option group,
adds a pass to a pipeline phase, ships a harness kind, and writes its files
through the bundle writer; the CLI, the API, the manifest and `ncc bench`
take it with no edit anywhere else."""

import json
import platform
from dataclasses import dataclass

import pytest
from cli_helpers import assert_one_line_error, invoke
from ncc import targets
from ncc.passes import EliminateDeadCode
from ncc.runtime_harness.harnesses import ONNXRUNTIME
from ncc.targets.base import EmitResult, Target, TargetOptions, option


@dataclass(frozen=True)
class ToyOptions(TargetOptions):
    applies_to = "the toy target"

    greeting: str | None = option(None, "--toy-greeting", metavar="TEXT", help="Written into note.txt.")


class ToyTarget(Target):
    name = "toy"
    description = "ONNX Runtime with a note"
    measurable_here = True
    options_type = ToyOptions
    harness = ONNXRUNTIME

    def passes(self, options):
        return {"target": [EliminateDeadCode()]}

    def emit(self, model, bundle, options):
        bundle.add_bytes("note.txt", f"{options.target_options.greeting or 'hello'}\n", "note", "a toy note")
        self.harness.install(bundle)
        return EmitResult(board_steps=["read note.txt"], info={"runtime": "onnxruntime"},
                          harness=self.harness.entry(model="model.onnx", arch=platform.machine()))


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setattr(targets, "TARGETS", [*targets.TARGETS, ToyTarget()])


def test_the_toy_target_compiles_with_its_own_option_and_benches(zoo_onnx, tmp_path):
    out = tmp_path / "toy"
    result = invoke("compile", zoo_onnx("vgg11", width_mult=0.125), "-o", out, "--target", "toy",
                    "--toy-greeting", "hi there")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"]["name"] == "toy" and manifest["options"]["greeting"] == "hi there"
    assert [p["name"] for p in manifest["passes"]][-2:] == ["fold-batchnorm", "eliminate-dead-code"]
    note = next(a for a in manifest["artifacts"] if a["path"] == "note.txt")
    assert (out / "note.txt").read_text() == "hi there\n" and note["bytes"] == 9 and len(note["sha256"]) == 64
    assert manifest["harness"]["kind"] == "onnxruntime-python"
    bench = invoke("bench", out, "--iterations", "100", "--warmup", "1", "--warmup-seconds", "0")
    assert bench.exit_code == 0, bench.output


def test_its_option_is_offered_and_refused_elsewhere(zoo_onnx, tmp_path):
    assert "--toy-greeting" in invoke("compile", "--help").output
    result = invoke("compile", zoo_onnx("vgg11", width_mult=0.125), "-o", tmp_path / "b", "--target", "onnxruntime",
                    "--toy-greeting", "hi")
    assert_one_line_error(result, 2, "--toy-greeting apply only to the toy target")
    assert not (tmp_path / "b").exists()


def test_the_api_takes_its_option_as_a_keyword(zoo_onnx, tmp_path):
    from ncc.compiler import compile

    bundle = compile(zoo_onnx("vgg11", width_mult=0.125), out=tmp_path / "api", target="toy", greeting="api")
    assert (tmp_path / "api" / "note.txt").read_text() == "api\n"
    assert bundle.manifest["options"]["greeting"] == "api"
