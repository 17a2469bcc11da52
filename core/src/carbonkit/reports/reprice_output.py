"""``carbonkit reprice`` output: a side-by-side table, a JSON object, a self-contained HTML page."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .. import __version__
from .._redact import redact_mapping, redact_text
from .._text import printable
from ._format import fmt_duration, fmt_sig, text_table
from .html import CSP, CSS, _table, esc
from .reprice import Repriced, ScheduleWhatIf

__all__ = ["render_html", "render_text", "to_json", "write_html"]

_NAMES = {"flexible_start": "Flexible Start", "pause_and_resume": "Pause and Resume"}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def _when(iso: str) -> str:
    return iso.replace("T", " ").replace("Z", "")[:19]


def _rows(r: Repriced) -> list[list[str]]:
    o = r.original
    kinds = ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(o["intensity_kinds"].items())) or "-"
    src = r.source
    how = {"series": "series file", "history": f"history ({src.provider})", "average": "yearly average"}[src.kind]
    year = f", {src.year}" if src.year else ""
    return [
        ["zone", o["zone"], r.zone],
        ["start (UTC)", _when(o["start_time"]), f"{r.start_time:%Y-%m-%d %H:%M:%S}"],
        ["duration", fmt_duration(o["duration_s"]), fmt_duration(r.duration_s)],
        ["energy kWh (PUE)", fmt_sig(o["energy_kwh"]), fmt_sig(r.energy_kwh)],
        ["energy from", ", ".join(f"{c} {m}" for c, m in sorted(o["methods"].items())) or "-",
         "the measured profile, replayed"],
        ["CO2eq g", fmt_sig(o["co2eq_g"]), fmt_sig(r.co2eq_g)],
        ["g/kWh", fmt_sig(o["intensity_g_per_kwh"]), fmt_sig(r.intensity_g_per_kwh)],
        ["intensity", kinds, f"{how}, {src.signal} signal{year}"],
    ]


def _schedule_rows(schedules: Sequence[ScheduleWhatIf]) -> list[list[str]]:
    out = []
    for s in schedules:
        out.append([
            f"{_NAMES[s.algorithm]} within {s.window}",
            f"{fmt_sig(s.baseline_g)} -> {fmt_sig(s.emissions_g)} g",
            f"{100 * s.saving:.1f}%",
            f"{100 * s.even_saving:.1f}%",
            f"{s.start_time:%Y-%m-%d %H:%M}" + (f", {s.pauses} pause(s)" if s.pauses else ""),
        ])
    return out


def render_text(results: Sequence[Repriced]) -> str:
    """One block per run: the original and re-priced figures side by side, then the schedules."""
    out: list[str] = []
    for r in results:
        out.append(printable(f"{os.path.basename(r.file)}: re-priced in {r.zone}", single_line=True))
        out.append(text_table(["", "as measured", "re-priced"], _rows(r), [False, True, True]))
        out.append(f"change: {_pct(r.change)} CO2eq for the same energy ({r.intervals} measured intervals of "
                   f"{fmt_sig(r.bucket_s)} s replayed; {printable(r.source.description, single_line=True)})")
        if r.schedules:
            out.append("")
            out.append(text_table(
                ["schedule", "CO2eq (straight -> planned)", "saving", "saving at even power", "start"],
                _schedule_rows(r.schedules), [False, True, True, True, False],
            ))
            for s in r.schedules:
                out += [f"  note ({_NAMES[s.algorithm]}): {printable(w, single_line=True)}" for w in s.warnings]
        out += [f"note: {printable(redact_text(n), single_line=True)}" for n in r.notes]
        out.append("")
    return "\n".join(out)


def to_json(results: Sequence[Repriced]) -> dict[str, Any]:
    """The ``--json`` object: ``runs``, one :meth:`Repriced.to_dict` each, and totals."""
    before = sum(float(r.original.get("co2eq_g") or 0.0) for r in results)
    after = sum(r.co2eq_g for r in results)
    return redact_mapping({
        "runs": [r.to_dict() for r in results],
        "total": {
            "runs": len(results),
            "energy_kwh": sum(r.energy_kwh for r in results),
            "original_co2eq_g": before,
            "co2eq_g": after,
            "change": None if before <= 0 else after / before - 1.0,
        },
    })


def render_html(results: Sequence[Repriced], *, title: str = "What if: runs re-priced") -> str:
    """A self-contained page (no scripts, no external resources), every string escaped."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{esc(title)}</h1>",
        f'<p class="lead">Each run\'s measured power profile (energy per accounting interval of its log) '
        f"priced interval by interval at another zone's or time's intensity; written by carbonkit "
        f"{esc(__version__)}.</p></header>",
    ]
    for r in results:
        parts.append(f"<section><h2>{esc(os.path.basename(r.file))}: re-priced in {esc(r.zone)}</h2>")
        rows = [[(a, False), (b, True), (c, True)] for a, b, c in _rows(r)]
        parts.append(_table(["", "as measured", "re-priced"], rows))
        parts.append(f"<p>Change: {esc(_pct(r.change))} CO2eq for the same energy. "
                     f"Intensity: {esc(r.source.description)}.</p>")
        if r.schedules:
            srows = [[(v, i > 0 and i < 4) for i, v in enumerate(row)] for row in _schedule_rows(r.schedules)]
            parts.append(_table(
                ["schedule", "CO2eq (straight -> planned)", "saving", "saving at even power", "start"], srows
            ))
        notes = [*r.notes, *(w for s in r.schedules for w in s.warnings)]
        if notes:
            parts.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(results: Sequence[Repriced], path: str | os.PathLike[str]) -> None:
    """Write :func:`render_html` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_html(results))
