"""What ``carbonkit report`` adds to its tables on request: whole-run estimates of partial runs
(``--extrapolate``, ``--progress``) and the Software Carbon Intensity of runs that counted their
functional units, per run and in total per functional unit (with ``--embodied``, their embodied
part computed from the figures given).

:func:`extras` computes both from an :class:`~carbonkit.reports.aggregate.Aggregate`; the
renderers give them as text lines, a JSON object and HTML sections.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from ..errors import ConfigError
from ..records import tuple_of
from ._format import fmt_sig
from .aggregate import Aggregate
from .extrapolate import Extrapolation, extrapolate_report
from .sci import SCI, SCITotal, sci_from_report, sci_totals

__all__ = ["Extras", "extras", "extras_html", "extras_json", "extras_text"]


@frozen(kw_only=True)
class Extras:
    """Extrapolations (one per run that could be extrapolated), SCI per run and totals, notes."""

    extrapolated: tuple[Extrapolation, ...] = field(converter=tuple_of, default=())
    sci_runs: tuple[tuple[str, SCI], ...] = field(converter=tuple_of, default=())
    sci_totals: tuple[SCITotal, ...] = field(converter=tuple_of, default=())
    notes: tuple[str, ...] = field(converter=tuple_of, default=())


def extras(
    agg: Aggregate,
    *,
    extrapolate: bool = False,
    progress: float | str | None = None,
    embodied: Mapping[str, Any] | None = None,
) -> Extras:
    """Extrapolate partial runs (all runs with ``progress``, else those with planned epochs that
    did not finish them) and gather each run's SCI.

    :param embodied: Embodied data per component: the SCI of every run that counted its units is
        recomputed with it (its ``M`` then says where each figure came from).
    :raises ConfigError: ``progress`` given and not a fraction in (0, 1].
    """
    notes: list[str] = []
    out: list[Extrapolation] = []
    if extrapolate or progress is not None:
        for run in agg.runs:
            rep = run.report
            if progress is None and rep.epochs_planned and len(rep.epochs) >= rep.epochs_planned:
                continue  # finished every planned epoch: nothing to extrapolate
            try:
                out.append(extrapolate_report(rep, progress, file=run.file))
            except ConfigError as exc:
                if progress is not None:
                    raise
                notes.append(f"{run.name}: not extrapolated ({exc})")
    pairs: list[tuple[str, SCI]] = []
    counted: list[tuple[str, SCI]] = []
    for run, contribution in zip(agg.runs, agg.contributions):
        rep = run.report
        value = rep.sci
        if embodied and rep.units and rep.functional_unit:
            value = sci_from_report(rep, rep.units, rep.functional_unit, embodied)
        if value is None:
            continue
        pairs.append((run.file, value))
        if contribution.counted == "none":
            notes.append(f"{run.name}: SCI left out of the total (its devices were counted from another log)")
        else:
            counted.append((run.file, value))
    return Extras(extrapolated=out, sci_runs=pairs, sci_totals=sci_totals(counted), notes=notes)


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{fmt_sig(low)} to {fmt_sig(high)}"


def extras_text(x: Extras) -> list[str]:
    """Lines for the text output (empty when nothing was asked or found)."""
    lines: list[str] = []
    if x.extrapolated:
        lines.append("")
        lines.append("Whole-run estimates from partial runs (energy after PUE):")
        for e in x.extrapolated:
            name = os.path.basename(e.file or "")
            lines.append(
                f"  {name}: measured {fmt_sig(e.measured_energy_kwh)} kWh, {fmt_sig(e.measured_co2eq_g)} g at "
                f"{100 * e.progress:.4g}% done -> whole run {fmt_sig(e.energy_kwh)} kWh "
                f"(95%: {_interval(e.energy_low_kwh, e.energy_high_kwh)}), {fmt_sig(e.co2eq_g)} g "
                f"(95%: {_interval(e.co2eq_low_g, e.co2eq_high_g)})"
            )
            lines.append(f"    method: {e.description}; {e.interval}")
    if x.sci_runs:
        lines.append("")
        lines.append("Software Carbon Intensity, SCI = (E x I + M) / R:")
        for file, s in x.sci_runs:
            lines.append(
                f"  {os.path.basename(file)}: {fmt_sig(s.sci_g_per_unit)} g per {s.functional_unit} "
                f"({fmt_sig(s.operational_g)} g operational + {fmt_sig(s.embodied_g)} g embodied, "
                f"R = {fmt_sig(s.units)}); {s.note}"
            )
            for share in s.embodied:
                lines.append(f"    embodied {share.component}: {fmt_sig(share.embodied_g)} g ({share.devices} x "
                             f"{fmt_sig(share.kgco2e_per_device)} kg over {fmt_sig(share.lifetime_years)} years; "
                             f"source: {share.source or 'not given'})")
        for t in x.sci_totals:
            lines.append(
                f"  TOTAL per {t.functional_unit} ({t.runs} runs): {fmt_sig(t.sci_g_per_unit)} g per "
                f"{t.functional_unit} ({fmt_sig(t.operational_g)} g operational + {fmt_sig(t.embodied_g)} g embodied, "
                f"R = {fmt_sig(t.units)}); embodied sources: {'; '.join(t.embodied_sources) or 'none given'}"
            )
    lines += [f"Note: {n}" for n in x.notes]
    return lines


def extras_json(x: Extras) -> dict[str, Any]:
    """``extrapolated`` and ``sci`` (``runs``: each with its ``file``; ``totals``), and notes."""
    return {
        "extrapolated": [e.to_dict() for e in x.extrapolated],
        "sci": {
            "runs": [{"file": f, **s.to_dict()} for f, s in x.sci_runs],
            "totals": [t.to_dict() for t in x.sci_totals],
        },
        "extra_notes": list(x.notes),
    }


def extras_html(x: Extras) -> list[tuple[str, str]]:
    """(title, HTML body) sections for the page; every string escaped."""
    from .html import _table

    sections = []
    if x.extrapolated:
        rows = [
            [
                (os.path.basename(e.file or ""), False), (f"{100 * e.progress:.4g}%", True),
                (fmt_sig(e.measured_energy_kwh), True), (fmt_sig(e.energy_kwh), True),
                (_interval(e.energy_low_kwh, e.energy_high_kwh), True), (fmt_sig(e.measured_co2eq_g), True),
                (fmt_sig(e.co2eq_g), True), (_interval(e.co2eq_low_g, e.co2eq_high_g), True),
                (f"{e.description}; {e.interval}", False),
            ]
            for e in x.extrapolated
        ]
        sections.append(("Whole-run estimates from partial runs", _table(
            ["run", "done", "kWh measured", "kWh whole run", "95%", "g measured", "g whole run", "95%", "method"], rows
        )))
    if x.sci_runs:
        rows = [
            [
                (os.path.basename(f), False), (s.functional_unit, False), (fmt_sig(s.units), True),
                (fmt_sig(s.operational_g), True), (fmt_sig(s.embodied_g), True), (fmt_sig(s.sci_g_per_unit), True),
                ("; ".join(f"{e.component}: {e.source or 'not given'}" for e in s.embodied) or s.note, False),
            ]
            for f, s in x.sci_runs
        ]
        total = [
            [
                (f"TOTAL ({t.runs} runs)", False), (t.functional_unit, False), (fmt_sig(t.units), True),
                (fmt_sig(t.operational_g), True), (fmt_sig(t.embodied_g), True), (fmt_sig(t.sci_g_per_unit), True),
                ("; ".join(t.embodied_sources) or "no embodied data", False),
            ]
            for t in x.sci_totals
        ]
        sections.append(("Software Carbon Intensity (E x I + M) / R", _table(
            ["run", "functional unit", "R", "E x I g", "M g", "g per unit", "embodied source"], [*rows, *total]
        )))
    return sections

