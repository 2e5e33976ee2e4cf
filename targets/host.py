"""host: this machine's CPU, running the model with ONNX Runtime."""

import os
import platform

import onnx

from ncc.compiler import numerics
from ncc.runtime_harness import harness_source
from ncc.targets.base import Artifact, EmitResult, Target
from ncc.targets.onnxruntime_support import check_cpu_support


class HostTarget(Target):
    name = "host"
    aliases = ("x86_64", "cpu")
    description = "this machine's CPU, with ONNX Runtime and a Python timing harness"

    def check_supported(self, model):
        check_cpu_support(model, self.name)
        numerics.session(model)  # ORT's own verdict on types and attributes

    def emit(self, model: onnx.ModelProto, bundle_dir: str, options) -> EmitResult:
        harness = os.path.join(bundle_dir, "harness")
        os.makedirs(harness)
        _write(os.path.join(harness, "ort_harness.py"), harness_source("ort_harness.py"))
        _write(os.path.join(harness, "run.sh"), harness_source("run_ort.sh"), executable=True)
        return EmitResult(
            artifacts=[Artifact("harness/ort_harness.py", "harness", "ONNX Runtime timing harness (Python)"),
                       Artifact("harness/run.sh", "script", "runs the harness on model.onnx")],
            board_steps=[],
            harness={"kind": "onnxruntime-python", "entry": "harness/ort_harness.py", "model": "model.onnx"},
            info={"runtime": "onnxruntime", "execution_provider": "CPUExecutionProvider",
                  "machine": platform.machine()})


def _write(path, data: bytes, executable=False):
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o755 if executable else 0o644)
