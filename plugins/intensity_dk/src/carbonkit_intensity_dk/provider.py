"""Energi Data Service client: requests, payload parsing and the intensity provider.

Requests (all ``GET {base}/dataset/{dataset}``, times in UTC as ``yyyy-MM-ddTHH:mm`` with
``timezone=UTC``, ``start`` inclusive and ``end`` exclusive, and an explicit ``limit``)::

    /dataset/CO2Emis?start=2024-11-05T11:30&end=2024-11-05T13:35&timezone=UTC&limit=74
    /dataset/CO2EmisProg?start=2024-11-05T13:00&end=2024-11-05T14:00&timezone=UTC&limit=48

``limit`` is twice (two price areas) the number of 5-minute intervals in the window, plus an
hour of them: every row of the window fits, also on a DST day should the service read the
window as Danish time, so no default or server row cap cuts the answer silently, and the body
stays small. No ``filter`` parameter is sent: there are two price areas, so a window for both is
as small as a window for one, one response serves ``DK-DK1``, ``DK-DK2`` and ``DK``, and
requests carrying ``filter=`` were blocked (HTTP 403) during at least one firewall incident.
Areas are selected here instead. No ``sort`` either: rows are keyed by ``(Minutes5UTC,
PriceArea)`` and ordered here.

Response::

    {"total": 2, "dataset": "CO2Emis",
     "records": [{"Minutes5UTC": "2024-11-05T13:25:00", "Minutes5DK": "2024-11-05T14:25:00",
                  "PriceArea": "DK1", "CO2Emission": 147.000000}, ...]}

Rows are placed by their UTC field, ``Minutes5UTC`` (5-minute rows) or ``HourUTC`` (hourly
rows, should a configured dataset have them), UTC without an offset. The local-time fields
(``Minutes5DK``, ``HourDK``: Danish wall-clock time, repeated or skipped at DST changes) are
never read, and the service is not trusted to have honoured ``timezone=UTC``: rows outside the
UTC window asked are dropped (with one warning), and a forecast that starts later or ends
earlier than asked, or that the service cut (``total`` above the rows returned), is logged as
one warning on the ``carbonkit`` logger.

Every request goes through :func:`carbonkit.http.get_json`: status, size limit, deadline,
``Retry-After`` bans and error texts are handled there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field, frozen

from carbonkit import ConfigError, IntensitySample, IntensityUnavailable, UnknownZoneError
from carbonkit.http import DEFAULT_DEADLINE_S, DEFAULT_MAX_BYTES, Backoff, check_deadline, check_max_bytes, get_json
from carbonkit.plugin_settings import aware_utc, base_url_validator, strip_slash, utc_now

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AREAS_BY_ZONE",
    "DEFAULT_BASE_URL",
    "DEFAULT_FORECAST_DATASET",
    "DEFAULT_LIVE_DATASET",
    "UTC_TIME_FIELDS",
    "EmissionRow",
    "EnergiDataServiceProvider",
    "parse_records",
]

_logger = logging.getLogger(__name__)
_warnings = logging.getLogger("carbonkit")

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
#: The UTC time field a row may have, first found wins, and the period its rows cover.
UTC_TIME_FIELDS: Mapping[str, timedelta] = {"Minutes5UTC": PERIOD, "HourUTC": timedelta(hours=1)}
#: Ban length after HTTP 429 when the response names none: the API guide's 5-minute ban.
DEFAULT_BAN = timedelta(minutes=5)
_TIME_FORMAT = "%Y-%m-%dT%H:%M"


# -------------------------------------------------------------------------------------------
# Parsing
# -------------------------------------------------------------------------------------------


@frozen
class EmissionRow:
    """One row of ``CO2Emis`` or ``CO2EmisProg`` (5-minute), or of an hourly dataset.

    :param time: Start of the interval, UTC (from ``Minutes5UTC``, else ``HourUTC``).
    :param area: Price area, ``"DK1"`` or ``"DK2"``.
    :param g_per_kwh: ``CO2Emission``: grams CO2 per kWh consumed.
    :param period: Length of the interval: 5 minutes, or 1 hour for ``HourUTC`` rows.
    """

    time: datetime
    area: str
    g_per_kwh: float
    period: timedelta = PERIOD

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> EmissionRow | None:
        """Parse one record; None when its ``CO2Emission`` is null (no value published).

        The time comes from the UTC field only; ``Minutes5DK``/``HourDK`` are ignored.
        :raises ValueError: a key is missing or a value has the wrong type.
        """
        if not isinstance(record, Mapping):
            raise ValueError(f"record is not an object: {record!r}")
        time_field = next((name for name in UTC_TIME_FIELDS if name in record), None)
        if time_field is None:
            raise ValueError(f"record has no UTC time field ({' or '.join(UTC_TIME_FIELDS)}): {dict(record)!r}")
        try:
            raw_time, area, value = record[time_field], record["PriceArea"], record["CO2Emission"]
        except KeyError as exc:
            raise ValueError(f"record lacks {exc}: {dict(record)!r}") from exc
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"CO2Emission is not a number >= 0: {value!r}")
        if not isinstance(area, str) or not isinstance(raw_time, str):
            raise ValueError(f"record has a non-string PriceArea or {time_field}: {dict(record)!r}")
        return cls(time=parse_utc(raw_time), area=area, g_per_kwh=float(value), period=UTC_TIME_FIELDS[time_field])


def parse_utc(text: str) -> datetime:
    """Parse a ``Minutes5UTC``/``HourUTC`` value (``"2024-11-05T13:25:00"``, no offset) as UTC.

    :raises ValueError: not an ISO 8601 date-time.
    """
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_records(payload: Any) -> list[EmissionRow]:
    """Return the rows of a dataset response, keyed and de-duplicated by their UTC time and
    ``PriceArea`` (the first of duplicates wins), oldest first.

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


def combine(rows: Iterable[EmissionRow], areas: Sequence[str]) -> list[tuple[datetime, timedelta, float]]:
    """Return ``(interval start, length, value)`` for every interval where all ``areas`` have
    a row, oldest first. One area: its value. Several: their unweighted mean."""
    by_time: dict[tuple[datetime, timedelta], dict[str, float]] = {}
    for row in rows:
        if row.area in areas:
            by_time.setdefault((row.time, row.period), {})[row.area] = row.g_per_kwh
    return [
        (time, period, sum(values[a] for a in areas) / len(areas))
        for (time, period), values in sorted(by_time.items())
        if all(a in values for a in areas)
    ]


# -------------------------------------------------------------------------------------------
# Provider
# -------------------------------------------------------------------------------------------


def _floor(t: datetime) -> datetime:
    return t.replace(minute=t.minute - t.minute % 5, second=0, microsecond=0)


def _ceil(t: datetime) -> datetime:
    floor = _floor(t)
    return floor if floor == t else floor + PERIOD


def _fmt(t: datetime) -> str:
    return t.strftime(_TIME_FORMAT)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%MZ")


def _row_limit(start: datetime, end: datetime) -> int:
    """The ``limit`` sent for ``[start, end)``: two areas times the 5-minute intervals, plus
    an hour of them (a DST day read in Danish time has an hour more)."""
    return 2 * (math.ceil((end - start) / PERIOD) + 12)


_check_base_url = base_url_validator("Energi Data Service base URL", DEFAULT_BASE_URL)


def _check_dataset(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.isalnum():
        raise ConfigError(f"{attribute.name} must be a dataset name such as 'CO2Emis', got {value!r}")


def _check_lookback(instance: Any, attribute: Any, value: timedelta) -> None:
    if not isinstance(value, timedelta) or value < PERIOD:
        raise ConfigError(f"live_lookback must be a timedelta of at least 5 minutes, got {value!r}")


@define
class _Answer:
    rows: list[EmissionRow]
    returned: int  # records in the response
    total: int | None  # the response's "total": rows matching the query, ignoring limit


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
    :param max_bytes: Largest response body accepted, after decompression (default 4 MiB; a
        14-day forecast window is about 1 MiB).
    :param deadline_s: Seconds one request may take in all (default 20).
    """

    name: ClassVar[str] = f"{PLUGIN}:energidataservice"
    zones: ClassVar[frozenset[str]] = frozenset(AREAS_BY_ZONE)
    priority: ClassVar[int] = 100

    client: httpx.Client
    base_url: str = field(default=DEFAULT_BASE_URL, converter=strip_slash, validator=_check_base_url)
    now: Callable[[], datetime] = field(default=utc_now)
    live_dataset: str = field(default=DEFAULT_LIVE_DATASET, validator=_check_dataset)
    forecast_dataset: str = field(default=DEFAULT_FORECAST_DATASET, validator=_check_dataset)
    live_lookback: timedelta = field(default=timedelta(hours=2), validator=_check_lookback)
    max_bytes: int = field(default=DEFAULT_MAX_BYTES, validator=check_max_bytes)
    deadline_s: float = field(default=DEFAULT_DEADLINE_S, validator=check_deadline)
    _backoff: Backoff = field(factory=Backoff, init=False, repr=False)
    _warned: set[str] = field(factory=set, init=False, repr=False)

    @property
    def banned_until(self) -> datetime | None:
        """End of the current rate-limit ban (UTC), or None when not banned."""
        return self._backoff.until

    # -- protocol ---------------------------------------------------------------------------

    def current(self, zone: str) -> IntensitySample:
        """Return the newest 5-minute ``CO2Emis`` value for ``zone`` within ``live_lookback``
        (rows outside the requested UTC window, should the API send any, are ignored).

        For ``DK`` it is the mean of DK1 and DK2 for the newest interval both areas have.
        :raises UnknownZoneError: ``zone`` is not ``DK-DK1``, ``DK-DK2`` or ``DK``.
        :raises IntensityUnavailable: the request failed, was rate limited, or found no rows.
        """
        areas = self._areas(zone)
        now = aware_utc(self.now(), "now()")
        start = _floor(now) - self.live_lookback
        end = _floor(now) + PERIOD
        answer = self._fetch(self.live_dataset, start, end, zone)
        values = self._inside(answer, areas, start, end, self.live_dataset)
        if not values:
            raise IntensityUnavailable(
                f"Energi Data Service {self.live_dataset}: no records for {self._what(areas)} "
                f"between {_iso(start)} and {_iso(end)} (UTC)",
                provider=self.name,
                zone=zone,
            )
        if answer.total is not None and answer.total > answer.returned:
            self._warn_once(
                f"live-cut:{self.live_dataset}",
                f"Energi Data Service {self.live_dataset}: the response holds {answer.returned} of "
                f"{answer.total} rows (cut by a row limit); the newest value may be missing",
            )
        time, period, value = values[-1]
        return self._sample(time, period, value, zone, areas, self.live_dataset, "live")

    def forecast(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Return ``CO2EmisProg`` samples for the 5-minute intervals overlapping
        ``[start, end)``, oldest first (possibly fewer than asked: the forecast reaches at
        least 9 hours ahead; a shortfall is logged as one warning on the ``carbonkit`` logger
        per zone and kind of shortfall). Empty when ``end <= start``.

        :raises IntensityUnavailable: the request failed, was rate limited, or found no rows.
        """
        areas = self._areas(zone)
        start = aware_utc(start, "start")
        end = aware_utc(end, "end")
        if end <= start:
            return []
        window_start, window_end = _floor(start), _ceil(end)
        answer = self._fetch(self.forecast_dataset, window_start, window_end, zone)
        values = self._inside(answer, areas, window_start, window_end, self.forecast_dataset)
        if not values:
            raise IntensityUnavailable(
                f"Energi Data Service {self.forecast_dataset}: no records for {self._what(areas)} "
                f"between {_iso(window_start)} and {_iso(window_end)} (UTC)",
                provider=self.name,
                zone=zone,
            )
        self._check_coverage(answer, values, zone, window_start, window_end)
        return [self._sample(t, p, v, zone, areas, self.forecast_dataset, "forecast") for t, p, v in values]

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
        self,
        time: datetime,
        period: timedelta,
        value: float,
        zone: str,
        areas: Sequence[str],
        dataset: str,
        kind: str,
    ) -> IntensitySample:
        label = areas[0] if len(areas) == 1 else f"mean of {' and '.join(areas)}"
        return IntensitySample(
            time=time,
            g_per_kwh=value,
            zone=zone.strip().upper(),
            source=f"Energi Data Service {dataset} ({label})",
            kind=kind,
            period_s=period.total_seconds(),
        )

    def _warn_once(self, key: str, message: str) -> None:
        """One WARNING on the ``carbonkit`` logger per key and provider; repeats at DEBUG."""
        if key in self._warned:
            _logger.debug("%s", message)
            return
        self._warned.add(key)
        _warnings.warning("%s", message)

    def _inside(
        self, answer: _Answer, areas: Sequence[str], start: datetime, end: datetime, dataset: str
    ) -> list[tuple[datetime, timedelta, float]]:
        """The combined values of the intervals overlapping ``[start, end)`` (UTC); rows
        outside it are dropped with one warning (the service read the window otherwise)."""
        values = combine(answer.rows, areas)
        inside = [(t, p, v) for t, p, v in values if t < end and t + p > start]
        outside = [r for r in answer.rows if not (r.time < end and r.time + r.period > start)]
        if outside:
            first = min(r.time for r in outside)
            last = max(r.time for r in outside)
            self._warn_once(
                f"outside:{dataset}",
                f"Energi Data Service {dataset}: {len(outside)} rows from {_iso(first)} to {_iso(last)} lie "
                f"outside the UTC window asked ({_iso(start)} to {_iso(end)}) and are ignored; rows are "
                "placed by their UTC time field, never by the Danish local time (the service may have "
                "read the window as Danish time)",
            )
        return inside

    def _check_coverage(
        self,
        answer: _Answer,
        values: Sequence[tuple[datetime, timedelta, float]],
        zone: str,
        start: datetime,
        end: datetime,
    ) -> None:
        first = values[0][0]
        covered = values[-1][0] + values[-1][1]
        kinds, reasons = [], []
        cut = answer.total is not None and answer.total > answer.returned
        if cut:
            kinds.append("cut")
            reasons.append(f"the response holds {answer.returned} of {answer.total} rows (cut by a row limit)")
        if first > start:
            kinds.append("start")
            reasons.append("it starts late")
        if covered < end:
            kinds.append("end")
            reasons.append("it ends early" + ("" if cut else " (the published forecast ends there)"))
        missing = round((covered - first) / values[0][1]) - len(values)
        if missing > 0:
            kinds.append("gaps")
            reasons.append(f"{missing} intervals are missing inside it")
        if kinds:
            self._warn_once(
                f"coverage:{zone}:{'+'.join(kinds)}",
                f"Energi Data Service {self.forecast_dataset}: the forecast for {zone} covers {_iso(first)} "
                f"to {_iso(covered)}, not all of {_iso(start)} to {_iso(end)} asked: {'; '.join(reasons)}",
            )

    def _fetch(self, dataset: str, start: datetime, end: datetime, zone: str) -> _Answer:
        """GET one dataset window and parse it; every failure becomes IntensityUnavailable."""
        where = f"Energi Data Service {dataset}"
        params = {"start": _fmt(start), "end": _fmt(end), "timezone": "UTC", "limit": str(_row_limit(start, end))}
        payload = get_json(
            self.client,
            f"{self.base_url}/dataset/{dataset}",
            params=params,
            provider=self.name,
            zone=zone,
            what=where,
            backoff=self._backoff,
            now=aware_utc(self.now(), "now()"),
            max_bytes=self.max_bytes,
            deadline_s=self.deadline_s,
            default_ban_s=DEFAULT_BAN.total_seconds(),
        )
        try:
            rows = parse_records(payload)
        except ValueError as exc:
            raise IntensityUnavailable(f"{where}: unexpected payload: {exc}", provider=self.name, zone=zone) from exc
        total = payload.get("total")
        return _Answer(
            rows=rows,
            returned=len(payload["records"]),
            total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        )
