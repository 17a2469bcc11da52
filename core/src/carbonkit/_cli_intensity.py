"""``carbonkit intensity ZONE [--forecast HOURS] [--timeout SECONDS] [--json]``: the intensity in
force, and ahead.

Providers are chosen as a tracker chooses them (the one named by
``CARBONKIT_INTENSITY_PROVIDER``, else the highest priority covering the zone) and tried in
order; the built-in world average is the last resort. The command exits 0 when it fell back to a
static value (and says so), and 2 only when the zone is unknown or the arguments are invalid.

``--timeout`` (default 30 s) bounds the whole command: every request made through
:mod:`carbonkit.http` stops at it, and once it has passed no request is sent, so a slow server
makes the command fall back to the static table (saying why) on time. A provider that does its
own I/O and ignores the deadline cannot hold the command either: if the answer is not there
:data:`GRACE_S` seconds after the deadline, the command says which provider was still running
and exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import ConfigError, UnknownZoneError

#: Default of ``--timeout``, seconds.
DEFAULT_TIMEOUT_S = 30.0
#: Seconds after ``--timeout`` before the command gives up on a provider that ignores it.
GRACE_S = 5.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``carbonkit intensity`` to the ``carbonkit`` parser."""
    p = sub.add_parser("intensity", help="carbon intensity now (and ahead) in a zone")
    p.add_argument("zone", help="zone code such as DK-DK1, DK-DK2, GB, SE-SE3, FR, WORLD")
    p.add_argument("--forecast", type=float, metavar="HOURS", help="also the forecast for the next HOURS")
    p.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"answer within this many seconds in all, falling back to static values (default {DEFAULT_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--signal", choices=("average", "marginal"), type=str.lower,
        help="average (all generation, the default, or CARBONKIT_SIGNAL) or marginal (the generation that "
        "responds to a change in demand)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object, last on stdout")
    p.set_defaults(func=run)


def _timeout(text: str) -> float:
    """``--timeout``: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0 (such as 30 or 2.5), got {text!r}")
    return value


def _sample_dict(sample: Any, provider: str, now: datetime | None = None) -> dict[str, Any]:
    """A sample as JSON, with its provider and, for a live value, its ``age_s``: how long ago the
    period it covers ended (0 while it lasts; null for forecasts and averages)."""
    from ._accounting import age_s

    data: dict[str, Any] = sample.to_dict()
    data["provider"] = provider
    data["age_s"] = None
    if now is not None and sample.kind == "live":
        data["age_s"] = round(age_s(sample, now.timestamp()), 1)
    return data


def query(
    zone: str,
    hours: float | None,
    http_client: Any = None,
    pm: Any = None,
    timeout_s: float | None = None,
    step: Callable[[str], None] | None = None,
    signal: str | None = None,
) -> dict[str, Any]:
    """Return the command's JSON object for ``zone``.

    :param signal: ``"average"`` or ``"marginal"`` (default: ``CARBONKIT_SIGNAL``, else average):
        providers of that signal are asked first; an answer of the other signal is a fallback.
    :param timeout_s: Overall deadline for every request made through :mod:`carbonkit.http`
        (None: each request's own deadline only).
    :param step: Called with what is being done (``"intensity_dk:energidataservice.current"``).
    :raises UnknownZoneError: when no provider knows the zone (every answer is the world average);
        the message names the closest known codes.
    """
    from .http import overall_deadline

    if hours is not None and not 0 < hours <= 24 * 14:
        raise ConfigError(f"--forecast must be a number of hours between 0 and 336, got {hours!r}")
    if timeout_s is None:
        return _query(zone, hours, http_client, pm, step or _ignore, signal)
    with overall_deadline(timeout_s, f"--timeout {timeout_s:g}"):
        return _query(zone, hours, http_client, pm, step or _ignore, signal)


def _ignore(what: str) -> None:
    pass


def _query(
    zone: str, hours: float | None, http_client: Any, pm: Any, step: Callable[[str], None], signal: str | None
) -> dict[str, Any]:
    from ._http import default_http_client
    from .config import Config
    from .default_plugins.constant_intensity import WorldAverage
    from .plugins import collect_intensity_providers, make_plugin_manager, ordered_providers, provider_signal
    from .zones import closest_zones, known_zones

    step("loading the plugins")
    config = Config.from_env(location=zone, signal=signal)
    zone = config.location or "WORLD"
    signal = config.signal
    pm = pm or make_plugin_manager()
    own = http_client is None
    client = http_client or default_http_client()
    try:
        offers = collect_intensity_providers(pm, config, client)
        # A zone a provider names is known; only another is checked against the catalogues (which
        # may load a table: time the --timeout budget should spend on the providers' answers).
        named = any(zone in p.zones for p in offers.objects)
        known = None if named else known_zones(list(offers.objects))
        if known is not None and zone not in known:
            close = closest_zones(zone, known)
            hint = f"; closest known codes: {', '.join(close)}" if close else ""
            raise UnknownZoneError(
                f"zone {zone!r} is not known to any installed provider{hint} (zone codes are Electricity Maps "
                "codes such as DK-DK1, GB, SE-SE3, FR or US-CAL-CISO; `carbonkit zones QUERY` lists them)",
                zone=zone,
            )
        chain = ordered_providers(list(offers.objects), zone, config.intensity_provider, signal)
        if not any(isinstance(p, WorldAverage) for p in chain):
            chain.append(WorldAverage())
        warnings: list[str] = []
        if not any(provider_signal(p) == signal for p in chain):
            warnings.append(f"no installed intensity provider gives the {signal} signal for {zone}")
        current = answered = None
        for provider in chain:
            step(f"{provider.name}.current({zone})")
            try:
                sample = provider.current(zone)
                if sample is None:
                    raise LookupError("no current value")
            except Exception as exc:
                warnings.append(f"{provider.name} failed: {exc}")
                continue
            current, answered = sample, provider
            break
        # the world average always answers
        assert current is not None
        assert answered is not None
        if zone != "WORLD" and current.zone == "WORLD" and not any(zone in p.zones for p in chain):
            raise UnknownZoneError(
                f"zone {zone!r} is not known to any installed provider (only the world average "
                "answered); use a zone code such as DK-DK1, GB, SE-SE3, FR or US-CAL-CISO",
                zone=zone,
            )
        fallback = answered is not chain[0]
        if fallback:
            warnings.append(f"fell back to {answered.name}: {current.source}")
        if current.signal != signal:
            fallback = True
            warnings.append(f"the value is of the {current.signal} signal, not the {signal} signal asked for")
        if current.zone != zone:
            warnings.append(f"no value of its own for {zone}: the value is for {current.zone} ({current.source})")
        forecast: list[dict[str, Any]] = []
        now = datetime.now(timezone.utc)
        if hours is not None:
            end = now + timedelta(hours=hours)
            for provider in [answered, *[p for p in chain if p is not answered]]:
                step(f"{provider.name}.forecast({zone})")
                try:
                    samples = list(provider.forecast(zone, now, end) or ())
                except Exception as exc:
                    warnings.append(f"no forecast from {provider.name}: {exc}")
                    continue
                if samples:
                    forecast = [_sample_dict(s, provider.name) for s in samples]
                    if provider_signal(provider) != signal:
                        warnings.append(f"the forecast is of the {provider_signal(provider)} signal, "
                                        f"not the {signal} signal asked for")
                    first, last = samples[0], samples[-1]
                    if first.time > now + timedelta(minutes=1):
                        warnings.append(
                            f"the forecast of {provider.name} starts at {first.time.isoformat()}, "
                            f"later than the {now.isoformat(timespec='seconds')} asked"
                        )
                    covered = last.time + timedelta(seconds=last.period_s or 0)
                    if covered < end - timedelta(minutes=1):
                        warnings.append(
                            f"the forecast of {provider.name} ends at {covered.isoformat()}, "
                            f"before the {hours:g} h asked for"
                        )
                    break
            else:
                warnings.append(f"no provider has a forecast for {zone}")
        return {
            "zone": zone,
            "signal": signal,
            "current": _sample_dict(current, answered.name, now),
            "forecast": forecast,
            "fallback": fallback,
            "warnings": warnings,
        }
    finally:
        if own:
            client.close()


def run(args: argparse.Namespace) -> int:
    timeout_s = float(getattr(args, "timeout", DEFAULT_TIMEOUT_S))
    outcome: dict[str, Any] = {}
    doing = ["starting"]

    def work() -> None:
        try:
            chosen = getattr(args, "signal", None)
            extra = {"signal": chosen} if chosen else {}  # only when given: query() may be replaced in tests
            outcome["data"] = query(args.zone, args.forecast, timeout_s=timeout_s, step=doing.append, **extra)
        except BaseException as exc:  # handed to the main thread as it is
            outcome["error"] = exc

    # The query runs on a daemon thread so that a provider ignoring the deadline cannot hold
    # the command past it: the process exits and the thread with it.
    worker = threading.Thread(target=work, name="carbonkit-intensity", daemon=True)
    worker.start()
    worker.join(timeout_s + GRACE_S)
    if worker.is_alive():
        sys.stderr.write(
            f"carbonkit: error: no answer within --timeout {timeout_s:g} s (and {GRACE_S:g} s of grace): "
            f"still running {doing[-1]}, which does not keep to the deadline; try again later, or pick "
            "another provider with CARBONKIT_INTENSITY_PROVIDER\n"
        )
        return 1
    if "error" in outcome:
        raise outcome["error"]
    from ._redact import redact_strings
    from ._text import printable

    data = redact_strings(outcome["data"])
    if args.json:
        sys.stdout.write(json.dumps(data, allow_nan=False) + "\n")
        return 0
    cur = data["current"]
    value = f"{cur['g_per_kwh']:.1f} gCO2eq/kWh"
    lines = [
        f"{data['zone']}: {value} ({describe_sample(cur)}; via {cur['provider']})",
        f"  source: {cur['source']}",
        f"  at {cur['time']}" + (f" (period {cur['period_s']:g} s)" if cur.get("period_s") else ""),
    ]
    lines += [f"  note: {w}" for w in data["warnings"]]
    if data["forecast"]:
        first = data["forecast"][0]
        lines.append(f"  forecast ({len(data['forecast'])} values, {describe_sample(first)}; via {first['provider']}; "
                     f"{first['source']}):")
        for f in data["forecast"]:
            lines.append(f"    {f['time']}  {f['g_per_kwh']:7.1f}  {f['kind']}")
    sys.stdout.write("".join(printable(line) + "\n" for line in lines))
    return 0


def describe_sample(sample: dict[str, Any]) -> str:
    """The labels of a sample as text: kind and year, signal, zone, factors, estimated, age."""
    from .scheduling import format_duration

    parts = [sample["kind"] + (f" {sample['year']}" if sample.get("year") else ""), f"{sample['signal']} signal",
             f"zone {sample['zone']}"]
    if sample.get("factors"):
        parts.append(f"factors: {sample['factors']}")
    if sample.get("estimated") is not None:
        parts.append("estimated by the service" if sample["estimated"] else "measured, not estimated")
    if sample.get("age_s"):
        parts.append(f"{format_duration(round(sample['age_s']))} old")
    return ", ".join(parts)
