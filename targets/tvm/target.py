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

import onnx

from ncc.core.errors import UsageError
from ncc.runtime_harness.harnesses import TVM_CPP
from ncc.targets.base import EmitResult, Target
from ncc.targets.tvm import build as tvm_build, tuning as tvm_tuning
from ncc.targets.tvm.harness import write_harness
from ncc.targets.tvm.options import TvmOptions
from ncc.targets.tvm.runtime_libs import runtime_libs, versions

MODEL_SO = "model.so"


class TvmTarget(Target):
    options_type = TvmOptions
    harness = TVM_CPP
    native = True  # whether this machine runs the bundle's binaries natively (else under qemu)

    def machine(self) -> tvm_build.TvmMachine:
        raise NotImplementedError

    def arch(self) -> str:
        return self.machine().triple.split("-")[0]

    def board_steps(self) -> list[str]:
        return []

    def check_supported(self, model):
        tvm_build.check_frontend_support(model, self.name)

    def emit(self, model: onnx.ModelProto, bundle, options) -> EmitResult:
        machine = self.machine()
        target = tvm_build.tvm_target(machine)
        mod = tvm_build.prepare(tvm_build.import_onnx(model), target)
        selection, tuning = self._tune(mod, target, machine, options.target_options, options.seed)
        schedules = tvm_build.build(mod, machine, bundle.path(MODEL_SO), selection)
        bundle.add_existing(MODEL_SO, "model", f"Relax VM executable for {machine.triple} ({machine.cpu})")
        for source in runtime_libs(self.arch()):
            bundle.add_copy(f"lib/{os.path.basename(source)}", source, "runtime", "TVM runtime library",
                            executable=True)
        write_harness(model, bundle, machine.cc)
        return EmitResult(
            board_steps=self.board_steps(),
            harness=self.harness.entry(binary="harness/harness", model=MODEL_SO, inputs="harness/inputs.txt",
                                       arch=self.arch(), native=self.native),
            info={"runtime": "tvm-relax-vm", "tvm_target": machine.spec, "linker": machine.cc,
                  "versions": versions(), "tuning": tuning, "schedules": schedules,
                  "deterministic": "model.so and the harness binary are byte-identical for identical "
                                   "compiles with the same tuning records"})

    def _tune(self, mod, target, machine, options: TvmOptions, seed: int) -> tuple:
        """Tune first when asked; the records the build applies, and what the manifest says of them."""
        trials, given = options.tune_trials, options.tuning_db
        if trials and not self.native and not options.rpc_tracker:
            raise UsageError(f"--tune-trials for {self.name} needs the board (--rpc-tracker and --rpc-key); "
                             f"or apply a database tuned elsewhere with --tuning-db")
        folder = given or tvm_tuning.default_database_dir(machine)
        database = tvm_tuning.open_database(folder, create=bool(trials))
        defaults = tvm_tuning.open_database(folder, create=bool(trials), prefix=tvm_tuning.DEFAULTS)
        tasks = 0
        if trials:
            runner = tvm_tuning.rpc_runner(options.rpc_tracker, options.rpc_key) if options.rpc_tracker else None
            tasks = tvm_tuning.tune(mod, target, database, trials, cc=machine.cc, runner=runner, seed=seed,
                                    defaults=defaults)
        selection = tvm_tuning.select_records(database, mod, target, defaults)
        measured = f"RPC key {options.rpc_key} via {options.rpc_tracker}" if options.rpc_tracker else "this machine"
        return selection, {
            "database": "given" if given else "cache", "trials": trials, "tasks_tuned": tasks,
            "measured_on": measured if trials else None, "kernels": selection.kernels,
            "kernels_with_tuned_schedules": sum(selection.tuned_for.values()), "tuned_for": selection.tuned_for,
            "tuned_on": _tuned_on(selection.tuned_for, f"{machine.triple}/{machine.cpu}")}


def _tuned_on(tuned_for: dict, own: str) -> str | None:
    elsewhere = sorted(where for where in tuned_for if where != own)
    if elsewhere:
        return f"{', '.join(elsewhere)}, not {own}: the schedules were tuned on another machine than the board"
    return own if tuned_for else None

