"""The ZCU104 DPU estimate of the study's three networks (CIFAR-10 forms,
seeded weights) at each width ratio, with widths as scaled and rounded to the
DPU's 16 channels (--round-to auto), next to the MAC-bound baseline: the same
MACs at every lane of the B4096 busy. The gap is the lanes a layer's channel
counts and row widths leave idle, plus the depthwise and pooling layers the
convolution engine does not run. Given a NeuralScale profile for a model, its
NeuralScale widths are estimated too, and the table after the first gives
NeuralScale's speed relative to uniform scaling at equal parameters (the
paper's 41% / 72% / 96% are measured on boards).

    .venv/bin/python bench/dpu_estimate.py [--ratios 0.25,0.5,0.75,1.0] [--calib-samples 8]
                                           [--profile vgg11=docs/study/sweep-host/profiles/vgg11.json]

An analytical estimate (ncc.targets.zcu104.dpu_estimate), not a measurement: the
board's figures come from the bundle's VART harness.
"""

import argparse
import json
import os
import tempfile

from ncc.study import zoo
from ncc.compiler.driver import CompileOptions, compile_model
from ncc.compiler.report import format_table
from ncc.targets.zcu104 import dpu_arch

ROUNDINGS = {"exact": 1, "round16": "auto"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratios", default="0.25,0.5,0.75,1.0")
    parser.add_argument("--calib-samples", type=int, default=8, help="random calibration input: scales, not cost")
    parser.add_argument("--profile", action="append", default=[], metavar="MODEL=P.json",
                        help="an ncc NeuralScale profile: MODEL's NeuralScale widths are estimated too")
    args = parser.parse_args()
    ratios = [float(r) for r in args.ratios.split(",")]
    profiles = dict(spec.split("=", 1) for spec in args.profile)
    arch = dpu_arch.ZCU104
    figures = {}  # (model, method, ratio, rounding) -> figures
    with tempfile.TemporaryDirectory(prefix="ncc-bench-dpu-") as work:
        for name in zoo.MODELS:
            source = os.path.join(work, f"{name}.onnx")
            zoo.export_onnx(zoo.build(name, "cifar10", seed=0), "cifar10", source)
            methods = {"uniform": None, **({"neuralscale": os.path.abspath(profiles[name])} if name in profiles
                                           else {})}
            for (method, profile), ratio, (rounding, round_to) in (
                    (m, r, w) for m in methods.items() for r in ratios for w in ROUNDINGS.items()):
                options = CompileOptions(target="zcu104", scale=(method, ratio), profile=profile,
                                         round_to=round_to, quantize="int8", calib_samples=args.calib_samples)
                bundle = os.path.join(work, f"{name}-{method}-{ratio:g}-{rounding}")
                compile_model(source, bundle, options)
                figures[name, method, ratio, rounding] = _figures(bundle, arch)
    print(f"{dpu_arch.TARGET} at {arch.clock_mhz} MHz, one core, {arch.macs_per_cycle} MACs/cycle; "
          "'MAC-bound' = MACs / (MACs per cycle x clock); utilisation = MAC-bound / estimate")
    rows = [[name, method, f"{ratio:g}", rounding, f"{f['params'] / 1e6:.2f}", f"{f['macs'] / 1e6:.1f}",
             f"{f['bound_ms']:.4f}", f"{f['ms']:.4f}", f"{f['bound_ms'] / f['ms']:.2f}", str(f["dpu_subgraphs"])]
            for (name, method, ratio, rounding), f in figures.items()]
    print(format_table(rows, ["model", "method", "ratio", "widths", "Mparams", "MMACs", "MAC-bound ms",
                              "estimate ms", "utilisation", "DPU subgraphs"], align="llllrrrrrr"))
    relative = [[name, f"{ratio:g}", rounding, f"{figures[name, 'uniform', ratio, rounding]['ms'] / f['ms']:.0%}",
                 f"{f['macs'] / figures[name, 'uniform', ratio, rounding]['macs']:.2f}x"]
                for (name, method, ratio, rounding), f in figures.items() if method == "neuralscale"]
    if relative:
        print("\nNeuralScale speed relative to uniform at the same ratio (uniform estimate / NeuralScale estimate)")
        print(format_table(relative, ["model", "ratio", "widths", "relative speed", "MACs vs uniform"],
                           align="lllrr"))


def _figures(bundle: str, arch) -> dict:
    with open(os.path.join(bundle, "dpu_report.json")) as handle:
        report = json.load(handle)
    with open(os.path.join(bundle, "manifest.json")) as handle:
        params = json.load(handle)["model"]["after"]["params"]
    estimate = report["estimate"]
    return {"params": params, "macs": estimate["macs"], "ms": estimate["latency_ms"],
            "bound_ms": estimate["macs"] / (arch.macs_per_cycle * arch.clock_mhz * 1e3),
            "dpu_subgraphs": report["subgraphs"]["dpu"]}


if __name__ == "__main__":
    main()
