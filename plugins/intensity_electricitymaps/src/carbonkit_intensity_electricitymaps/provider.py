"""Electricity Maps API v3 client: requests, payload parsing and the intensity provider.

Requests (all ``GET``, header ``auth-token: <token>``)::

    {base}/carbon-intensity/latest?zone=DE&emissionFactorType=lifecycle
    {base}/carbon-intensity/history?zone=DE&emissionFactorType=lifecycle        (the last 24 hours)
    {base}/carbon-intensity/past-range?zone=DE&start=...&end=...&emissionFactorType=lifecycle
    {base}/carbon-intensity/forecast?zone=DE&emissionFactorType=lifecycle

Responses (shapes of real captured answers, see the plugin README)::

    latest:     {"zone": "BE", "carbonIntensity": 214, "datetime": "2024-11-28T15:00:00.000Z",
                 "updatedAt": "2024-11-28T14:46:10.233Z", "createdAt": "2024-11-25T15:43:23.481Z",
                 "emissionFactorType": "lifecycle", "isEstimated": true,
                 "estimationMethod": "TIME_SLICER_AVERAGE", "temporalGranularity": "hourly"}
    history:    {"zone": "DE", "history": [<entries as latest>]}
    past-range: {"zone": "DE", "data": [<entries as latest>]}
    forecast:   {"zone": "CH", "forecast": [{"carbonIntensity": 90, "datetime": "..."}], "updatedAt": "..."}

``datetime`` is the start of the period the value covers; the period is the entry's
``temporalGranularity`` (``5_minutes``, ``15_minutes``, ``hourly``...), else the spacing of the
entries of a series, else one hour (the API's default granularity). ``updatedAt`` is when the
value was last computed and ``createdAt`` when it was first: a value updated before its period
began was computed ahead of the data (an estimate), which is how ``estimated`` is derived when
the entry has no ``isEstimated``.

Every request goes through :func:`carbonkit.http.get_json` (size limit, deadline, ``Retry-After``
bans, secret redaction); the HTTP errors of the service are then explained here (token
rejected, not in the token's plan, zone unknown).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field, frozen

from carbonkit import ConfigError, IntensitySample, IntensityUnavailable
from carbonkit.http import (
    DEFAULT_DEADLINE_S,
    DEFAULT_MAX_BYTES,
    Backoff,
    check_deadline,
    check_max_bytes,
    get_json,
    http_status,
)
from carbonkit.plugin_settings import aware_utc, base_url_validator, strip_slash, utc_now
from carbonkit.plugin_settings import parse_utc_time as parse_time

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "EMISSION_FACTOR_TYPES",
    "GRANULARITY_S",
    "ElectricityMapsProvider",
    "Entry",
    "parse_entries",
    "parse_entry",
]

_logger = logging.getLogger(__name__)

PLUGIN = "intensity_electricitymaps"
#: The current API root (the portal's reference); ``https://api.electricitymap.org/v3`` also answers.
DEFAULT_BASE_URL = "https://api.electricitymaps.com/v3"
#: The values ``emissionFactorType`` accepts: life-cycle (the API's default) or direct emissions.
EMISSION_FACTOR_TYPES = ("lifecycle", "direct")
#: Seconds covered by one value of each ``temporalGranularity``.
GRANULARITY_S: Mapping[str, float] = {
    "5_minutes": 300.0,
    "15_minutes": 900.0,
    "hourly": 3600.0,
    "daily": 86400.0,
}
#: The API's default granularity, used when neither the entry nor the series says.
DEFAULT_PERIOD_S = 3600.0
#: ``/history`` covers the last 24 hours; older values come from ``/past-range``.
HISTORY_SPAN = timedelta(hours=24)
#: ``/past-range`` answers at most 10 days of hourly values per request.
PAST_RANGE_CHUNK = timedelta(days=10)
#: Longest history asked in one call (37 requests of ``/past-range``).
MAX_HISTORY = timedelta(days=370)
_FREE_TIER = (
    "the free tier gives one zone (chosen in the portal), its latest value and the last 24 hours, "
    "no forecast and no older history"
)
_TOKEN_HINT = "get a token at https://portal.electricitymaps.com/ and set CARBONKIT_ELECTRICITYMAPS_TOKEN"


# -------------------------------------------------------------------------------------------
# Parsing
# -------------------------------------------------------------------------------------------



@frozen
class Entry:
    """One carbon-intensity value of the API.

    :param time: Start of the period (``datetime``), UTC.
    :param g_per_kwh: ``carbonIntensity``, gCO2eq/kWh; None when the API has no value.
    :param period_s: From ``temporalGranularity``, None when the entry does not say.
    :param estimated: ``isEstimated``, else whether ``updatedAt`` precedes ``datetime``, else None.
    :param estimation_method: ``estimationMethod`` (``TIME_SLICER_AVERAGE``...), or None.
    :param factor_type: ``emissionFactorType`` (``lifecycle`` or ``direct``), or None.
    :param updated_at: ``updatedAt``, or None.
    :param created_at: ``createdAt``, or None.
    :param zone: ``zone`` of the entry, or None.
    """

    time: datetime
    g_per_kwh: float | None
    period_s: float | None = None
    estimated: bool | None = None
    estimation_method: str | None = None
    factor_type: str | None = None
    updated_at: datetime | None = None
    created_at: datetime | None = None
    zone: str | None = None


def parse_entry(obj: Any) -> Entry:
    """Parse one entry (``latest``, or an item of ``history``, ``data`` or ``forecast``).

    :raises ValueError: not an object, no ``datetime``, or a value of the wrong type.
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"entry is not an object: {obj!r}")
    if "datetime" not in obj:
        raise ValueError(f"entry has no 'datetime' (keys: {sorted(obj)})")
    if "carbonIntensity" not in obj:
        raise ValueError(f"entry has no 'carbonIntensity' (keys: {sorted(obj)})")
    time = parse_time(obj["datetime"], "datetime")
    value = obj["carbonIntensity"]
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
    ):
        raise ValueError(f"carbonIntensity is not a number >= 0: {value!r}")
    updated = parse_time(obj["updatedAt"], "updatedAt") if obj.get("updatedAt") is not None else None
    created = parse_time(obj["createdAt"], "createdAt") if obj.get("createdAt") is not None else None
    flag = obj.get("isEstimated")
    if flag is not None and not isinstance(flag, bool):
        raise ValueError(f"isEstimated is not true, false or null: {flag!r}")
    estimated: bool | None = flag
    if estimated is None and updated is not None and "isEstimated" not in obj:
        estimated = updated < time  # computed before its period began: ahead of the data
    method = obj.get("estimationMethod")
    granularity = obj.get("temporalGranularity")
    period = GRANULARITY_S.get(granularity) if isinstance(granularity, str) else None
    if isinstance(granularity, str) and period is None:
        raise ValueError(f"temporalGranularity {granularity!r} is not one of {', '.join(GRANULARITY_S)}")
    factor = obj.get("emissionFactorType")
    zone = obj.get("zone")
    return Entry(
        time=time,
        g_per_kwh=None if value is None else float(value),
        period_s=period,
        estimated=estimated,
        estimation_method=method if isinstance(method, str) and method else None,
        factor_type=factor if isinstance(factor, str) else None,
        updated_at=updated,
        created_at=created,
        zone=zone if isinstance(zone, str) else None,
    )


def parse_entries(payload: Any, key: str) -> list[Entry]:
    """Return the entries of a series response (``history``, ``data`` or ``forecast``), oldest
    first, one per time (the last of duplicates wins).

    :raises ValueError: the payload is not ``{key: [...]}``, or an entry is bad.
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    if key not in payload:
        raise ValueError(f"no {key!r} key (keys: {sorted(payload)})")
    items = payload[key]
    if not isinstance(items, list):
        raise ValueError(f"{key!r} is not a list: {items!r}"[:300])
    by_time: dict[datetime, Entry] = {}
    for index, item in enumerate(items):
        try:
            entry = parse_entry(item)
        except ValueError as exc:
            raise ValueError(f"{key}[{index}]: {exc}") from exc
        by_time[entry.time] = entry
    return [by_time[t] for t in sorted(by_time)]


def series_period_s(entries: Sequence[Entry]) -> float | None:
    """The smallest spacing of consecutive entries, seconds; None for fewer than two."""
    gaps = [(b.time - a.time).total_seconds() for a, b in zip(entries, entries[1:])]
    gaps = [g for g in gaps if g > 0]
    return min(gaps) if gaps else None


# -------------------------------------------------------------------------------------------
# Provider
# -------------------------------------------------------------------------------------------


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_check_base_url = base_url_validator("Electricity Maps base URL", DEFAULT_BASE_URL)


def _check_token(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("the Electricity Maps token must be a non-empty string")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError("the Electricity Maps token contains whitespace or control characters (value not shown)")


def _check_factor_type(instance: Any, attribute: Any, value: str) -> None:
    if value not in EMISSION_FACTOR_TYPES:
        raise ConfigError(
            f"emission_factor_type must be one of {', '.join(map(repr, EMISSION_FACTOR_TYPES))}, got {value!r}"
        )



@define(kw_only=True)
class ElectricityMapsProvider:
    """Carbon intensity of any Electricity Maps zone (average signal, gCO2eq/kWh).

    :meth:`current` reads ``/carbon-intensity/latest`` (kind ``"live"``), :meth:`history`
    ``/history`` (the last 24 hours) or ``/past-range`` (older), :meth:`forecast`
    ``/forecast`` (kind ``"forecast"``; not in the free tier). Every sample records the
    emission factors (``factors``) and whether the service estimated it (``estimated``).

    :param client: The HTTP client every request goes through.
    :param token: The API token, sent as the ``auth-token`` header; never shown.
    :param base_url: API root, default :data:`DEFAULT_BASE_URL`.
    :param emission_factor_type: ``"lifecycle"`` (default) or ``"direct"``.
    :param now: Clock returning an aware datetime (injected in tests).
    :param max_bytes: Largest response body accepted, after decompression.
    :param deadline_s: Seconds one request may take in all.
    """

    name: ClassVar[str] = f"{PLUGIN}:api"
    zones: ClassVar[frozenset[str]] = frozenset({"*"})
    priority: ClassVar[int] = 90
    signal: ClassVar[str] = "average"
    capabilities: ClassVar[frozenset[str]] = frozenset({"live", "forecast", "history"})
    #: ``latest`` is the value of the current hour (estimated until the data arrives): a value
    #: one hour old can still be the newest one published.
    max_lag_s: ClassVar[float] = 3600.0

    client: httpx.Client = field(repr=False)
    token: str = field(repr=False, validator=_check_token)
    base_url: str = field(default=DEFAULT_BASE_URL, converter=strip_slash, validator=_check_base_url)
    emission_factor_type: str = field(default="lifecycle", validator=_check_factor_type)
    now: Callable[[], datetime] = field(default=utc_now, repr=False)
    max_bytes: int = field(default=DEFAULT_MAX_BYTES, validator=check_max_bytes)
    deadline_s: float = field(default=DEFAULT_DEADLINE_S, validator=check_deadline)
    _backoff: Backoff = field(factory=Backoff, init=False, repr=False)

    @property
    def factors(self) -> str:
        """The ``factors`` label of every sample: which of the API's factor sets priced it."""
        return f"Electricity Maps {self.emission_factor_type} emission factors"

    # -- protocol ---------------------------------------------------------------------------

    def current(self, zone: str) -> IntensitySample:
        """Return the zone's newest value (``/carbon-intensity/latest``), kind ``"live"``.

        :raises IntensityUnavailable: the request failed (token rejected, zone not in the
            plan, unknown zone...), or the answer holds no value.
        """
        zone = self._zone(zone)
        payload = self._get("latest", {"zone": zone}, zone)
        try:
            entry = parse_entry(payload)
        except ValueError as exc:
            raise self._fail(f"Electricity Maps /carbon-intensity/latest: unexpected payload: {exc}", zone) from exc
        if entry.g_per_kwh is None:
            raise self._fail(
                f"Electricity Maps /carbon-intensity/latest: no value for {zone} at {_iso(entry.time)} "
                "(carbonIntensity is null)",
                zone,
            )
        self._check_answer(entry, zone, "latest")
        return self._sample(entry, zone, "latest", "live", entry.period_s or DEFAULT_PERIOD_S)

    def forecast(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Return the forecast values overlapping ``[start, end)``, oldest first (the API's
        horizon is about 24 hours; fewer than asked is possible). Empty when ``end <= start``.

        :raises IntensityUnavailable: the request failed (the forecast is not in the free
            tier), or no value overlaps the window.
        """
        zone = self._zone(zone)
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        if end <= start:
            return []
        payload = self._get("forecast", {"zone": zone}, zone)
        samples = self._series(payload, "forecast", zone, "forecast", "forecast", start, end)
        if not samples:
            raise self._fail(
                f"Electricity Maps /carbon-intensity/forecast: no values for {zone} between {_iso(start)} "
                f"and {_iso(end)}",
                zone,
            )
        return samples

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Return the past values overlapping ``[start, end)``, oldest first (kind ``"live"``):
        from ``/history`` when the window lies in the last 24 hours, else from ``/past-range``
        in windows of 10 days (a paid endpoint). Empty when ``end <= start``.

        :raises IntensityUnavailable: a request failed, or the window is over 370 days.
        """
        zone = self._zone(zone)
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        if end <= start:
            return []
        if end - start > MAX_HISTORY:
            raise self._fail(
                f"Electricity Maps history: {_iso(start)} to {_iso(end)} is longer than the "
                f"{MAX_HISTORY.days} days asked at most in one call",
                zone,
            )
        now = aware_utc(self.now(), "now()")
        if start >= now - HISTORY_SPAN:
            payload = self._get("history", {"zone": zone}, zone)
            return self._series(payload, "history", zone, "history", "live", start, end)
        samples: list[IntensitySample] = []
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(end, chunk_start + PAST_RANGE_CHUNK)
            params = {"zone": zone, "start": _iso(chunk_start), "end": _iso(chunk_end)}
            payload = self._get("past-range", params, zone)
            samples += self._series(payload, "data", zone, "past-range", "live", chunk_start, chunk_end)
            chunk_start = chunk_end
        return samples

    # -- helpers ----------------------------------------------------------------------------

    def _zone(self, zone: str) -> str:
        if not isinstance(zone, str) or not zone.strip():
            raise IntensityUnavailable(f"Electricity Maps: no zone given ({zone!r})", provider=self.name)
        code = zone.strip().upper()
        if code == "WORLD":
            raise self._fail("Electricity Maps has no zone WORLD (it publishes grid zones only); not asked", code)
        return code

    def _fail(self, message: str, zone: str | None) -> IntensityUnavailable:
        return IntensityUnavailable(message, provider=self.name, zone=zone)

    def _check_answer(self, entry: Entry, zone: str, endpoint: str) -> None:
        if entry.zone is not None and entry.zone.upper() != zone:
            raise self._fail(
                f"Electricity Maps /carbon-intensity/{endpoint}: the answer is for zone {entry.zone!r}, not {zone!r}",
                zone,
            )
        if entry.factor_type is not None and entry.factor_type != self.emission_factor_type:
            raise self._fail(
                f"Electricity Maps /carbon-intensity/{endpoint}: the answer uses {entry.factor_type!r} emission "
                f"factors, not the {self.emission_factor_type!r} asked",
                zone,
            )

    def _series(
        self,
        payload: Any,
        key: str,
        zone: str,
        endpoint: str,
        kind: str,
        start: datetime,
        end: datetime,
    ) -> list[IntensitySample]:
        try:
            entries = parse_entries(payload, key)
        except ValueError as exc:
            raise self._fail(
                f"Electricity Maps /carbon-intensity/{endpoint}: unexpected payload: {exc}", zone
            ) from exc
        top = payload.get("zone") if isinstance(payload, Mapping) else None
        if isinstance(top, str) and top.upper() != zone:
            raise self._fail(
                f"Electricity Maps /carbon-intensity/{endpoint}: the answer is for zone {top!r}, not {zone!r}", zone
            )
        spacing = series_period_s(entries)
        samples = []
        for entry in entries:
            self._check_answer(entry, zone, endpoint)
            if entry.g_per_kwh is None:
                continue
            period = entry.period_s or spacing or DEFAULT_PERIOD_S
            if entry.time < end and entry.time + timedelta(seconds=period) > start:
                samples.append(self._sample(entry, zone, endpoint, kind, period))
        return samples

    def _sample(self, entry: Entry, zone: str, endpoint: str, kind: str, period_s: float) -> IntensitySample:
        assert entry.g_per_kwh is not None
        detail = [zone, f"{self.emission_factor_type} factors"]
        if entry.estimated:
            detail.append(f"estimated: {entry.estimation_method}" if entry.estimation_method else "estimated")
        return IntensitySample(
            time=entry.time,
            g_per_kwh=entry.g_per_kwh,
            zone=zone,
            source=f"Electricity Maps carbon-intensity/{endpoint} ({', '.join(detail)})",
            kind=kind,
            period_s=period_s,
            signal="average",
            factors=self.factors,
            estimated=entry.estimated,
        )

    def _get(self, endpoint: str, params: Mapping[str, str], zone: str) -> Any:
        """GET one endpoint; every failure becomes IntensityUnavailable with what it means."""
        what = f"Electricity Maps /carbon-intensity/{endpoint}"
        try:
            return get_json(
                self.client,
                f"{self.base_url}/carbon-intensity/{endpoint}",
                params={**params, "emissionFactorType": self.emission_factor_type},
                headers={"auth-token": self.token},
                provider=self.name,
                zone=zone,
                what=what,
                backoff=self._backoff,
                now=aware_utc(self.now(), "now()"),
                max_bytes=self.max_bytes,
                deadline_s=self.deadline_s,
            )
        except IntensityUnavailable as exc:
            raise self._explain(exc, endpoint, zone) from exc.__cause__

    def _explain(self, exc: IntensityUnavailable, endpoint: str, zone: str) -> IntensityUnavailable:
        """Say what an HTTP error of this API means (the token never appears: the helper
        redacted the ``auth-token`` header's value already)."""
        text = str(exc).replace(self.token, "***")
        status = http_status(exc)
        if status == 401:
            why = f"the token was rejected ({_TOKEN_HINT}); {text}"
        elif status == 403:
            what = "the forecast" if endpoint == "forecast" else f"/{endpoint}"
            why = (
                f"{what} for zone {zone} is not in this token's plan ({_FREE_TIER}; paid plans add the rest: "
                f"https://www.electricitymaps.com/pricing); {text}"
            )
        elif status == 404:
            why = (
                f"zone {zone!r} not found, or no data for it (zone codes: https://portal.electricitymaps.com/"
                f"docs/zones, or `carbonkit zones`); {text}"
            )
        elif status == 400:
            why = f"the request was refused: zone {zone!r} or a parameter is not accepted; {text}"
        else:
            return self._fail(text, zone)
        return self._fail(f"Electricity Maps: {why}", zone)
