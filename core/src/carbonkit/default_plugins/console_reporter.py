"""The console reporter: the paper's Listing 2, with how every number was obtained.

Writes to standard error, so a wrapped command's standard output stays its own.
Silenced by ``quiet=True`` or ``CARBONKIT_QUIET=1``. With ``progress=True`` it also prints one
line per epoch (energy and CO2eq so far, the latest prediction with its interval, the budget);
like every reporter it runs on its own thread, never on the training thread.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from .._redact import redact_text
from .._text import printable
from ..hookspecs import hookimpl
from ..protocols import ReporterBase

if TYPE_CHECKING:
    from ..config import Config
    from ..protocols import RunStart
    from ..records import BudgetExceeded, BudgetReport, Prediction, Report, Snapshot

PREFIX = "carbonkit: "


def fmt_duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{s:05.2f}"


def fmt_kwh(kwh: float) -> str:
    if kwh >= 1:
        return f"{kwh:.3f} kWh"
    if kwh >= 1e-3:
        return f"{kwh * 1e3:.3f} Wh"
    return f"{kwh * 3.6e6:.1f} J ({kwh:.3e} kWh)"


def fmt_g(grams: float) -> str:
    if grams >= 1000:
        return f"{grams / 1000:.3f} kg"
    if grams >= 0.01:
        return f"{grams:.2f} g"
    return f"{grams:.2e} g"


def _car_line(grams: float, tag: str = "") -> str:
    from ..equivalents import car_factor

    g_per_km, cite = car_factor()
    km = grams / g_per_km
    return f"  This is equivalent to {km:.3g} km travelled by car ({cite.split(' (')[0]}){tag}"


def _tag(methods: dict[str, str] | None) -> str:
    """A marker for figures that rest on anything but measurement: ' [simulated]', ' [estimated]'."""
    worst = [m for m in ("simulated", "estimated") if methods and m in methods.values()]
    return f" [{worst[0]}]" if worst else ""


def describe_start(run: RunStart) -> list[str]:
    by_component: dict[str, list[str]] = {}
    for s in run.sources:
        devices = ", ".join(s["devices"])
        by_component.setdefault(s["component"], []).append(
            f"{s['name']} [{s['method']}] with device(s) {devices}"
            + "".join(f"; {key} {value}" for key, value in (s.get("info") or {}).items())
        )
    lines = ["The following components were found:"]
    lines += [f"  {comp.upper()}: {'; '.join(descr)}" for comp, descr in by_component.items()]
    header = run.header or {}
    if header.get("role") == "observer":
        lines.append(f"  none measured here: {header.get('role_reason') or 'another process measures this host'} "
                     "(this process records its epochs only)")
    elif header.get("role") == "measurer":
        lines.append(f"  this process measures host {header.get('host')} for job {header.get('job')} "
                     f"({header.get('role_reason')})")
    for d in run.dropped:
        lines.append(f"  not used: {d.name} ({d.component}, {d.method}): {d.reason}")
    how = (run.header or {}).get("location_source")
    found = f" ({how})" if isinstance(how, str) and how not in ("argument", "default") else ""
    lines.append(f"  Location {run.location}{found}; PUE {run.pue:g} ({run.pue_source})")
    return lines


def _methods(methods: dict[str, str]) -> str:
    return ", ".join(f"{comp} {method}" for comp, method in methods.items()) or "no source"


def describe_prediction(p: Prediction, methods: dict[str, str] | None = None, pue: float | None = None) -> list[str]:
    how = f"; {_methods(methods)}" if methods else ""
    tag = _tag(methods)
    if pue is None and p.energy_kwh and p.it_energy_kwh:
        pue = p.energy_kwh / p.it_energy_kwh
    pue_text = f" {pue:g}" if pue is not None else ""
    return [
        f"Predicted consumption for {p.epochs} epoch(s) (predictor {p.predictor!r}, "
        f"from {p.based_on} monitored epoch(s)):",
        f"  Time:   {fmt_duration(p.duration_s)}",
        f"  Energy: {fmt_kwh(p.energy_kwh or 0.0)} (IT {fmt_kwh(p.it_energy_kwh)} x PUE{pue_text}{how})",
        f"  CO2eq:  {fmt_g(p.co2eq_g or 0.0)} at {p.intensity_g_per_kwh or 0.0:.1f} gCO2eq/kWh "
        f"({p.intensity_kind}: {p.intensity_source}){tag}",
        _car_line(p.co2eq_g or 0.0, tag),
    ] + _interval_lines(p)


def _interval_lines(p: Prediction) -> list[str]:
    if p.low is None or p.high is None or p.energy_low_kwh is None or p.energy_high_kwh is None:
        return []
    return [
        f"  90 % interval: CO2eq {fmt_g(p.low)} to {fmt_g(p.high)}, energy {fmt_kwh(p.energy_low_kwh)} to "
        f"{fmt_kwh(p.energy_high_kwh)} ({p.interval or 'as the predictor computed it'}); updated after every epoch",
    ]


def describe_report(r: Report, warnings: bool = True) -> list[str]:
    n = len(r.epochs)
    head = "Actual consumption" + (f" for {n} epoch(s)" if n else "")
    if r.job_total is not None:
        head = f"Job {r.job} total, {len(r.hosts)} host(s), made from the {r.job_total}" + (
            f", {n} epoch(s) of rank 0" if n else "")
        if r.job_total == "this host only":
            head = f"Job {r.job}: this host only (the other hosts did not answer in time)"
    elif r.role is not None:
        head += f" ({r.role} of job {r.job} on this host)"
    if not r.completed:
        head += " (run did not stop: recovered from its log)"
    lines = [f"{head}:", f"  Time:   {fmt_duration(r.duration_s)}"]
    lines.append(
        f"  Energy: {fmt_kwh(r.energy_kwh)} (IT {fmt_kwh(r.it_energy_kwh)} x PUE {r.pue:g}; {_methods(r.methods)})"
    )
    for name, c in r.components.items():
        lines.append(
            f"    {name}: {fmt_kwh(c.it_energy_kwh)} {c.method} ({', '.join(c.sources)}; "
            f"{len(c.devices)} device(s))"
        )
    tag = _tag(r.methods)
    lines.append(f"  CO2eq:  {fmt_g(r.co2eq_g)} at {r.intensity_g_per_kwh:.1f} gCO2eq/kWh in {r.location}{tag}")
    for use in r.intensity.used:
        year = f", {use.year}" if use.year else ""
        age = f"; values up to {fmt_duration(use.max_age_s)} old" if use.max_age_s >= 60 else ""
        lines.append(
            f"    intensity: {use.kind}{year}, {use.signal} signal, {use.source} via {use.provider} "
            f"({use.energy_share:.0%} of the energy{age})"
        )
    shares = r.intensity.signal_shares
    if r.intensity.signal != "average" or any(k != "average" for k in shares):
        parts = ", ".join(f"{k} {v:.0%}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1]))
        lines.append(f"    signal: {r.intensity.signal} asked; energy priced by signal: {parts or 'none'}")
    for fb in r.intensity.fallbacks:
        lines.append(f"    fallback: {fb.provider} failed ({fb.reason}); used {fb.used or 'the next provider'}")
    for h in r.hosts:
        ranks = ",".join(str(x) for x in h.ranks)
        lines.append(
            f"    host {h.host} (measured by rank {h.rank}; ranks {ranks}): {fmt_kwh(h.energy_kwh)}, "
            f"{fmt_g(h.co2eq_g)} at {h.intensity_g_per_kwh:.1f} gCO2eq/kWh in {h.location}"
        )
    lines.append(_car_line(r.co2eq_g, tag))
    if r.budget is not None:
        from ..report_text import describe_budget

        lines.append(f"  Budget: {describe_budget(r.budget)}")
    if warnings:
        lines += [f"  warning: {w}" for w in r.warnings]
    for note in r.cut_short:
        lines.append(f"  cut short: {note}")
    if r.ended_by:
        lines.append(f"  ended by {r.ended_by}")
    return lines


def describe_progress(s: Snapshot, budget: BudgetReport | None) -> str:
    """One line per epoch: ``epoch 3/10: 1.2 Wh, 0.45 g CO2eq so far; predicted ...; budget ...``."""
    planned = f"/{s.epochs_planned}" if s.epochs_planned else ""
    line = f"epoch {s.epochs}{planned}: {fmt_kwh(s.energy_kwh)}, {fmt_g(s.co2eq_g)} CO2eq"
    line += f" in {fmt_duration(s.duration_s)}"
    p = s.prediction
    if p is not None:
        interval = f" ({fmt_g(p.low)} to {fmt_g(p.high)})" if p.low is not None and p.high is not None else ""
        line += f"; predicted {fmt_g(p.co2eq_g or 0.0)}{interval}, {fmt_kwh(p.energy_kwh or 0.0)}"
    if budget is not None:
        limits = []
        if budget.co2eq_g is not None:
            limits.append(f"{fmt_g(budget.co2eq_g)}")
        if budget.energy_kwh is not None:
            limits.append(fmt_kwh(budget.energy_kwh))
        state = "OVER" if budget.exceeded is not None else "within"
        line += f"; budget {' / '.join(limits)}: {state}"
        if budget.exceeded is not None:
            line += f" ({budget.exceeded.basis})"
    return line


class ConsoleReporter(ReporterBase):
    """Print the components found, the prediction and the actual footprint."""

    name = "console"

    def __init__(self, stream: TextIO | None = None, progress: bool = False) -> None:
        self.stream = stream
        self.progress = progress
        self.methods: dict[str, str] = {}
        self.pue: float | None = None
        self.observer = False

    def _print(self, lines: list[str]) -> None:
        out = self.stream or sys.stderr
        out.write("".join(f"{PREFIX}{printable(redact_text(line))}\n" for line in lines))
        out.flush()

    def on_start(self, run: RunStart) -> None:
        self.methods = {s["component"]: s["method"] for s in run.sources}
        self.pue = run.pue
        self.observer = (run.header or {}).get("role") == "observer"
        self._print(describe_start(run))

    def on_warning(self, message: str) -> None:
        self._print([f"warning: {message}"])

    def on_prediction(self, prediction: Prediction) -> None:
        if self.observer:  # it measures nothing: its prediction would be zero
            return
        self._print(describe_prediction(prediction, self.methods, self.pue))

    def on_progress(self, snapshot: Snapshot, budget: BudgetReport | None) -> None:
        if self.progress:
            self._print([describe_progress(snapshot, budget)])

    def on_budget_exceeded(self, event: BudgetExceeded) -> None:
        pass  # the tracker's warning says it (with "warn" and "stop"); a function handles it otherwise

    def on_report(self, report: Report) -> None:
        self._print(describe_report(report, warnings=False))  # each was printed as it came


@hookimpl(trylast=True)
def register_reporters(config: Config) -> list[ConsoleReporter]:
    return [] if config.quiet else [ConsoleReporter(progress=config.progress)]
