"""onnxruntime: this machine's CPU, running the model with ONNX Runtime, the
reference backend every other target is checked against."""

import platform

import onnx

from ncc.compiler import numerics
from ncc.runtime_harness import ORT_HARNESS_FILES, install
from ncc.targets.base import Artifact, EmitResult, Target
from ncc.targets.onnxruntime_support import check_cpu_support


class OnnxRuntimeTarget(Target):
    name = "onnxruntime"
    aliases = ("ort",)
    description = "this machine's CPU, with ONNX Runtime and a Python timing harness"
    measurable_here = True

    def check_supported(self, model):
        check_cpu_support(model, self.name)
        numerics.session(model)  # ORT's own verdict on types and attributes

    def emit(self, model: onnx.ModelProto, bundle_dir: str, options) -> EmitResult:
        install(ORT_HARNESS_FILES, bundle_dir)
        return EmitResult(
            artifacts=[Artifact(f.path, f.kind, f.description) for f in ORT_HARNESS_FILES],
            board_steps=[],
            harness={"kind": "onnxruntime-python", "entry": "harness/ort_harness.py", "model": "model.onnx",
                     "arch": platform.machine()},
            info={"runtime": "onnxruntime", "execution_provider": "CPUExecutionProvider",
                  "machine": platform.machine()})
