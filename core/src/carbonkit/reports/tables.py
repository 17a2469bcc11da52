"""``carbonkit report`` output: an aligned text table, Markdown, or CSV.

Every run is one row; the totals follow, then one row per group. A row says whether the run
stopped (``incomplete`` when it was killed: it counts what it logged) and what was counted
(``duplicate`` when another log of the same job and host measured all its devices).

Text from logs (file and host names, zones, sources, tags, notes) cannot inject anything: the
text table has no control characters or escape sequences (:func:`carbonkit._text.printable`);
Markdown cells escape HTML (``&lt;``) and put a backslash before Markdown punctuation (``|``,
``*``, ``[``...); CSV cells that
a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return, plain numbers aside) are prefixed with ``'`` (the OWASP rule against CSV injection).
Secret-looking tag values and ``name=value`` pairs are redacted (:mod:`carbonkit._redact`).
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Sequence
from typing import Any

from .._redact import redact_text
from .._text import printable
from ._format import fmt_duration, fmt_sig, plural, text_table
from .aggregate import Aggregate, Contribution, RunLog, Totals

__all__ = ["csv_cell", "render_csv", "render_markdown", "render_text"]

HEADERS = (
    "#",
    "run",
    "host",
    "job/rank",
    "start (UTC)",
    "duration",
    "IT kWh",
    "kWh (PUE)",
    "CO2eq g",
    "g/kWh",
    "intensity",
    "device-hours",
    "status",
)
RIGHT = (True, False, False, False, False, True, True, True, True, True, False, False, False)


def _job(run: RunLog) -> str:
    if run.job is None and run.rank is None:
        return "-"
    rank = "" if run.rank is None else f"/{run.rank}"
    return f"{run.job or '?'}{rank}"


def _intensity(run: RunLog) -> str:
    used = run.report.intensity.used
    if not used:
        return f"{run.report.location} (none)"
    shares: dict[str, float] = {}
    for u in used:
        shares[u.kind] = shares.get(u.kind, 0.0) + u.energy_share
    kinds = ", ".join(f"{k} {v * 100:.0f}%" for k, v in sorted(shares.items(), key=lambda kv: -kv[1]))
    signals = run.report.intensity.signal_shares
    if run.report.intensity.signal != "average" or any(k != "average" for k in signals):
        by_signal = ", ".join(f"{k} {v * 100:.0f}%" for k, v in sorted(signals.items(), key=lambda kv: -kv[1]))
        kinds += f"; signal {by_signal}"
    return f"{run.report.location} ({kinds})"


def _device_hours(hours: dict[str, float] | Any) -> str:
    return ", ".join(f"{name} {fmt_sig(h, 3)}" for name, h in sorted(hours.items())) or "-"


def _status(run: RunLog, c: Contribution, number: dict[str, int]) -> str:
    parts = [] if run.report.completed else ["incomplete"]
    if run.header.get("role") == "observer":
        parts.append("observer")
    if c.counted == "none":
        parts.append("duplicate of " + ", ".join(f"#{number[f]}" for f in c.duplicate_of))
    elif c.counted == "part":
        parts.append(f"counted: {', '.join(c.components)}")
    return "; ".join(parts) or "ok"


def _run_rows(agg: Aggregate) -> list[list[str]]:
    number = {r.file: i + 1 for i, r in enumerate(agg.runs)}
    rows = []
    for i, (run, c) in enumerate(zip(agg.runs, agg.contributions), 1):
        rep = run.report
        rows.append(
            [
                str(i),
                run.name,
                run.host,
                _job(run),
                rep.start_time.strftime("%Y-%m-%d %H:%M:%S"),
                fmt_duration(rep.duration_s),
                fmt_sig(rep.it_energy_kwh),
                fmt_sig(rep.energy_kwh),
                fmt_sig(rep.co2eq_g),
                fmt_sig(rep.intensity_g_per_kwh),
                _intensity(run),
                _device_hours(c.device_hours),
                _status(run, c, number),
            ]
        )
    return rows


def _total_row(label: str, t: Totals) -> list[str]:
    counted = f"{t.runs_counted} of {plural(t.runs, 'log')} counted"
    if t.incomplete:
        counted += f", {t.incomplete} incomplete"
    return [
        "",
        label,
        plural(t.hosts, "host"),
        "",
        t.start_time.strftime("%Y-%m-%d %H:%M:%S") if t.start_time else "",
        fmt_duration(t.duration_s),
        fmt_sig(t.it_energy_kwh),
        fmt_sig(t.energy_kwh),
        fmt_sig(t.co2eq_g),
        fmt_sig(t.intensity_g_per_kwh),
        "",
        _device_hours(t.device_hours),
        counted,
    ]


def _group_rows(agg: Aggregate) -> list[list[str]]:
    return [
        _total_row(f"{g.key}={g.value if g.value is not None else '(none)'}", g.total) for g in agg.groups
    ]


def _footer(agg: Aggregate) -> list[str]:
    t = agg.total
    lines = [
        f"Total: {fmt_sig(t.energy_kwh)} kWh after PUE ({fmt_sig(t.it_energy_kwh)} kWh IT), "
        f"{fmt_sig(t.co2eq_g)} g CO2eq; about {fmt_sig(t.car_km, 3)} km by car ({t.car_source}).",
    ]
    if t.intensity_sources:
        lines.append("Intensity sources (energy priced, kWh after PUE):")
        for s in t.intensity_sources:
            year = f", {s['year']}" if s.get("year") else ""
            lines.append(
                f"  {s['provider']}: {s['source']} ({s['kind']}, {s.get('signal', 'average')} signal, "
                f"{s['zone']}{year}): {fmt_sig(s['energy_kwh'])}"
            )
    if t.incomplete:
        lines.append(
            f"{plural(t.incomplete, 'run')} did not stop (killed or still running): "
            "recomputed from the raw readings logged, and marked incomplete."
        )
    lines += [f"Note: {n}" for n in agg.notes]
    return lines


def _line(text: str) -> str:
    """One line of free text from a log, safe for a terminal and without secrets."""
    return printable(redact_text(text), single_line=True)


def render_text(agg: Aggregate) -> str:
    """The default output: runs, totals and groups in aligned columns, then notes."""
    rows = _run_rows(agg)
    rows.append(_total_row("TOTAL", agg.total))
    out = [text_table(HEADERS, rows, RIGHT)]
    if agg.groups:
        out.append("")
        out.append(text_table(("", "group", *HEADERS[2:]), _group_rows(agg), RIGHT))
    out.append("")
    out += [("  " if line.startswith("  ") else "") + _line(line.strip()) for line in _footer(agg)]
    return "\n".join(out) + "\n"


_MD_SPECIAL = re.compile(r"[\\`*_\[\]|~!]")


def _md_cell(text: str, *, item: bool = False) -> str:
    """Text as inert Markdown, on one line: HTML escaped, Markdown punctuation backslash-escaped,
    and for a list ``item`` a leading ``#`` too (it would start a heading there)."""
    out = _MD_SPECIAL.sub(lambda m: "\\" + m[0], html.escape(_line(text), quote=False))
    return "\\" + out if item and out.startswith("#") else out


def _md_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool], *, bold_last: bool = False
) -> list[str]:
    out = ["| " + " | ".join(_md_cell(h) for h in headers) + " |"]
    out.append("|" + "|".join(" ---: " if r else " --- " for r in right) + "|")
    for i, row in enumerate(rows):
        cells = [_md_cell(c) for c in row]
        if bold_last and i == len(rows) - 1:
            cells = [f"**{c}**" if c else "" for c in cells]
        out.append("| " + " | ".join(cells) + " |")
    return out


def render_markdown(agg: Aggregate) -> str:
    """Runs and totals as a Markdown table (totals in bold), groups, then notes as a list."""
    rows = _run_rows(agg)
    rows.append(_total_row("TOTAL", agg.total))
    out = _md_table(HEADERS, rows, RIGHT, bold_last=True)
    if agg.groups:
        out.append("")
        out += _md_table(("", "group", *HEADERS[2:]), _group_rows(agg), RIGHT)
    out.append("")
    out += [("  - " if line.startswith("  ") else "- ") + _md_cell(line.strip(), item=True) for line in _footer(agg)]
    return "\n".join(out) + "\n"


CSV_FIELDS = (
    "kind",
    "file",
    "group",
    "host",
    "job",
    "rank",
    "start_time",
    "end_time",
    "completed",
    "counted",
    "duration_s",
    "it_energy_kwh",
    "energy_kwh",
    "co2eq_g",
    "intensity_g_per_kwh",
    "location",
    "pue",
    "tags",
)


_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def csv_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet cannot run: text starting with ``=``, ``+``, ``-``, ``@``,
    tab or carriage return gets a leading ``'`` (OWASP, "CSV Injection"), unless it is a plain
    number (``-0.5``, ``1e-05``); control characters are removed and secrets redacted."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r" and not _PLAIN_NUMBER.fullmatch(text):
        text = "'" + text
    return _line(text) if not _PLAIN_NUMBER.fullmatch(text) else text


def render_csv(agg: Aggregate) -> str:
    """One CSV row per run (``kind=run``), group (``kind=group``) and the total (``kind=total``).

    Figures are full precision; ``counted_*`` columns hold what the row adds to the totals and
    ``device_hours_<component>`` the devices times hours per component. Every cell goes through
    :func:`csv_cell`.
    """
    components = sorted({c for r in agg.runs for c in r.report.components})
    fields = [*CSV_FIELDS, "counted_energy_kwh", "counted_co2eq_g", *(f"device_hours_{c}" for c in components)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writerow({f: csv_cell(f) for f in fields})
    for run, c in zip(agg.runs, agg.contributions):
        rep = run.report
        row: dict[str, Any] = {
            "kind": "run",
            "file": run.file,
            "host": run.host,
            "job": run.job or "",
            "rank": "" if run.rank is None else run.rank,
            "start_time": rep.start_time.isoformat().replace("+00:00", "Z"),
            "end_time": rep.end_time.isoformat().replace("+00:00", "Z"),
            "completed": str(rep.completed).lower(),
            "counted": c.counted,
            "duration_s": repr(rep.duration_s),
            "it_energy_kwh": repr(rep.it_energy_kwh),
            "energy_kwh": repr(rep.energy_kwh),
            "co2eq_g": repr(rep.co2eq_g),
            "intensity_g_per_kwh": repr(rep.intensity_g_per_kwh),
            "location": rep.location,
            "pue": repr(rep.pue),
            "tags": ";".join(f"{k}={v}" for k, v in sorted(run.tags.items())),
            "counted_energy_kwh": repr(c.energy_kwh),
            "counted_co2eq_g": repr(c.co2eq_g),
        }
        for comp in components:
            row[f"device_hours_{comp}"] = repr(c.device_hours[comp]) if comp in c.device_hours else ""
        writer.writerow({k: csv_cell(v) for k, v in row.items()})

    def total_row(kind: str, t: Totals, group: str = "") -> dict[str, Any]:
        row: dict[str, Any] = {
            "kind": kind,
            "group": group,
            "start_time": t.start_time.isoformat().replace("+00:00", "Z") if t.start_time else "",
            "end_time": t.end_time.isoformat().replace("+00:00", "Z") if t.end_time else "",
            "completed": str(t.incomplete == 0).lower(),
            "counted": f"{t.runs_counted}/{t.runs}",
            "duration_s": repr(t.duration_s),
            "it_energy_kwh": repr(t.it_energy_kwh),
            "energy_kwh": repr(t.energy_kwh),
            "co2eq_g": repr(t.co2eq_g),
            "intensity_g_per_kwh": repr(t.intensity_g_per_kwh),
            "counted_energy_kwh": repr(t.energy_kwh),
            "counted_co2eq_g": repr(t.co2eq_g),
        }
        for comp in components:
            row[f"device_hours_{comp}"] = repr(t.device_hours.get(comp, 0.0))
        return row

    for g in agg.groups:
        row = total_row("group", g.total, f"{g.key}={'' if g.value is None else g.value}")
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    writer.writerow({k: csv_cell(v) for k, v in total_row("total", agg.total).items()})
    return buf.getvalue()
