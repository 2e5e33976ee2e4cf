"""One compile, from an ONNX file to a finished bundle. The CLI's `compile`
calls this; so may any Python program."""

import math
import os
from dataclasses import asdict, dataclass, field, fields, replace

import onnx

from ncc.compiler import __version__
from ncc.core.bundle import MODEL, BundleWriter
from ncc.core.datasets import RANDOM, load_dataset
from ncc.core.errors import UsageError
from ncc.core.interrupts import interrupts_as_exceptions
from ncc.compiler.loader import default_opset, input_shape, load_model
from ncc.compiler.manifest import build_manifest
from ncc.core.files import sha256_file
from ncc.compiler.pass_manager import PassManager
from ncc.compiler.pipeline import build_pipeline
from ncc.passes.analysis.cost import model_cost
from ncc.passes.base import PassContext
from ncc.targets import get_target, option_names, option_types
from ncc.targets.base import TargetOptions, refuse_foreign


@dataclass
class CompileOptions:
    target: str = "host"
    input_shapes: dict = field(default_factory=dict)
    scale: tuple | None = None  # (method, ratio), e.g. ("uniform", 0.5)
    profile: str | None = None  # NeuralScale profile JSON, for neuralscale scaling
    importance: str = "l1"
    round_to: int | str = 1  # channel multiple, or "auto" for the target's
    verify: bool = False
    dump_after: tuple = ()
    force: bool = False
    seed: int = 0
    timing: bool = True  # pass times in the manifest; off for byte-identical bundles
    quantize: str | None = None  # "int8", or None to keep the model float
    calib: str | None = None  # calibration data (see ncc.core.datasets); None: random input
    calib_method: str = "minmax"
    calib_samples: int | None = 256  # None: every sample
    eval_data: str | None = None  # held-out data to measure int8 against fp32
    eval_samples: int | None = None
    quant_flavor: str = "auto"  # auto: the target's
    target_options: TargetOptions | None = None  # the target's own options (its options_type); None: defaults

    @classmethod
    def create(cls, **keywords) -> "CompileOptions":
        """From keywords naming fields of CompileOptions or of the target's
        options (e.g. tune_trials=, fp16=), as the CLI and the API take them;
        options of another target's group are a UsageError."""
        names = {spec.name for spec in fields(cls)}
        generic = {k: v for k, v in keywords.items() if k in names}
        rest = {k: v for k, v in keywords.items() if k not in names}
        target = get_target(generic.get("target", cls.target))
        unknown = sorted(set(rest) - option_names())
        if unknown:
            raise UsageError(f"compile: unexpected keyword argument{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(unknown)}")
        refuse_foreign(target, rest, option_types())
        if generic.get("target_options") is None:
            generic["target_options"] = target.options_type.build(rest)
        return cls(**generic)

    def for_manifest(self) -> dict:
        recorded = asdict(self)
        for transient in ("force", "timing", "target_options"):
            recorded.pop(transient)
        if self.target_options is not None:
            recorded.update(self.target_options.for_manifest())
        recorded["input_shapes"] = {k: list(v) for k, v in sorted(self.input_shapes.items())}
        recorded["dump_after"] = sorted(self.dump_after)
        recorded["scale"] = f"{self.scale[0]}:{self.scale[1]:g}" if self.scale else None
        if self.quantize:
            recorded["calib"] = self.calib or RANDOM
        for data in ("calib", "eval_data"):
            if recorded[data]:
                recorded[data] = os.path.basename(os.path.normpath(recorded[data]))
        if self.profile:
            recorded["profile"] = {"file": os.path.basename(self.profile), "sha256": sha256_file(self.profile)}
        return recorded


@dataclass
class Bundle:
    path: str
    manifest: dict


def compile_model(model_path: str, out_dir: str, options: CompileOptions | None = None) -> Bundle:
    options = options or CompileOptions()
    target = get_target(options.target)
    if options.profile and options.scale and options.scale[0] == "neuralscale" and not os.path.isfile(options.profile):
        raise UsageError(f"no such file: {options.profile} (--profile)")
    if options.target_options is None:
        options = replace(options, target_options=target.options_type())
    elif not isinstance(options.target_options, target.options_type):
        raise UsageError(f"target {target.name} takes {target.options_type.__name__}, "
                         f"not {type(options.target_options).__name__}")
    writer = BundleWriter(out_dir, force=options.force, protect=_inputs(model_path, options))
    model = load_model(model_path, options.input_shapes)
    quant_data = _quantization_data(options, model)
    source = {"file": os.path.basename(model_path), "sha256": sha256_file(model_path),
              "opset": default_opset(model), "converted_from_opset": _converted_from(model)}
    cost_before = model_cost(model).to_dict()
    with interrupts_as_exceptions(), writer:
        manager = PassManager(build_pipeline(options, target, quant_data), verify=options.verify,
                              dump_after=tuple(options.dump_after), dump_dir=writer.path("dumps"))
        compiled = manager.run(model, PassContext(seed=options.seed, target=target.name))
        _stamp(compiled)
        target.check_supported(compiled)
        writer.add_model(compiled, MODEL)
        emitted = target.emit(compiled, writer, options)
        _add_dumps(manager.records, writer)
        artifacts = [artifact.to_dict() for artifact in writer.artifacts]
        manifest = build_manifest(
            source=source, options=options.for_manifest(), target=target,
            records=manager.records, cost_before=cost_before, cost_after=model_cost(compiled).to_dict(),
            emitted=emitted, artifacts=artifacts, timing=options.timing)
        writer.commit(manifest)
    return Bundle(writer.out_dir, manifest)


def _inputs(model_path: str, options) -> list:
    """What the compile reads, which no --force may delete."""
    paths = [model_path, options.profile, options.calib, options.eval_data]
    if options.target_options is not None:
        paths += options.target_options.dependencies()
    return [path for path in paths if path and os.path.exists(path)]


def _quantization_data(options, model):
    """(calibration, evaluation or None) datasets, read before any pass runs so
    that bad data fails fast."""
    if not options.quantize:
        return None
    if len(model.graph.input) != 1:
        raise UsageError(f"--quantize needs a model with one input; this one has {len(model.graph.input)}")
    shape = input_shape(model)
    classes = math.prod(d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim[1:])
    calibration = load_dataset(options.calib or RANDOM, shape, options.calib_samples, options.seed, split="train")
    evaluation = None
    if options.eval_data:
        evaluation = load_dataset(options.eval_data, shape, options.eval_samples, options.seed, split="test")
        evaluation.require_labels_below(classes)
    return calibration, evaluation


def _converted_from(model):
    for prop in model.metadata_props:
        if prop.key == "ncc.converted_from_opset":
            return int(prop.value)
    return None


def _stamp(model: onnx.ModelProto):
    model.producer_name, model.producer_version = "ncc", __version__
    del model.graph.value_info[:]  # inferred shapes are not part of the contract


def _add_dumps(records, writer):
    for record in records:
        if record.dump:
            record.dump = os.path.relpath(record.dump, writer.staging)
            writer.add_existing(record.dump, "dump", f"graph after {record.name}")
