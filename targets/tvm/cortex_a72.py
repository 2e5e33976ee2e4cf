"""cortex-a72: the Raspberry Pi 4's CPU (4 Cortex-A72 cores, aarch64 Linux),
the CPU of the study. model.so and the harness are cross-compiled here; the
board only runs them (under qemu-aarch64 here, for correctness only)."""

from ncc.targets.tvm.build import TvmMachine
from ncc.targets.tvm.target import TvmTarget

A72 = TvmMachine({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72", "mattr": ["+neon"],
                  "num-cores": 4}, cc="aarch64-linux-gnu-g++")


class CortexA72Target(TvmTarget):
    name = "cortex-a72"
    aliases = ("rpi4",)
    description = "Cortex-A72 (Raspberry Pi 4, aarch64 Linux), compiled with TVM (Relax), with a C++ timing harness"
    native = False

    def machine(self) -> TvmMachine:
        return A72

    def board_steps(self) -> list[str]:
        return ["copy the whole bundle folder to the board (e.g. scp -r BUNDLE pi@board:)",
                "time it there: BUNDLE/harness/run.sh --iterations 200 --warmup 20 --json results.json",
                "the harness binary is prebuilt for aarch64 against lib/; to rebuild it there: "
                "make -C BUNDLE/harness (g++ 12 or newer)"]
