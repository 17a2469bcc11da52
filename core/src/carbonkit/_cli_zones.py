"""``carbonkit zones [QUERY] [--json]``: the zone codes this machine's providers know, with their
names and which providers cover each, by kind (live, forecast, average, marginal).

``QUERY`` keeps the zones whose code or name contains it (case-insensitive: ``carbonkit zones
sweden``, ``carbonkit zones US-CAL``). When nothing matches, the closest codes are suggested and
the command exits 1. Plugins that offer nothing on this machine (a missing key) are listed with
how to get one. See :mod:`carbonkit.zones`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["EXIT_NO_MATCH", "register", "run", "zones_data"]

#: Exit status when no zone matches ``QUERY``.
EXIT_NO_MATCH = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``carbonkit zones`` to the ``carbonkit`` parser."""
    p = sub.add_parser(
        "zones",
        help="list the zone codes known here, their names and the providers covering each",
        description="List zone codes (Electricity Maps codes) with their names and the intensity providers "
        "covering each on this machine, by kind: live, forecast, average, marginal.",
    )
    p.add_argument("query", nargs="?", help="keep zones whose code or name contains this (e.g. DK, sweden, US-CAL)")
    p.add_argument("--json", action="store_true", help="print one JSON object, last on stdout")
    p.set_defaults(func=run)


def zones_data(query: str | None = None, pm: Any = None, http_client: Any = None) -> dict[str, Any]:
    """The command's JSON object: the zones matching ``query``, the providers, and the plugins
    that offer nothing here (with their hint)."""
    from ._compose import LazyHttpClient
    from .config import Config
    from .default_plugins.constant_intensity import WorldAverage
    from .plugins import collect_intensity_providers, make_plugin_manager, provider_order_key, provider_signal
    from .zones import capabilities, catalogue, matching

    pm = pm or make_plugin_manager()
    client: Any = http_client if http_client is not None else LazyHttpClient()  # no request is made here
    try:
        offers = collect_intensity_providers(pm, Config.from_env(), client)
        providers = list(offers.objects)
        if not any(isinstance(p, WorldAverage) for p in providers):
            providers.append(WorldAverage())
        warnings: list[str] = []
        zones, anywhere = catalogue(providers, warnings=warnings)
    finally:
        if http_client is None:
            client.close()
    found = matching(zones, query)
    suggestions = [] if found or not query else _suggest(query, zones)
    return {
        "query": query,
        "zones": [z.to_dict() for z in found],
        "suggestions": suggestions,
        "providers": [
            {
                "name": p.name,
                "priority": p.priority,
                "signal": provider_signal(p),
                "capabilities": sorted(capabilities(p)),
                "max_lag_s": getattr(p, "max_lag_s", None),
                "any_zone": p.name in anywhere,
            }
            for p in sorted(providers, key=lambda p: (provider_signal(p) != "average", provider_order_key(p)))
        ],
        "unavailable": [{"plugin": n.plugin, "reason": n.reason, "hint": n.hint} for n in offers.notes],
        "warnings": warnings,
    }


def _suggest(query: str, zones: list[Any]) -> list[str]:
    """The closest codes to a query that matched nothing: by code, then by name."""
    import difflib

    from .zones import closest_zones

    out = closest_zones(query, [z.zone for z in zones])
    by_name = {z.name.lower(): z.zone for z in zones if z.name}
    for name in difflib.get_close_matches(query.strip().lower(), list(by_name), n=4, cutoff=0.6):
        if by_name[name] not in out:
            out.append(by_name[name])
    return out[:6]


def run(args: argparse.Namespace) -> int:
    from ._redact import redact_strings
    from ._text import printable

    data = redact_strings(zones_data(args.query))
    if args.json:
        sys.stdout.write(json.dumps(data, allow_nan=False) + "\n")
        return 0 if data["zones"] else EXIT_NO_MATCH
    lines: list[str] = []
    if not data["zones"]:
        close = f"; closest codes: {', '.join(data['suggestions'])}" if data["suggestions"] else ""
        lines.append(f"no zone code or name contains {data['query']!r}{close}")
    for z in data["zones"]:
        name = f"  {z['name']}" if z["name"] else ""
        lines.append(f"{z['zone']}{name}")
        for kind, names in z["providers"].items():
            lines.append(f"    {kind + ':':10} {', '.join(names)}")
    if data["zones"]:
        lines.append(f"{len(data['zones'])} zone(s). Providers are tried in the order shown (priority, then a zone "
                     "named before any zone, then name); the world average is the last resort.")
    for u in data["unavailable"]:
        hint = f" ({u['hint']})" if u["hint"] else ""
        lines.append(f"not available: {u['plugin']}: {u['reason']}{hint}")
    lines += [f"note: {w}" for w in data["warnings"]]
    sys.stdout.write("".join(printable(line) + "\n" for line in lines))
    return 0 if data["zones"] else EXIT_NO_MATCH
