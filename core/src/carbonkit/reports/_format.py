"""Number, duration and table formatting shared by the report writers (deterministic output)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .._text import printable

__all__ = ["fmt_duration", "fmt_sig", "text_table"]


def fmt_sig(value: float | None, digits: int = 4) -> str:
    """Format ``value`` with ``digits`` significant figures, in plain decimal notation.

    ``0.00004743`` rather than ``4.743e-05``; values below 1e-9 or from 1e15 use scientific
    notation. None and non-finite values give ``"n/a"``.
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -9 or magnitude >= 15:
        return f"{value:.{digits - 1}e}"
    decimals = max(digits - 1 - magnitude, 0)
    text = f"{value:.{decimals}f}"
    if "." in text and decimals > 0:
        text = text.rstrip("0").rstrip(".")
    # Rounding can add a digit (9.9995 -> 10.000): that is still the right value.
    return text


def fmt_thousands(value: float, decimals: int) -> str:
    """Format with a thousands separator and a fixed number of decimals: ``188,701.92``."""
    return f"{value:,.{decimals}f}"


def fmt_duration(seconds: float | None) -> str:
    """Format a duration: ``12.3 s`` under a minute, else ``H:MM:SS`` (``Nd H:MM:SS`` past a day)."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    """Lay ``rows`` out under ``headers`` in aligned columns (numbers right-aligned).

    Every cell goes through :func:`carbonkit._text.printable` (one line, no control characters or
    escape sequences), so a label from a log can neither break the columns nor drive the terminal.
    """
    right = list(right) if right is not None else [False] * len(headers)
    headers = [printable(h, single_line=True) for h in headers]
    rows = [[printable(c, single_line=True) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(widths[i]) if right[i] else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    return "\n".join(out)


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n} {word if n == 1 else (words or word + 's')}"
