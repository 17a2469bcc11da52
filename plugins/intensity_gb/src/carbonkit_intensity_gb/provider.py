"""Carbon Intensity API client: requests, payload parsing and the intensity provider.

Requests (all ``GET``; ``{from}`` is ``YYYY-MM-DDThh:mmZ``)::

    national  current   /intensity
              forecast  /intensity/{from}/fw48h
    postcode  current   /regional/postcode/{outward}
              forecast  /regional/intensity/{from}/fw48h/postcode/{outward}
    region id current   /regional/regionid/{id}
              forecast  /regional/intensity/{from}/fw48h/regionid/{id}

A half-hour slot is returned when its ``to`` is at or after ``{from}``, so ``{from}`` is sent as
the start of the wanted slot plus one minute (``13:01Z`` for a window starting 13:00-13:29): the
first slot returned is then the one containing the window start.

Envelopes: national ``{"data": [period, ...]}``; the regional endpoints use three:

1. ``/regional``, ``/regional/intensity/{from}/fw48h``: ``{"data": [{"from", "to",
   "regions": [{"regionid", "shortname", "intensity", ...}, ...]}, ...]}``;
2. ``/regional/postcode/{pc}``, ``/regional/regionid/{id}``: ``{"data": [{"regionid",
   "shortname", "postcode"?, "data": [period, ...]}]}`` (a one-element list);
3. ``/regional/intensity/{from}/{range}/postcode/{pc}`` and ``.../regionid/{id}``:
   ``{"data": {"regionid", "shortname", "postcode"?, "data": [period, ...]}}`` (an object).

A period is ``{"from": "2024-11-05T12:30Z", "to": "2024-11-05T13:00Z", "intensity":
{"forecast": 182, "actual": 176 | null, "index": "moderate"}}``; regional periods have no
``actual``. Errors: ``{"error": {"code": "400 Bad Request", "message": "..."}}``; an unknown
postcode, a window beyond the horizon or an outage can give HTTP 200 with ``{}``.

Every request goes through :func:`carbonkit.http.get_json` (status, size limit, deadline,
``Retry-After`` bans, error texts); :class:`Backoff` is :class:`carbonkit.http.Backoff`.
"""

from __future__ import annotations

import logging
import math
import re
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
    error_message,
    get_json,
)
from carbonkit.plugin_settings import aware_utc, base_url_validator, strip_slash, utc_now

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "REGION_IDS",
    "Backoff",
    "CarbonIntensityGBProvider",
    "Period",
    "RegionalSeries",
    "outward_code",
    "parse_national",
    "parse_regional",
]

_logger = logging.getLogger(__name__)

PLUGIN = "intensity_gb"
#: The public API.
DEFAULT_BASE_URL = "https://api.carbonintensity.org.uk"
#: Region ids accepted by ``/regional/regionid/{id}`` (the API documents 1 to 17).
REGION_IDS = range(1, 18)
NATIONAL_PRIORITY = 100
REGIONAL_PRIORITY = 101
SLOT = timedelta(minutes=30)
#: How far ahead ``fw48h`` reaches.
HORIZON = timedelta(hours=48)
#: Back-off after HTTP 429 without a usable ``Retry-After`` (the API publishes no limit).
DEFAULT_BAN = timedelta(minutes=5)
_OUTWARD_RE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")
_INWARD_RE = re.compile(r"^[0-9][A-Z]{2}$")


# -------------------------------------------------------------------------------------------
# Parsing
# -------------------------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    """Parse an API time (``"2024-11-05T13:00Z"``; seconds or an offset also accepted) as UTC.

    :raises ValueError: not such a time.
    """
    if not isinstance(text, str):
        raise ValueError(f"time is not a string: {text!r}")
    try:
        parsed = datetime.strptime(text, "%Y-%m-%dT%H:%MZ")
    except ValueError:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _intensity_value(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"intensity.{name} is not a number >= 0: {value!r}")
    return float(value)


@frozen
class Period:
    """One half-hour slot.

    :param start: ``from``, UTC.
    :param end: ``to``, UTC.
    :param forecast: ``intensity.forecast`` (gCO2/kWh), or None when null.
    :param actual: ``intensity.actual`` (gCO2/kWh), or None when null or absent (regional).
    :param index: ``intensity.index`` (``"very low"`` ... ``"very high"``), or None.
    """

    start: datetime
    end: datetime
    forecast: float | None
    actual: float | None
    index: str | None = None

    @classmethod
    def from_json(cls, item: Mapping[str, Any], intensity: Mapping[str, Any] | None = None) -> Period:
        """Parse a period object (``intensity`` overrides ``item["intensity"]``, for the
        regions of envelope 1, whose intensity sits in the region entry).

        :raises ValueError: a key is missing or a value has the wrong type.
        """
        if not isinstance(item, Mapping):
            raise ValueError(f"period is not an object: {item!r}")
        try:
            start, end = parse_time(item["from"]), parse_time(item["to"])
            values = item["intensity"] if intensity is None else intensity
            if not isinstance(values, Mapping):
                raise ValueError(f"'intensity' is not an object: {values!r}")
            forecast = _intensity_value(values["forecast"], "forecast")
        except KeyError as exc:
            raise ValueError(f"period lacks {exc}: {dict(item)!r}") from exc
        index = values.get("index")
        return cls(
            start=start,
            end=end,
            forecast=forecast,
            actual=_intensity_value(values.get("actual"), "actual"),
            index=index if isinstance(index, str) else None,
        )

    @property
    def value(self) -> float | None:
        """``actual`` where present, else ``forecast``."""
        return self.actual if self.actual is not None else self.forecast


def _periods(items: Any, what: str) -> list[Period]:
    if not isinstance(items, list):
        raise ValueError(f"{what} is not a list: {items!r}")
    found: dict[datetime, Period] = {}
    for i, item in enumerate(items):
        try:
            period = Period.from_json(item)
        except ValueError as exc:
            raise ValueError(f"{what}[{i}]: {exc}") from exc
        found.setdefault(period.start, period)  # de-duplicate on 'from': the API has repeated slots
    return sorted(found.values(), key=lambda p: p.start)


def parse_national(payload: Any) -> list[Period]:
    """Return the periods of a national response (``{"data": [period, ...]}``), oldest first.

    :raises ValueError: not that envelope, or a bad period.
    """
    data = _data(payload)
    return _periods(data, "data")


@frozen
class RegionalSeries:
    """The periods of one region, from any of the three regional envelopes.

    :param region_id: ``regionid`` (1-17; may be wrong for some postcodes, see README).
    :param shortname: Region name, e.g. ``"South England"``.
    :param postcode: The outward postcode echoed by postcode endpoints, else None.
    :param periods: Half-hour slots, oldest first, de-duplicated on ``from``.
    """

    region_id: int | None
    shortname: str | None
    postcode: str | None
    periods: tuple[Period, ...]

    @property
    def label(self) -> str:
        """Human-readable region, e.g. ``"South England (region 12, postcode RG10)"``."""
        parts = [f"region {self.region_id}"] if self.region_id is not None else []
        if self.postcode:
            parts.append(f"postcode {self.postcode}")
        name = self.shortname or "unnamed region"
        return f"{name} ({', '.join(parts)})" if parts else name


def _data(payload: Any) -> Any:
    if not isinstance(payload, Mapping):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    if "data" not in payload:
        raise ValueError(f"no 'data' key (keys: {sorted(payload)})")
    return payload["data"]


def _region_header(entry: Mapping[str, Any]) -> tuple[int | None, str | None, str | None]:
    region_id = entry.get("regionid")
    shortname = entry.get("shortname")
    postcode = entry.get("postcode")
    return (
        region_id if isinstance(region_id, int) and not isinstance(region_id, bool) else None,
        shortname if isinstance(shortname, str) else None,
        postcode if isinstance(postcode, str) else None,
    )


def parse_regional(payload: Any, *, region_id: int | None = None) -> RegionalSeries:
    """Return one region's periods from any of the three regional envelopes.

    :param region_id: The region to pick from envelope 1 (which lists every region);
        envelopes 2 and 3 hold one region and need none.
    :raises ValueError: an unknown envelope, a bad period, or envelope 1 without (or without
        a match for) ``region_id``.
    """
    data = _data(payload)
    if isinstance(data, Mapping):  # envelope 3: one object
        region, shortname, postcode = _region_header(data)
        return RegionalSeries(region, shortname, postcode, tuple(_periods(data.get("data"), "data.data")))
    if not isinstance(data, list):
        raise ValueError(f"'data' is neither a list nor an object: {data!r}")
    if data and all(isinstance(item, Mapping) and "regions" in item for item in data):  # envelope 1
        if region_id is None:
            raise ValueError("the response lists every region, and no region id was given to pick one")
        periods: dict[datetime, Period] = {}
        header: tuple[int | None, str | None, str | None] = (region_id, None, None)
        for i, item in enumerate(data):
            matches = [r for r in item["regions"] if isinstance(r, Mapping) and r.get("regionid") == region_id]
            if not matches:
                raise ValueError(f"data[{i}].regions has no region {region_id}")
            header = _region_header(matches[0])
            try:
                period = Period.from_json(item, intensity=matches[0].get("intensity"))
            except ValueError as exc:
                raise ValueError(f"data[{i}]: {exc}") from exc
            periods.setdefault(period.start, period)
        return RegionalSeries(*header, tuple(sorted(periods.values(), key=lambda p: p.start)))
    if len(data) == 1 and isinstance(data[0], Mapping) and "data" in data[0]:  # envelope 2
        region, shortname, postcode = _region_header(data[0])
        return RegionalSeries(region, shortname, postcode, tuple(_periods(data[0]["data"], "data[0].data")))
    if not data:
        return RegionalSeries(region_id, None, None, ())
    first = sorted(data[0]) if isinstance(data[0], Mapping) else data[0]
    raise ValueError(f"unrecognised regional envelope: data[0] is {first!r}")


def outward_code(postcode: str) -> str:
    """Return the outward code of a UK postcode: ``"RG10 9XX"`` and ``"rg109xx"`` give ``"RG10"``.

    :raises ConfigError: the value is not a UK postcode or outward code.
    """
    if not isinstance(postcode, str):
        raise ConfigError(f"postcode must be a string such as 'RG10' or 'RG10 9XX', got {postcode!r}")
    text = " ".join(postcode.upper().split())
    if " " in text:
        outward, _, inward = text.partition(" ")
        ok = bool(_OUTWARD_RE.match(outward) and _INWARD_RE.match(inward))
    elif len(text) > 4:  # a full postcode without its space: the inward part is 3 characters
        outward, inward = text[:-3], text[-3:]
        ok = bool(_OUTWARD_RE.match(outward) and _INWARD_RE.match(inward))
    else:
        outward = text
        ok = bool(_OUTWARD_RE.match(outward))
    if not ok:
        raise ConfigError(
            f"postcode {postcode!r} is not a UK postcode: expected an outward code such as 'RG10' "
            "or 'SW1A', or a full postcode such as 'RG10 9XX'"
        )
    return outward


# -------------------------------------------------------------------------------------------
# Provider
# -------------------------------------------------------------------------------------------


def _slot_start(t: datetime) -> datetime:
    return t.replace(minute=t.minute - t.minute % 30, second=0, microsecond=0)


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%MZ")


_check_base_url = base_url_validator("Carbon Intensity API base URL", DEFAULT_BASE_URL)


def _convert_postcode(value: str | None) -> str | None:
    return None if value is None or (isinstance(value, str) and not value.strip()) else outward_code(value)


def _check_region_id(instance: Any, attribute: Any, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value not in REGION_IDS:
        raise ConfigError(
            f"GB region id must be a whole number from 1 to 17 (see the intensity_gb README for "
            f"the list), got {value!r}"
        )


def _check_max_age(instance: Any, attribute: Any, value: timedelta) -> None:
    if not isinstance(value, timedelta) or value < SLOT:
        raise ConfigError(f"max_age must be a timedelta of at least 30 minutes, got {value!r}")


@define(kw_only=True)
class CarbonIntensityGBProvider:
    """Carbon intensity of electricity in Great Britain from the NESO Carbon Intensity API.

    National by default; regional when ``region_id`` or ``postcode`` is set (``region_id``
    wins when both are). Zone: ``GB``. Samples are 30-minute slots (``period_s=1800``).
    ``actual`` is used where present (kind ``"live"``), else ``forecast`` (kind
    ``"forecast"``, and the source says so); regional slots only ever have ``forecast``.

    :param client: The HTTP client every request goes through (it carries the timeouts).
    :param base_url: API root, default :data:`DEFAULT_BASE_URL`.
    :param now: Clock returning an aware datetime (injected in tests).
    :param postcode: UK postcode or outward code; only the outward code is sent.
    :param region_id: Region 1-17 (see the README's table).
    :param max_age: :meth:`current` refuses a slot that ended longer ago than this (the API
        keeps serving the last slot it has during outages).
    :param backoff: Rate-limit state; pass one :class:`Backoff` to providers sharing the API.
    :param max_bytes: Largest response body accepted, after decompression (default 4 MiB; a
        regional 48-hour forecast is under 100 KB).
    :param deadline_s: Seconds one request may take in all (default 20).
    """

    zones: ClassVar[frozenset[str]] = frozenset({"GB"})

    client: httpx.Client
    base_url: str = field(default=DEFAULT_BASE_URL, converter=strip_slash, validator=_check_base_url)
    now: Callable[[], datetime] = field(default=utc_now)
    postcode: str | None = field(default=None, converter=_convert_postcode)
    region_id: int | None = field(default=None, validator=_check_region_id)
    max_age: timedelta = field(default=timedelta(hours=2), validator=_check_max_age)
    backoff: Backoff = field(factory=Backoff, repr=False)
    max_bytes: int = field(default=DEFAULT_MAX_BYTES, validator=check_max_bytes)
    deadline_s: float = field(default=DEFAULT_DEADLINE_S, validator=check_deadline)

    @property
    def name(self) -> str:
        """``intensity_gb:regional`` when a region is selected, else ``intensity_gb:national``."""
        return f"{PLUGIN}:{'national' if self.selector is None else 'regional'}"

    @property
    def priority(self) -> int:
        """100 for national values; 101 for a selected region, so that the core prefers the
        regional provider and falls back to the national one."""
        return NATIONAL_PRIORITY if self.selector is None else REGIONAL_PRIORITY

    @property
    def selector(self) -> tuple[str, str] | None:
        """``("regionid", "12")``, ``("postcode", "RG10")``, or None for national."""
        if self.region_id is not None:
            return ("regionid", str(self.region_id))
        if self.postcode is not None:
            return ("postcode", self.postcode)
        return None

    @property
    def banned_until(self) -> datetime | None:
        """End of the current rate-limit back-off (UTC), or None."""
        return self.backoff.until

    # -- protocol ---------------------------------------------------------------------------

    def current(self, zone: str) -> IntensitySample:
        """Return the slot in force now, or else the newest slot the API returned (if it ended
        less than ``max_age`` ago).

        ``/intensity`` returns the latest completed half hour, which may be the previous slot.
        :raises UnknownZoneError: ``zone`` is not ``GB``.
        :raises IntensityUnavailable: the request failed or returned no usable slot.
        """
        self._check_zone(zone)
        now = aware_utc(self.now(), "now()")
        selector = self.selector
        if selector is None:
            path = "/intensity"
            periods, scope = self._national(path, zone), "national"
        else:
            path = f"/regional/{selector[0]}/{selector[1]}"
            series = self._regional(path, zone)
            periods, scope = list(series.periods), f"regional, {series.label}"
        usable = [p for p in periods if p.value is not None]
        if not usable:
            raise IntensityUnavailable(
                f"Carbon Intensity API {path}: no intensity in the response", provider=self.name, zone=zone
            )
        in_force = [p for p in usable if p.start <= now < p.end]
        chosen = in_force[-1] if in_force else usable[-1]
        if chosen.end < now - self.max_age:
            raise IntensityUnavailable(
                f"Carbon Intensity API {path}: newest slot ended at {_fmt(chosen.end)}, more than "
                f"{self.max_age.total_seconds() / 3600:g} h before now ({_fmt(now)})",
                provider=self.name,
                zone=zone,
            )
        return self._sample(chosen, scope)

    def forecast(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Return the half-hour slots overlapping ``[start, end)``, oldest first, from
        ``fw48h``: at most 48 hours from the slot containing ``start``, fewer when the
        published forecast ends earlier (logged at INFO). Empty when ``end <= start``.

        :raises IntensityUnavailable: the request failed or returned no slot in the window.
        """
        self._check_zone(zone)
        start = aware_utc(start, "start")
        end = aware_utc(end, "end")
        if end <= start:
            return []
        since = _fmt(_slot_start(start) + timedelta(minutes=1))
        selector = self.selector
        if selector is None:
            path = f"/intensity/{since}/fw48h"
            periods, scope = self._national(path, zone), "national"
        else:
            path = f"/regional/intensity/{since}/fw48h/{selector[0]}/{selector[1]}"
            series = self._regional(path, zone)
            periods, scope = list(series.periods), f"regional, {series.label}"
        window = [p for p in periods if p.end > start and p.start < end and p.value is not None]
        if not window:
            raise IntensityUnavailable(
                f"Carbon Intensity API {path}: no slots between {_fmt(start)} and {_fmt(end)}",
                provider=self.name,
                zone=zone,
            )
        if window[-1].end < end:
            _logger.info(
                "Carbon Intensity API forecast (%s) ends at %s, before the requested %s",
                scope,
                _fmt(window[-1].end),
                _fmt(end),
            )
        return [self._sample(p, scope) for p in window]

    # -- helpers ----------------------------------------------------------------------------

    def _check_zone(self, zone: str) -> None:
        if not isinstance(zone, str) or zone.strip().upper() not in self.zones:
            raise UnknownZoneError(
                f"{self.name} covers zone GB only, not {zone!r} (choose a GB region with a postcode "
                "or intensity_gb.region_id)",
                provider=self.name,
                zone=zone if isinstance(zone, str) else None,
            )

    def _sample(self, period: Period, scope: str) -> IntensitySample:
        if period.actual is not None:
            kind, what = "live", "actual"
        else:
            kind, what = "forecast", "forecast (no actual yet)" if scope == "national" else "forecast"
        assert period.value is not None
        return IntensitySample(
            time=period.start,
            g_per_kwh=period.value,
            zone="GB",
            source=f"Carbon Intensity API (NESO), {scope}, {what}",
            kind=kind,
            period_s=SLOT.total_seconds(),
        )

    def _national(self, path: str, zone: str) -> list[Period]:
        payload = self._get(path, zone)
        try:
            return parse_national(payload)
        except ValueError as exc:
            raise IntensityUnavailable(
                f"Carbon Intensity API {path}: unexpected payload: {exc}", provider=self.name, zone=zone
            ) from exc

    def _regional(self, path: str, zone: str) -> RegionalSeries:
        payload = self._get(path, zone)
        try:
            return parse_regional(payload, region_id=self.region_id)
        except ValueError as exc:
            raise IntensityUnavailable(
                f"Carbon Intensity API {path}: unexpected payload: {exc}", provider=self.name, zone=zone
            ) from exc

    def _get(self, path: str, zone: str) -> Any:
        """GET ``path`` and decode the JSON; every failure becomes IntensityUnavailable."""
        where = f"Carbon Intensity API {path}"
        payload = get_json(
            self.client,
            f"{self.base_url}{path}",
            provider=self.name,
            zone=zone,
            what=where,
            backoff=self.backoff,
            now=aware_utc(self.now(), "now()"),
            max_bytes=self.max_bytes,
            deadline_s=self.deadline_s,
            default_ban_s=DEFAULT_BAN.total_seconds(),
        )
        if isinstance(payload, Mapping) and "error" in payload:
            raise IntensityUnavailable(
                f"{where}: API error: {error_message(payload) or payload['error']!r}", provider=self.name, zone=zone
            )
        if payload == {}:
            raise IntensityUnavailable(
                f"{where}: empty response {{}} (the API answers so for an unknown postcode, a window beyond "
                "the forecast horizon, or during an outage)",
                provider=self.name,
                zone=zone,
            )
        return payload
