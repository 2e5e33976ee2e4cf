"""`ncc compile --depfile FILE`: a Make/Ninja depfile naming every input of a bundle.

The rule's target is the bundle's manifest.json (the file ncc writes last); its
prerequisites are the model, the external-data files it references, the
NeuralScale profile, the calibration and evaluation data and the tuning
database (for a folder: every file in it, sorted). Spaces are escaped as `\\ `
and `$` as `$$`.
"""

import os

import onnx
from onnx import external_data_helper

from ncc.core.files import write_atomically


def dependencies(model_path: str, options) -> list:
    """Absolute paths of every file the compile read, in a stable order."""
    deps = [model_path] + _external_data(model_path)
    if options.profile:
        deps.append(options.profile)
    if options.quantize:
        for data in (options.calib, options.eval_data):
            deps += _files(data)
    for dependency in options.target_options.dependencies() if options.target_options else ():
        deps += _files(dependency)
    seen = {}
    for path in deps:
        seen.setdefault(os.path.abspath(path), None)
    return list(seen)


def write(depfile: str, bundle_dir: str, model_path: str, options) -> None:
    target = _escape(os.path.abspath(os.path.join(bundle_dir, "manifest.json")))
    write_atomically(depfile, f"{target}: " + " \\\n  ".join(map(_escape, dependencies(model_path, options))) + "\n")


def _external_data(model_path: str) -> list:
    model = onnx.load(model_path, load_external_data=False)
    base = os.path.dirname(os.path.abspath(model_path))
    locations = {external_data_helper.ExternalDataInfo(t).location
                 for t in external_data_helper._get_all_tensors(model)
                 if external_data_helper.uses_external_data(t)}
    return [os.path.join(base, location) for location in sorted(locations)]


def _files(path) -> list:
    if not path or not os.path.exists(path):
        return []
    if os.path.isdir(path):
        return sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
    return [path]


def _escape(path: str) -> str:
    return path.replace("$", "$$").replace(" ", "\\ ").replace("#", "\\#")
