"""Compiling an ONNX model into a Relax VM executable (model.so) with TVM,
for the TVM targets (`host`, `cortex-a72`), which differ only in the TVM
target they compile for and the compiler that links model.so.

The model is imported with its weights as constants, so model.so's `main`
takes only the graph inputs. Before the build, the operators are decomposed
for inference, legalized and fused (the "zero" pipeline: relax.build's
default CPU pipeline legalizes but does not fuse), and the schedules of the
tuning database are applied. With tuned schedules, convolution weights are
prepacked into the layouts those schedules chose, at compile time.

tvm is imported on first use: importing it takes seconds.
"""

import os
from dataclasses import dataclass

import onnx

from ncc.core.errors import CompileError, ToolchainError


@dataclass(frozen=True)
class TvmMachine:
    """What one TVM target compiles for."""

    spec: dict  # the TVM target, e.g. {"kind": "llvm", "mtriple": ..., "mcpu": ...}
    cc: str = "g++"  # links model.so (a cross compiler for another architecture)

    @property
    def triple(self) -> str:
        return self.spec["mtriple"]

    @property
    def cpu(self) -> str:
        return self.spec["mcpu"]


def check_frontend_support(model: onnx.ModelProto, target_name: str):
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    known = set(_get_convert_map()) | {"Constant", "If"}
    missing = sorted({node.op_type for node in model.graph.node if node.op_type not in known})
    if missing:
        raise CompileError(f"target {target_name} cannot run {', '.join(missing)} (no TVM ONNX converter)")


def import_onnx(model: onnx.ModelProto):
    from tvm.relax.frontend.onnx import from_onnx

    try:
        return from_onnx(model, keep_params_in_input=False)
    except Exception as err:  # the frontend raises bare TVMError/ValueError on what it cannot convert
        raise CompileError(f"TVM's ONNX importer failed: {_first_line(err)}") from err


def prepare(mod, target):
    """The module that tuning sees and that the database's workloads come from."""
    import tvm
    from tvm import relax

    from ncc.targets.tvm.integer_ops import integer_layers_pass
    from ncc.targets.tvm.strided_pointwise import strided_pointwise_pass

    with target:
        return tvm.transform.Sequential([
            integer_layers_pass(),  # before constant folding turns int8 weights into float ones
            strided_pointwise_pass(),
            relax.transform.DecomposeOpsForInference(),
            relax.transform.CanonicalizeBindings(),
            relax.get_pipeline("zero"),
            relax.transform.AttachAttrLayoutFreeBuffers(),  # weights may be prepacked by tuned schedules
        ])(mod)


def apply_schedules(mod, target, database):
    """Tuned schedules from `database`, ncc's default schedules for every
    kernel the database does not cover (ncc.targets.tvm.schedules), then
    weight layout rewrites folded into the constants. Returns the module and
    {kernel: rule name or None} of the kernels the default schedules took."""
    import tvm
    from tvm import relax

    from ncc.targets.tvm.schedules import default_schedule_pass, kernel_schedules

    with target, database:
        scheduled = tvm.transform.Sequential([
            relax.transform.MetaScheduleApplyDatabase(),
            default_schedule_pass(target),
        ])(mod)
        report = kernel_schedules(scheduled)
        return tvm.transform.Sequential([
            relax.transform.SplitLayoutRewritePreproc(),
            relax.transform.FoldConstant(),
            relax.transform.DeadCodeElimination(),  # the weight repack kernels, folded away, are not shipped
        ])(scheduled), report


def tvm_target(machine: TvmMachine):
    import tvm

    return tvm.target.Target(machine.spec)


def build(mod, machine: TvmMachine, so_path: str, selection) -> dict:
    """Compile the prepared `mod` with the selected records' schedules (and
    ncc's defaults for the rest) into the shared library `so_path`. Returns
    {kernel: "tuned" | "default:RULE" | "none"}: which schedule each kernel ran."""
    from tvm import relax

    from ncc.targets.tvm.vector_rounding import make_nearbyint_vectorizable

    make_nearbyint_vectorizable()
    target = tvm_target(machine)
    scheduled, defaults = apply_schedules(mod, target, selection.database)
    executable = relax.build(scheduled, target)
    export_library(executable, so_path, machine.cc)
    sources = {kernel: f"default:{rule}" if rule else "none" for kernel, rule in defaults.items()}
    return dict(sorted({**sources, **selection.sources}.items()))


def export_library(executable, so_path: str, cc: str):
    import shutil

    if not shutil.which(cc):
        raise ToolchainError(f"{cc} is not installed (needed to link model.so; on Debian: "
                             f"apt-get install {_debian_package(cc)})")
    executable.export_library(so_path, cc=cc)


def _debian_package(cc: str) -> str:
    return "g++" if cc == "g++" else f"g++-{cc.removesuffix('-g++')}"


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
