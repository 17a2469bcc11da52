"""A carbon impact statement for a paper's appendix, written from run logs.

The paragraph gives the energy (before and after PUE), the CO2eq, an everyday equivalent (km
driven by an average new car in the EU, with the year and source of the factor), how each
component's energy was obtained (the figures are called "measured" only when every component
counted was measured; otherwise the paragraph says "measured and estimated", "simulated"...,
and names the components and the runs whose energy was estimated or simulated), where the
carbon intensity came from (source, kind and data year, with the share of the energy each
priced), the PUE and its source, runs that did not stop, and the carbonkit version that
measured the runs; the other everyday equivalents registered through ``register_equivalents``
that apply to the runs' zones (the US EPA figures for US zones, built in); and, when asked, the
social cost of carbon (:mod:`carbonkit.reports.social_cost`). It depends only on the logs, the
tables shipped with carbonkit and the installed plugins' equivalents, so the same logs always
give the same words.

Formats: ``text`` (plain), ``markdown`` (headline figures in bold), ``latex`` (special
characters escaped, CO$_2$). In every format, text from the logs loses control characters and
escape sequences (:func:`carbonkit._text.printable`) and secret-looking values
(:mod:`carbonkit._redact`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._redact import redact_text
from .._text import printable
from ..records import METHODS
from ._format import fmt_sig, plural
from .aggregate import Aggregate

if TYPE_CHECKING:
    from ..equivalents import Equivalent

__all__ = ["FORMATS", "applicable_equivalents", "installed_equivalents", "statement"]

FORMATS = ("text", "markdown", "latex")

_KIND_WORDS = {"live": "live values", "forecast": "forecasts", "average": "a yearly average"}
_SOURCE_KIND = {"energy": "an energy counter", "power": "power readings integrated over time"}
_COMPONENT_NAMES = {"cpu": "CPU", "gpu": "GPU", "dram": "DRAM", "tpu": "TPU", "npu": "NPU"}

_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}

class _Style:
    """How one output format escapes text, marks emphasis and writes CO2."""

    def __init__(self, fmt: str) -> None:
        if fmt not in FORMATS:
            from ..errors import ConfigError

            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.fmt = fmt

    def esc(self, text: str) -> str:
        text = printable(redact_text(str(text)), single_line=True)
        if self.fmt == "latex":
            return "".join(_LATEX.get(ch, ch) for ch in text)
        if self.fmt == "markdown":
            return "".join("\\" + ch if ch in "\\`*_[]<>#|&!~" else ch for ch in text)
        return text

    def strong(self, text: str) -> str:
        if self.fmt == "markdown":
            return f"**{text}**"
        if self.fmt == "latex":
            return rf"\textbf{{{text}}}"
        return text

    def url(self, url: str) -> str:
        if self.fmt == "latex":
            return rf"\url{{{url}}}"
        if self.fmt == "markdown":
            return f"<{url}>"
        return url

    @property
    def co2(self) -> str:
        return "CO$_2$" if self.fmt == "latex" else "CO2"

    @property
    def pct(self) -> str:
        return r"\%" if self.fmt == "latex" else "%"

def _energy(kwh: float) -> str:
    return f"{fmt_sig(kwh, 3)} kWh"

def _mass(grams: float) -> str:
    if grams >= 1e6:
        return f"{fmt_sig(grams / 1e6, 3)} t"
    if grams >= 1e3:
        return f"{fmt_sig(grams / 1e3, 3)} kg"
    return f"{fmt_sig(grams, 3)} g"

def _distance(km: float) -> str:
    return f"{fmt_sig(km, 3)} km" if km >= 1 else f"{fmt_sig(km * 1000, 3)} m"

def _hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{fmt_sig(seconds / 3600, 3)} hours"
    if seconds >= 60:
        return f"{fmt_sig(seconds / 60, 3)} minutes"
    return f"{fmt_sig(seconds, 3)} seconds"

def _join(items: Sequence[str], last: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]

def _component_label(name: str) -> str:
    return _COMPONENT_NAMES.get(name, name)

def _method_runs(agg: Aggregate) -> dict[str, dict[str, int]]:
    """Component to method to the number of counted runs whose energy of it was so obtained."""
    per: dict[str, dict[str, int]] = {}
    for run, c in zip(agg.runs, agg.contributions):
        for name in c.components:
            method = run.report.components[name].method
            counts = per.setdefault(name, {})
            counts[method] = counts.get(method, 0) + 1
    return per


def _method_order(methods: set[str]) -> list[str]:
    known = [m for m in METHODS if m in methods]
    return known + sorted(methods - set(known))


def _obtained(agg: Aggregate, s: _Style) -> str:
    """How the figures were obtained, in words: "measured", "measured and estimated"..."""
    methods = {m for counts in _method_runs(agg).values() for m in counts}
    if not methods:
        return "recorded"
    return _join([s.esc(m) for m in _method_order(methods)])


def _not_measured(agg: Aggregate, s: _Style) -> str:
    """Which components' energy was not measured, in how many runs; "" when all was."""
    per = _method_runs(agg)
    clauses = []
    measured_any = False
    for name in sorted(per):
        counts = per[name]
        total = sum(counts.values())
        measured_any = measured_any or "measured" in counts
        for method in _method_order(set(counts) - {"measured"}):
            runs = counts[method]
            if agg.total.runs_counted <= 1:
                where = ""
            elif runs == total == agg.total.runs_counted:
                where = f" in all {total} runs"
            elif runs == total:
                where = f" in {plural(runs, 'run')}"
            else:
                where = f" in {runs} of {plural(total, 'run')}"
            clauses.append(f"the {s.esc(_component_label(name))} energy was {s.esc(method)}{where}")
    if not clauses:
        return ""
    lead = "Not every figure is a measurement" if measured_any else "None of these figures is a measurement"
    text = f"{lead}: {_join(clauses)}."
    if any("simulated" in counts for counts in per.values()):
        text += " Simulated energy comes from a simulated power source: no hardware was read for it."
    return text


def _methods(agg: Aggregate, s: _Style) -> str:
    """How each component's energy was obtained, by which sources, in how many runs."""
    per: dict[str, dict[str, dict[str, Any]]] = {}  # component -> method -> {runs, sources, details}
    for run, c in zip(agg.runs, agg.contributions):
        kinds = {src.get("name"): src.get("kind") for src in run.header.get("sources", ()) if isinstance(src, dict)}
        for name in c.components:
            comp = run.report.components[name]
            entry = per.setdefault(name, {}).setdefault(comp.method, {"runs": 0, "sources": {}, "details": set()})
            entry["runs"] += 1
            for src in comp.sources:
                entry["sources"].setdefault(src, kinds.get(src))
            entry["details"].update(getattr(comp, "details", ()) or ())
    clauses = []
    for name in sorted(per):
        methods = per[name]
        parts = []
        for method in sorted(methods):
            entry = methods[method]
            sources = [
                f"{s.esc(src)} ({_SOURCE_KIND[kind]})" if kind in _SOURCE_KIND else s.esc(src)
                for src, kind in sorted(entry["sources"].items())
            ]
            part = method + (f" by {_join(sources)}" if sources else "")
            details = sorted(entry["details"])
            if details:
                part += f" [{'; '.join(s.esc(d) for d in details)}]"
            if len(methods) > 1:
                part += f" in {plural(entry['runs'], 'run')}"
            parts.append(part)
        clauses.append(f"{s.esc(_component_label(name))} {_join(parts)}")
    if not clauses:
        return ""
    return "Energy per component: " + "; ".join(clauses) + "."


def _intensity(agg: Aggregate, s: _Style) -> str:
    t = agg.total
    if not t.intensity_sources or t.energy_kwh <= 0:
        return "No carbon intensity was recorded."
    parts = []
    for src in t.intensity_sources:
        share = src["energy_kwh"] / t.energy_kwh * 100
        year = f", data year {src['year']}" if src.get("year") else ""
        kind = _KIND_WORDS.get(src["kind"], src["kind"])
        if src.get("signal", "average") != "average":
            kind = f"{kind}, {src['signal']} signal"
        parts.append(
            f"{s.esc(src['source'])} ({kind} for zone {s.esc(src['zone'])}{year}, through "
            f"{s.esc(src['provider'])}) for {share:.1f}{s.pct} of the energy"
        )
    text = (
        f"Each interval of the runs was priced at the carbon intensity in force for it: {_join(parts)}; "
        f"the energy-weighted mean is {fmt_sig(t.intensity_g_per_kwh, 4)} g{s.co2}eq/kWh."
    )
    fallbacks: dict[str, int] = {}
    for run in agg.runs:
        for f in run.report.intensity.fallbacks:
            fallbacks[f.provider] = fallbacks.get(f.provider, 0) + 1
    if fallbacks:
        failed = _join([f"{s.esc(p)} ({plural(n, 'time')})" for p, n in sorted(fallbacks.items())])
        text += f" Intensity providers failed during the runs ({failed}); the next provider in line was used instead."
    return text

def _pue(agg: Aggregate, s: _Style) -> str:
    pues: dict[tuple[float, str], int] = {}
    for run, c in zip(agg.runs, agg.contributions):
        if c.counted != "none":
            key = (run.report.pue, run.report.pue_source)
            pues[key] = pues.get(key, 0) + 1
    if len(pues) == 1:
        (pue, source), = pues
        return f"a power usage effectiveness (PUE) of {fmt_sig(pue, 4)} [{s.esc(source)}]"
    items = [f"{fmt_sig(p, 4)} in {plural(n, 'run')} [{s.esc(src)}]" for (p, src), n in sorted(pues.items())]
    return f"the power usage effectiveness (PUE) of each run's data centre: {_join(items)}"

def _car_sentence(agg: Aggregate, s: _Style) -> str:
    t = agg.total
    if t.car_g_per_km <= 0:
        return ""
    factor = f"{fmt_sig(t.car_g_per_km, 4)} g{s.co2}/km"
    if t.car_year is None:
        return f"That is about as much {s.co2} as a car emitting {factor} emits over {_distance(t.car_km)}."
    where = "European Environment Agency" + (f", {s.url(t.car_url)}" if t.car_url else "")
    return (
        f"That is about as much {s.co2} as an average new car registered in the EU in {t.car_year} emits over "
        f"{_distance(t.car_km)} ({factor}; {where})."
    )

def installed_equivalents() -> list[Equivalent]:
    """Every equivalent the installed plugins register (``register_equivalents``), built-in ones included."""
    from ..config import Config
    from ..plugins import collect_equivalents, make_plugin_manager

    return list(collect_equivalents(make_plugin_manager(), Config.from_env()).objects)


def applicable_equivalents(agg: Aggregate, equivalents: Sequence[Equivalent]) -> list[Equivalent]:
    """The equivalents that apply to the zones of every run counted, but the EEA car (which the
    statement gives from the logs' own factor)."""
    from ..equivalents import equivalents_for

    zones = [run.report.location for run, c in zip(agg.runs, agg.contributions) if c.counted != "none"]
    if not zones:
        return []
    return [e for e in equivalents_for(zones, equivalents) if e.name != "eea_new_car"]


def _equivalents_sentence(agg: Aggregate, s: _Style, equivalents: Sequence[Equivalent]) -> str:
    grams = agg.total.co2eq_g
    chosen = applicable_equivalents(agg, equivalents)
    if grams <= 0 or not chosen:
        return ""
    parts = []
    for e in chosen:
        year = f", data year {e.year}" if e.year is not None else ""
        url = f", {s.url(e.url)}" if e.url else ""
        parts.append(
            f"{fmt_sig(e.amount(grams), 3)} {s.esc(e.label)} ({fmt_sig(e.g_per_unit, 4)} g{s.co2}eq per "
            f"{s.esc(e.unit)}; {s.esc(e.source)}{year}{url})"
        )
    return f"It is also about as much {s.co2}eq as {_join(parts, 'or')}."


def _social_cost_sentence(agg: Aggregate, s: _Style) -> str:
    from .social_cost import EPA_2023_SC_CO2 as scc

    cost = scc.cost(agg.total.co2eq_g)
    return (
        f"At a social cost of carbon of {fmt_sig(scc.usd_per_t, 4)} US dollars ({scc.dollar_year} dollars) per "
        f"metric ton of {s.co2} emitted in {scc.emission_year} ({s.esc(scc.source)}, {s.esc(scc.discount_rate)}; "
        f"a global estimate, not specific to a country, {s.url(scc.url)}), applied to the {s.co2}eq, these "
        f"emissions stand for about {fmt_sig(cost, 3)} US dollars of climate damages."
    )


def statement(
    agg: Aggregate,
    fmt: str = "text",
    *,
    subject: str = "The experiments reported here",
    equivalents: Sequence[Equivalent] | None = None,
    social_cost: bool = False,
) -> str:
    """Write the carbon impact statement for the runs of ``agg``.

    :param agg: From :func:`~carbonkit.reports.aggregate.aggregate`.
    :param fmt: ``text``, ``markdown`` or ``latex``.
    :param subject: How the paragraph names the work.
    :param equivalents: The everyday equivalents to choose from (default: those the installed
        plugins register, :func:`installed_equivalents`); those applying to the zones of every
        run counted are given, besides the EEA car.
    :param social_cost: Also give the social cost of carbon of the emissions
        (:data:`~carbonkit.reports.social_cost.EPA_2023_SC_CO2`).
    :raises ConfigError: for an unknown format.
    """
    s = _Style(fmt)
    t = agg.total
    when = ""
    if t.start_time is not None and t.end_time is not None:
        first, last = t.start_time.strftime("%Y-%m-%d"), t.end_time.strftime("%Y-%m-%d")
        when = f" on {first}" if first == last else f" between {first} and {last}"
    hosts = plural(t.hosts, "machine")
    obtained = _obtained(agg, s)
    sentences = [
        f"{s.esc(subject)} used {s.strong(_energy(t.energy_kwh))} of electricity and emitted "
        f"{s.strong(_mass(t.co2eq_g) + ' ' + s.co2 + 'eq')}, {obtained} by carbonkit over "
        f"{plural(t.runs_counted, 'run')} on {hosts}{when} (UTC), {_hours(t.duration_s)} of run time in all.",
    ]
    not_measured = _not_measured(agg, s)
    if not_measured:
        sentences.append(not_measured)
    sentences.append(f"The energy is what the devices drew, {_energy(t.it_energy_kwh)}, multiplied by {_pue(agg, s)}.")
    car = _car_sentence(agg, s)
    if car:
        sentences.append(car)
    others = _equivalents_sentence(agg, s, installed_equivalents() if equivalents is None else equivalents)
    if others:
        sentences.append(others)
    if social_cost:
        sentences.append(_social_cost_sentence(agg, s))
    methods = _methods(agg, s)
    if methods:
        sentences.append(methods)
    sentences.append(_intensity(agg, s))
    merged = sum(1 for c in agg.contributions if c.counted != "all")
    if merged:
        sentences.append(
            "The logs of several processes of one job on one machine covered the same devices; each device "
            f"was counted once ({merged} of {plural(t.runs, 'log')} left out wholly or in part)."
        )
    if t.incomplete:
        were = "was" if t.incomplete == 1 else "were"
        sentences.append(
            f"{plural(t.incomplete, 'run').capitalize()} did not stop normally and {were} counted up to "
            "the last reading logged."
        )
    versions = sorted({r.report.carbonkit_version for r in agg.runs})
    sentences.append(f"{obtained[:1].upper()}{obtained[1:]} with carbonkit {_join([s.esc(v) for v in versions])}.")
    return " ".join(sentences)

def statement_from_paths(paths: Sequence[str], fmt: str = "text", **kwargs: Any) -> str:
    """Read the run logs under ``paths`` and write their statement (see :func:`statement`)."""
    from .aggregate import aggregate, load_runs

    runs, notes = load_runs(paths)
    return statement(aggregate(runs, notes=notes), fmt, **kwargs)
