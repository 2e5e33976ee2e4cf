"""The run rules every harness obeys, and their command-line flags.

Copied into bundles beside the harness (standard library only). `ncc bench`
builds the same flags from the same table, and a C++ harness accepts the same
names, so a rule means one thing everywhere.
"""

from __future__ import annotations  # boards may run Python 3.8

import dataclasses


@dataclasses.dataclass(frozen=True)
class RunRules:
    warmup: int = 10
    warmup_seconds: float = 0.2
    iterations: int = 100
    min_seconds: float = 0.0
    deadline_ms: float | None = None
    max_miss_rate: float | None = None
    pin: tuple | None = None
    fifo: bool = False
    priority: int = 80
    mlock: bool = False
    threads: int = 1
    seed: int = 0

    @classmethod
    def from_options(cls, **values) -> "RunRules":
        """Checked rules from option values (pin as text); ValueError says what is wrong."""
        if isinstance(values.get("pin"), str):
            values["pin"] = parse_cpu_list(values["pin"])
        rules = cls(**values)
        problems = rules.problems()
        if problems:
            raise ValueError(problems[0])
        return rules

    def problems(self) -> list:
        checks = [
            (self.warmup >= 0, "--warmup must be 0 or more"),
            (self.warmup_seconds >= 0, "--warmup-seconds must be 0 or more"),
            (self.iterations >= 1, "--iterations must be at least 1"),
            (self.min_seconds >= 0, "--min-seconds must be 0 or more"),
            (self.deadline_ms is None or self.deadline_ms > 0, "--deadline-ms must be positive"),
            (self.max_miss_rate is None or 0 <= self.max_miss_rate <= 1, "--max-miss-rate must be within 0..1"),
            (self.max_miss_rate is None or self.deadline_ms is not None, "--max-miss-rate needs --deadline-ms"),
            (1 <= self.priority <= 99, "--priority must be within 1..99 (SCHED_FIFO)"),
            (self.threads >= 1, "--threads must be at least 1"),
        ]
        return [message for ok, message in checks if not ok]

    def to_argv(self) -> list:
        """The harness flags that state these rules."""
        argv = []
        for name, kind, _help in OPTIONS:
            value = getattr(self, name)
            if kind is bool:
                argv += [flag(name)] if value else []
            elif name == "priority":
                argv += [flag(name), str(value)] if self.fifo else []
            elif value is not None:
                argv += [flag(name), ",".join(map(str, value)) if name == "pin" else str(value)]
        return argv


# (field, type, help) in the order --help lists them; "cpus" is a CPU list such as 0,2-3
OPTIONS = (
    ("warmup", int, "Untimed runs first: at least this many..."),
    ("warmup_seconds", float, "...and for at least this long."),
    ("iterations", int, "Timed runs: at least this many..."),
    ("min_seconds", float, "...and for at least this long."),
    ("deadline_ms", float, "Count the runs slower than this as deadline misses."),
    ("max_miss_rate", float, "Fail the run when more than this fraction of runs miss the deadline."),
    ("pin", "cpus", "Pin the process to these CPUs (0, 2,3 or 0-3); recorded when refused."),
    ("fifo", bool, "Run under SCHED_FIFO; recorded when refused."),
    ("priority", int, "SCHED_FIFO priority (1-99) with --fifo."),
    ("mlock", bool, "Lock all memory with mlockall; recorded when refused."),
    ("threads", int, "Inference threads (ONNX Runtime intra-op threads)."),
    ("seed", int, "Seed of the random input."),
)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_cpu_list(text: str) -> tuple:
    """'0,2-3' -> (0, 2, 3), the kernel's cpulist syntax."""
    cpus = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise ValueError(f"bad CPU list '{text}': expected numbers and ranges such as 0,2-3") from None
    if not cpus or min(cpus) < 0:
        raise ValueError(f"bad CPU list '{text}': expected numbers and ranges such as 0,2-3")
    return tuple(sorted(cpus))


def add_arguments(parser) -> None:
    """The run-rule flags on an argparse parser; read them back with from_args."""
    defaults = RunRules()
    for name, kind, help_text in OPTIONS:
        if kind is bool:
            parser.add_argument(flag(name), action="store_true", help=help_text)
        else:
            parser.add_argument(flag(name), type=str if kind == "cpus" else kind,
                                default=getattr(defaults, name), help=help_text)


def add_io_arguments(parser) -> None:
    """The input/output flags every harness takes besides the run rules."""
    parser.add_argument("--input", help=".npy input (default: seeded random)")
    parser.add_argument("--output", help="write the first output to this .npy")
    parser.add_argument("--json", help="write results here (default: stdout)")
    parser.add_argument("--csv", help="write the per-iteration times here")


def from_args(parser, args) -> RunRules:
    try:
        return RunRules.from_options(**{name: getattr(args, name) for name, _kind, _help in OPTIONS})
    except ValueError as err:
        parser.error(str(err))
