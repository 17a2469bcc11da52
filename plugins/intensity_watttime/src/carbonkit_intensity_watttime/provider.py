"""WattTime API v3 client: login token, requests, payload parsing and the marginal provider.

Requests::

    GET {base}/login                       HTTP Basic auth (username, password) -> {"token": "..."}
    GET {base}/v3/region-from-loc?latitude=..&longitude=..&signal_type=co2_moer
    GET {base}/v3/forecast?region=CAISO_NORTH&signal_type=co2_moer&horizon_hours=1
    GET {base}/v3/historical?region=..&signal_type=co2_moer&start=..&end=..    (inclusive, UTC)

Every request after the login carries ``Authorization: Bearer <token>``. A token is valid for
30 minutes: it is renewed after :data:`RENEW_AFTER_S` (before it expires), and once when a
request is refused as unauthorised (HTTP 401, or the HTTP 403 HTML page WattTime's server
sends for an expired token); the request is then sent once more and a second refusal is an
error (never a loop).

Responses (v3 envelope)::

    {"data": [{"point_time": "2022-07-15T00:00:00+00:00", "value": 1048.41}, ...],
     "meta": {"data_point_period_seconds": 300, "region": "CAISO_NORTH", "signal_type": "co2_moer",
              "units": "lbs_co2_per_mwh", "model": {"date": "2023-03-01"}, "warnings": [],
              "generated_at": "2022-07-15T00:00:00+00:00", "generated_at_period_seconds": 300}}

The first point of ``/v3/forecast`` is the real-time value (WattTime's v2-to-v3 migration
guide). Values in ``lbs_co2_per_mwh`` are converted to g/kWh: 1 lb = 453.59237 g and
1 MWh = 1000 kWh, so g/kWh = lbs/MWh x 0.45359237. Any other declared unit (``percentile``:
the signal index) is refused.

Every request goes through :func:`carbonkit.http.get_json` (size limit, deadline,
``Retry-After`` bans, secret redaction).
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field, frozen

from carbonkit import ConfigError, IntensitySample, IntensityUnavailable, UnknownZoneError
from carbonkit.http import (
    DEFAULT_DEADLINE_S,
    DEFAULT_MAX_BYTES,
    Backoff,
    check_deadline,
    check_max_bytes,
    get_json,
    http_status,
    register_secret,
)
from carbonkit.plugin_settings import aware_utc, base_url_validator, strip_slash, utc_now
from carbonkit.plugin_settings import parse_utc_time as parse_time

from .regions import REGIONS_BY_ZONE, Region

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "G_PER_KWH_PER_LBS_PER_MWH",
    "RENEW_AFTER_S",
    "SIGNAL_TYPE",
    "TOKEN_LIFETIME_S",
    "UNITS",
    "MoerPoint",
    "MoerSeries",
    "WattTimeProvider",
    "lbs_per_mwh_to_g_per_kwh",
    "parse_series",
]

_logger = logging.getLogger(__name__)

PLUGIN = "intensity_watttime"
DEFAULT_BASE_URL = "https://api.watttime.org"
#: WattTime's marginal operating emissions rate of CO2.
SIGNAL_TYPE = "co2_moer"
#: The unit the service declares for ``co2_moer`` values.
UNITS = "lbs_co2_per_mwh"
#: g/kWh per lbs/MWh: 453.59237 g per lb / 1000 kWh per MWh.
G_PER_KWH_PER_LBS_PER_MWH = 0.45359237
#: A login token is valid for 30 minutes (WattTime API documentation).
TOKEN_LIFETIME_S = 1800.0
#: Renew the token when it is this old: 5 minutes before it expires.
RENEW_AFTER_S = 1500.0
#: Most hours ``/v3/forecast`` accepts in ``horizon_hours``.
MAX_HORIZON_H = 72
#: ``/v3/historical`` is asked in windows of at most 30 days (as WattTime's own client does).
HISTORICAL_CHUNK = timedelta(days=30)
MAX_HISTORY = timedelta(days=370)
_PLAN = (
    "WattTime's free plan gives MOER values (forecast, historical) for CAISO_NORTH only; elsewhere it gives "
    "only /v3/signal-index, a percentile that cannot price energy (plans: https://watttime.org/)"
)
_CREDENTIALS = "check CARBONKIT_WATTTIME_USERNAME and CARBONKIT_WATTTIME_PASSWORD"


def lbs_per_mwh_to_g_per_kwh(value: float) -> float:
    """Convert a rate in lbs CO2/MWh to g CO2/kWh (x 0.45359237)."""
    return value * G_PER_KWH_PER_LBS_PER_MWH


# -------------------------------------------------------------------------------------------
# Parsing
# -------------------------------------------------------------------------------------------



@frozen
class MoerPoint:
    """One point: ``point_time`` (start of its period, UTC), the value in g/kWh, and
    ``imputed_data_used`` when the row says it."""

    time: datetime
    g_per_kwh: float
    imputed: bool | None = None


@frozen
class MoerSeries:
    """A parsed v3 envelope: the points oldest first, their period, and the ``meta`` facts."""

    points: list[MoerPoint]
    period_s: float
    region: str | None
    model: str | None
    generated_at: datetime | None


def parse_series(payload: Any, *, expect_region: str | None = None) -> MoerSeries:
    """Parse a ``/v3/forecast`` or ``/v3/historical`` answer and convert it to g/kWh.

    :param expect_region: The region asked; an answer for another region is refused.
    :raises ValueError: not the v3 envelope; a unit other than ``lbs_co2_per_mwh``; a signal
        other than ``co2_moer``; another region; a bad point.
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    data, meta = payload.get("data"), payload.get("meta")
    if not isinstance(data, list):
        raise ValueError(f"no 'data' list (keys: {sorted(payload)})")
    if not isinstance(meta, Mapping):
        raise ValueError("no 'meta' object: the unit of the values is not declared")
    units = meta.get("units")
    if units != UNITS:
        if units == "percentile":
            raise ValueError(
                "meta.units is 'percentile': these are signal-index values (0 to 100), not emission rates, "
                "and cannot price energy"
            )
        raise ValueError(f"meta.units is {units!r}, not {UNITS!r}: refusing values in an unexpected unit")
    signal = meta.get("signal_type")
    if signal is not None and signal != SIGNAL_TYPE:
        raise ValueError(f"meta.signal_type is {signal!r}, not {SIGNAL_TYPE!r}")
    region = meta.get("region")
    if expect_region is not None and isinstance(region, str) and region != expect_region:
        raise ValueError(f"meta.region is {region!r}, not the {expect_region!r} asked")
    period = meta.get("data_point_period_seconds")
    if period is not None and (
        isinstance(period, bool) or not isinstance(period, (int, float)) or not math.isfinite(period) or period <= 0
    ):
        raise ValueError(f"meta.data_point_period_seconds is not a number > 0: {period!r}")
    model = meta.get("model")
    model_date = model.get("date") if isinstance(model, Mapping) else None
    generated = meta.get("generated_at")
    points: dict[datetime, MoerPoint] = {}
    for index, row in enumerate(data):
        if not isinstance(row, Mapping):
            raise ValueError(f"data[{index}] is not an object: {row!r}")
        try:
            when = parse_time(row.get("point_time"), "point_time")
        except ValueError as exc:
            raise ValueError(f"data[{index}]: {exc}") from None
        value = row.get("value")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"data[{index}]: value is not a number >= 0: {value!r}")
        imputed = row.get("imputed_data_used")
        points[when] = MoerPoint(
            time=when,
            g_per_kwh=lbs_per_mwh_to_g_per_kwh(float(value)),
            imputed=imputed if isinstance(imputed, bool) else None,
        )
    ordered = [points[t] for t in sorted(points)]
    if period is None:
        gaps = [(b.time - a.time).total_seconds() for a, b in zip(ordered, ordered[1:])]
        period = min((g for g in gaps if g > 0), default=300.0)
    return MoerSeries(
        points=ordered,
        period_s=float(period),
        region=region if isinstance(region, str) else None,
        model=str(model_date) if model_date is not None else None,
        generated_at=parse_time(generated, "generated_at") if generated is not None else None,
    )


# -------------------------------------------------------------------------------------------
# Provider
# -------------------------------------------------------------------------------------------


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


_check_base_url = base_url_validator("WattTime base URL", DEFAULT_BASE_URL)


def _check_secret(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"the WattTime {attribute.name} must be a non-empty string")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(f"the WattTime {attribute.name} contains control characters (value not shown)")
    if attribute.name == "username" and ":" in value:
        raise ConfigError(f"the WattTime username cannot contain ':' (HTTP Basic auth), got {value!r}")


def _check_region(instance: Any, attribute: Any, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value or not value.replace("_", "").isalnum()):
        raise ConfigError(f"region must be a WattTime region code such as 'CAISO_NORTH', got {value!r}")


def _check_coordinates(instance: Any, attribute: Any, value: tuple[float, float] | None) -> None:
    if value is None:
        return
    ok = isinstance(value, tuple) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )
    if not ok or not (-90 <= value[0] <= 90 and -180 <= value[1] <= 180):
        raise ConfigError(f"coordinates must be (latitude -90..90, longitude -180..180), got {value!r}")



def _html_error(exc: BaseException) -> bool:
    """Whether the error answer was an HTML page (WattTime's server page for a refused token)."""
    response = getattr(exc.__cause__, "response", None)
    content_type = str(getattr(response, "headers", {}).get("content-type", "")).lower()
    return "html" in content_type or "with an HTML body" in str(exc)


@define(kw_only=True)
class WattTimeProvider:
    """Marginal CO2 emission rate (``co2_moer``) of a WattTime region, in g/kWh.

    Zones: the Electricity Maps codes of :data:`~carbonkit_intensity_watttime.regions.REGIONS_BY_ZONE`
    (plus ``extra_zones``). With ``region`` set, the machine's zone (``extra_zones`` when given,
    else every zone) is served from that WattTime region; with ``coordinates`` set, its region
    is asked of ``/v3/region-from-loc`` once. Other zones use the table.

    :param client: The HTTP client every request goes through.
    :param username: WattTime username.
    :param password: WattTime password; never shown, logged or put in a message.
    :param base_url: API root, default :data:`DEFAULT_BASE_URL`.
    :param region: A WattTime region code that overrides the zone table.
    :param coordinates: ``(latitude, longitude)`` of the machine, resolved to a region.
    :param extra_zones: Zone codes served besides the table's (the run's zone when
        ``region`` or ``coordinates`` is set).
    :param now: Clock returning an aware datetime (injected in tests).
    :param monotonic: Clock for the token's age, seconds (injected in tests).
    :param max_bytes: Largest response body accepted, after decompression.
    :param deadline_s: Seconds one request may take in all.
    """

    name: ClassVar[str] = f"{PLUGIN}:moer"
    priority: ClassVar[int] = 90
    signal: ClassVar[str] = "marginal"
    capabilities: ClassVar[frozenset[str]] = frozenset({"live", "forecast", "history"})

    client: httpx.Client = field(repr=False)
    username: str = field(validator=_check_secret)
    password: str = field(repr=False, validator=_check_secret)
    base_url: str = field(default=DEFAULT_BASE_URL, converter=strip_slash, validator=_check_base_url)
    region: str | None = field(default=None, validator=_check_region)
    coordinates: tuple[float, float] | None = field(default=None, validator=_check_coordinates)
    extra_zones: frozenset[str] = field(default=frozenset(), converter=frozenset)
    now: Callable[[], datetime] = field(default=utc_now, repr=False)
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)
    max_bytes: int = field(default=DEFAULT_MAX_BYTES, validator=check_max_bytes)
    deadline_s: float = field(default=DEFAULT_DEADLINE_S, validator=check_deadline)
    _token: str | None = field(default=None, init=False, repr=False)
    _token_at: float = field(default=0.0, init=False, repr=False)
    _located: Region | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)
    _backoff: Backoff = field(factory=Backoff, init=False, repr=False)

    @property
    def zones(self) -> frozenset[str]:
        """The Electricity Maps zone codes served."""
        return frozenset(REGIONS_BY_ZONE) | {z.upper() for z in self.extra_zones}

    def known_zones(self) -> frozenset[str]:
        """The zones of the table (those with a WattTime region of their own or a representative one)."""
        return frozenset(REGIONS_BY_ZONE)

    def zone_names(self) -> dict[str, str]:
        """Zone code -> the WattTime region that serves it, for ``carbonkit zones``."""
        return {
            zone: f"{r.name} (WattTime {r.code}{', representative sub-region' if r.representative else ''})"
            for zone, r in REGIONS_BY_ZONE.items()
        }

    # -- protocol ---------------------------------------------------------------------------

    def current(self, zone: str) -> IntensitySample:
        """Return the real-time marginal rate: the first point of ``/v3/forecast`` (asked one hour
        ahead: twelve 5-minute points, a small answer that always holds the current one).

        :raises UnknownZoneError: the zone has no WattTime region here.
        :raises IntensityUnavailable: login or request failed, the region is not in the
            account's plan, or the answer is not a MOER in lbs/MWh.
        """
        zone, region = self._region(zone)
        series = self._series("/v3/forecast", {"horizon_hours": "1"}, zone, region.code)
        if not series.points:
            raise self._fail(f"WattTime /v3/forecast: no points for {region.code}", zone)
        now = aware_utc(self.now(), "now()")
        started = [p for p in series.points if p.time <= now]
        point = started[-1] if started else series.points[0]
        return self._sample(point, series, zone, region, "/v3/forecast real-time point", "live")

    def forecast(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Return the forecast points overlapping ``[start, end)`` (at most 72 hours ahead).

        :raises IntensityUnavailable: as :meth:`current`, or no point overlaps the window.
        """
        zone, region = self._region(zone)
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        if end <= start:
            return []
        now = aware_utc(self.now(), "now()")
        hours = max(1, min(MAX_HORIZON_H, math.ceil((end - now).total_seconds() / 3600)))
        series = self._series("/v3/forecast", {"horizon_hours": str(hours)}, zone, region.code)
        samples = self._window(series, zone, region, "/v3/forecast", "forecast", start, end)
        if not samples:
            raise self._fail(
                f"WattTime /v3/forecast: no points for {region.code} between {_iso(start)} and {_iso(end)}", zone
            )
        return samples

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Return the historical points overlapping ``[start, end)``, kind ``"live"``, asked
        of ``/v3/historical`` in windows of at most 30 days.

        :raises IntensityUnavailable: as :meth:`current`, or the window is over 370 days.
        """
        zone, region = self._region(zone)
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        if end <= start:
            return []
        if end - start > MAX_HISTORY:
            raise self._fail(f"WattTime history: windows over {MAX_HISTORY.days} days are not asked", zone)
        samples: list[IntensitySample] = []
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(end, chunk_start + HISTORICAL_CHUNK)
            params = {"start": _iso(chunk_start), "end": _iso(chunk_end)}  # inclusive on both ends
            series = self._series("/v3/historical", params, zone, region.code)
            samples += self._window(series, zone, region, "/v3/historical", "live", chunk_start, chunk_end)
            chunk_start = chunk_end
        return samples

    # -- region -------------------------------------------------------------------------------

    def _region(self, zone: str) -> tuple[str, Region]:
        code = zone.strip().upper() if isinstance(zone, str) else ""
        # The machine's own region (set, or from its coordinates) is for the machine's zone: the
        # extra zones when given, else every zone served.
        own = code in {z.upper() for z in self.extra_zones} if self.extra_zones else code in self.zones
        if self.region is not None and own:
            return code, Region(code=self.region, name=self.region, chosen_by="CARBONKIT_WATTTIME_REGION")
        if self.coordinates is not None and own:
            return code, self._locate(code)
        region = REGIONS_BY_ZONE.get(code)
        if region is None:
            raise UnknownZoneError(
                f"{self.name} has no WattTime region for zone {zone!r} (it covers {len(REGIONS_BY_ZONE)} US zones; "
                "set CARBONKIT_WATTTIME_REGION or CARBONKIT_WATTTIME_LATITUDE/_LONGITUDE for another place)",
                provider=self.name,
                zone=code or None,
            )
        return code, region

    def _locate(self, zone: str) -> Region:
        with self._lock:
            if self._located is not None:
                return self._located
        assert self.coordinates is not None
        lat, lon = self.coordinates
        params = {"latitude": f"{lat:g}", "longitude": f"{lon:g}", "signal_type": SIGNAL_TYPE}
        payload = self._authorised("/v3/region-from-loc", params, zone, "any region")
        region = payload.get("region") if isinstance(payload, Mapping) else None
        if not isinstance(region, str) or not region:
            raise self._fail(f"WattTime /v3/region-from-loc: no 'region' in the answer: {payload!r}"[:300], zone)
        full = payload.get("region_full_name")
        located = Region(code=region, name=str(full or region), chosen_by=f"coordinates {lat:g}, {lon:g}")
        with self._lock:
            self._located = located
        return located

    # -- requests -------------------------------------------------------------------------------

    def _fail(self, message: str, zone: str | None) -> IntensityUnavailable:
        return IntensityUnavailable(self._scrub(message), provider=self.name, zone=zone)

    def _scrub(self, text: str) -> str:
        for secret in (self.password, self._token):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _series(self, path: str, params: Mapping[str, str], zone: str, region: str) -> MoerSeries:
        payload = self._authorised(path, {"region": region, "signal_type": SIGNAL_TYPE, **params}, zone, region)
        try:
            return parse_series(payload, expect_region=region)
        except ValueError as exc:
            raise self._fail(f"WattTime {path}: unexpected answer for {region}: {exc}", zone) from exc

    def _window(
        self,
        series: MoerSeries,
        zone: str,
        region: Region,
        endpoint: str,
        kind: str,
        start: datetime,
        end: datetime,
    ) -> list[IntensitySample]:
        period = timedelta(seconds=series.period_s)
        return [
            self._sample(p, series, zone, region, endpoint, kind)
            for p in series.points
            if p.time < end and p.time + period > start
        ]

    def _sample(
        self, point: MoerPoint, series: MoerSeries, zone: str, region: Region, endpoint: str, kind: str
    ) -> IntensitySample:
        detail = [region.code]
        if region.representative:
            detail.append(f"representative sub-region of {zone}")
        if region.chosen_by:
            detail.append(f"from {region.chosen_by}")
        if series.model:
            detail.append(f"model {series.model}")
        return IntensitySample(
            time=point.time,
            g_per_kwh=point.g_per_kwh,
            zone=zone,
            source=f"WattTime co2_moer {endpoint} ({', '.join(detail)}; lbs/MWh x 0.45359237)",
            kind=kind,
            period_s=series.period_s,
            signal="marginal",
            estimated=point.imputed,
        )

    def _token_now(self, *, renew: bool) -> str:
        """A valid token: the one held while younger than :data:`RENEW_AFTER_S`, else a new login."""
        with self._lock:
            fresh = self._token is not None and self.monotonic() - self._token_at < RENEW_AFTER_S
            if fresh and not renew:
                assert self._token is not None
                return self._token
            self._token = None
        token = self._login()
        register_secret(token)  # the core scrubs it from every message, log line and report
        with self._lock:
            self._token, self._token_at = token, self.monotonic()
        return token

    def _login(self) -> str:
        credentials = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        try:
            payload = get_json(
                self.client,
                f"{self.base_url}/login",
                headers={"Authorization": f"Basic {credentials}"},
                provider=self.name,
                what="WattTime /login",
                backoff=self._backoff,
                now=aware_utc(self.now(), "now()"),
                max_bytes=min(self.max_bytes, 64 * 1024),
                deadline_s=self.deadline_s,
            )
        except IntensityUnavailable as exc:
            if http_status(exc) in (401, 403):
                raise self._fail(
                    f"WattTime /login: the username {self.username!r} or its password was rejected ({_CREDENTIALS}); "
                    f"{exc}",
                    None,
                ) from None
            raise self._fail(str(exc), None) from None
        token = payload.get("token") if isinstance(payload, Mapping) else None
        if not isinstance(token, str) or not token.strip():
            keys = sorted(payload) if isinstance(payload, Mapping) else type(payload).__name__
            raise self._fail(f"WattTime /login: no token in the answer (keys: {keys})", None)
        return token.strip()

    def _authorised(self, path: str, params: Mapping[str, str], zone: str, region: str) -> Any:
        """GET ``path`` with the token; renew it and send again once if it is refused."""
        token = self._token_now(renew=False)
        try:
            return self._get(path, params, zone, token)
        except IntensityUnavailable as exc:
            status = http_status(exc)
            if not (status == 401 or (status == 403 and _html_error(exc))):
                raise self._explain(exc, path, zone, region) from None
            _logger.debug("WattTime %s: token refused (HTTP %s); logging in again, once", path, status)
        token = self._token_now(renew=True)
        try:
            return self._get(path, params, zone, token)
        except IntensityUnavailable as exc:
            status = http_status(exc)
            if status == 401 or (status == 403 and _html_error(exc)):
                raise self._fail(
                    f"WattTime {path}: the token was refused again right after a new login (HTTP {status}); "
                    f"{_CREDENTIALS}; {exc}",
                    zone,
                ) from None
            raise self._explain(exc, path, zone, region) from None

    def _get(self, path: str, params: Mapping[str, str], zone: str, token: str) -> Any:
        return get_json(
            self.client,
            f"{self.base_url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            provider=self.name,
            zone=zone,
            what=f"WattTime {path}",
            backoff=self._backoff,
            now=aware_utc(self.now(), "now()"),
            max_bytes=self.max_bytes,
            deadline_s=self.deadline_s,
        )

    def _explain(self, exc: IntensityUnavailable, path: str, zone: str, region: str) -> IntensityUnavailable:
        status = http_status(exc)
        if status == 403:
            return self._fail(
                f"WattTime: {path} for region {region} is not in this account's plan ({_PLAN}); {exc}", zone
            )
        if status == 404 and path == "/v3/region-from-loc":
            return self._fail(f"WattTime: no region covers the coordinates {self.coordinates}; {exc}", zone)
        if status in (400, 404):
            return self._fail(f"WattTime: region {region!r} or a parameter was not accepted; {exc}", zone)
        return self._fail(str(exc), zone)

