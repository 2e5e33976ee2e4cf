"""onnxruntime: this machine's CPU, running the model with ONNX Runtime, the
reference backend every other target is checked against."""

import platform

import onnx

from ncc.core import numerics
from ncc.runtime_harness.harnesses import ONNXRUNTIME
from ncc.targets.base import EmitResult, Target
from ncc.targets.onnxruntime_support import check_cpu_support


class OnnxRuntimeTarget(Target):
    name = "onnxruntime"
    aliases = ("ort",)
    description = "this machine's CPU, with ONNX Runtime and a Python timing harness"
    measurable_here = True
    harness = ONNXRUNTIME

    def check_supported(self, model):
        check_cpu_support(model, self.name)
        numerics.session(model)  # ORT's own verdict on types and attributes

    def emit(self, model: onnx.ModelProto, bundle, options) -> EmitResult:
        self.harness.install(bundle)
        return EmitResult(
            board_steps=[],
            harness=self.harness.entry(model="model.onnx", arch=platform.machine()),
            info={"runtime": "onnxruntime", "execution_provider": "CPUExecutionProvider",
                  "machine": platform.machine()})
