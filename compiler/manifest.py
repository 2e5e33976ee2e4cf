"""The bundle's manifest.json: what went in, what ran, what came out, and what
the board must still do."""

import platform
from importlib import metadata

from ncc.compiler import __version__
from ncc.core.bundle import MANIFEST_FORMAT

DEPENDENCIES = ("onnx", "onnx-graphsurgeon", "onnxruntime", "numpy", "click")


def versions() -> dict:
    found = {"ncc": __version__, "python": platform.python_version()}
    for name in DEPENDENCIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def build_manifest(*, source, options, target, records, cost_before, cost_after, emitted,
                   artifacts, timing=True) -> dict:
    passes = [r.to_dict(timing=timing) for r in records]
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "versions": versions(),
        "input": source,
        "target": {"name": target.name, "description": target.description, **emitted.info},
        "options": options,
        "passes": passes,
        "model": {"before": cost_before, "after": cost_after},
        "artifacts": artifacts,
        "harness": emitted.harness,
        "board_steps": emitted.board_steps,
    }
    if timing:
        manifest["timing"] = {"passes_s": round(sum(r.time_s for r in records), 6)}
    return manifest
