"""The ZCU104 DPU estimate of the study's three networks (CIFAR-10 forms,
seeded weights) at each width ratio, with widths as scaled and rounded to the
DPU's 16 channels (--round-to auto), next to the MAC-bound baseline: the same
MACs at every lane of the B4096 busy. The gap is the lanes a layer's channel
counts and row widths leave idle, plus the depthwise and pooling layers the
convolution engine does not run.

    .venv/bin/python bench/dpu_estimate.py [--ratios 0.25,0.5,0.75,1.0] [--calib-samples 8]

An analytical estimate (ncc.targets.dpu_estimate), not a measurement: the
board's figures come from the bundle's VART harness.
"""

import argparse
import json
import os
import tempfile

from ncc.compiler import zoo
from ncc.compiler.driver import CompileOptions, compile_model
from ncc.compiler.report import format_table
from ncc.targets import dpu_arch

ROUNDINGS = {"exact": 1, "round16": "auto"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratios", default="0.25,0.5,0.75,1.0")
    parser.add_argument("--calib-samples", type=int, default=8, help="random calibration input: scales, not cost")
    args = parser.parse_args()
    ratios = [float(r) for r in args.ratios.split(",")]
    arch = dpu_arch.ZCU104
    rows = []
    with tempfile.TemporaryDirectory(prefix="ncc-bench-dpu-") as work:
        for name in zoo.MODELS:
            source = os.path.join(work, f"{name}.onnx")
            zoo.export_onnx(zoo.build(name, "cifar10", seed=0), "cifar10", source)
            for ratio in ratios:
                for rounding, round_to in ROUNDINGS.items():
                    options = CompileOptions(target="zcu104", scale=("uniform", ratio), round_to=round_to,
                                             quantize="int8", calib_samples=args.calib_samples)
                    bundle = os.path.join(work, f"{name}-{ratio:g}-{rounding}")
                    compile_model(source, bundle, options)
                    rows.append([name, f"{ratio:g}", rounding, *_figures(bundle, arch)])
    print(f"{dpu_arch.TARGET} at {arch.clock_mhz} MHz, one core, {arch.macs_per_cycle} MACs/cycle; uniform "
          "scaling; 'MAC-bound' = MACs / (MACs per cycle x clock); utilisation = MAC-bound / estimate")
    print(format_table(rows, ["model", "ratio", "widths", "MMACs", "MAC-bound ms", "estimate ms", "utilisation",
                              "DPU subgraphs"], align="lllrrrrr"))


def _figures(bundle: str, arch) -> list[str]:
    with open(os.path.join(bundle, "dpu_report.json")) as handle:
        report = json.load(handle)
    estimate = report["estimate"]
    macs = estimate["macs"]
    bound_ms = macs / (arch.macs_per_cycle * arch.clock_mhz * 1e3)
    return [f"{macs / 1e6:.1f}", f"{bound_ms:.4f}", f"{estimate['latency_ms']:.4f}",
            f"{bound_ms / estimate['latency_ms']:.2f}", str(report["subgraphs"]["dpu"])]


if __name__ == "__main__":
    main()
