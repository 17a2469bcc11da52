"""A report as a few readable lines (``str(report)``) and as a small HTML table (notebooks).

Both say how each figure was obtained: the method per component, the intensity's kind and
source, the PUE's source. The HTML table keeps the provenance one click away, in a
``<details>`` element; every text in it is HTML-escaped.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .default_plugins.console_reporter import fmt_duration, fmt_g, fmt_kwh

if TYPE_CHECKING:
    from .records import BudgetReport, Prediction, Report

__all__ = ["describe_budget", "describe_prediction_line", "report_html", "report_lines"]


def _intensity_line(r: Report) -> str:
    if not r.intensity.used:
        return f"{r.intensity_g_per_kwh:.1f} gCO2eq/kWh in {r.location} (no intensity source priced the run)"
    main = r.intensity.used[0]
    year = f", {main.year}" if main.year else ""
    more = f"; {len(r.intensity.used) - 1} more source(s)" if len(r.intensity.used) > 1 else ""
    return (
        f"{r.intensity_g_per_kwh:.1f} gCO2eq/kWh in {r.location} ({main.kind}{year}: {main.source} via "
        f"{main.provider}, {main.energy_share:.0%} of the energy{more})"
    )


def _methods_line(r: Report) -> str:
    parts = [f"{name} {c.method} ({', '.join(c.sources)})" for name, c in r.components.items()]
    return "; ".join(parts) or "no power source"


def describe_prediction_line(p: Prediction) -> str:
    """``12.3 g CO2eq, 4.5 Wh, 0:10:00 for 10 epochs (8.1 to 15.2 g), predictor 'adaptive' after 3``."""
    interval = f" ({fmt_g(p.low)} to {fmt_g(p.high)})" if p.low is not None and p.high is not None else ""
    return (
        f"{fmt_g(p.co2eq_g or 0.0)} CO2eq{interval}, {fmt_kwh(p.energy_kwh or 0.0)}, "
        f"{fmt_duration(p.duration_s)} for {p.epochs} epoch(s); predictor {p.predictor!r} after {p.based_on}"
    )


def describe_budget(b: BudgetReport) -> str:
    """The budget in one line: the limits, whether and how it was exceeded, whether training stopped."""
    limits = []
    if b.co2eq_g is not None:
        limits.append(f"{fmt_g(b.co2eq_g)} CO2eq")
    if b.energy_kwh is not None:
        limits.append(fmt_kwh(b.energy_kwh))
    text = " and ".join(limits) or "none"
    action = {"warn": "warn", "stop": "stop", "callable": "call a function"}[b.action]
    text += f" (on_over_budget: {action})"
    ex = b.exceeded
    if ex is None:
        text += "; not exceeded"
    else:
        unit = "g" if ex.budget == "co2eq_g" else "kWh"
        text += (
            f"; exceeded by the {ex.basis} {'CO2eq' if ex.budget == 'co2eq_g' else 'energy'} "
            f"({ex.value:.4g} {unit}, {ex.over_by_fraction:.0%} over) after {ex.epoch} epoch(s), {ex.t_s:.1f} s in"
        )
    if b.stopped:
        text += f"; training stopped after {b.stopped_at_epoch} epoch(s)"
    elif ex is not None:
        text += "; training was not stopped"
    return text


def report_lines(r: Report) -> list[str]:
    """The report in a few lines (``str(report)``)."""
    n = len(r.epochs)
    head = "carbonkit report" + (f": {n} epoch(s)" if n else "") + f" in {fmt_duration(r.duration_s)}"
    if not r.completed:
        head += " (recovered from the log of a run that did not stop)"
    lines = [
        head,
        f"  Energy:    {fmt_kwh(r.energy_kwh)} (IT {fmt_kwh(r.it_energy_kwh)} x PUE {r.pue:g})",
        f"  CO2eq:     {fmt_g(r.co2eq_g)}",
        f"  Intensity: {_intensity_line(r)}",
        f"  Measured:  {_methods_line(r)}",
    ]
    latest = r.predictions[-1] if r.predictions else r.prediction
    if latest is not None:
        lines.append(f"  Predicted: {describe_prediction_line(latest)}")
    if r.budget is not None:
        lines.append(f"  Budget:    {describe_budget(r.budget)}")
    if r.warnings:
        lines.append(f"  {len(r.warnings)} warning(s); the first: {r.warnings[0]}")
    return lines


def report_html(r: Report) -> str:
    """A small HTML table of the report, its provenance in a ``<details>`` element."""
    e = html.escape
    rows = [
        ("Duration", f"{fmt_duration(r.duration_s)}" + (f", {len(r.epochs)} epoch(s)" if r.epochs else "")),
        ("Energy", f"{fmt_kwh(r.energy_kwh)} (IT {fmt_kwh(r.it_energy_kwh)} x PUE {r.pue:g})"),
        ("CO2eq", fmt_g(r.co2eq_g)),
        ("Intensity", _intensity_line(r)),
        ("Measured", _methods_line(r)),
    ]
    latest = r.predictions[-1] if r.predictions else r.prediction
    if latest is not None:
        rows.append(("Predicted", describe_prediction_line(latest)))
    if r.budget is not None:
        rows.append(("Budget", describe_budget(r.budget)))
    body = "".join(f"<tr><th style='text-align:left'>{e(k)}</th><td style='text-align:left'>{e(v)}</td></tr>"
                   for k, v in rows)
    details = [f"PUE {r.pue:g}: {r.pue_source}", f"Location {r.location}"
               + (f" (from {r.location_source})" if r.location_source else "")]
    for use in r.intensity.used:
        year = f", data year {use.year}" if use.year else ""
        details.append(
            f"Intensity: {use.kind}{year}, {use.source} via {use.provider} for {use.zone}: "
            f"{use.mean_g_per_kwh:.1f} gCO2eq/kWh on {use.energy_share:.0%} of the energy"
        )
    for fb in r.intensity.fallbacks:
        details.append(f"Fallback: {fb.provider} failed ({fb.reason}); used {fb.used or 'the next provider'}")
    for name, c in r.components.items():
        details.append(f"{name}: {fmt_kwh(c.it_energy_kwh)} IT, {c.method}, {', '.join(c.sources)}; "
                       f"{len(c.devices)} device(s)" + "".join(f"; {d}" for d in c.details))
    for d in r.dropped_sources:
        details.append(f"Not used: {d.name} ({d.component}, {d.method}): {d.reason}")
    if latest is not None and latest.interval:
        details.append(f"Prediction interval: {latest.interval}")
    details += [f"Warning: {w}" for w in r.warnings]
    details += [f"Cut short: {c}" for c in r.cut_short]
    details.append(f"carbonkit {r.carbonkit_version}, {r.start_time.isoformat()} to {r.end_time.isoformat()}")
    items = "".join(f"<li>{e(d)}</li>" for d in details)
    return (
        "<div class='carbonkit-report'><table>"
        f"<caption style='text-align:left'><b>carbonkit report</b></caption>{body}</table>"
        f"<details><summary>Provenance</summary><ul>{items}</ul></details></div>"
    )
