"""Energi Data Service client: requests, payload parsing and the intensity provider.

Requests (all ``GET {base}/dataset/{dataset}``, times in UTC as ``yyyy-MM-ddTHH:mm`` with
``timezone=UTC``, ``start`` inclusive and ``end`` exclusive)::

    /dataset/CO2Emis?start=2024-11-05T11:30&end=2024-11-05T13:35&timezone=UTC
    /dataset/CO2EmisProg?start=2024-11-05T13:00&end=2024-11-05T14:00&timezone=UTC

No ``filter`` parameter is sent: there are two price areas, so a window for both is as small as
a window for one, one response serves ``DK-DK1``, ``DK-DK2`` and ``DK``, and requests carrying
``filter=`` were blocked (HTTP 403) during at least one firewall incident. Areas are selected
here instead. No ``sort`` either: rows are keyed by ``(Minutes5UTC, PriceArea)`` and ordered here.

Response::

    {"total": 2, "dataset": "CO2Emis",
     "records": [{"Minutes5UTC": "2024-11-05T13:25:00", "Minutes5DK": "2024-11-05T14:25:00",
                  "PriceArea": "DK1", "CO2Emission": 147.000000}, ...]}

``Minutes5UTC`` is UTC without an offset; ``Minutes5DK`` (Danish wall-clock time, repeated or
skipped at DST changes) is never used.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field, frozen
from carbonkit import ConfigError, IntensitySample, IntensityUnavailable, UnknownZoneError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AREAS_BY_ZONE",
    "DEFAULT_BASE_URL",
    "DEFAULT_FORECAST_DATASET",
    "DEFAULT_LIVE_DATASET",
    "EmissionRow",
    "EnergiDataServiceProvider",
    "parse_records",
]

_logger = logging.getLogger(__name__)

PLUGIN = "intensity_dk"
#: The public API.
DEFAULT_BASE_URL = "https://api.energidataservice.dk"
#: Dataset read by ``current()``: near-real-time emission per kWh consumed.
DEFAULT_LIVE_DATASET = "CO2Emis"
#: Dataset read by ``forecast()``: the emission prognosis.
DEFAULT_FORECAST_DATASET = "CO2EmisProg"
#: Price areas behind each zone code.
AREAS_BY_ZONE: Mapping[str, tuple[str, ...]] = {
    "DK-DK1": ("DK1",),
    "DK-DK2": ("DK2",),
    "DK": ("DK1", "DK2"),
}
PERIOD = timedelta(minutes=5)
#: Ban length after HTTP 429 when the response names none: the API guide's 5-minute ban.
DEFAULT_BAN = timedelta(minutes=5)
_TIME_FORMAT = "%Y-%m-%dT%H:%M"
_BODY_PREVIEW = 200


# -------------------------------------------------------------------------------------------
# Parsing
# -------------------------------------------------------------------------------------------


@frozen
class EmissionRow:
    """One 5-minute row of ``CO2Emis`` or ``CO2EmisProg``.

    :param time: Start of the 5-minute interval, UTC (from ``Minutes5UTC``).
    :param area: Price area, ``"DK1"`` or ``"DK2"``.
    :param g_per_kwh: ``CO2Emission``: grams CO2 per kWh consumed.
    """

    time: datetime
    area: str
    g_per_kwh: float

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> EmissionRow | None:
        """Parse one record; None when its ``CO2Emission`` is null (no value published).

        :raises ValueError: a key is missing or a value has the wrong type.
        """
        if not isinstance(record, Mapping):
            raise ValueError(f"record is not an object: {record!r}")
        try:
            raw_time, area, value = record["Minutes5UTC"], record["PriceArea"], record["CO2Emission"]
        except KeyError as exc:
            raise ValueError(f"record lacks {exc}: {dict(record)!r}") from exc
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"CO2Emission is not a number >= 0: {value!r}")
        if not isinstance(area, str) or not isinstance(raw_time, str):
            raise ValueError(f"record has a non-string PriceArea or Minutes5UTC: {dict(record)!r}")
        return cls(time=parse_utc(raw_time), area=area, g_per_kwh=float(value))


def parse_utc(text: str) -> datetime:
    """Parse a ``Minutes5UTC`` value (``"2024-11-05T13:25:00"``, no offset) as UTC.

    :raises ValueError: not an ISO 8601 date-time.
    """
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_records(payload: Any) -> list[EmissionRow]:
    """Return the rows of a dataset response, keyed and de-duplicated by
    ``(Minutes5UTC, PriceArea)`` (the first of duplicates wins), oldest first.

    :raises ValueError: the payload is not the ``{"records": [...]}`` envelope, or a row is bad.
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    if "records" not in payload:
        raise ValueError(f"no 'records' key (keys: {sorted(payload)})")
    records = payload["records"]
    if not isinstance(records, list):
        raise ValueError(f"'records' is not a list: {records!r}")
    rows: dict[tuple[datetime, str], EmissionRow] = {}
    for index, record in enumerate(records):
        try:
            row = EmissionRow.from_record(record)
        except ValueError as exc:
            raise ValueError(f"records[{index}]: {exc}") from exc
        if row is not None:
            rows.setdefault((row.time, row.area), row)
    return sorted(rows.values(), key=lambda r: (r.time, r.area))


def combine(rows: Iterable[EmissionRow], areas: Sequence[str]) -> list[tuple[datetime, float]]:
    """Return ``(interval start, value)`` for every interval where all ``areas`` have a row,
    oldest first. One area: its value. Several: their unweighted mean."""
    by_time: dict[datetime, dict[str, float]] = {}
    for row in rows:
        if row.area in areas:
            by_time.setdefault(row.time, {})[row.area] = row.g_per_kwh
    return [
        (time, sum(values[a] for a in areas) / len(areas))
        for time, values in sorted(by_time.items())
        if all(a in values for a in areas)
    ]


# -------------------------------------------------------------------------------------------
# Provider
# -------------------------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime (UTC), got {value!r}")
    return value.astimezone(timezone.utc)


def _floor(t: datetime) -> datetime:
    return t.replace(minute=t.minute - t.minute % 5, second=0, microsecond=0)


def _ceil(t: datetime) -> datetime:
    floor = _floor(t)
    return floor if floor == t else floor + PERIOD


def _fmt(t: datetime) -> str:
    return t.strftime(_TIME_FORMAT)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%MZ")


def _check_base_url(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(
            f"Energi Data Service base URL must start with http:// or https:// "
            f"(e.g. {DEFAULT_BASE_URL!r}), got {value!r}"
        )


def _check_dataset(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.isalnum():
        raise ConfigError(f"{attribute.name} must be a dataset name such as 'CO2Emis', got {value!r}")


def _check_lookback(instance: Any, attribute: Any, value: timedelta) -> None:
    if not isinstance(value, timedelta) or value < PERIOD:
        raise ConfigError(f"live_lookback must be a timedelta of at least 5 minutes, got {value!r}")


def _strip_slash(value: str) -> str:
    return value.rstrip("/") if isinstance(value, str) else value


def _preview(content: bytes) -> str:
    text = content[:_BODY_PREVIEW].decode("utf-8", errors="replace")
    return repr(text) + ("..." if len(content) > _BODY_PREVIEW else "")


@define(kw_only=True)
class EnergiDataServiceProvider:
    """Carbon intensity of Danish electricity consumption from Energinet's Energi Data Service.

    Zones: ``DK-DK1`` (West Denmark), ``DK-DK2`` (East Denmark), ``DK`` (unweighted mean of
    DK1 and DK2 for the same 5-minute interval). :meth:`current` reads ``CO2Emis`` (kind
    ``"live"``), :meth:`forecast` reads ``CO2EmisProg`` (kind ``"forecast"``).

    :param client: The HTTP client every request goes through (it carries the timeouts).
    :param base_url: API root, default :data:`DEFAULT_BASE_URL`.
    :param now: Clock returning an aware datetime (injected in tests).
    :param live_dataset: Dataset read by :meth:`current`.
    :param forecast_dataset: Dataset read by :meth:`forecast`.
    :param live_lookback: How far back :meth:`current` looks for the newest row; older data
        counts as none. The dataset is updated every 15 to 60 minutes.
    """

    name: ClassVar[str] = f"{PLUGIN}:energidataservice"
    zones: ClassVar[frozenset[str]] = frozenset(AREAS_BY_ZONE)
    priority: ClassVar[int] = 100

    client: httpx.Client
    base_url: str = field(default=DEFAULT_BASE_URL, converter=_strip_slash, validator=_check_base_url)
    now: Callable[[], datetime] = field(default=_utc_now)
    live_dataset: str = field(default=DEFAULT_LIVE_DATASET, validator=_check_dataset)
    forecast_dataset: str = field(default=DEFAULT_FORECAST_DATASET, validator=_check_dataset)
    live_lookback: timedelta = field(default=timedelta(hours=2), validator=_check_lookback)
    _banned_until: datetime | None = field(default=None, init=False)
    _ban_reason: str = field(default="", init=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)

    @property
    def banned_until(self) -> datetime | None:
        """End of the current rate-limit ban (UTC), or None when not banned."""
        return self._banned_until

    # -- protocol ---------------------------------------------------------------------------

    def current(self, zone: str) -> IntensitySample:
        """Return the newest 5-minute ``CO2Emis`` value for ``zone`` within ``live_lookback``
        (rows outside the requested window, should the API send any, are ignored).

        For ``DK`` it is the mean of DK1 and DK2 for the newest interval both areas have.
        :raises UnknownZoneError: ``zone`` is not ``DK-DK1``, ``DK-DK2`` or ``DK``.
        :raises IntensityUnavailable: the request failed, was rate limited, or found no rows.
        """
        areas = self._areas(zone)
        now = _aware(self.now(), "now()")
        start = _floor(now) - self.live_lookback
        end = _floor(now) + PERIOD
        rows = self._fetch(self.live_dataset, start, end, zone)
        values = [(t, v) for t, v in combine(rows, areas) if start <= t < end]  # rows outside: ignored
        if not values:
            raise IntensityUnavailable(
                f"Energi Data Service {self.live_dataset}: no records for {self._what(areas)} "
                f"between {_iso(start)} and {_iso(end)} (UTC)",
                provider=self.name,
                zone=zone,
            )
        time, value = values[-1]
        return self._sample(time, value, zone, areas, self.live_dataset, "live")

    def forecast(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Return ``CO2EmisProg`` samples for the 5-minute intervals overlapping
        ``[start, end)``, oldest first (possibly fewer than asked: the forecast reaches at
        least 9 hours ahead). Empty when ``end <= start``.

        :raises IntensityUnavailable: the request failed, was rate limited, or found no rows.
        """
        areas = self._areas(zone)
        start = _aware(start, "start")
        end = _aware(end, "end")
        if end <= start:
            return []
        window_start, window_end = _floor(start), _ceil(end)
        rows = self._fetch(self.forecast_dataset, window_start, window_end, zone)
        values = [(t, v) for t, v in combine(rows, areas) if window_start <= t < window_end]
        if not values:
            raise IntensityUnavailable(
                f"Energi Data Service {self.forecast_dataset}: no records for {self._what(areas)} "
                f"between {_iso(window_start)} and {_iso(window_end)} (UTC)",
                provider=self.name,
                zone=zone,
            )
        if values[-1][0] + PERIOD < window_end:
            _logger.debug(
                "%s forecast for %s ends at %s, before the requested %s",
                self.forecast_dataset,
                zone,
                _iso(values[-1][0] + PERIOD),
                _iso(window_end),
            )
        return [self._sample(t, v, zone, areas, self.forecast_dataset, "forecast") for t, v in values]

    # -- helpers ----------------------------------------------------------------------------

    def _areas(self, zone: str) -> tuple[str, ...]:
        areas = AREAS_BY_ZONE.get(zone.strip().upper()) if isinstance(zone, str) else None
        if areas is None:
            raise UnknownZoneError(
                f"{self.name} covers zones {', '.join(sorted(AREAS_BY_ZONE))}, not {zone!r}",
                provider=self.name,
                zone=zone if isinstance(zone, str) else None,
            )
        return areas

    @staticmethod
    def _what(areas: Sequence[str]) -> str:
        return " and ".join(areas) if len(areas) > 1 else areas[0]

    def _sample(
        self, time: datetime, value: float, zone: str, areas: Sequence[str], dataset: str, kind: str
    ) -> IntensitySample:
        label = areas[0] if len(areas) == 1 else f"mean of {' and '.join(areas)}"
        return IntensitySample(
            time=time,
            g_per_kwh=value,
            zone=zone.strip().upper(),
            source=f"Energi Data Service {dataset} ({label})",
            kind=kind,
            period_s=PERIOD.total_seconds(),
        )

    def _fetch(self, dataset: str, start: datetime, end: datetime, zone: str) -> list[EmissionRow]:
        """GET one dataset window and parse it; every failure becomes IntensityUnavailable."""
        import httpx

        url = f"{self.base_url}/dataset/{dataset}"
        params = {"start": _fmt(start), "end": _fmt(end), "timezone": "UTC"}
        where = f"Energi Data Service {dataset}"

        def unavailable(message: str) -> IntensityUnavailable:
            return IntensityUnavailable(f"{where}: {message}", provider=self.name, zone=zone)

        now = _aware(self.now(), "now()")
        with self._lock:
            if self._banned_until is not None and now < self._banned_until:
                raise unavailable(
                    f"rate limited ({self._ban_reason}); not calling again until {_iso_s(self._banned_until)}"
                )
            self._banned_until = None
        try:
            response = self.client.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise unavailable(f"request timed out ({type(exc).__name__}: {exc})") from exc
        except httpx.HTTPError as exc:
            raise unavailable(f"request failed ({type(exc).__name__}: {exc})") from exc
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            status = f"HTTP {response.status_code}: {_preview(response.content)}"
            if response.status_code == 429:
                until = now + _retry_after(response, now)
                with self._lock:
                    self._banned_until, self._ban_reason = until, status
                _logger.info("%s rate limited; no request until %s", where, _iso_s(until))
                raise unavailable(f"rate limited ({status}); not calling again until {_iso_s(until)}") from exc
            raise unavailable(status) from exc
        if not response.content.strip():
            raise unavailable(f"HTTP {response.status_code} with an empty body")
        try:
            payload = json.loads(response.content)
        except ValueError as exc:
            raise unavailable(f"body is not JSON ({exc}): {_preview(response.content)}") from exc
        try:
            return parse_records(payload)
        except ValueError as exc:
            raise unavailable(f"unexpected payload: {exc}") from exc


def _iso_s(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _retry_after(response: httpx.Response, now: datetime) -> timedelta:
    """The ban length: the ``Retry-After`` header (seconds or HTTP date) if usable, else 5 min."""
    raw = response.headers.get("Retry-After", "").strip()
    if raw.isdigit():
        return max(timedelta(seconds=int(raw)), timedelta(seconds=1))
    if raw:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None and when > now:
            return when - now
    return DEFAULT_BAN
