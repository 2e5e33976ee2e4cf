"""Plain-text formatting shared by the commands that print figures and tables."""

from collections.abc import Sequence
from numbers import Number


def format_count(n: float) -> str:
    """Three significant digits with a decimal suffix: 9231114 -> '9.23M'."""
    return _scaled(n, 1000, ("", "K", "M", "G", "T", "P"))


def format_bytes(n: float) -> str:
    """Three significant digits with a binary suffix: 1572864 -> '1.5 MiB'."""
    return _scaled(n, 1024, (" B", " KiB", " MiB", " GiB", " TiB"))


def format_shape(shape: Sequence[int]) -> str:
    """(1, 3, 32, 32) -> '1x3x32x32'; a scalar is '()'."""
    return "x".join(str(d) for d in shape) if len(shape) else "()"


def _scaled(n, base, units):
    value = float(n)
    for unit in units:
        # round first so 999.96 becomes '1K', not '1e+03'
        if abs(float(f"{value:.3g}")) < 1000 or unit == units[-1]:
            return f"{value:.3g}{unit}"
        value /= base
    raise AssertionError("unreachable")


def format_table(rows: Sequence[Sequence], headers: Sequence[str] | None = None,
                 align: str | None = None, indent: int = 0) -> str:
    """Fixed-width columns separated by two spaces, a dashed rule after the
    headers. `align` gives one 'l' or 'r' per column; by default numeric
    columns are right-aligned and the rest left-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    table = ([list(headers)] if headers else []) + cells
    if not table:
        return ""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    if align is None:
        align = "".join("r" if rows and all(isinstance(row[i], Number) for row in rows) else "l"
                        for i in range(len(widths)))

    def line(row):
        padded = (cell.rjust(width) if side == "r" else cell.ljust(width)
                  for cell, width, side in zip(row, widths, align))
        return (" " * indent + "  ".join(padded)).rstrip()

    lines = [line(row) for row in table]
    if headers:
        lines.insert(1, line(["-" * w for w in widths]))
    return "\n".join(lines)
