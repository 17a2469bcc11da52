"""``carbonkit schedule``: when to run a job for the least CO2eq, and how much that saves.

::

    carbonkit schedule --location GB --duration 3h --window 12h [--pause-resume [--min-run 1h]]
                       [--format text|slurm|at] [--tz ZONE] [--json]
    carbonkit schedule --series forecast.csv [--now ISO] --duration 3h --window 12h ...
    carbonkit schedule --series history.csv --evaluate --duration 1h,6h --window 24h,100% [--starts 60|all]

Plans on the forecast of the zone's intensity providers (tried best first, as a tracker orders
them), or on a CSV of ``time,g_per_kwh`` (ISO 8601 times with a UTC offset). A zone whose
providers have no forecast (only a yearly average) is an error with exit status 3: on a flat
average every start time is the same and any "plan" would be a guess. The exception is
``--format slurm`` and ``--format at``, whose output goes straight into ``sbatch --begin=$(...)``
or ``at -t $(...)``: there the command prints a start "at once" (``now``, or for ``at`` the
current time rounded up to a whole minute at least 30 s ahead), says on standard error that there
was no forecast, and exits 0, so that a script never submits with an empty value and ``set -e``
does not stop it.

``--format slurm`` prints only the value for ``sbatch --begin=``, ``--format at`` only the
value for ``at -t`` (rounded up to the minute); both are wall-clock times without a zone, written
in the zone given by ``--tz`` (default: this machine's). Slurm and ``at`` read them in the local
time of the machine they run on, so give ``--tz`` when that machine's zone differs from this one's.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._redact import redact_text
from .errors import ConfigError

if TYPE_CHECKING:
    from .scheduling import IntensitySeries, SchedulePlan

__all__ = ["AT_ONCE_MARGIN_S", "EXIT_NO_FORECAST", "read_series_csv", "register", "run", "start_at_once"]

#: Exit status when no provider has a forecast for the zone (text and ``--json`` output only).
EXIT_NO_FORECAST = 3
#: With no forecast, ``--format at`` prints the first whole minute at least this far ahead: ``at``
#: refuses a time already past, and it reads the value a moment after carbonkit writes it.
AT_ONCE_MARGIN_S = 30.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``carbonkit schedule`` to the ``carbonkit`` parser."""
    p = sub.add_parser(
        "schedule",
        help="when to run a job for the least CO2eq (Flexible Start, Pause and Resume)",
        description=(
            "Plan a job on an intensity forecast (the zone's providers, or --series FILE), or evaluate "
            "both algorithms on a history (--evaluate). Exit status 3: no forecast for the zone "
            "(with --format slurm or at: a start at once, exit 0, and a note on standard error)."
        ),
    )
    p.add_argument("--location", help="zone code such as GB, DK-DK2 (default: CARBONKIT_LOCATION)")
    p.add_argument(
        "--duration", required=True,
        help="the job's running time: 90m, 3h, 1h30m, 2d or seconds (with --evaluate: a comma list)",
    )
    p.add_argument(
        "--window", required=True,
        help="how much later it may start (or finish, with --pause-resume): 12h, or 50%% of the duration "
        "(with --evaluate: a comma list)",
    )
    p.add_argument("--pause-resume", action="store_true", help="plan Pause and Resume instead of Flexible Start")
    p.add_argument("--min-run", help="Pause and Resume: every run lasts at least this long (e.g. 30m)")
    p.add_argument("--step", help="slot length (default 5m, or the series' spacing when finer)")
    p.add_argument("--energy", type=float, help="the job's energy in kWh, for the grams shown (default 1)")
    p.add_argument(
        "--series", metavar="FILE", help="plan on this CSV of time,g_per_kwh instead of a provider's forecast"
    )
    p.add_argument("--now", metavar="ISO", help="plan from this time (default: now; with --series, its first time)")
    p.add_argument("--format", choices=("text", "slurm", "at"), default="text", help="what to print (default text)")
    p.add_argument("--tz", help="time zone for local times and --format slurm/at (default: this machine's), e.g. UTC")
    p.add_argument("--evaluate", action="store_true", help="evaluate both algorithms on the --series history")
    p.add_argument("--starts", default="60", help="--evaluate: number of start times, or 'all' (default 60)")
    p.add_argument(
        "--signal", choices=("average", "marginal"), type=str.lower,
        help="plan on the average (default, or CARBONKIT_SIGNAL) or the marginal signal's forecast",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object, last on stdout")
    p.set_defaults(func=run)


# -- input ------------------------------------------------------------------------------------


def _parse_time(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{what} must be an ISO 8601 time such as 2024-05-01T12:00:00Z, got {text!r}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(
            f"{what} {text!r} has no UTC offset; write it as e.g. {text.strip()}Z or {text.strip()}+01:00"
        )
    return value


def read_series_csv(path: str | Path) -> IntensitySeries:
    """Read a CSV with a header naming the columns ``time`` and ``g_per_kwh`` (others ignored).

    :raises ConfigError: a missing file or column, a time without UTC offset, a bad value; the
        message names the file and the line.
    """
    from .scheduling import IntensitySeries

    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"--series {str(path)!r}: cannot read it ({exc.strerror or exc})") from None
    times: list[datetime] = []
    values: list[float] = []
    with handle:
        reader = csv.DictReader(handle)
        fields = [f.strip() for f in reader.fieldnames or ()]
        if "time" not in fields or "g_per_kwh" not in fields:
            raise ConfigError(
                f"--series {str(path)!r}: the first line must name the columns time,g_per_kwh; "
                f"got {','.join(fields) or 'nothing'}"
            )
        reader.fieldnames = fields
        for row in reader:
            line = reader.line_num
            raw_t, raw_v = (row.get("time") or "").strip(), (row.get("g_per_kwh") or "").strip()
            if not raw_t and not raw_v:
                continue
            times.append(_parse_time(raw_t, f"--series {str(path)!r} line {line}: time"))
            try:
                value = float(raw_v)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"--series {str(path)!r} line {line}: g_per_kwh must be a number >= 0, got {raw_v!r}")
            values.append(value)
    if not times:
        raise ConfigError(f"--series {str(path)!r} has no rows: give lines of time,g_per_kwh")
    try:
        return IntensitySeries.from_arrays(times, values)
    except ConfigError as exc:
        raise ConfigError(f"--series {str(path)!r}: {exc}") from None


def _zone(name: str | None) -> tzinfo:
    if not name:
        local = datetime.now().astimezone().tzinfo
        return local or timezone.utc
    if name.strip().upper() in ("UTC", "Z"):
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--tz must be a time zone name such as UTC or Europe/London, got {name!r}") from None


def _one(value: str, what: str) -> str:
    if "," in value:
        raise ConfigError(f"{what} takes one value unless --evaluate is given, got {value!r}")
    return value


# -- output -----------------------------------------------------------------------------------


def slurm_begin(start: datetime, tz: tzinfo) -> str:
    """The value for ``sbatch --begin=``: ``YYYY-MM-DDTHH:MM:SS`` in ``tz`` (no zone suffix)."""
    return start.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S")


def at_time(start: datetime, tz: tzinfo) -> str:
    """The value for ``at -t``: ``CCYYMMDDhhmm.SS`` in ``tz``, rounded up to a whole minute
    (``at`` runs jobs on the minute and refuses times in the past, so a plan that starts "now"
    must not be a few seconds behind when ``at`` reads it)."""
    local = start.astimezone(tz)
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return local.strftime("%Y%m%d%H%M.%S")


def start_at_once(fmt: str, tz: tzinfo, earliest: datetime | None = None, *, now: datetime | None = None) -> str:
    """The ``--format slurm`` or ``--format at`` value that starts a job at once, for when there is
    no forecast to plan on.

    ``now`` for ``sbatch --begin`` (Slurm reads the word itself); for ``at -t``, which takes only
    ``CCYYMMDDhhmm.SS``, the first whole minute at least :data:`AT_ONCE_MARGIN_S` after the
    current time, in ``tz``. An ``earliest`` start in the future (``--now``) is kept instead.

    :param now: The current time (default: the clock), for tests.
    """
    current = now or datetime.now(timezone.utc)
    if fmt not in ("slurm", "at"):
        raise ConfigError(f"a start at once is printed for --format slurm or at, not {fmt!r}")
    if earliest is not None and earliest > current + timedelta(seconds=AT_ONCE_MARGIN_S):
        return slurm_begin(earliest, tz) if fmt == "slurm" else at_time(earliest, tz)
    if fmt == "slurm":
        return "now"
    return at_time(current + timedelta(seconds=AT_ONCE_MARGIN_S), tz)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _print_plan(plan: SchedulePlan, tz: tzinfo) -> None:
    from .scheduling import format_duration

    out = sys.stdout
    name = "Pause and Resume" if plan.algorithm == "pause_and_resume" else "Flexible Start"
    where = f", zone {plan.zone}" if plan.zone else ""
    source = f"forecast of {plan.provider}" if plan.provider else "the series given"
    out.write(
        f"{name} for a {format_duration(plan.duration_s)} job within {format_duration(plan.requested_window_s)}{where} "
        f"(planned on {source}, known until {_iso(plan.forecast_end) if plan.forecast_end else '?'})\n"
    )
    if plan.signal is not None:
        labels = [f"{plan.kind or 'forecast'}", f"{plan.signal} signal", f"zone {plan.zone}"]
        if plan.factors:
            labels.append(f"factors: {plan.factors}")
        if plan.estimated is not None:
            labels.append("estimated by the service" if plan.estimated else "not estimated")
        out.write(f"  values:    {', '.join(labels)}; {plan.source}\n")
    local = plan.start.astimezone(tz)
    when = "now" if plan.delay_s <= 1 else f"in {format_duration(round(plan.delay_s))}"
    out.write(f"  start:     {_iso(plan.start)} ({local.strftime('%Y-%m-%d %H:%M:%S %Z')}), {when}\n")
    if plan.algorithm == "pause_and_resume":
        out.write(f"  finish:    {_iso(plan.finish)}, {plan.pauses} pause(s)\n")
        for a, b in plan.intervals:
            out.write(f"    run {_iso(a)} -> {_iso(b)} ({format_duration(round((b - a).total_seconds()))})\n")
    out.write(
        f"  intensity: {plan.g_per_kwh:.1f} gCO2eq/kWh as planned, {plan.now_g_per_kwh:.1f} if started now "
        "and run straight through\n"
    )
    out.write(
        f"  saving:    {100 * plan.saving:.1f}% ({plan.emissions_g:.1f} g instead of {plan.now_emissions_g:.1f} g "
        f"for {plan.energy_kwh:g} kWh)\n"
    )
    for w in plan.warnings:
        out.write(f"  note: {w}\n")
    out.write(
        f"  sbatch --begin={slurm_begin(plan.start, tz)}   at -t {at_time(plan.start, tz)}   "
        f"(times in {local.tzname()})\n"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``carbonkit schedule``; return the exit status."""
    from . import scheduling

    now = _parse_time(args.now, "--now") if args.now else None
    if args.evaluate:
        return _evaluate(args)
    duration = _one(args.duration, "--duration")
    window = _one(args.window, "--window")
    if args.min_run and not args.pause_resume:
        raise ConfigError("--min-run applies to Pause and Resume: add --pause-resume")
    tz = _zone(args.tz)
    options: dict[str, Any] = {"step": args.step, "energy_kwh": args.energy}
    if args.pause_resume:
        options["min_run"] = args.min_run
    if args.series:
        series = read_series_csv(args.series)
        planner = scheduling.pause_and_resume if args.pause_resume else scheduling.flexible_start
        plan = planner(series, duration, window, now, **options)
    else:
        try:
            plan = scheduling.plan_from_providers(
                args.location, duration, window, pause_resume=args.pause_resume, now=now,
                signal=getattr(args, "signal", None), **options,
            )
        except scheduling.NoForecastError as exc:
            if args.json or args.format == "text":
                sys.stderr.write(f"carbonkit: error: {redact_text(str(exc))}\n")
                return EXIT_NO_FORECAST
            # The value goes into `sbatch --begin=$(...)` or `at -t $(...)`: never leave it empty.
            value = start_at_once(args.format, tz, now)
            sys.stderr.write(
                f"carbonkit: {redact_text(str(exc))}. Printing {value} for --format {args.format}: "
                "the job starts at once\n"
            )
            sys.stdout.write(value + "\n")
            return 0
    plan = attrs.evolve(plan, warnings=[redact_text(w) for w in plan.warnings],
                        source=redact_text(plan.source) if plan.source else plan.source)
    if args.json:
        data = plan.to_dict()
        data["slurm_begin"] = slurm_begin(plan.start, tz)
        data["at_time"] = at_time(plan.start, tz)
        data["tz"] = plan.start.astimezone(tz).tzname()
        sys.stdout.write(json.dumps(data, allow_nan=False) + "\n")
    elif args.format == "slurm":
        sys.stdout.write(slurm_begin(plan.start, tz) + "\n")
    elif args.format == "at":
        sys.stdout.write(at_time(plan.start, tz) + "\n")
    else:
        _print_plan(plan, tz)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .scheduling import evaluate, format_duration

    if not args.series:
        raise ConfigError("--evaluate needs a history to evaluate on: give --series FILE (time,g_per_kwh)")
    durations = [d.strip() for d in args.duration.split(",") if d.strip()]
    windows = [w.strip() for w in args.window.split(",") if w.strip()]
    starts: int | str = args.starts.strip()
    if starts != "all":
        try:
            starts = int(starts)
        except ValueError:
            raise ConfigError(f"--starts must be a whole number or 'all', got {args.starts!r}") from None
    series = read_series_csv(args.series)
    table = evaluate(series, durations, windows, starts=starts, step=args.step)
    if args.json:
        sys.stdout.write(json.dumps(table.to_dict(), allow_nan=False) + "\n")
        return 0
    sys.stdout.write(
        f"Savings against starting at once, history {_iso(table.series_start)} to {_iso(table.series_end)}, "
        f"slots of {format_duration(table.step_s)}; FS: Flexible Start, P&R: Pause and Resume.\n\n"
    )
    sys.stdout.write(table.to_markdown())
    return 0
