"""The ENTSO-E Transparency Platform provider: live, forecast and past intensity of a European zone.

Requests (``GET {base}`` with the query below; times ``yyyyMMddHHmm`` UTC, whole hours)::

    live, history  documentType=A75 processType=A16 in_Domain={EIC} periodStart periodEnd
    forecast       documentType=A71 processType=A01 in_Domain={EIC} periodStart periodEnd
                   documentType=A69 processType=A01 in_Domain={EIC} periodStart periodEnd

The security token travels as the query parameter :data:`TOKEN_PARAM` (``securityToken``),
passed to :func:`carbonkit.http.get_bytes` through ``params=``, whose error texts and logs
replace it with ``***``; it is never part of a URL string built here and never in a repr.

**Live.** Actual generation per production type (A75) over a window that ends at the next
whole hour after now and starts :attr:`EntsoeProvider.lookback` earlier; the value is the
newest *complete* interval (see :mod:`.mix`), priced with
:data:`carbonkit.emission_factors.IPCC_2014`. TSOs must publish actual generation within an
hour of real time (Commission Regulation (EU) 543/2013, Article 16), hence
:attr:`EntsoeProvider.max_lag_s` = 3600.

**Forecast.** The day-ahead wind and solar forecast (A69) gives solar and wind per type, priced
with their own factors. The day-ahead aggregated generation forecast (A71) gives the total; the
rest, total minus wind and solar (never below zero), has no breakdown and is priced at the
intensity of the zone's newest complete actual mix without its wind and solar (the "recent
non-wind, non-solar mix": the one :meth:`EntsoeProvider.current` found last, while it ended
within :attr:`EntsoeProvider.lookback`, else fetched with A75). When A69 has no data for the
zone, all of A71 is priced so. A71 without data leaves no forecast (``IntensityUnavailable``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field

from carbonkit import ConfigError, IntensitySample, IntensityUnavailable, UnknownZoneError
from carbonkit.emission_factors import IPCC_2014, mix_intensity
from carbonkit.http import DEFAULT_DEADLINE_S, DEFAULT_MAX_BYTES, Backoff, check_deadline, check_max_bytes, get_bytes
from carbonkit.plugin_settings import aware_utc, base_url_validator, floor_hour, strip_slash, strip_text, utc_now

from .documents import NoData, Series, parse_document
from .mix import MixInterval, timeline
from .zones import EIC_BY_ZONE, ZONE_NAMES, fuel_of

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_LAG_S",
    "TOKEN_PARAM",
    "EntsoeProvider",
]

_logger = logging.getLogger(__name__)

PLUGIN = "intensity_entsoe"
#: The Transparency Platform's RESTful API.
DEFAULT_BASE_URL = "https://web-api.tp.entsoe.eu/api"
#: The query parameter carrying the security token (a secret: redacted by carbonkit.http).
TOKEN_PARAM = "securityToken"
#: How late actual generation is published (Regulation (EU) 543/2013, Art. 16: one hour).
MAX_LAG_S = 3600.0
#: Longest window one history request asks for (a week of PT15M data is about 0.5 MB).
HISTORY_CHUNK = timedelta(days=7)
_HOUR = timedelta(hours=1)
_TIME_FORMAT = "%Y%m%d%H%M"
_SERVICE = "ENTSO-E Transparency Platform"
_WIND_SOLAR = frozenset({"wind", "solar"})


def _ceil_hour(t: datetime) -> datetime:
    floor = floor_hour(t)
    return floor if floor == t else floor + _HOUR


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%MZ")


_check_base_url = base_url_validator("ENTSO-E API URL (CARBONKIT_ENTSOE_API_URL)", DEFAULT_BASE_URL)


def _check_token(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        # The value itself is a secret: never repeated in the message.
        raise ConfigError("CARBONKIT_ENTSOE_TOKEN must be the security token from your Transparency Platform account "
                          "(one word, no spaces)")


def _check_lookback(instance: Any, attribute: Any, value: timedelta) -> None:
    if not isinstance(value, timedelta) or not (_HOUR <= value <= timedelta(days=2)):
        raise ConfigError(f"lookback must be a timedelta from 1 hour to 2 days, got {value!r}")


@define(kw_only=True)
class EntsoeProvider:
    """Average carbon intensity of a European zone from ENTSO-E generation data.

    :param client: The HTTP client every request goes through (the core's, with timeouts).
    :param token: The Transparency Platform security token (never shown in a repr or message).
    :param base_url: API endpoint, default :data:`DEFAULT_BASE_URL`.
    :param now: Clock returning an aware datetime (injected in tests).
    :param lookback: How far back :meth:`current` asks for actual generation.
    :param max_bytes: Largest response body accepted, after decompression.
    :param deadline_s: Seconds one request may take in all.
    """

    name: ClassVar[str] = f"{PLUGIN}:transparency"
    zones: ClassVar[frozenset[str]] = frozenset(EIC_BY_ZONE)
    priority: ClassVar[int] = 100
    signal: ClassVar[str] = "average"
    max_lag_s: ClassVar[float] = MAX_LAG_S
    capabilities: ClassVar[frozenset[str]] = frozenset({"live", "forecast", "history"})

    client: httpx.Client = field(repr=False)
    token: str = field(repr=False, validator=_check_token, converter=strip_text)
    base_url: str = field(default=DEFAULT_BASE_URL, converter=strip_slash, validator=_check_base_url)
    now: Callable[[], datetime] = field(default=utc_now, repr=False)
    lookback: timedelta = field(default=timedelta(hours=6), validator=_check_lookback)
    max_bytes: int = field(default=DEFAULT_MAX_BYTES, validator=check_max_bytes)
    deadline_s: float = field(default=DEFAULT_DEADLINE_S, validator=check_deadline)
    _backoff: Backoff = field(factory=Backoff, init=False, repr=False)
    _recent: dict[str, MixInterval] = field(factory=dict, init=False, repr=False)

    # -- catalogue ----------------------------------------------------------------------------

    def known_zones(self) -> frozenset[str]:
        """Every zone code this provider maps to an ENTSO-E area."""
        return self.zones

    def zone_names(self) -> Mapping[str, str]:
        """Zone code -> area name."""
        return dict(ZONE_NAMES)

    # -- protocol -----------------------------------------------------------------------------

    def current(self, zone: str) -> IntensitySample:
        """The newest complete interval of actual generation within :attr:`lookback`.

        :raises UnknownZoneError: ``zone`` is not mapped to an ENTSO-E area.
        :raises IntensityUnavailable: the request failed, the service has no data, or no
            interval is complete.
        """
        zone, eic = self._area(zone)
        now = aware_utc(self.now(), "now()")
        start, end = floor_hour(now - self.lookback), _ceil_hour(now)
        interval = self._latest_actual(zone, eic, start, end)
        return self._live_sample(zone, eic, interval)

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Live samples of every complete interval overlapping ``[start, end)``, oldest first
        (requests of at most a week each; a week without data adds nothing).

        :raises IntensityUnavailable: a request failed.
        """
        zone, eic = self._area(zone)
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        if end <= start:
            return []
        out: list[IntensitySample] = []
        chunk_start = floor_hour(start)
        final = _ceil_hour(end)
        while chunk_start < final:
            chunk_end = min(chunk_start + HISTORY_CHUNK, final)
            try:
                series = self._fetch(zone, "A75", "A16", eic, chunk_start, chunk_end)
            except NoData:
                series = []
            out.extend(
                self._live_sample(zone, eic, i)
                for i in timeline(series)
                if i.complete and i.end > start and i.start < end and _priced(i)
            )
            chunk_start = chunk_end
        return out

    def forecast(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Day-ahead forecast intervals overlapping ``[start, end)``, oldest first (the
        day-ahead forecast reaches the end of the next day at most).

        :raises IntensityUnavailable: a request failed, A71 has no data in the window, or no
            recent actual mix prices the rest.
        """
        zone, eic = self._area(zone)
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        if end <= start:
            return []
        window = (floor_hour(start), _ceil_hour(end))
        try:
            totals = self._fetch(zone, "A71", "A01", eic, *window)
        except NoData as exc:
            raise IntensityUnavailable(
                f"{_SERVICE} A71 (day-ahead generation forecast): no data for {zone} between {_iso(window[0])} "
                f"and {_iso(window[1])}: {exc.text}",
                provider=self.name,
                zone=zone,
            ) from None
        try:
            wind_solar: list[Series] = self._fetch(zone, "A69", "A01", eic, *window)
            have_wind_solar = True
        except NoData:
            wind_solar, have_wind_solar = [], False
        now = aware_utc(self.now(), "now()")
        recent = self._recent.get(zone)
        if recent is None or recent.end < now - self.lookback:
            recent = self._latest_actual(zone, eic, floor_hour(now - self.lookback), _ceil_hour(now))
        rest_mix = {f: mw for f, mw in recent.by_fuel(fuel_of).items() if f not in _WIND_SOLAR}
        try:
            rest_g = mix_intensity(rest_mix)
            rest_label = f"the non-wind, non-solar actual mix of {_iso(recent.start)} ({rest_g:.0f} g/kWh)"
        except ValueError:
            rest_g = mix_intensity(recent.by_fuel(fuel_of))
            rest_label = f"the actual mix of {_iso(recent.start)} ({rest_g:.0f} g/kWh)"
        total_line = timeline(totals)
        ws_line = timeline(wind_solar)
        source = (
            f"{_SERVICE}, day-ahead forecast for {zone} ({eic}): wind and solar (A69) priced per type, the rest of "
            f"the generation forecast (A71) at {rest_label}; {IPCC_2014.name}"
            if have_wind_solar
            else f"{_SERVICE}, day-ahead generation forecast (A71) for {zone} ({eic}), no wind and solar forecast "
            f"(A69) published, priced at {rest_label}; {IPCC_2014.name}"
        )
        out: list[IntensitySample] = []
        for interval in _cut(total_line, ws_line):
            if interval[1] <= start or interval[0] >= end:
                continue
            begin, stop, total, ws = interval
            if have_wind_solar and (ws is None or not ws.complete):
                continue  # A69 does not reach this interval: no honest split
            ws_fuels = ws.by_fuel(fuel_of) if ws is not None else {}
            ws_mw = sum(ws_fuels.values())
            rest_mw = max(total - ws_mw, 0.0)
            weighted = rest_g * rest_mw + sum(IPCC_2014.g_per_kwh[f] * mw for f, mw in ws_fuels.items())
            generated = rest_mw + ws_mw
            if generated <= 0:
                continue
            out.append(
                IntensitySample(
                    time=begin,
                    g_per_kwh=weighted / generated,
                    zone=zone,
                    source=source,
                    kind="forecast",
                    period_s=(stop - begin).total_seconds(),
                    signal="average",
                    factors=IPCC_2014.name,
                )
            )
        if not out:
            raise IntensityUnavailable(
                f"{_SERVICE}: no forecast interval for {zone} between {_iso(start)} and {_iso(end)} "
                "(the day-ahead forecasts do not reach it)",
                provider=self.name,
                zone=zone,
            )
        return out

    # -- helpers ------------------------------------------------------------------------------

    def _area(self, zone: str) -> tuple[str, str]:
        code = zone.strip().upper() if isinstance(zone, str) else None
        if code is None or code not in EIC_BY_ZONE:
            raise UnknownZoneError(
                f"{self.name} covers {len(EIC_BY_ZONE)} European zones ({', '.join(sorted(EIC_BY_ZONE)[:6])}...), "
                f"not {zone!r}",
                provider=self.name,
                zone=zone if isinstance(zone, str) else None,
            )
        return code, EIC_BY_ZONE[code]

    def _latest_actual(self, zone: str, eic: str, start: datetime, end: datetime) -> MixInterval:
        try:
            series = self._fetch(zone, "A75", "A16", eic, start, end)
        except NoData as exc:
            raise IntensityUnavailable(
                f"{_SERVICE} A75 (actual generation per type): no data for {zone} between {_iso(start)} and "
                f"{_iso(end)}: {exc.text}",
                provider=self.name,
                zone=zone,
            ) from None
        intervals = [i for i in timeline(series) if i.complete and _priced(i)]
        if not intervals:
            raise IntensityUnavailable(
                f"{_SERVICE} A75 (actual generation per type): no complete interval for {zone} between "
                f"{_iso(start)} and {_iso(end)}",
                provider=self.name,
                zone=zone,
            )
        self._recent[zone] = intervals[-1]
        return intervals[-1]

    def _live_sample(self, zone: str, eic: str, interval: MixInterval) -> IntensitySample:
        return IntensitySample(
            time=interval.start,
            g_per_kwh=mix_intensity(interval.by_fuel(fuel_of)),
            zone=zone,
            source=f"{_SERVICE}, actual generation per production type (A75) for {zone} ({eic}), "
            f"x {IPCC_2014.name}",
            kind="live",
            period_s=(interval.end - interval.start).total_seconds(),
            signal="average",
            factors=IPCC_2014.name,
        )

    def _fetch(
        self, zone: str, document: str, process: str, eic: str, start: datetime, end: datetime
    ) -> list[Series]:
        """GET one document and parse it. :raises NoData: the 999 acknowledgement."""
        import httpx

        what = f"{_SERVICE} {document}"
        params = {
            "documentType": document,
            "processType": process,
            "in_Domain": eic,
            "periodStart": start.strftime(_TIME_FORMAT),
            "periodEnd": end.strftime(_TIME_FORMAT),
            TOKEN_PARAM: self.token,
        }
        try:
            body = get_bytes(
                self.client,
                self.base_url,
                params=params,
                provider=self.name,
                zone=zone,
                what=what,
                backoff=self._backoff,
                now=aware_utc(self.now(), "now()"),
                max_bytes=self.max_bytes,
                deadline_s=self.deadline_s,
            )
        except IntensityUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 401:
                raise IntensityUnavailable(
                    f"{what}: the security token was refused (HTTP 401 Unauthorized); check CARBONKIT_ENTSOE_TOKEN "
                    "(a token is generated under 'My Account Settings' once API access is granted)",
                    provider=self.name,
                    zone=zone,
                ) from exc
            raise
        try:
            return parse_document(body.content)
        except ValueError as exc:
            raise IntensityUnavailable(f"{what}: {exc}", provider=self.name, zone=zone) from exc


def _priced(interval: MixInterval) -> bool:
    """Whether an interval has generation with a factor (storage alone cannot be priced)."""
    return any(f != "storage" and mw > 0 for f, mw in interval.by_fuel(fuel_of).items())


def _cut(
    totals: Sequence[MixInterval], wind_solar: Sequence[MixInterval]
) -> list[tuple[datetime, datetime, float, MixInterval | None]]:
    """Intervals of the A71 total, cut again where the A69 intervals start or end:
    ``(start, end, total MW, the A69 interval covering it or None)``."""
    everything = [*totals, *wind_solar]
    bounds = sorted({i.start for i in everything} | {i.end for i in everything})
    out: list[tuple[datetime, datetime, float, MixInterval | None]] = []
    ti = wi = 0
    for begin, stop in zip(bounds, bounds[1:]):
        while ti < len(totals) and totals[ti].end <= begin:
            ti += 1
        while wi < len(wind_solar) and wind_solar[wi].end <= begin:
            wi += 1
        if ti >= len(totals) or not totals[ti].start <= begin:
            continue
        total = sum(totals[ti].by_type.values())
        if not math.isfinite(total):
            continue
        ws = wind_solar[wi] if wi < len(wind_solar) and wind_solar[wi].start <= begin else None
        out.append((begin, stop, total, ws))
    return out
