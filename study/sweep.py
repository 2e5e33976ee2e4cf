"""The study as one command: every configuration of a grid (model x scaling
method x ratio x precision) compiled for one target and benchmarked on this
machine, resumably.

A study folder holds
  models/NAME.onnx     the zoo models swept (given ONNX files are read where they are)
  profiles/NAME.json   NeuralScale profiles imported into ncc's format
  records/CONFIG.json  one record per configuration: its settings, its key, what happened, its figures
  bundles/CONFIG/      the compiled bundles, with keep_bundles
and the report files that ncc.study.report writes from the records.
A record is reused when its key (everything that decides the measurement)
matches; any other configuration runs (again), so an interrupted sweep
resumes where it stopped and a changed option re-measures what it changes.
"""

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace

from ncc.compiler import __version__
from ncc.core.errors import NccError, UsageError
from ncc.core.files import write_atomically
from ncc.core.files import sha256_file
from ncc.runtime_harness.rt_rules import RunRules

METHODS = ("uniform", "neuralscale")
PRECISIONS = ("fp32", "int8")
RECORD_FORMAT = "ncc-sweep-record"
RECORD_VERSION = 1


@dataclass(frozen=True)
class Config:
    model: str
    method: str
    ratio: float
    precision: str

    @property
    def name(self) -> str:
        return f"{self.model}-{self.method}-{self.ratio:g}-{self.precision}"

    def describe(self) -> str:
        return f"{self.model} {self.method} x{self.ratio:g} {self.precision}"


@dataclass
class SweepSettings:
    models: list  # zoo names or ONNX paths
    ratios: list
    methods: list = field(default_factory=lambda: list(METHODS))
    precisions: list = field(default_factory=lambda: list(PRECISIONS))
    dataset: str = "cifar10"
    target: str = "host"
    profiles: dict = field(default_factory=dict)  # model name -> profile file (ncc's, or NeuralScale's JSON/pickle)
    calib: str | None = None
    calib_samples: int | None = 256
    eval_data: str | None = None
    eval_samples: int | None = None
    round_to: int | str = 1
    target_values: dict = field(default_factory=dict)  # the target's own options given (e.g. tune_trials)
    rules: RunRules = RunRules()
    keep_bundles: bool = False
    seed: int = 0


@dataclass
class Plan:
    models: dict  # name -> ONNX path
    profiles: dict  # name -> ncc profile path
    configs: list
    skipped: list  # (what, reason)


def model_name(spec: str) -> str:
    from ncc.study import zoo

    if spec in zoo.MODELS:
        return spec
    return os.path.splitext(os.path.basename(spec))[0]


def make_plan(settings: SweepSettings, study_dir: str, progress=print) -> Plan:
    """Models exported, profiles imported, and the configurations to run in
    order (models as given, then method, precision, ratio)."""
    _check(settings)
    try:
        os.makedirs(os.path.join(study_dir, "records"), exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot use {study_dir} as the study folder: {err.strerror}") from None
    models = {model_name(spec): _model_file(spec, settings, study_dir, progress) for spec in settings.models}
    unknown = sorted(set(settings.profiles) - set(models))
    if unknown:
        raise UsageError(f"--profile names {unknown[0]}, which is not one of the swept models ({', '.join(models)})")
    profiles = {name: _profile_file(name, settings.profiles[name], models[name], study_dir)
                for name in models if name in settings.profiles}
    configs, skipped = [], []
    for name in models:
        for method in settings.methods:
            if method == "neuralscale" and name not in profiles:
                skipped.append((f"{name} neuralscale", f"no profile (give --profile {name}=P.json)"))
                continue
            for precision in settings.precisions:
                configs += [Config(name, method, ratio, precision) for ratio in sorted(settings.ratios)]
    return Plan(models, profiles, configs, skipped)


def _check(settings):
    from ncc.study import zoo
    from ncc.targets import get_target

    if not settings.models:
        raise UsageError("--models names no model")
    names = [model_name(spec) for spec in settings.models]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"two swept models are both named {twice[0]}; rename one of the files")
    for spec in settings.models:
        if spec not in zoo.MODELS and not os.path.isfile(spec):
            raise UsageError(f"--models: '{spec}' is neither a zoo model ({', '.join(zoo.MODELS)}) "
                             "nor an ONNX file")
    if not settings.ratios or any(not (0 < r <= 4) for r in settings.ratios):
        raise UsageError("--ratios must be numbers in (0, 4]")
    choices = ((settings.methods, METHODS, "--methods"), (settings.precisions, PRECISIONS, "--precision"))
    for given, known, flag in choices:
        bad = [value for value in given if value not in known]
        if bad or not given:
            raise UsageError(f"{flag}: expected a comma-separated list of {', '.join(known)}")
    if not get_target(settings.target).measurable_here:
        raise UsageError(f"ncc sweep measures on this machine; target '{settings.target}' runs on its board "
                         "(compile with `ncc compile`, measure there, read results with `ncc bench --import`)")


def _model_file(spec, settings, study_dir, progress) -> str:
    from ncc.study import zoo

    if spec not in zoo.MODELS:
        return spec
    path = os.path.join(study_dir, "models", f"{spec}-{settings.dataset}.onnx")
    if not os.path.exists(path):
        import io

        progress(f"exporting {spec} ({settings.dataset}) from the zoo")
        buffer = io.BytesIO()
        zoo.export_onnx(zoo.build(spec, settings.dataset, seed=settings.seed), settings.dataset, buffer)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomically(path, buffer.getvalue())
    return path


def _profile_file(name, source, model_path, study_dir) -> str:
    """`source` as an ncc profile: as it is, or imported (NeuralScale's JSON
    or pickle) onto the model's scalable channel groups."""
    from ncc.compiler.loader import load_model
    from ncc.compiler.pipeline import channel_groups
    from ncc.passes import neuralscale

    if not os.path.isfile(source):
        raise UsageError(f"--profile {name}={source}: no such file")
    try:
        neuralscale.load_profile(source)
        return source
    except UsageError:
        pass  # not in ncc's format: import it
    ids = [group.id for group in channel_groups(load_model(model_path))[1].scalable]
    profile = neuralscale.import_profile(source, ids)
    path = os.path.join(study_dir, "profiles", f"{name}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    neuralscale.save_profile(profile, path)
    return path


def config_key(config: Config, plan: Plan, settings: SweepSettings) -> str:
    """A digest of everything that decides a configuration's figures."""
    inputs = {
        "config": asdict(config), "ncc": __version__, "target": settings.target,
        "model": sha256_file(plan.models[config.model]),
        "profile": sha256_file(plan.profiles[config.model]) if config.method == "neuralscale" else None,
        "calib": _data_key(settings.calib) if config.precision == "int8" else None,
        "calib_samples": settings.calib_samples if config.precision == "int8" else None,
        "eval": _data_key(settings.eval_data), "eval_samples": settings.eval_samples,
        "round_to": settings.round_to, "tuning": settings.target_values,
        "rules": {**asdict(settings.rules), "deadline_ms": None, "max_miss_rate": None}, "seed": settings.seed,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _data_key(spec):
    if not spec or not os.path.isfile(spec):
        return spec
    return sha256_file(spec)


def record_path(study_dir: str, config: Config) -> str:
    return os.path.join(study_dir, "records", f"{config.name}.json")


def read_record(study_dir: str, config: Config, key: str):
    """The stored record of `config` if it was measured with these settings."""
    try:
        with open(record_path(study_dir, config)) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    ok = record.get("format") == RECORD_FORMAT and record.get("key") == key and record.get("status") == "ok"
    return record if ok else None


def run_sweep(settings: SweepSettings, study_dir: str, progress=print) -> list:
    """Compile and benchmark every planned configuration not measured before;
    the records of all of them, in plan order."""
    plan = make_plan(settings, study_dir, progress)
    for what, reason in plan.skipped:
        progress(f"skipping {what}: {reason}")
    records = []
    width = len(str(len(plan.configs)))
    for index, config in enumerate(plan.configs, 1):
        key = config_key(config, plan, settings)
        prefix = f"[{index:>{width}}/{len(plan.configs)}] {config.describe()}"
        record = read_record(study_dir, config, key)
        if record:
            progress(f"{prefix}: measured before, {_figures(record)}")
        else:
            started = time.monotonic()
            record = measure(config, key, plan, settings, study_dir)
            write_atomically(record_path(study_dir, config), json.dumps(record, indent=2, sort_keys=True) + "\n")
            outcome = _figures(record) if record["status"] == "ok" else f"FAILED: {record['reason']}"
            progress(f"{prefix}: {outcome} ({time.monotonic() - started:.0f} s)")
        records.append(record)
    return records


def _figures(record) -> str:
    if record["status"] != "ok":
        return record["status"]
    latency = record["results"]["latency_ms"]
    return f"p50 {latency['p50']:.3f} ms, p99 {latency['p99']:.3f} ms"


def measure(config: Config, key: str, plan: Plan, settings: SweepSettings, study_dir: str) -> dict:
    """Compile one configuration, run its harness, and evaluate it when
    evaluation data is given. A failure becomes the record's reason."""
    from ncc.compiler.driver import compile_model
    from ncc.runtime_harness.runner import run_bundle

    record = {"format": RECORD_FORMAT, "version": RECORD_VERSION, "key": key, "config": asdict(config),
              "target": settings.target, "status": "failed", "reason": None}
    bundles = os.path.join(study_dir, "bundles")
    bundle_dir = os.path.join(bundles, config.name)
    try:
        bundle = compile_model(plan.models[config.model], bundle_dir, compile_options(config, plan, settings))
        record["manifest"] = _manifest_figures(bundle.manifest)
        record["load_average"] = os.getloadavg()[0]  # how busy the machine was as the run started
        results = record["results"] = run_bundle(bundle.path, settings.rules)
        if settings.eval_data:
            record["accuracy"] = evaluate_bundle(bundle.path, settings)
        if results["valid"]:
            record["status"] = "ok"
        else:
            record["reason"] = f"invalid run: {'; '.join(results['invalid_reasons'])}"
    except NccError as err:
        record["reason"] = str(err)
    finally:
        if not settings.keep_bundles:
            shutil.rmtree(bundle_dir, ignore_errors=True)
            if os.path.isdir(bundles) and not os.listdir(bundles):
                os.rmdir(bundles)
    return record


def compile_options(config: Config, plan: Plan, settings: SweepSettings):
    from ncc.compiler.driver import CompileOptions

    options = CompileOptions.create(target=settings.target, scale=(config.method, config.ratio),
                                    round_to=settings.round_to, force=True, seed=settings.seed,
                                    **settings.target_values)
    if config.method == "neuralscale":
        options = replace(options, profile=plan.profiles[config.model])
    if config.precision == "int8":
        options = replace(options, quantize="int8", calib=settings.calib, calib_samples=settings.calib_samples)
    return options


def _manifest_figures(manifest: dict) -> dict:
    """What the report needs from a bundle's manifest: its size and cost."""
    after = manifest["model"]["after"]
    scaled = next((p for p in manifest["passes"] if p["name"] == "scale-channels"), None)
    return {"params": after["params"], "macs": after["macs"], "weight_bytes": after["weight_bytes"],
            "activation_bytes": after["peak_activation_bytes"],
            "widths": scaled["stats"].get("widths") if scaled else None}


def evaluate_bundle(bundle_dir: str, settings: SweepSettings) -> dict:
    """Top-1/top-5 of the bundle's compiled model (the one its harness runs) on the evaluation data."""
    from ncc.core.bundle import MODEL
    from ncc.core.datasets import load_dataset
    from ncc.compiler.loader import input_shape, load_model
    from ncc.core.numerics import batched_predictor
    from ncc.study.training import evaluate

    model = load_model(os.path.join(bundle_dir, MODEL))
    data = load_dataset(settings.eval_data, input_shape(model), settings.eval_samples, settings.seed, split="test")
    return evaluate(batched_predictor(model), data)


def write_study(records: list, settings: SweepSettings, study_dir: str, command: str) -> dict:
    """results.csv, report.md and plots/ from the records; {file kind: path}."""
    from ncc.study import plots as study_plots, report as study_report

    deadline = settings.rules.deadline_ms
    table = study_report.rows(records, deadline)
    plots = study_plots.write_plots(table, os.path.join(study_dir, "plots"))
    machine = study_report.machine_facts(records, settings.target)
    paths = {"results": os.path.join(study_dir, "results.csv"), "report": os.path.join(study_dir, "report.md")}
    write_atomically(paths["results"], study_report.to_csv(table))
    write_atomically(paths["report"], study_report.markdown(table, command=command, machine=machine, plots=plots,
                                                            deadline_ms=deadline))
    return paths
