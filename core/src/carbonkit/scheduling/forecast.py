"""Planning on the intensity providers' forecast: what ``carbonkit schedule --location`` and
``carbonkit run --start-within`` plan on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen

from .._redact import redact_text
from ..errors import ConfigError, IntensityUnavailable, UnknownZoneError
from ..records import IntensitySample, tuple_of
from ..zones import closest_zones, known_zones
from .durations import DurationLike, parse_duration, parse_window
from .flexible import flexible_start
from .pause_resume import pause_and_resume
from .plans import BACKFILL_S, SchedulePlan
from .series import _as_time

if TYPE_CHECKING:
    import httpx
    import pluggy

    from ..config import Config
    from ..protocols import IntensityProvider

__all__ = [
    "NoForecastError",
    "ProviderForecast",
    "forecast_from_providers",
    "plan_from_providers",
    "plan_start_within",
]


class NoForecastError(IntensityUnavailable):
    """No intensity provider has a forecast (varying in time) for the zone.

    Planning on a yearly average is meaningless (every start time looks the same), so the
    planners refuse rather than recommend "start now" with a saving of zero.
    """



@frozen(kw_only=True)
class ProviderForecast:
    """A forecast obtained from the provider chain: the samples, who gave them, and notes on
    the providers that gave none."""

    zone: str
    provider: str
    samples: tuple[IntensitySample, ...] = field(converter=tuple_of)
    notes: tuple[str, ...] = field(converter=tuple_of, default=())


def forecast_from_providers(
    zone: str | None,
    start: datetime,
    end: datetime,
    *,
    providers: Sequence[IntensityProvider] | None = None,
    pm: pluggy.PluginManager | None = None,
    http_client: httpx.Client | None = None,
    config: Config | None = None,
    signal: str | None = None,
) -> ProviderForecast:
    """Ask the providers for ``zone``, best first (as a tracker orders them), for a forecast of
    ``[start, end)``, and return the first one that varies in time.

    A forecast made only of ``"average"`` samples (a yearly average) is skipped: every start
    time would look the same.

    :param providers: Use these providers (in this order) instead of the plugins'.
    :param pm: Plugin manager (default :func:`carbonkit.plugins.make_plugin_manager`).
    :param http_client: HTTP client for the providers (default: one made and closed here).
    :param config: Configuration (default ``Config.from_env(location=zone)``).
    :param signal: ``"average"`` or ``"marginal"`` (default: the config's, from ``CARBONKIT_SIGNAL``):
        providers of that signal are asked first; a forecast of the other signal is noted.
    :raises NoForecastError: when no provider has one; the message lists what each said.
    :raises UnknownZoneError: when no installed provider knows the zone (naming the closest codes).
    """
    from .. import plugins as _plugins
    from .._http import default_http_client
    from ..config import Config

    config = config or Config.from_env(location=zone, signal=signal)
    signal = signal or config.signal
    zone_code = (config.location or zone or "").strip().upper()
    own = http_client is None and providers is None
    client = default_http_client() if own else http_client
    try:
        if not zone_code and providers is None:  # where is this machine? (cloud metadata, ...)
            pm = pm or _plugins.make_plugin_manager()
            found = _plugins.resolve_location(pm, config, client)  # type: ignore[arg-type]
            zone_code = found.zone.strip().upper() if found is not None else ""
            config = attrs.evolve(config, location=zone_code or None)
        if not zone_code:
            raise ConfigError(
                "a zone is needed to ask for a forecast: give --location or set CARBONKIT_LOCATION "
                "(no installed plugin found this machine's location)"
            )
        if providers is None:
            pm = pm or _plugins.make_plugin_manager()
            offers = _plugins.collect_intensity_providers(pm, config, client)  # type: ignore[arg-type]
            named = any(zone_code in p.zones for p in offers.objects)  # known without asking the catalogues
            known = None if named else known_zones(list(offers.objects))
            if known is not None and zone_code not in known:
                close = closest_zones(zone_code, known)
                hint = f"; closest known codes: {', '.join(close)}" if close else ""
                raise UnknownZoneError(
                    f"zone {zone_code!r} is not known to any installed intensity provider{hint} "
                    "(`carbonkit zones QUERY` lists the codes)",
                    zone=zone_code,
                )
            chain = _plugins.ordered_providers(list(offers.objects), zone_code, config.intensity_provider, signal)
        else:
            chain = list(providers)
        notes: list[str] = []
        if not any(_plugins.provider_signal(p) == signal for p in chain):
            notes.append(f"no installed intensity provider gives the {signal} signal for {zone_code}")
        for provider in chain:
            try:
                samples = list(provider.forecast(zone_code, start, end) or ())
            except Exception as exc:  # noqa: BLE001 (any failure of a provider is a note, and the next one is tried)
                notes.append(redact_text(f"{provider.name}: {type(exc).__name__}: {exc}"))
                continue
            if not samples:
                notes.append(f"{provider.name}: no forecast")
                continue
            if all(s.kind == "average" for s in samples):
                notes.append(f"{provider.name}: only a yearly average ({samples[0].source})")
                continue
            first = min(s.time for s in samples)
            if first.timestamp() > start.timestamp() + BACKFILL_S:
                notes.append(f"{provider.name}: its forecast starts at {first.isoformat()}, too long after now")
                continue
            if samples[0].signal != signal:
                notes.append(f"the forecast of {provider.name} is of the {samples[0].signal} signal, not the "
                             f"{signal} signal asked for (no {signal} forecast was available)")
            return ProviderForecast(zone=zone_code, provider=provider.name, samples=samples, notes=notes)
        tried = "; ".join(notes) if notes else "no provider covers the zone"
        raise NoForecastError(
            f"no intensity forecast for zone {zone_code!r} ({tried}). Planning on a yearly average would find "
            "no saving at all; run now, or plan on a series of your own (--series FILE)",
            zone=zone_code,
        )
    finally:
        if own and client is not None:
            client.close()


def plan_from_providers(
    zone: str | None,
    duration: DurationLike,
    window: DurationLike,
    *,
    pause_resume: bool = False,
    min_run: DurationLike | None = None,
    step: DurationLike | None = None,
    energy_kwh: float | None = None,
    now: datetime | None = None,
    providers: Sequence[IntensityProvider] | None = None,
    pm: pluggy.PluginManager | None = None,
    http_client: httpx.Client | None = None,
    config: Config | None = None,
    signal: str | None = None,
) -> SchedulePlan:
    """Plan on the providers' forecast for ``[now, now + window + duration)``.

    ``now`` defaults to the current time (UTC). The plan carries the zone, the provider and, in
    ``warnings``, what the providers that gave no forecast said.

    :raises NoForecastError: when no provider has a forecast for the zone.
    """
    d = parse_duration(duration)
    w = parse_window(window, d)
    current = now or datetime.now(timezone.utc)
    _as_time(current, "now")
    got = forecast_from_providers(
        zone, current, current + timedelta(seconds=w + d),
        providers=providers, pm=pm, http_client=http_client, config=config, signal=signal,
    )
    kwargs: dict[str, Any] = {"step": step, "energy_kwh": energy_kwh}
    if pause_resume:
        plan = pause_and_resume(got.samples, d, w, current, min_run=min_run, **kwargs)
    else:
        plan = flexible_start(got.samples, d, w, current, **kwargs)
    first = got.samples[0]
    flags = {s.estimated for s in got.samples}
    estimated = True if True in flags else (False if flags == {False} else None)
    kinds = sorted({s.kind for s in got.samples}, key=("forecast", "live", "average").index)
    return attrs.evolve(
        plan, zone=got.zone, provider=got.provider, warnings=(*plan.warnings, *got.notes),
        signal=first.signal, kind=kinds[0], source=first.source, factors=first.factors, estimated=estimated,
    )


def plan_start_within(
    window: DurationLike,
    duration_estimate: DurationLike,
    zone: str | None = None,
    **kwargs: Any,
) -> SchedulePlan:
    """Flexible Start for a job of about ``duration_estimate`` to start within ``window``, on the
    providers' forecast: what ``carbonkit run --start-within`` uses. Keyword arguments go to
    :func:`plan_from_providers`.

    :raises NoForecastError: when no provider has a forecast for the zone.
    """
    return plan_from_providers(zone, duration_estimate, window, pause_resume=False, **kwargs)
