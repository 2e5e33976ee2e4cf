"""What the TVM targets share: compile model.so for their machine (tuning
first when asked), ship the TVM runtime in lib/ and a C++ harness built for
that machine. A TVM target only says which machine and compiler it uses.

Bundle:
    model.so                    Relax VM executable (weights inside)
    lib/libtvm_runtime.so       TVM runtime of the same version, for the machine
    lib/libtvm_ffi.so
    harness/harness             timing harness binary; harness/run.sh runs it
    harness/{harness.cc,...}    its sources, Makefile, CMakeLists.txt and tvm-ffi headers
    harness/inputs.txt          the model's inputs (name, dtype, shape)
"""

import os
import shutil

import onnx

from ncc.compiler.errors import UsageError
from ncc.targets import tvm_build, tvm_tuning
from ncc.targets.base import Artifact, EmitResult, Target
from ncc.targets.tvm_harness import write_harness
from ncc.targets.tvm_runtime_libs import runtime_libs, versions

MODEL_SO = "model.so"


class TvmTarget(Target):
    native = True  # whether this machine runs the bundle's binaries natively (else under qemu)

    def machine(self) -> tvm_build.TvmMachine:
        raise NotImplementedError

    def arch(self) -> str:
        return self.machine().triple.split("-")[0]

    def board_steps(self) -> list[str]:
        return []

    def check_supported(self, model):
        tvm_build.check_frontend_support(model, self.name)

    def emit(self, model: onnx.ModelProto, bundle_dir: str, options) -> EmitResult:
        machine = self.machine()
        target = tvm_build.tvm_target(machine)
        mod = tvm_build.prepare(tvm_build.import_onnx(model), target)
        selection, tuning = self._tune(mod, target, machine, options)
        tvm_build.build(mod, machine, os.path.join(bundle_dir, MODEL_SO), selection.database)
        libs = self._copy_runtime(bundle_dir)
        harness = [f"harness/{name}" for name in write_harness(model, os.path.join(bundle_dir, "harness"), machine.cc)]
        artifacts = [Artifact(MODEL_SO, "model", f"Relax VM executable for {machine.triple} ({machine.cpu})"),
                     *[Artifact(lib, "runtime", "TVM runtime library") for lib in libs],
                     *[Artifact(path, _kind(path), _describe(path)) for path in harness]]
        return EmitResult(
            artifacts=artifacts, board_steps=self.board_steps(),
            harness={"kind": "tvm-cpp", "entry": "harness/run.sh", "binary": "harness/harness",
                     "model": MODEL_SO, "inputs": "harness/inputs.txt", "arch": self.arch(),
                     "native": self.native},
            info={"runtime": "tvm-relax-vm", "tvm_target": machine.spec, "linker": machine.cc,
                  "versions": versions(), "tuning": tuning,
                  "deterministic": "model.so and the harness binary are byte-identical for identical "
                                   "compiles with the same tuning records"})

    def _tune(self, mod, target, machine, options) -> tuple:
        """Tune first when asked; the records the build applies, and what the manifest says of them."""
        trials, given = options.tune_trials, options.tuning_db
        if trials and not self.native and not options.rpc_tracker:
            raise UsageError(f"--tune-trials for {self.name} needs the board (--rpc-tracker and --rpc-key); "
                             f"or apply a database tuned elsewhere with --tuning-db")
        database = tvm_tuning.open_database(given or tvm_tuning.default_database_dir(machine), create=bool(trials))
        tasks = 0
        if trials:
            runner = tvm_tuning.rpc_runner(options.rpc_tracker, options.rpc_key) if options.rpc_tracker else None
            tasks = tvm_tuning.tune(mod, target, database, trials, cc=machine.cc, runner=runner, seed=options.seed)
        selection = tvm_tuning.select_records(database, mod, target)
        measured = f"RPC key {options.rpc_key} via {options.rpc_tracker}" if options.rpc_tracker else "this machine"
        return selection, {
            "database": "given" if given else "cache", "trials": trials, "tasks_tuned": tasks,
            "measured_on": measured if trials else None, "kernels": selection.kernels,
            "kernels_with_tuned_schedules": sum(selection.tuned_for.values()), "tuned_for": selection.tuned_for,
            "tuned_on": _tuned_on(selection.tuned_for, f"{machine.triple}/{machine.cpu}")}

    def _copy_runtime(self, bundle_dir: str) -> list[str]:
        os.makedirs(os.path.join(bundle_dir, "lib"))
        copied = []
        for source in runtime_libs(self.arch()):
            relative = f"lib/{os.path.basename(source)}"
            shutil.copyfile(source, os.path.join(bundle_dir, relative))
            os.chmod(os.path.join(bundle_dir, relative), 0o755)
            copied.append(relative)
        return copied


def _tuned_on(tuned_for: dict, own: str) -> str | None:
    elsewhere = sorted(where for where in tuned_for if where != own)
    if elsewhere:
        return f"{', '.join(elsewhere)}, not {own}: the schedules were tuned on another machine than the board"
    return own if tuned_for else None


def _kind(path: str) -> str:
    return {"harness/harness": "harness", "harness/run.sh": "script"}.get(path, "harness-source")


def _describe(path: str) -> str:
    return {"harness/harness": "timing harness (C++, tvm-ffi)", "harness/run.sh": "runs the harness on model.so",
            "harness/inputs.txt": "the model's inputs: name, dtype, shape"}.get(path, "harness source")
