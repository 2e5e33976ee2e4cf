"""MetaSchedule tuning for the TVM targets: the tuning database (a folder kept
between compiles), tuning a model's kernels into it, and choosing the records
a build applies.

A database folder may hold records tuned for several machines. A build takes,
per kernel, the best record tuned for its own machine (same triple and CPU) and
otherwise the best one tuned elsewhere, and reports which it used, so a
cortex-a72 bundle built with host-tuned schedules says so.
"""

import contextlib
import functools
import logging
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field

from ncc.core.cache import cache_dir
from ncc.core.errors import ToolchainError, UsageError

# MetaSchedule's builder workers import tvm anew for every batch; 30 s (its
# default) is not always enough for that on a loaded 2-core machine.
BUILD_TIMEOUT_S = 120
RPC_SESSION_TIMEOUT_S = 60
MAX_TRIALS_PER_ITER = 64
TUNED_OPS = ("conv2d", "matmul", "dense")  # where the time goes; pooling and reshapes keep default schedules
# MetaSchedule's evolutionary search defaults (population 512, 4 generations)
# spend minutes per task and round on a 2-core machine; a quarter of that
# finds nearly as good candidates per measured trial
SEARCH = {"population_size": 128, "init_min_unmeasured": 32, "genetic_num_iters": 2}
TUNING_PACKAGES = ("xgboost", "cloudpickle", "psutil")
# ncc's default schedules, measured when a kernel is tuned, are also kept in a database of their
# own, so that a build can say which kernels run them ("default:RULE") rather than a tuned record
DEFAULTS = "ncc_default"


def default_database_dir(machine) -> str:
    """One database per machine in the cache, e.g. tuning/x86_64-znver3."""
    return os.path.join(cache_dir(), "tuning", f"{machine.triple.split('-')[0]}-{machine.cpu}")


def open_database(folder: str, create: bool, prefix: str = "database"):
    """MetaSchedule's JSON database in `folder`; prefix DEFAULTS opens the one
    beside it that holds ncc's measured default schedules."""
    from tvm.s_tir import meta_schedule as ms

    workloads = os.path.join(folder, f"{prefix}_workload.json")
    records = os.path.join(folder, f"{prefix}_tuning_record.json")
    if not create and not os.path.exists(records):
        return None
    try:
        os.makedirs(folder, exist_ok=True)
        return ms.database.JSONDatabase(workloads, records, allow_missing=True)
    except OSError as err:
        raise UsageError(f"cannot use the tuning database {folder}: {err.strerror}") from None


def _machine_of(target) -> tuple:
    return str(target.attrs.get("mtriple", "")), str(target.attrs.get("mcpu", ""))


@dataclass
class Selection:
    database: object  # a MemoryDatabase holding one record per kernel
    tuned_for: dict  # "triple/cpu" -> number of this module's kernels scheduled by records tuned there
    kernels: int  # kernels in the module
    sources: dict = field(default_factory=dict)  # kernel -> "tuned", or "default:RULE" where the record is ncc's own


def select_records(database, mod, target, defaults=None) -> Selection:
    """The records `mod`'s kernels get, preferring those tuned for `target`'s
    machine, and among those the fastest, ncc's measured default schedules
    (`defaults`) included: a tuned schedule is taken only where it measured faster."""
    import tvm
    from tvm.s_tir import meta_schedule as ms
    from tvm_ffi.structural import structural_hash

    own = _machine_of(target)
    best = {}
    records = [(record, "tuned") for record in (database.get_all_tuning_records() if database is not None else [])]
    records += [(record, "default") for record in (defaults.get_all_tuning_records() if defaults is not None else [])]
    for record, source in records:
        seconds = [float(s) for s in (record.run_secs or [])]
        if not seconds or not all(math.isfinite(s) and s < 1e9 for s in seconds):
            continue
        key = structural_hash(record.workload.mod)
        # a default's copy in the tuning database measured the same: the default's own record wins the tie
        rank = (_machine_of(record.target) != own, sum(seconds) / len(seconds), source != "default")
        if key not in best or rank < best[key][0]:
            best[key] = (rank, record, source)
    chosen = ms.database.MemoryDatabase()
    tuned_for, kernels, sources = {}, 0, {}
    for gv, func in mod.functions.items():
        if not isinstance(func, tvm.tirx.PrimFunc):
            continue
        kernels += 1
        key = structural_hash(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}))
        if key in best:
            _rank, record, source = best[key]
            workload = chosen.commit_workload(record.workload.mod)
            chosen.commit_tuning_record(ms.database.TuningRecord(
                record.trace, workload, record.run_secs, record.target, record.args_info))
            sources[gv.name_hint] = _default_rule(record, target) if source == "default" else "tuned"
            if sources[gv.name_hint] == "tuned":
                where = "/".join(_machine_of(record.target))
                tuned_for[where] = tuned_for.get(where, 0) + 1
    return Selection(chosen, dict(sorted(tuned_for.items())), kernels, dict(sorted(sources.items())))


def _default_rule(record, target) -> str:
    from ncc.targets.tvm.schedules import schedule_for

    scheduled = schedule_for(record.workload.mod["main"], target)
    return f"default:{scheduled[1] if scheduled else 'unknown'}"


def check_tuning_packages():
    import importlib.util

    missing = [name for name in TUNING_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ToolchainError(f"tuning needs the Python packages {', '.join(missing)} "
                             f"(pip install {' '.join('xgboost-cpu' if m == 'xgboost' else m for m in missing)})")


def rpc_runner(tracker: str, key: str):
    """MetaSchedule's RPC runner: candidates measured on the boards a tracker serves under `key`."""
    from tvm.s_tir import meta_schedule as ms

    host, port = tracker.rsplit(":", 1)
    return ms.runner.RPCRunner(ms.runner.RPCConfig(tracker_host=host, tracker_port=int(port), tracker_key=key,
                                                   session_timeout_sec=RPC_SESSION_TIMEOUT_S))


def _register_cpu_intrinsics():
    """MetaSchedule imports tvm.s_tir.tensor_intrin when a tuning task is made;
    the package builds every GPU intrinsic too, which takes 35-100 s with
    torch loaded (TVMScript's parser walks sys.modules for each). A CPU target
    tensorizes only with the x86 and ARM ones: register those, and let the
    package count as imported."""
    import importlib
    import types

    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        return
    folder = os.path.join(os.path.dirname(importlib.import_module("tvm.s_tir").__file__), "tensor_intrin")
    package = types.ModuleType(name, "CPU tensor intrinsics only (see ncc.targets.tvm.tuning)")
    package.__path__ = [folder]
    sys.modules[name] = package
    for module in ("x86", "arm_cpu"):
        importlib.import_module(f"{name}.{module}")


def tune(mod, target, database, trials: int, cc: str = "g++", runner=None, seed: int = 0,
         progress: bool = True, defaults=None) -> int:
    """Tune `mod`'s kernels for `target` with `trials` measured candidates in
    all, committing every measurement to `database`; candidates are linked by
    `cc` and measured by `runner` (default: here). Returns the number of tasks."""
    from tvm.s_tir import meta_schedule as ms

    check_tuning_packages()
    _register_cpu_intrinsics()
    extracted = [task for task in ms.relax_integration.extract_tasks(mod, target)
                 if any(op in task.task_name for op in TUNED_OPS) and searchable(task.dispatched[0]["main"], target)]
    if not extracted:
        return 0
    builder = ms.builder.LocalBuilder(f_build=build_candidate, f_export=functools.partial(export_candidate, cc=cc),
                                      timeout_sec=BUILD_TIMEOUT_S)
    runner = runner or ms.runner.Runner.create("local")
    with tempfile.TemporaryDirectory(prefix="ncc-tune-") as work_dir, _quiet_meta_schedule():
        if defaults is not None:
            commit_default_records(extracted, target, defaults, builder, runner, database)
        tasks, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
            extracted, work_dir, space=design_space(target),
            strategy=ms.search_strategy.EvolutionarySearch(**SEARCH), seed=seed)
        per_iter = max(1, min(MAX_TRIALS_PER_ITER, trials // len(tasks)))
        callbacks = list(ms.measure_callback.MeasureCallback.create("default"))
        with _progress_bar(trials, progress) as bar:
            ms.tune.tune_tasks(
                tasks=tasks, task_weights=weights, work_dir=work_dir, max_trials_global=trials,
                max_trials_per_task=max(per_iter, math.ceil(trials / len(tasks))), num_trials_per_iter=per_iter,
                builder=builder, runner=runner, database=database,
                measure_callbacks=callbacks + ([_progress_callback(bar)] if bar else []))
    return len(tasks)


def design_space(target):
    """What MetaSchedule searches: its own design space and ncc's default schedules, whose tile
    sizes are samples (decisions: the defaults) that its tile-size mutator varies. ncc's schedules
    are complete (they pack their own weights, parallelize and vectorize), so MetaSchedule's
    postprocessors, which would rewrite those layouts again, pass them by."""
    from tvm.s_tir import meta_schedule as ms

    def ncc_space(sch):
        ours = _tunable_default(sch.mod["main"], target)
        return [] if ours is None else [ours]

    return ms.space_generator.SpaceGeneratorUnion(
        [ms.space_generator.PostOrderApply(), ms.space_generator.ScheduleFn(ncc_space)],
        postprocs=[_postprocs_passing_ncc_schedules()])


def searchable(func, target) -> bool:
    """Whether MetaSchedule can measure candidates of `func` beside ncc's default. It reads a
    candidate's arguments with the weight repacks removed (ArgInfo.from_entry_func), which takes
    only repacks that are plain loads: one that zero-pads channels (an int8 conv of 3 input
    channels in VNNI's blocks of 4) stops the whole search with an internal error. Such a kernel is
    not tuned; it keeps its default schedule."""
    import tvm
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    sch = _tunable_default(func, target)
    if sch is None:
        return True
    try:
        ArgInfo.from_entry_func(sch.mod, remove_preproc=True)
    except tvm.error.InternalError:
        return False
    return True


def _tunable_default(func, target):
    """ncc's default schedule of `func` with its tiles as samples, its root marked with the rule
    (the postprocessors pass it by), or None."""
    from ncc.targets.tvm.schedules import SCHEDULE_ATTR, schedule_for

    scheduled = schedule_for(func, target, tunable=True)
    if scheduled is None:
        return None
    sch, rule = scheduled
    sch.annotate(sch.get_sblock("root"), SCHEDULE_ATTR, rule)
    return sch


def _postprocs_passing_ncc_schedules():
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.postproc import Postproc, PyPostproc

    from ncc.targets.tvm.schedules import SCHEDULE_ATTR

    @derived_object
    class PassingNcc(PyPostproc):
        """MetaSchedule's own LLVM postprocessors, for every candidate but ncc's."""

        def __init__(self):
            self.inner = Postproc.create("llvm")

        def _initialize_with_tune_context(self, context):
            for postproc in self.inner:
                postproc._initialize_with_tune_context(context)  # pylint: disable=protected-access

        def apply(self, sch):
            if SCHEDULE_ATTR in sch.get(sch.get_sblock("root")).annotations:
                return True
            return all(postproc.apply(sch) for postproc in self.inner)

        def clone(self):
            return PassingNcc()

    return PassingNcc()


def commit_default_records(extracted, target, defaults, builder, runner, database=None) -> int:
    """Measure ncc's default schedule of every task's kernel with the tuning
    builder and runner (as every candidate is), and commit it to `defaults`
    (the DEFAULTS database): a build then takes a tuned record only where one
    measured faster. The same record goes into the tuning `database`, so
    MetaSchedule's search starts from it (its initial population takes the
    database's best records): its trace is the default's design-space form,
    whose tile samples replay to exactly the default schedule. Returns the
    number of records committed."""
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.builder import BuilderInput
    from tvm.s_tir.meta_schedule.database import TuningRecord
    from tvm.s_tir.meta_schedule.runner import RunnerInput

    committed = 0
    for task in extracted:
        workload = task.dispatched[0]
        sch = _tunable_default(workload["main"], target)
        if sch is None:
            continue
        (built,) = builder.build([BuilderInput(sch.mod, target)])
        if built.error_msg:
            continue
        args = ArgInfo.from_entry_func(sch.mod, remove_preproc=True)  # the weights as the schedule packs them
        device = "cpu" if target.kind.name == "llvm" else target.kind.name
        (future,) = runner.run([RunnerInput(built.artifact_path, device, args)])
        result = future.result()
        if result.error_msg or not result.run_secs:
            continue
        for into in (defaults, database) if database is not None else (defaults,):
            into.commit_tuning_record(TuningRecord(sch.trace, into.commit_workload(workload), result.run_secs,
                                                   target, args))
        committed += 1
    return committed


def build_candidate(mod, target, _params):
    """MetaSchedule's default_build without its `import tvm.s_tir.tensor_intrin`,
    which takes 35-60 s in every fresh builder worker and so times it out;
    the candidates are already scheduled, so nothing here needs the intrinsics."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    from ncc.targets.tvm.vector_rounding import make_nearbyint_vectorizable

    make_nearbyint_vectorizable()
    return tvm_build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod), target=target)


def export_candidate(mod, cc: str) -> str:
    """A candidate as a shared library linked here (by a cross compiler for
    another architecture), so an RPC board loads it without a compiler."""
    path = os.path.join(tempfile.mkdtemp(prefix="ncc-candidate-"), "candidate.so")
    mod.export_library(path, cc=cc)
    return path


def _progress_callback(bar):
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class Progress(PyMeasureCallback):
        def apply(self, _scheduler, _task_id, candidates, _builds, _runs):
            bar.update(len(candidates))

    return Progress()


def _progress_bar(trials: int, shown: bool):
    import click

    if not shown:
        return contextlib.nullcontext(None)
    return click.progressbar(length=trials, label="tuning", file=sys.stderr, show_eta=True, show_percent=True)


@contextlib.contextmanager
def _quiet_meta_schedule():
    """MetaSchedule logs every round to the console; keep it to warnings. Its
    logging set-up also fails on an unnamed handler of its logger (such as a
    test runner's capture handler), so those are set aside while it runs."""
    logger = logging.getLogger("tvm.s_tir.meta_schedule")
    level, handlers = logger.level, list(logger.handlers)
    logger.setLevel(logging.WARNING)
    logger.handlers = [handler for handler in handlers if handler.get_name()]
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.handlers = handlers
