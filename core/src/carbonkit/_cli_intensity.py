"""``carbonkit intensity ZONE [--forecast HOURS] [--json]``: the intensity in force, and ahead.

Providers are chosen as a tracker chooses them (the one named by
``CARBONKIT_INTENSITY_PROVIDER``, else the highest priority covering the zone) and tried in
order; the built-in world average is the last resort. The command exits 0 when it fell back to a
static value (and says so), and 2 only when the zone is unknown or the arguments are invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import ConfigError, UnknownZoneError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``carbonkit intensity`` to the ``carbonkit`` parser."""
    p = sub.add_parser("intensity", help="carbon intensity now (and ahead) in a zone")
    p.add_argument("zone", help="zone code such as DK-DK1, DK-DK2, GB, SE-SE3, FR, WORLD")
    p.add_argument("--forecast", type=float, metavar="HOURS", help="also the forecast for the next HOURS")
    p.add_argument("--json", action="store_true", help="print one JSON object, last on stdout")
    p.set_defaults(func=run)


def _sample_dict(sample: Any, provider: str) -> dict[str, Any]:
    data = sample.to_dict()
    data["provider"] = provider
    return data


def query(zone: str, hours: float | None, http_client: Any = None, pm: Any = None) -> dict[str, Any]:
    """Return the command's JSON object for ``zone``.

    :raises UnknownZoneError: when no provider knows the zone (every answer is the world average).
    """
    from ._http import default_http_client
    from .config import Config
    from .default_plugins.constant_intensity import WorldAverage
    from .plugins import collect_intensity_providers, make_plugin_manager, ordered_providers

    if hours is not None and not 0 < hours <= 24 * 14:
        raise ConfigError(f"--forecast must be a number of hours between 0 and 336, got {hours!r}")
    config = Config.from_env(location=zone)
    zone = config.location or "WORLD"
    pm = pm or make_plugin_manager()
    own = http_client is None
    client = http_client or default_http_client()
    try:
        offers = collect_intensity_providers(pm, config, client)
        chain = ordered_providers(list(offers.objects), zone, config.intensity_provider)
        if not any(isinstance(p, WorldAverage) for p in chain):
            chain.append(WorldAverage())
        warnings: list[str] = []
        current = answered = None
        for provider in chain:
            try:
                sample = provider.current(zone)
                if sample is None:
                    raise LookupError("no current value")
            except Exception as exc:
                warnings.append(f"{provider.name} failed: {exc}")
                continue
            current, answered = sample, provider
            break
        assert current is not None and answered is not None  # the world average always answers
        if zone != "WORLD" and current.zone == "WORLD" and not any(zone in p.zones for p in chain):
            raise UnknownZoneError(
                f"zone {zone!r} is not known to any installed provider (only the world average "
                "answered); use a zone code such as DK-DK1, GB, SE-SE3, FR or US-CAL-CISO",
                zone=zone,
            )
        fallback = answered is not chain[0]
        if fallback:
            warnings.append(f"fell back to {answered.name}: {current.source}")
        if current.zone != zone:
            warnings.append(f"no value of its own for {zone}: the value is for {current.zone} ({current.source})")
        forecast: list[dict[str, Any]] = []
        if hours is not None:
            now = datetime.now(timezone.utc)
            end = now + timedelta(hours=hours)
            for provider in [answered, *[p for p in chain if p is not answered]]:
                try:
                    samples = list(provider.forecast(zone, now, end) or ())
                except Exception as exc:
                    warnings.append(f"no forecast from {provider.name}: {exc}")
                    continue
                if samples:
                    forecast = [_sample_dict(s, provider.name) for s in samples]
                    last = samples[-1]
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
            "current": _sample_dict(current, answered.name),
            "forecast": forecast,
            "fallback": fallback,
            "warnings": warnings,
        }
    finally:
        if own:
            client.close()


def run(args: argparse.Namespace) -> int:
    data = query(args.zone, args.forecast)
    if args.json:
        sys.stdout.write(json.dumps(data, allow_nan=False) + "\n")
        return 0
    cur = data["current"]
    year = f", {cur['year']}" if cur.get("year") else ""
    print(f"{data['zone']}: {cur['g_per_kwh']:.1f} gCO2eq/kWh ({cur['kind']}{year}; {cur['source']}; via {cur['provider']})")
    print(f"  at {cur['time']}")
    for w in data["warnings"]:
        print(f"  note: {w}")
    if data["forecast"]:
        print(f"  forecast ({len(data['forecast'])} values):")
        for f in data["forecast"]:
            print(f"    {f['time']}  {f['g_per_kwh']:7.1f}  {f['kind']}")
    return 0
