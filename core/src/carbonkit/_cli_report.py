"""The ``carbonkit report``, ``carbonkit statement`` and ``carbonkit estimate`` commands.

``report PATH...`` adds run logs up (a table, ``--json``, ``--csv`` or ``--markdown``; ``--html``
writes a self-contained page); ``statement PATH...`` writes a carbon impact statement for a
paper; ``estimate`` prices a run that was not measured. The work is done in
:mod:`carbonkit.reports`; this module only parses arguments and prints.

Exit status of ``report`` and ``statement``: 0 when every log was read; 3 when some files could
not be read (each is named on standard error, and listed under ``skipped`` with ``--json``) but
the others were reported; 2 for a usage error or when no log at all could be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._text import printable
from .errors import ConfigError

__all__ = ["EXIT_SKIPPED", "register"]

#: Exit status when some logs could not be read but a report was made from the others.
EXIT_SKIPPED = 3


def _print_json(obj: Any) -> None:
    from ._redact import redact_strings

    sys.stdout.write(json.dumps(redact_strings(obj), allow_nan=False) + "\n")
    sys.stdout.flush()


def _add_car(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--car-year", type=int, metavar="YEAR",
        help="year of the EU new-car average for the km equivalent (default: the latest shipped)",
    )
    group.add_argument("--car-g-per-km", type=float, metavar="G", help="gCO2 per km for the car equivalent, as given")


def _car(args: argparse.Namespace) -> Any:
    from .reports._car import car_factor

    return car_factor(year=args.car_year, g_per_km=args.car_g_per_km)


def _aggregate(args: argparse.Namespace) -> Any:
    from ._redact import redact_text
    from .reports.aggregate import aggregate, read_runs

    found = read_runs(args.paths)
    for s in found.skipped:
        sys.stderr.write(f"carbonkit: skipped {printable(s.file, single_line=True)}: "
                         f"{printable(redact_text(s.reason), single_line=True)}\n")
    sys.stderr.flush()
    return aggregate(
        found.runs,
        group_by=getattr(args, "group_by", None) or (),
        car=_car(args),
        notes=found.notes,
        skipped=found.skipped,
    )


def _status(agg: Any) -> int:
    return EXIT_SKIPPED if agg.skipped else 0


# -- report ---------------------------------------------------------------------------------


def _embodied(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    from .config import _variable

    value: dict[str, Any] = _variable("--embodied", "embodied", text)
    return value


def _cmd_report(args: argparse.Namespace) -> int:
    from ._redact import redact_mapping, redact_text
    from .reports.extrapolate import parse_progress
    from .reports.report_extras import extras, extras_html, extras_json, extras_text
    from .reports.tables import render_csv, render_markdown, render_text

    if args.html_max_runs < 0:
        raise ConfigError(f"--html-max-runs must be a whole number >= 0, got {args.html_max_runs!r}")
    asked = [o for o, v in (("--extrapolate", args.extrapolate), ("--progress", args.progress is not None),
                            ("--embodied", args.embodied is not None)) if v]
    if asked and (args.csv or args.markdown):
        raise ConfigError(
            f"{', '.join(asked)} add sections to the table, --json and --html outputs; "
            f"not to {'--csv' if args.csv else '--markdown'}"
        )
    progress = parse_progress(args.progress) if args.progress is not None else None
    embodied = _embodied(args.embodied)
    agg = _aggregate(args)
    extra = extras(agg, extrapolate=args.extrapolate, progress=progress, embodied=embodied)
    if args.html:
        from .reports.html import write_html

        try:
            write_html(agg, args.html, max_runs=args.html_max_runs, extra_sections=extras_html(extra))
        except OSError as exc:
            raise ConfigError(f"cannot write --html {args.html!r}: {exc.strerror or exc}") from None
        sys.stderr.write(f"carbonkit: wrote {args.html}\n")
    if args.json:
        _print_json({**agg.to_dict(), **redact_mapping(extras_json(extra))})
    elif args.csv:
        sys.stdout.write(render_csv(agg))
    elif args.markdown:
        sys.stdout.write(render_markdown(agg))
    else:
        lines = extras_text(extra)
        sys.stdout.write(render_text(agg) + "".join(printable(redact_text(x)) + "\n" for x in lines))
    return _status(agg)


# -- statement ------------------------------------------------------------------------------


def _cmd_statement(args: argparse.Namespace) -> int:
    from .reports.statement import applicable_equivalents, installed_equivalents, statement

    agg = _aggregate(args)
    equivalents = installed_equivalents()
    text = statement(agg, args.format, subject=args.subject, equivalents=equivalents, social_cost=args.social_cost)
    if args.json:
        data = agg.to_dict()
        grams = agg.total.co2eq_g
        out: dict[str, Any] = {
            "format": args.format,
            "statement": text,
            "total": data["total"],
            "equivalents": [
                {**e.to_dict(), "amount": e.amount(grams)} for e in applicable_equivalents(agg, equivalents)
            ],
            "notes": data["notes"],
            "skipped": data["skipped"],
        }
        if args.social_cost:
            from .reports.social_cost import EPA_2023_SC_CO2

            out["social_cost"] = {**EPA_2023_SC_CO2.to_dict(), "cost": EPA_2023_SC_CO2.cost(grams)}
        _print_json(out)
    else:
        sys.stdout.write(text + "\n")
    return _status(agg)


# -- estimate -------------------------------------------------------------------------------


def _big(value: float, unit: str) -> str:
    from .reports._format import fmt_sig

    return f"{value:,.2f} {unit}" if abs(value) >= 100 else f"{fmt_sig(value, 4)} {unit}"


def _list_gpus(as_json: bool) -> int:
    from .reports._format import text_table
    from .reports.estimate import gpus

    table = gpus()
    if as_json:
        _print_json({"gpus": [_gpu_dict(g) for g in table.values()]})
        return 0
    rows = [[g.name, g.vendor, g.form_factor, f"{g.power_w:g}", g.power_basis, g.url] for g in table.values()]
    headers = ["name", "vendor", "form", "watts", "what", "source"]
    sys.stdout.write(text_table(headers, rows, [False, False, False, True, False, False]) + "\n")
    return 0


def _gpu_dict(obj: Any) -> dict[str, Any]:
    import attrs

    data = attrs.asdict(obj)
    data["aliases"] = list(data["aliases"])
    return data


def _cmd_estimate(args: argparse.Namespace) -> int:
    from .reports._format import fmt_sig, text_table
    from .reports.estimate import estimate, known_zones

    if args.list_gpus:
        return _list_gpus(args.json)
    if (args.hours is None) == (args.seconds is None):
        raise ConfigError("give the run's length with --hours H or --seconds S (one of them)")
    seconds = args.seconds if args.seconds is not None else args.hours * 3600.0
    compare = None
    if args.compare is not None:
        if args.compare.strip().lower() == "all":
            compare = known_zones()
        else:
            compare = [z for z in args.compare.split(",") if z.strip()]
            if not compare:
                raise ConfigError(f"--compare expects zone codes separated by commas, or 'all', got {args.compare!r}")
    est = estimate(
        duration_s=seconds,
        power_w=args.power_w,
        gpu=args.gpu,
        count=args.count,
        utilization=args.utilization,
        pue=args.pue,
        pue_source="given (--pue)" if args.pue is not None else None,
        intensity_g_per_kwh=args.intensity,
        location=args.location,
        compare=compare,
        car=_car(args),
    )
    data = est.to_dict()
    if est.compare:
        data["cleanest"] = est.compare[0]
        data["dirtiest"] = est.compare[-1]
    if args.json:
        _print_json(data)
        return 0
    out = sys.stdout
    intensity_src = (
        f"{est.intensity.source} ({est.intensity.kind}, via {est.intensity.provider})" if est.intensity else "given"
    )
    hours = est.duration_s / 3600.0
    lines = [
        "Estimate (not measured):",
        f"  power        {est.count} x {est.power_w:g} W x utilization {est.utilization:g} ({est.power_source})",
        f"  duration     {_big(hours, 'h')} ({_big(est.duration_s, 's')})",
        f"  IT energy    {_big(est.it_energy_kwh, 'kWh')}",
        f"  PUE          {est.pue:g} ({est.pue_source})",
        f"  energy       {_big(est.energy_kwh, 'kWh')}",
        f"  intensity    {est.intensity_g_per_kwh:g} gCO2eq/kWh ({intensity_src})",
        f"  CO2eq        {_big(est.co2eq_g, 'g')} = {_big(est.co2eq_g / 1000, 'kg')}",
        f"  car          {_big(est.car_km, 'km')} ({est.car_source})",
    ]
    out.write(printable("\n".join(lines)) + "\n")
    if est.compare:
        rows = [
            [r["zone"], f"{r['g_per_kwh']:g}", fmt_sig(r["co2eq_g"], 4), str(r["year"] or ""), r["source"]]
            for r in est.compare
        ]
        more = ["...", "", "", "", f"{len(rows) - 10} more (--json lists all)"]
        shown = rows if len(rows) <= 12 else [*rows[:5], more, *rows[-5:]]
        out.write("\nThe same energy in other zones (yearly averages), cleanest first:\n")
        headers = ["zone", "g/kWh", "CO2eq g", "year", "source"]
        out.write(text_table(headers, shown, [False, True, True, False, False]) + "\n")
        c, d = est.compare[0], est.compare[-1]
        out.write(
            f"cleanest: {c['zone']} {fmt_sig(c['co2eq_g'], 4)} g; dirtiest: {d['zone']} {fmt_sig(d['co2eq_g'], 4)} g "
            f"({fmt_sig(d['co2eq_g'] / c['co2eq_g'], 3) if c['co2eq_g'] > 0 else 'n/a'} times as much)\n"
        )
    for w in est.warnings:
        out.write(f"warning: {printable(w, single_line=True)}\n")
    return 0


# -- registration ---------------------------------------------------------------------------


_EXIT_HELP = (
    "exit status: 0 every log was read; 3 some files could not be read (each named on stderr, and under "
    "'skipped' with --json) and the others were reported; 2 a usage error, or no log could be read"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report``, ``statement`` and ``estimate`` to the ``carbonkit`` parser."""
    r = sub.add_parser(
        "report",
        help="add run logs up: one row per run, totals, groups (table, --json, --csv, --markdown, --html)",
        description="Read run logs (files or folders of *.jsonl), count each device once per job and host, "
        "and print one row per run with the totals.",
        epilog=_EXIT_HELP,
    )
    r.add_argument("paths", nargs="+", metavar="PATH", help="run logs (*.jsonl) or folders holding them")
    r.add_argument(
        "--group-by", action="append", default=[], metavar="KEY",
        help="also total by 'host', 'job' or 'tag:KEY' (repeatable)",
    )
    fmt = r.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object, last on stdout")
    fmt.add_argument("--csv", action="store_true", help="print CSV (kind=run, group, total)")
    fmt.add_argument("--markdown", action="store_true", help="print Markdown tables")
    r.add_argument("--html", metavar="OUT.html", help="also write a self-contained HTML page with plots")
    r.add_argument(
        "--html-max-runs", type=int, default=20, metavar="N", help="runs given plots on the page (default 20)"
    )
    r.add_argument(
        "--extrapolate", action="store_true",
        help="also estimate the whole run of runs that stopped before their planned epochs",
    )
    r.add_argument(
        "--progress", metavar="P",
        help="extrapolate every run as this fraction of its work done: 0.13, 13%% or 8/60 (implies --extrapolate)",
    )
    r.add_argument(
        "--embodied", metavar="JSON|@FILE",
        help="embodied emissions per component for SCI, e.g. '{\"gpu\": {\"kgco2e\": 150, \"lifetime_years\": 4, "
        "\"source\": \"...\"}}'",
    )
    _add_car(r)
    r.set_defaults(func=_cmd_report)

    s = sub.add_parser(
        "statement",
        help="a carbon impact statement for a paper's appendix, from run logs",
        description="Write one paragraph: energy, CO2eq, a car equivalent, methods, intensity sources, PUE, version.",
        epilog=_EXIT_HELP,
    )
    s.add_argument("paths", nargs="+", metavar="PATH", help="run logs (*.jsonl) or folders holding them")
    s.add_argument(
        "--format", choices=("text", "markdown", "latex"), default="text", help="output format (default text)"
    )
    s.add_argument("--subject", default="The experiments reported here", help="how the paragraph names the work")
    s.add_argument("--json", action="store_true", help="print one JSON object (statement and totals), last on stdout")
    s.add_argument(
        "--social-cost", action="store_true",
        help="also give the social cost of carbon of the emissions (US EPA 2023: 190 USD of 2020 per t CO2)",
    )
    _add_car(s)
    s.set_defaults(func=_cmd_statement)

    e = sub.add_parser(
        "estimate",
        help="what-if: energy and CO2eq of a run that was not measured",
        description=(
            "power x count x utilization x time x PUE x intensity; with --compare, the same energy in other zones."
        ),
    )
    power = e.add_mutually_exclusive_group()
    power.add_argument("--power-w", type=float, metavar="W", help="power per device, watts")
    power.add_argument("--gpu", metavar="NAME", help="an accelerator from the shipped table (see --list-gpus)")
    e.add_argument("--count", type=int, default=1, metavar="N", help="number of devices (default 1)")
    when = e.add_mutually_exclusive_group()
    when.add_argument("--hours", type=float, metavar="H", help="run length in hours")
    when.add_argument("--seconds", type=float, metavar="S", help="run length in seconds")
    e.add_argument(
        "--utilization", type=float, default=1.0, metavar="U", help="average fraction of full power, 0-1 (default 1)"
    )
    e.add_argument(
        "--pue", type=float, metavar="P", help="power usage effectiveness (default 1.58, Uptime Institute 2023)"
    )
    where = e.add_mutually_exclusive_group()
    where.add_argument("--location", metavar="ZONE", help="price at this zone's yearly average (installed providers)")
    where.add_argument("--intensity", type=float, metavar="G", help="carbon intensity, gCO2eq/kWh")
    e.add_argument("--compare", metavar="Z1,Z2|all", help="also price the energy in these zones (or every known zone)")
    e.add_argument("--list-gpus", action="store_true", help="list the accelerators known and their sources")
    e.add_argument("--json", action="store_true", help="print one JSON object, last on stdout")
    _add_car(e)
    e.set_defaults(func=_cmd_estimate)
