"""Past intensity from the providers, and the series files: what ``carbonkit reprice`` prices a
measured run on (the counterpart of :mod:`.forecast` for times already past).

A provider may have an optional ``history(zone, start, end)`` method returning past
:class:`~carbonkit.IntensitySample` values. :func:`history_from_providers` asks the providers of a
zone for it, best first, each call off the caller's thread under the provider deadline (a
provider that blocks is abandoned) and every HTTP request under one overall deadline; what each
provider said is kept in notes.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from ..errors import ConfigError
from ..records import IntensitySample, tuple_of
from .series import IntensitySeries

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "ProviderHistory",
    "check_zone",
    "coverage_gap",
    "history_from_providers",
    "installed_providers",
    "read_series_csv",
]

_EPS = 1e-6


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(round(float(ts), 6), tz=timezone.utc).isoformat().replace("+00:00", "Z")


def read_series_csv(path: str | os.PathLike[str]) -> IntensitySeries:
    """Read a CSV of ``time,g_per_kwh`` (the format ``carbonkit schedule --series`` reads).

    :raises ConfigError: naming the file and the line.
    """
    from .._cli_schedule import read_series_csv as read

    where: str | Path = os.fspath(path)
    return read(where)


def coverage_gap(series: IntensitySeries, start: float, end: float) -> str | None:
    """What part of ``[start, end)`` (Unix seconds) the series does not cover, in words, or None."""
    gaps = []
    if series.start > start + _EPS:
        gaps.append(f"{_iso(start)} to {_iso(min(series.start, end))}")
    if series.end < end - _EPS:
        gaps.append(f"{_iso(max(series.end, start))} to {_iso(end)}")
    if not gaps:
        return None
    return (
        f"the intensity covers {_iso(series.start)} to {_iso(series.end)}; the run needs {_iso(start)} to "
        f"{_iso(end)}: nothing is known from {' and from '.join(gaps)}"
    )


def installed_providers(http_client: Any) -> list[Any]:
    """The intensity providers the installed plugins offer, with ``http_client``."""
    from ..config import Config
    from ..plugins import collect_intensity_providers, make_plugin_manager

    return list(collect_intensity_providers(make_plugin_manager(), Config(), http_client).objects)


def check_zone(zone: str, providers: Sequence[Any], given_by: str = "--zone") -> list[str]:
    """Refuse a zone that no provider's catalogue (``known_zones()``) holds, naming the closest
    known codes; nothing is refused when no provider has a catalogue. Returns notes (a
    catalogue that could not be read).

    :raises ConfigError: the zone is unknown.
    """
    from ..zones import known_zones, unknown_zone_message

    notes: list[str] = []
    known = known_zones(providers, warnings=notes)
    if known is not None and zone not in known:
        raise ConfigError(unknown_zone_message(zone, known, given_by))
    return notes


@frozen(kw_only=True)
class ProviderHistory:
    """Past values from the provider chain: the series, who gave it, its samples, and notes on
    the providers that gave none."""

    zone: str
    provider: str
    series: IntensitySeries = field(eq=False)
    samples: tuple[IntensitySample, ...] = field(converter=tuple_of)
    notes: tuple[str, ...] = field(converter=tuple_of, default=())


def history_from_providers(
    zone: str,
    start: float,
    end: float,
    *,
    signal: str = "average",
    providers: Sequence[Any] | None = None,
    http_client: Any = None,
    timeout_s: float = 30.0,
    notes: list[str] | None = None,
    ask_until: float | None = None,
) -> ProviderHistory | None:
    """Ask the providers covering ``zone`` (best first, as a tracker orders them) for their past
    values of ``signal`` over ``[start, end)`` (Unix seconds); return the first that covers it,
    or None (``notes`` then says what each provider said).

    :param providers: Ask these, in this order, instead of the installed ones (no zone check).
    :param http_client: For the installed providers (default: one made and closed here).
    :param timeout_s: One deadline for every HTTP request of the look-up.
    :param ask_until: Ask for values until this time (later than ``end``: room for a scheduling
        window); only ``[start, end)`` must be covered.
    :raises ConfigError: a zone no provider's catalogue holds (closest codes named).
    """
    from .._guard import call_with_deadline, describe_failure
    from .._http import default_http_client
    from ..http import overall_deadline
    from ..plugins import ordered_providers
    from ..tracker import PROVIDER_DEADLINE_S

    said = notes if notes is not None else []
    own = http_client is None and providers is None
    client = default_http_client() if own else http_client
    try:
        if providers is None:
            available = installed_providers(client)
            said += check_zone(zone, available)
            chain = ordered_providers(available, zone, None)
        else:
            said += check_zone(zone, providers)
            chain = list(providers)
        a = datetime.fromtimestamp(start, tz=timezone.utc)
        b = datetime.fromtimestamp(max(end, ask_until or end), tz=timezone.utc)
        with overall_deadline(timeout_s, f"the look-up deadline of {timeout_s:g} s"):
            for p in chain:
                method = getattr(p, "history", None)
                if not callable(method) or getattr(p, "signal", "average") != signal:
                    continue
                ctx = contextvars.copy_context()  # the overall deadline travels with the call
                outcome = call_with_deadline(
                    ctx.run, method, zone, a, b, deadline_s=PROVIDER_DEADLINE_S, name="carbonkit-history"
                )
                if not outcome.ok:
                    said.append(f"{p.name}: no history ({describe_failure(outcome, PROVIDER_DEADLINE_S)})")
                    continue
                try:
                    samples = [s for s in list(outcome.value or ()) if isinstance(s, IntensitySample)]
                except TypeError:
                    said.append(f"{p.name}: history() returned {type(outcome.value).__name__}, not samples")
                    continue
                samples = [s for s in samples if s.signal == signal]
                if not samples:
                    said.append(f"{p.name}: no {signal} history for {zone} from {_iso(start)} to {_iso(end)}")
                    continue
                try:
                    series = IntensitySeries.from_samples(samples)
                except ConfigError as exc:
                    said.append(f"{p.name}: its history is not usable ({exc})")
                    continue
                gap = coverage_gap(series, start, end)
                if gap:
                    said.append(f"{p.name}: history does not cover the run ({gap})")
                    continue
                return ProviderHistory(zone=zone, provider=p.name, series=series, samples=samples, notes=said)
    finally:
        if own and client is not None:
            client.close()
    return None
