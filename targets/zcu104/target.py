"""zcu104: the Vitis AI reference design on the ZCU104 (two DPUCZDX8G B4096
cores at 300 MHz, DPUCZDX8G_ISA1_B4096, Vitis AI 2.5).

The DPU compiler vai_c_xir ships only in the Vitis AI docker image, so ncc
emits what Vitis AI's quantizer would hand it, and compiles it only where
vai_c_xir is on PATH. Bundle:
    model.onnx          the dpu-flavour int8 model (power-of-two scales)
    model_int.xmodel    the quantized XIR graph before compilation
                        (ncc.targets.zcu104.xir_lowering, xmodel_writer)
    arch.json           the DPU configuration vai_c_xir compiles for
    compile.sh          vai_c_xir -x model_int.xmodel -a arch.json -o out -n model
    dpu_report.json     each op on DPU or CPU and why, the subgraphs, and an
                        analytical latency estimate with per-layer utilisation
    harness/            the VART C++ timing harness (ncc.runtime_harness.harnesses.VART)
    out/model.xmodel    only where vai_c_xir ran here
"""

import json
import os
import shutil

import onnx

from ncc.core.errors import CompileError, ToolchainError, UsageError
from ncc.core.interrupts import run_tool
from ncc.passes import BatchNormToDepthwise, HardActivations
from ncc.runtime_harness.harnesses import VART
from ncc.targets.base import EmitResult, Target
from ncc.targets.zcu104 import dpu_arch, dpu_estimate, dpu_partition
from ncc.targets.zcu104.xir_lowering import lower
from ncc.targets.zcu104.xmodel_writer import read_xmodel, serialize

XMODEL = "model_int.xmodel"
ARCH = "arch.json"
REPORT = "dpu_report.json"
COMPILED_NAME = "model"  # vai_c_xir -n: out/model.xmodel
COMPILED_DIR = "out"
VAI_C_XIR = "vai_c_xir"

COMPILE_SH = """#!/usr/bin/env bash
# Compiles model_int.xmodel for the ZCU104's DPU (@TARGET@) with the Vitis AI
# @VITIS_AI@ compiler: run it inside the Vitis AI docker image
# (conda activate vitis-ai-pytorch), then copy OUT_DIR to the board.
# usage: compile.sh [OUT_DIR]   (default: the bundle's out/)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/@OUT@}"
if ! command -v @VAI_C_XIR@ >/dev/null 2>&1; then
    echo "compile.sh: @VAI_C_XIR@ not found; run this inside the Vitis AI @VITIS_AI@ docker image" >&2
    exit 3
fi
mkdir -p "$out"
@VAI_C_XIR@ -x "$here/@XMODEL@" -a "$here/@ARCH@" -o "$out" -n "@NAME@"
echo "compiled: $out/@NAME@.xmodel"
"""


def compile_sh() -> str:
    text = COMPILE_SH
    for key, value in (("@TARGET@", dpu_arch.TARGET), ("@VITIS_AI@", dpu_arch.VITIS_AI), ("@OUT@", COMPILED_DIR),
                       ("@VAI_C_XIR@", VAI_C_XIR), ("@XMODEL@", XMODEL), ("@ARCH@", ARCH),
                       ("@NAME@", COMPILED_NAME)):
        text = text.replace(key, value)
    return text


def _require_int8(model: onnx.ModelProto) -> None:
    if not any(node.op_type == "QuantizeLinear" for node in model.graph.node):
        raise UsageError("target zcu104 runs int8 only: compile with --quantize int8")


def vai_c_xir_argv(bundle_dir: str) -> list[str]:
    return [VAI_C_XIR, "-x", os.path.join(bundle_dir, XMODEL), "-a", os.path.join(bundle_dir, ARCH),
            "-o", os.path.join(bundle_dir, COMPILED_DIR), "-n", COMPILED_NAME]


def compiled_subgraphs(path: str) -> dict:
    """{device: count} of the compiled graph's top-level subgraphs (DPU, CPU, USER)."""
    with open(path, "rb") as handle:
        graph = read_xmodel(handle.read())
    counts = {}
    for child in graph.subg_root.subg_child:
        device = child.subg_attr["device"].string_value if "device" in child.subg_attr else "unknown"
        counts[device] = counts.get(device, 0) + 1
    return dict(sorted(counts.items()))


def run_vai_c_xir(bundle_dir: str) -> dict | None:
    """Where vai_c_xir is on PATH, compile as compile.sh would; None where it is not."""
    if shutil.which(VAI_C_XIR) is None:
        return None
    argv = vai_c_xir_argv(bundle_dir)
    os.makedirs(os.path.join(bundle_dir, COMPILED_DIR), exist_ok=True)
    try:
        result = run_tool(argv)
    except OSError as err:
        raise ToolchainError(f"cannot run {VAI_C_XIR}: {err.strerror}") from None
    compiled = os.path.join(bundle_dir, COMPILED_DIR, f"{COMPILED_NAME}.xmodel")
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise CompileError(f"{VAI_C_XIR} failed (exit {result.returncode})"
                           + (f": {lines[-1]}" if lines else ""))
    if not os.path.isfile(compiled):
        raise CompileError(f"{VAI_C_XIR} exited 0 but wrote no {COMPILED_DIR}/{COMPILED_NAME}.xmodel")
    try:
        counts = compiled_subgraphs(compiled)
    except Exception as err:  # noqa: BLE001 - whatever the parser says, the file is not an xmodel
        raise CompileError(f"{VAI_C_XIR} wrote {COMPILED_DIR}/{COMPILED_NAME}.xmodel, which is not an xmodel "
                           f"({type(err).__name__})") from None
    return {"argv": [os.path.basename(argv[0]), *[os.path.relpath(a, bundle_dir) if os.path.isabs(a) else a
                                                  for a in argv[1:]]],
            "subgraphs": counts}


class Zcu104Target(Target):
    name = "zcu104"
    aliases = ("zcu104-dpu", "dpuczdx8g")
    description = ("ZCU104 DPU (DPUCZDX8G_ISA1_B4096, 2 cores at 300 MHz, Vitis AI 2.5); "
                   "model_int.xmodel compiled by compile.sh with vai_c_xir")
    # 16: the B4096 array takes 16 input and 16 output channels per cycle
    channel_multiple = dpu_arch.ZCU104.output_channel_parallel
    quant_flavor = "dpu"
    measurable_here = False
    harness = VART

    def passes(self, options):
        # XIR has no batchnorm op the DPU runs, its depthwise engine does; hard activations as its ALU has them
        return {"fold": [BatchNormToDepthwise(), HardActivations()]}

    def check_supported(self, model):
        _require_int8(model)
        lower(model)  # raises CompileError naming what XIR cannot express

    def emit(self, model: onnx.ModelProto, bundle, options) -> EmitResult:
        _require_int8(model)
        graph = lower(model, COMPILED_NAME)
        placements = dpu_partition.partition(graph)
        report = {"target": dpu_arch.TARGET, **dpu_partition.report(graph, placements),
                  "estimate": dpu_estimate.estimate(graph, placements)}
        bundle.add_bytes(XMODEL, serialize(graph), "xmodel",
                         "quantized XIR graph before compilation (what vai_c_xir compiles)")
        bundle.add_bytes(ARCH, dpu_arch.ZCU104.arch_json(), "config",
                         f"DPU configuration for vai_c_xir ({dpu_arch.TARGET})")
        bundle.add_bytes("compile.sh", compile_sh(), "script",
                         "compiles model_int.xmodel with vai_c_xir (Vitis AI docker image)", executable=True)
        bundle.add_bytes(REPORT, json.dumps(report, indent=1, sort_keys=True) + "\n", "report",
                         "DPU/CPU placement with reasons, subgraphs, latency estimate")
        self.harness.install(bundle)
        compiled = run_vai_c_xir(bundle.staging)
        if compiled:
            bundle.add_existing(f"{COMPILED_DIR}/{COMPILED_NAME}.xmodel", "xmodel",
                                "compiled for the DPU by vai_c_xir here")
        estimate = report["estimate"]
        return EmitResult(
            board_steps=[
                ("compiled here by vai_c_xir into out/model.xmodel" if compiled else
                 "compile with vai_c_xir inside the Vitis AI 2.5 docker image: BUNDLE/compile.sh "
                 "(writes BUNDLE/out/model.xmodel; vai_c_xir is not on this machine)"),
                "copy the bundle folder to the ZCU104 (Vitis AI 2.5 board image, DPU TRD with two B4096 cores)",
                "time it there: BUNDLE/harness/run.sh --json results.json (builds the VART harness on first use "
                "and runs it on out/model.xmodel); then here: ncc bench --import results.json"],
            harness=self.harness.entry(compile="compile.sh", xmodel=f"{COMPILED_DIR}/{COMPILED_NAME}.xmodel"),
            info={"dpu": dpu_arch.TARGET, "board": dpu_arch.BOARD, "vitis_ai": dpu_arch.VITIS_AI,
                  "cores": dpu_arch.ZCU104.cores, "clock_mhz": dpu_arch.ZCU104.clock_mhz,
                  "xmodel_compiled": bool(compiled), **({"vai_c_xir": compiled} if compiled else {}),
                  "predicted_subgraphs": report["subgraphs"],
                  "dpu_ops": report["dpu_ops"], "cpu_ops": report["cpu_ops"],
                  "estimated_dpu_latency_ms": round(estimate["latency_ms"], 6),
                  "estimated_utilisation": round(estimate["utilisation"], 4) if estimate["utilisation"] else None,
                  "estimate_note": "compute-only estimate from the B4096 engines, layers in sequence "
                                   "(dpu_report.json)"})
