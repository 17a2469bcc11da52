"""One self-contained HTML page for a set of runs: summary, statement, provenance and plots.

The page needs nothing from the network to be viewed: inline CSS, inline SVG (see :mod:`.svg`),
no scripts, no fonts, no images. A Content-Security-Policy ``<meta>`` forbids every external
resource and every script, so even a string that escaped escaping could not run or fetch
anything. Every string that comes from a log (device names, tags, sources, warnings, file names)
is escaped with :func:`html.escape`, in text and attributes, after its control characters and
escape sequences are removed (:func:`carbonkit._text.printable`) and secret-looking values
redacted (:mod:`carbonkit._redact`: a tag named ``token``, a password in a URL in a warning).

Sections: the totals and the carbon impact statement; a table of the runs; per group and per tag
a bar chart of CO2eq; then for each run (up to ``max_runs``) its figures, its provenance (power
sources and methods per component, the intensity provider chain, sources used and fallbacks,
the PUE and its source, versions, host) and plots of power per device, intensity (live against
forecast), cumulative energy and CO2eq, and energy per epoch with the prediction against the
actual.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .. import __version__
from .._redact import redact_text
from ._format import fmt_duration, fmt_sig, plural
from .aggregate import Aggregate, RunLog, aggregate
from .series import RunSeries, run_series
from .statement import statement
from .svg import PALETTE, Bars, Line, Steps, bar_chart, line_chart, nice_ticks, time_unit
from .svg import esc as _esc

__all__ = ["render_html", "write_html"]


def esc(text: object) -> str:
    """Escape text for the page: secrets redacted, control characters removed, HTML escaped."""
    return _esc(redact_text(str(text)))


#: Runs beyond this many get no per-run bar (the table lists them all).
MAX_RUN_BARS = 100
#: Tags charted when no grouping is asked for.
MAX_TAG_CHARTS = 4

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 16px 24px 48px; color: #1b1b1b; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0.4em 0 0.2em; }
h2 { font-size: 1.25rem; margin: 1.6em 0 0.4em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05rem; margin: 1.2em 0 0.4em; }
p.lead { color: #444; margin-top: 0; }
table { border-collapse: collapse; margin: 0.4em 0 1em; font-size: 0.88rem; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f6f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; background: #fafafa; }
.statement { background: #f7faf7; border-left: 4px solid #009E73; padding: 10px 14px; max-width: 80ch; }
.badge { display: inline-block; font-size: 0.75rem; padding: 1px 6px; border-radius: 8px; margin-left: 6px;
         background: #eee; color: #333; vertical-align: middle; }
.badge.warn { background: #fde7d4; color: #8a3b00; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 20px; }
figure.chart { margin: 0; padding: 6px 8px; width: 540px; border: 1px solid #e3e3e3; border-radius: 4px; \
background: #fff; }
figure.chart figcaption { font-weight: 600; font-size: 0.9rem; margin-bottom: 2px; }
figure.chart .note { font-weight: normal; color: #666; font-size: 0.8rem; }
figure.chart svg { display: block; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; }
svg .axis, svg .tickmark { stroke: #555; stroke-width: 1; }
svg .tick { font-size: 11px; fill: #444; }
svg .label { font-size: 12px; fill: #222; }
svg .series { fill: none; stroke-width: 1.8; }
ul.legend { list-style: none; margin: 4px 0 0; padding: 0; font-size: 0.8rem; }
ul.legend li { display: inline-block; margin-right: 14px; word-break: break-all; }
.swatch { display: inline-block; width: 18px; height: 0; border-top: 3px solid; vertical-align: middle;
          margin-right: 5px; }
.swatch.dashed { border-top-style: dashed; }
dl.figures { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; font-size: 0.9rem; }
dl.figures dt { color: #555; }
dl.figures dd { margin: 0; }
.empty { color: #888; font-style: italic; }
ul.notes li { margin-bottom: 0.3em; }
footer { margin-top: 3em; font-size: 0.8rem; color: #666; }
"""


def _td(value: object, num: bool = False) -> str:
    return f'<td class="num">{esc(value)}</td>' if num else f"<td>{esc(value)}</td>"


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[tuple[object, bool]]],
    total: Sequence[tuple[object, bool]] | None = None,
) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_td(v, n) for v, n in row) + "</tr>" for row in rows)
    if total is not None:
        body += '<tr class="total">' + "".join(_td(v, n) for v, n in total) + "</tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _dl(items: Sequence[tuple[str, str]]) -> str:
    return '<dl class="figures">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"


def _kwh(value: float) -> str:
    return f"{fmt_sig(value)} kWh"


def _grams(value: float) -> str:
    return f"{fmt_sig(value)} g"


# -- summary --------------------------------------------------------------------------------


def _summary(agg: Aggregate) -> str:
    t = agg.total
    items = [
        ("runs", f"{t.runs} ({t.runs_counted} counted, {t.incomplete} incomplete)"),
        ("hosts", str(t.hosts)),
        (
            "period (UTC)",
            f"{t.start_time:%Y-%m-%d %H:%M:%S} to {t.end_time:%Y-%m-%d %H:%M:%S}"
            if t.start_time and t.end_time
            else "n/a",
        ),
        ("run time (summed)", fmt_duration(t.duration_s)),
        ("IT energy (devices)", _kwh(t.it_energy_kwh)),
        ("energy (after PUE)", _kwh(t.energy_kwh)),
        ("CO2eq", _grams(t.co2eq_g)),
        ("mean intensity", f"{fmt_sig(t.intensity_g_per_kwh)} gCO2eq/kWh"),
        ("car equivalent", f"{fmt_sig(t.car_km, 3)} km ({t.car_source})"),
    ]
    items += [(f"device-hours ({c})", fmt_sig(h, 4)) for c, h in t.device_hours.items()]
    return _dl(items)


def _runs_table(agg: Aggregate, shown: set[str]) -> str:
    rows = []
    number = {r.file: i + 1 for i, r in enumerate(agg.runs)}
    for i, (run, c) in enumerate(zip(agg.runs, agg.contributions), 1):
        rep = run.report
        status = [] if rep.completed else ["incomplete"]
        if run.header.get("role") == "observer":
            status.append("observer")
        if c.counted == "none":
            status.append("duplicate of " + ", ".join(f"#{number[f]}" for f in c.duplicate_of))
        elif c.counted == "part":
            status.append("counted: " + ", ".join(c.components))
        tags = ", ".join(f"{k}={v}" for k, v in sorted(run.tags.items()))
        name = run.name
        rows.append(
            [
                (i, True),
                (name + ("" if run.file in shown else " (no detail section)"), False),
                (run.host, False),
                ("-" if run.job is None else f"{run.job}" + ("" if run.rank is None else f"/{run.rank}"), False),
                (f"{rep.start_time:%Y-%m-%d %H:%M:%S}", False),
                (fmt_duration(rep.duration_s), True),
                (fmt_sig(rep.it_energy_kwh), True),
                (fmt_sig(rep.energy_kwh), True),
                (fmt_sig(rep.co2eq_g), True),
                (fmt_sig(rep.intensity_g_per_kwh), True),
                (rep.location, False),
                (tags, False),
                ("; ".join(status) or "ok", False),
            ]
        )
    t = agg.total
    total = [
        ("", False),
        ("TOTAL", False),
        (plural(t.hosts, "host"), False),
        ("", False),
        ("", False),
        (fmt_duration(t.duration_s), True),
        (fmt_sig(t.it_energy_kwh), True),
        (fmt_sig(t.energy_kwh), True),
        (fmt_sig(t.co2eq_g), True),
        (fmt_sig(t.intensity_g_per_kwh), True),
        ("", False),
        ("", False),
        (f"{t.runs_counted} of {t.runs} counted", False),
    ]
    headers = [
        "#",
        "run log",
        "host",
        "job/rank",
        "start (UTC)",
        "duration",
        "IT kWh",
        "kWh (PUE)",
        "CO2eq g",
        "g/kWh",
        "zone",
        "tags",
        "status",
    ]
    return _table(headers, rows, total)


def _group_charts(agg: Aggregate) -> str:
    """A bar chart of CO2eq and energy per value, for each grouping and each tag key."""
    figures = []
    if 2 <= len(agg.runs) <= MAX_RUN_BARS:
        labels = [f"#{i}" for i in range(1, len(agg.runs) + 1)]
        figures.append(
            bar_chart(
                labels,
                [Bars(label="CO2eq counted (g)", values=[c.co2eq_g for c in agg.contributions], color=PALETTE[3])],
                title="CO2eq per run",
                x_label="run (# in the table above)",
                y_label="CO2eq (g)",
            )
        )
    keys = list(dict.fromkeys(g.key for g in agg.groups))
    if not keys:  # no --group-by: each tag that tells runs apart (job and rank are in the table)
        values: dict[str, set[str | None]] = {}
        for run in agg.runs:
            for k in {k for r in agg.runs for k in r.tags}:
                values.setdefault(k, set()).add(run.tags.get(k))
        keys = [f"tag:{k}" for k in sorted(values) if k not in ("job", "rank") and len(values[k]) > 1][:MAX_TAG_CHARTS]
    for key in keys:
        groups = [g for g in agg.groups if g.key == key]
        if not groups:
            groups = list(aggregate(agg.runs, group_by=[key]).groups)
        labels = [g.value if g.value is not None else "(none)" for g in groups]
        figures.append(
            bar_chart(
                labels,
                [Bars(label="CO2eq (g)", values=[g.total.co2eq_g for g in groups], color=PALETTE[3])],
                title=f"CO2eq by {key}",
                x_label=key,
                y_label="CO2eq (g)",
            )
        )
        figures.append(
            bar_chart(
                labels,
                [Bars(label="energy after PUE (kWh)", values=[g.total.energy_kwh for g in groups], color=PALETTE[0])],
                title=f"Energy by {key}",
                x_label=key,
                y_label="energy (kWh)",
            )
        )
    if not figures:
        return ""
    return '<div class="charts">' + "".join(figures) + "</div>"


# -- one run --------------------------------------------------------------------------------


def _time_axis(duration: float) -> tuple[str, float, list[tuple[float, str]]]:
    unit, scale = time_unit(duration)
    ticks = [
        (x * scale, fmt_sig(x, 3))
        for x in nice_ticks(0.0, max(duration / scale, 1e-9), 6)
        if x * scale <= duration * 1.0001
    ]
    if len(ticks) < 2:
        ticks.append((duration, fmt_sig(duration / scale, 3)))
    return f"time since start ({unit})", scale, ticks


def _run_charts(run: RunLog, series: RunSeries) -> str:
    duration = max(series.duration_s, 1e-6)
    x_label, _, ticks = _time_axis(duration)
    charts = []
    lines = [
        Line(label=label, points=pts, color=PALETTE[i % len(PALETTE)])
        for i, (label, pts) in enumerate(series.power_w.items())
    ]
    charts.append(
        line_chart(
            lines,
            title="Power per device",
            x_label=x_label,
            y_label="power (W)",
            x_range=(0.0, duration),
            x_tick_labels=ticks,
            note=f"{series.samples} samples" + (", downsampled (min and max per bin)" if series.samples > 600 else ""),
        )
    )
    styles = {"live": (PALETTE[2], False), "forecast": (PALETTE[1], True), "average": (PALETTE[6], True)}
    steps = []
    for i, ((provider, kind), segs) in enumerate(series.intensity.items()):
        color, dashed = styles.get(kind, (PALETTE[(i + 4) % len(PALETTE)], False))
        steps.append(Steps(label=f"{kind} ({provider})", segments=segs, color=color, dashed=dashed))
    charts.append(
        line_chart(
            steps=steps,
            title="Carbon intensity",
            x_label=x_label,
            y_label="intensity (gCO2eq/kWh)",
            x_range=(0.0, duration),
            x_tick_labels=ticks,
            y_from_zero=True,
            note="live against forecast, each value held until the next",
        )
    )
    charts.append(
        line_chart(
            [Line(label="energy after PUE", points=series.energy_kwh, color=PALETTE[0])],
            title="Cumulative energy",
            x_label=x_label,
            y_label="energy (kWh)",
            x_range=(0.0, duration),
            x_tick_labels=ticks,
            note=f"report: {fmt_sig(run.report.energy_kwh)} kWh",
        )
    )
    charts.append(
        line_chart(
            [Line(label="CO2eq", points=series.co2eq_g, color=PALETTE[3], markers=len(series.co2eq_g) <= 40)],
            title="Cumulative CO2eq",
            x_label=x_label,
            y_label="CO2eq (g)",
            x_range=(0.0, duration),
            x_tick_labels=ticks,
            note=f"per {fmt_sig(series.bucket_s, 3)} s interval; report: {fmt_sig(run.report.co2eq_g)} g",
        )
    )
    charts += _epoch_charts(run)
    return '<div class="charts">' + "".join(charts) + "</div>"


def _epoch_charts(run: RunLog) -> list[str]:
    rep = run.report
    if not rep.epochs:
        return []
    labels = [str(e.index + 1) for e in rep.epochs]
    refs = []
    pred = rep.prediction
    per_epoch = None
    if pred is not None and pred.epochs > 0 and pred.energy_kwh is not None:
        per_epoch = pred.energy_kwh / pred.epochs
        n = len(rep.epochs)
        refs.append(
            Line(
                label=f"predicted per epoch (after {pred.based_on} epoch{'s' if pred.based_on != 1 else ''})",
                points=[(-0.4, per_epoch), (n - 0.6, per_epoch)],
                color=PALETTE[1],
                dashed=True,
            )
        )
    out = [
        bar_chart(
            labels,
            [
                Bars(
                    label="actual energy per epoch (after PUE)",
                    values=[e.energy_kwh for e in rep.epochs],
                    color=PALETTE[0],
                )
            ],
            title="Energy per epoch",
            x_label="epoch",
            y_label="energy (kWh)",
            ref_lines=refs,
        )
    ]
    cumulative = []
    total = 0.0
    for e in rep.epochs:
        total += e.energy_kwh
        cumulative.append((float(e.index + 1), total))
    lines = [Line(label="actual", points=[(0.0, 0.0), *cumulative], color=PALETTE[0], markers=len(cumulative) <= 40)]
    note = ""
    if per_epoch is not None and pred is not None:
        lines.append(
            Line(
                label=f"predicted ({pred.epochs} epochs)",
                points=[(0.0, 0.0), (float(pred.epochs), pred.energy_kwh or 0.0)],
                color=PALETTE[1],
                dashed=True,
            )
        )
        note = (
            f"predicted total {fmt_sig(pred.energy_kwh)} kWh, actual {fmt_sig(total)} kWh over {len(rep.epochs)} epochs"
        )
    out.append(
        line_chart(
            lines,
            title="Cumulative energy by epoch: prediction against actual",
            x_label="epoch",
            y_label="energy (kWh)",
            note=note,
        )
    )
    return out


def _provenance(run: RunLog) -> str:
    rep, header = run.report, run.header
    kinds = {s.get("name"): s.get("kind") for s in header.get("sources", ()) if isinstance(s, dict)}
    rows: list[list[tuple[object, bool]]] = []
    for name, comp in rep.components.items():
        sources = ", ".join(f"{s} ({kinds.get(s) or '?'})" for s in comp.sources)
        details = "; ".join(getattr(comp, "details", ()) or ())
        extra = f"; {details}" if details else ""
        share = ""
        if comp.machine_it_energy_kwh is not None and rep.attribution == "process":
            share = f"; machine {fmt_sig(comp.machine_it_energy_kwh)} kWh IT"
        rows.append(
            [
                (f"component {name}", False),
                (f"{comp.method}: {sources}{extra}", False),
                (f"{len(comp.devices)} device(s): {', '.join(comp.devices)}", False),
                (f"{fmt_sig(comp.it_energy_kwh)} kWh IT, {fmt_sig(comp.energy_kwh)} kWh after PUE{share}", False),
            ]
        )
    for d in rep.dropped_sources:
        rows.append(
            [(f"dropped source {d.name}", False), (f"{d.component}, {d.method}", False), (d.reason, False), ("", False)]
        )
    chain = header.get("providers") or []
    rows.append(
        [
            ("intensity providers", False),
            (" > ".join(str(p) for p in chain) or rep.intensity.provider, False),
            (f"zone {rep.intensity.zone}", False),
            ("in fallback order", False),
        ]
    )
    for u in rep.intensity.used:
        year = f", data year {u.year}" if u.year else ""
        rows.append(
            [
                ("intensity used", False),
                (f"{u.source} ({u.provider})", False),
                (f"{u.kind}, {u.signal} signal, zone {u.zone}{year}"
                 + (f", values up to {u.max_age_s / 60:.0f} min past their period" if u.max_age_s >= 60 else ""),
                 False),
                (f"{u.energy_share * 100:.1f}% of the energy at {fmt_sig(u.mean_g_per_kwh)} g/kWh", False),
            ]
        )
    for f in rep.intensity.fallbacks:
        rows.append(
            [
                ("intensity fallback", False),
                (f.provider, False),
                (f.reason, False),
                (f"{f.time:%Y-%m-%d %H:%M:%S} UTC; used {f.used or 'the next provider'}", False),
            ]
        )
    rows.append([("PUE", False), (fmt_sig(rep.pue, 4), False), (rep.pue_source, False), ("", False)])
    plugins = header.get("plugins") or {}
    rows.append(
        [
            ("carbonkit", False),
            (rep.carbonkit_version, False),
            ("plugins: " + (", ".join(f"{k} {v}" for k, v in sorted(plugins.items())) or "none"), False),
            (f"schema {header.get('schema', '?')}", False),
        ]
    )
    rows.append(
        [
            ("host", False),
            (run.host, False),
            (f"pid {run.pid}; job {run.job or '-'}; rank {'-' if run.rank is None else run.rank}", False),
            (f"Python {header.get('python', '?')}; {header.get('platform', '?')}", False),
        ]
    )
    rows.append(
        [
            ("accounting", False),
            (f"attribution {rep.attribution}", False),
            (f"sampled every {header.get('interval_s', '?')} s", False),
            (f"CO2eq priced per {header.get('bucket_s', '?')} s interval", False),
        ]
    )
    table = _table(["what", "value", "detail", "more"], rows)
    warnings = ""
    if rep.warnings:
        warnings = "<h4>Warnings</h4><ul>" + "".join(f"<li>{esc(w)}</li>" for w in rep.warnings) + "</ul>"
    return table + warnings


def _run_section(index: int, run: RunLog, agg: Aggregate, max_points: int) -> str:
    rep = run.report
    c = agg.contribution(run)
    badges = ""
    if not rep.completed:
        badges += '<span class="badge warn">incomplete: killed or still running</span>'
    if c.counted == "none":
        badges += '<span class="badge warn">duplicate: not counted in the totals</span>'
    elif c.counted == "part":
        badges += f'<span class="badge warn">partly counted: {esc(", ".join(c.components))}</span>'
    epochs = f"{len(rep.epochs)}" + (f" of {rep.epochs_planned} planned" if rep.epochs_planned else "")
    items = [
        ("log", run.file),
        ("period (UTC)", f"{rep.start_time:%Y-%m-%d %H:%M:%S} to {rep.end_time:%Y-%m-%d %H:%M:%S}"),
        ("duration", fmt_duration(rep.duration_s)),
        ("IT energy", _kwh(rep.it_energy_kwh)),
        ("energy (after PUE)", _kwh(rep.energy_kwh)),
        ("CO2eq", _grams(rep.co2eq_g)),
        ("mean intensity", f"{fmt_sig(rep.intensity_g_per_kwh)} gCO2eq/kWh in {rep.location}"),
        ("epochs", epochs),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(run.tags.items())) or "none"),
    ]
    if c.excluded:
        items.append(("left out of the totals", "; ".join(f"{k}: {v}" for k, v in sorted(c.excluded.items()))))
    series = run_series(run, max_points=max_points)
    return (
        f'<section class="run" id="run-{index}"><h2>Run {index}: {esc(run.name)}{badges}</h2>'
        + _dl(items)
        + "<h3>Plots</h3>"
        + _run_charts(run, series)
        + "<h3>Provenance</h3>"
        + _provenance(run)
        + "</section>"
    )


# -- page -----------------------------------------------------------------------------------


def render_html(
    agg: Aggregate,
    *,
    title: str = "Carbon footprint report",
    max_runs: int = 20,
    max_points: int = 300,
    extra_sections: Sequence[tuple[str, str]] = (),
) -> str:
    """Return the whole page as a string.

    :param max_runs: Runs that get a detail section with plots (the first ones in the table);
        every run is in the table.
    :param max_points: Bins per plotted series (each bin keeps its lowest and highest point).
    :param extra_sections: ``(title, body)`` sections placed after the runs; the body is HTML
        the caller has escaped (see :mod:`.report_extras`).
    """
    shown_runs = list(agg.runs)[: max(max_runs, 0)]
    shown = {r.file for r in shown_runs}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{esc(title)}</h1>",
        f'<p class="lead">{esc(plural(len(agg.runs), "run log"))}, written by carbonkit {esc(__version__)}. '
        "Energy after PUE, CO2eq at the intensity in force for each interval; each device counted once "
        "per job and host.</p></header>",
        '<section id="summary"><h2>Summary</h2>',
        _summary(agg),
        "<h3>Carbon impact statement</h3>",
        f'<p class="statement">{esc(statement(agg, "text"))}</p></section>',
        '<section id="runs"><h2>Runs</h2>',
        _runs_table(agg, shown),
    ]
    if agg.notes:
        parts.append('<h3>Notes</h3><ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in agg.notes) + "</ul>")
    parts.append("</section>")
    for heading, body in extra_sections:
        parts.append(f"<section><h2>{esc(heading)}</h2>{body}</section>")
    charts = _group_charts(agg)
    if charts:
        parts.append(f'<section id="groups"><h2>By run, group and tag</h2>{charts}</section>')
    for i, run in enumerate(agg.runs, 1):
        if run.file in shown:
            parts.append(_run_section(i, run, agg, max_points))
    if len(shown_runs) < len(agg.runs):
        parts.append(f'<p class="empty">{len(agg.runs) - len(shown_runs)} more runs are in the table only.</p>')
    parts.append(
        "<footer>Power sources: <em>measured</em> (hardware counters), <em>estimated</em> (a model such as "
        "TDP times utilisation) or <em>simulated</em>. Intensity kinds: <em>live</em> (a grid operator's "
        "current value), <em>forecast</em>, <em>average</em> (a yearly average, with its data year).</footer>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(agg: Aggregate, path: str | os.PathLike[str], **kwargs: Any) -> None:
    """Write :func:`render_html` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_html(agg, **kwargs))
