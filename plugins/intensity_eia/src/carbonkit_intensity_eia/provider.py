"""The US EIA provider: hourly intensity of a balancing authority from its net generation by source.

Request (``GET {base}/electricity/rto/fuel-type-data/data/``)::

    frequency=hourly  data[0]=value  facets[respondent][]=CISO
    start=2026-12-02T01  end=2026-12-02T14  (UTC, YYYY-MM-DDTHH)
    sort[0][column]=period  sort[0][direction]=desc  offset=0  length=5000

The key travels as the query parameter :data:`KEY_PARAM` (``api_key``) through ``params=``,
which :mod:`carbonkit.http` redacts from every message and log; the API echoes it in
``request.params``, which is never read or stored.

Response::

    {"response": {"total": "312", "dateFormat": "YYYY-MM-DD\\"T\\"HH24", "frequency": "hourly",
                  "data": [{"period": "2026-12-02T13", "respondent": "CISO",
                            "respondent-name": "California Independent System Operator",
                            "fueltype": "NG", "type-name": "Natural Gas",
                            "value": "4886", "value-units": "megawatthours"}, ...],
                  "description": "..."},
     "request": {...}, "apiVersion": "2.1.x"}

- ``value`` is a string ("4886", "-55"), a number, or null; null rows are missing data.
- ``total`` (a string) counts every matching row; at most 5000 rows come per page, so pages are
  fetched with ``offset`` until ``total`` is reached (at most :data:`MAX_PAGES`).
- ``period`` is the **end** of the hour (Form EIA-930 reports hour-ending values, in UTC): the
  row for ``2026-12-02T13`` covers 12:00 to 13:00 UTC.
- Negative values: storage (BAT, PS, OES, UES) is net of charging and is not priced at all (its
  output takes the intensity of the rest of the mix, see :mod:`carbonkit.emission_factors`);
  a negative value of any other source (a plant's own use while idle, e.g. solar at night)
  counts as zero generation.

**Which hour.** The newest *complete* hour: one where every energy source reported in the six
hours before has a value (a source filed late would otherwise make the hour look cleaner or
dirtier than it was). Balancing authorities file within about an hour and EIA publishes shortly
after, so the newest complete hour usually ended one to two hours ago: :data:`MAX_LAG_S` is
7200 s, and the sample's source says so.

**Forecast.** EIA publishes a day-ahead *demand* forecast per BA but no generation forecast by
energy source, so :meth:`EiaProvider.forecast` returns no samples (the core then uses the
current value ahead, or another provider's forecast).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field, frozen

from carbonkit import ConfigError, IntensitySample, IntensityUnavailable, UnknownZoneError
from carbonkit.emission_factors import IPCC_2014, mix_intensity
from carbonkit.http import (
    DEFAULT_DEADLINE_S,
    DEFAULT_MAX_BYTES,
    Backoff,
    check_deadline,
    check_max_bytes,
    error_message,
    get_json,
)
from carbonkit.plugin_settings import aware_utc, base_url_validator, floor_hour, strip_slash, strip_text, utc_now

from .zones import FUEL_BY_CODE, RESPONDENT_BY_ZONE, ZONE_NAMES, fuel_of

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "KEY_PARAM",
    "MAX_LAG_S",
    "MAX_PAGES",
    "PAGE_LENGTH",
    "EiaProvider",
    "HourMix",
    "hourly_mixes",
    "parse_rows",
]

_logger = logging.getLogger(__name__)

PLUGIN = "intensity_eia"
#: The EIA Open Data API, version 2.
DEFAULT_BASE_URL = "https://api.eia.gov/v2"
#: The route read.
ROUTE = "/electricity/rto/fuel-type-data/data/"
#: The query parameter carrying the key (a secret: redacted by carbonkit.http).
KEY_PARAM = "api_key"
#: How late EIA-930 hourly data are published: one to two hours.
MAX_LAG_S = 7200.0
#: Rows per page (the API's cap for JSON).
PAGE_LENGTH = 5000
#: Pages fetched at most for one window.
MAX_PAGES = 20
_HOUR = timedelta(hours=1)
#: An energy source with a value this long before an hour is expected in it (a late source
#: blocks the hours after its last value; one silent for longer no longer does).
EXPECTED_WITHIN = timedelta(hours=6)
_SERVICE = "US EIA Open Data API"
_DATASET = "hourly net generation by energy source (Form EIA-930, electricity/rto/fuel-type-data)"


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%MZ")


_check_base_url = base_url_validator("EIA API URL (CARBONKIT_EIA_API_URL)", DEFAULT_BASE_URL)


def _check_key(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        # The value is a secret: never repeated in the message.
        raise ConfigError("CARBONKIT_EIA_API_KEY must be the key EIA e-mailed you (one word, no spaces)")


def _check_lookback(instance: Any, attribute: Any, value: timedelta) -> None:
    if not isinstance(value, timedelta) or not (timedelta(hours=3) <= value <= timedelta(days=3)):
        raise ConfigError(f"lookback must be a timedelta from 3 hours to 3 days, got {value!r}")


# -------------------------------------------------------------------------------------------
# Parsing
# -------------------------------------------------------------------------------------------


@frozen
class HourMix:
    """Net generation of one hour ``[start, start + 1 h)``, MWh per EIA energy source code.

    :param complete: Whether every source reported in the hour before reported here too.
    """

    start: datetime
    by_code: Mapping[str, float]
    complete: bool

    @property
    def end(self) -> datetime:
        return self.start + _HOUR

    def by_fuel(self) -> dict[str, float]:
        """MWh per fuel; negative values of non-storage sources count as zero."""
        out: dict[str, float] = {}
        for code, mwh in self.by_code.items():
            fuel = fuel_of(code)
            out[fuel] = out.get(fuel, 0.0) + (mwh if fuel == "storage" else max(mwh, 0.0))
        out.pop("storage", None)  # net of charging: not priced (see the module text)
        return out


def _value(raw: Any) -> float | None:
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None


def parse_rows(payload: Any, respondent: str) -> tuple[list[tuple[datetime, str, float]], int | None]:
    """Return ``(hour start, energy source code, MWh)`` for every row of ``respondent`` with a
    value, and the response's ``total`` (None when absent).

    :raises ValueError: the payload is not the documented envelope or a row is malformed.
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    response = payload.get("response")
    if not isinstance(response, Mapping):
        raise ValueError(f"no 'response' object (keys: {sorted(payload)})")
    data = response.get("data")
    if not isinstance(data, list):
        raise ValueError(f"'response.data' is not a list (keys: {sorted(response)})")
    rows: list[tuple[datetime, str, float]] = []
    for index, row in enumerate(data):
        if not isinstance(row, Mapping):
            raise ValueError(f"response.data[{index}] is not an object: {row!r}")
        try:
            period, code = row["period"], row["fueltype"]
        except KeyError as exc:
            raise ValueError(f"response.data[{index}] lacks {exc}: {dict(row)!r}") from None
        who = row.get("respondent")
        if isinstance(who, str) and who.strip().upper() != respondent:
            continue
        if not isinstance(period, str) or not isinstance(code, str):
            raise ValueError(f"response.data[{index}] has a non-string period or fueltype: {dict(row)!r}")
        try:
            end = datetime.strptime(period.strip()[:13], "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
        except ValueError:
            raise ValueError(f"response.data[{index}]: period {period!r} is not YYYY-MM-DDTHH") from None
        value = _value(row.get("value"))
        if value is not None:
            rows.append((end - _HOUR, code.strip().upper(), value))
    total_raw = response.get("total")
    total = int(total_raw) if isinstance(total_raw, (int, str)) and str(total_raw).strip().isdigit() else None
    return rows, total


def hourly_mixes(rows: Sequence[tuple[datetime, str, float]]) -> list[HourMix]:
    """Group rows into hours, oldest first, and mark the complete ones: an hour is complete
    when every energy source with a value in the :data:`EXPECTED_WITHIN` before it has one
    too. A repeated ``(hour, code)`` keeps its first row."""
    hours: dict[datetime, dict[str, float]] = {}
    for start, code, value in rows:
        hours.setdefault(start, {}).setdefault(code, value)
    out = []
    span = int(EXPECTED_WITHIN / _HOUR)
    for start in sorted(hours):
        expected = {code for k in range(1, span + 1) for code in hours.get(start - k * _HOUR, {})}
        out.append(HourMix(start, hours[start], complete=expected <= set(hours[start])))
    return out


def _priced(hour: HourMix) -> bool:
    return sum(hour.by_fuel().values()) > 0


# -------------------------------------------------------------------------------------------
# Provider
# -------------------------------------------------------------------------------------------


@define(kw_only=True)
class EiaProvider:
    """Average carbon intensity of a US balancing authority from EIA-930 hourly data.

    :param client: The HTTP client every request goes through (the core's, with timeouts).
    :param api_key: The EIA API key (never shown in a repr or message).
    :param base_url: API root, default :data:`DEFAULT_BASE_URL`.
    :param now: Clock returning an aware datetime (injected in tests).
    :param lookback: How far back :meth:`current` looks for the newest complete hour.
    :param max_bytes: Largest response body accepted per page, after decompression.
    :param deadline_s: Seconds one request may take in all.
    """

    name: ClassVar[str] = f"{PLUGIN}:rto"
    zones: ClassVar[frozenset[str]] = frozenset(RESPONDENT_BY_ZONE)
    priority: ClassVar[int] = 100
    signal: ClassVar[str] = "average"
    max_lag_s: ClassVar[float] = MAX_LAG_S
    capabilities: ClassVar[frozenset[str]] = frozenset({"live", "history"})

    client: httpx.Client = field(repr=False)
    api_key: str = field(repr=False, validator=_check_key, converter=strip_text)
    base_url: str = field(default=DEFAULT_BASE_URL, converter=strip_slash, validator=_check_base_url)
    now: Callable[[], datetime] = field(default=utc_now, repr=False)
    lookback: timedelta = field(default=timedelta(hours=12), validator=_check_lookback)
    max_bytes: int = field(default=DEFAULT_MAX_BYTES, validator=check_max_bytes)
    deadline_s: float = field(default=DEFAULT_DEADLINE_S, validator=check_deadline)
    _backoff: Backoff = field(factory=Backoff, init=False, repr=False)
    _unlisted: set[str] = field(factory=set, init=False, repr=False)

    def known_zones(self) -> frozenset[str]:
        """Every zone code mapped to an EIA balancing authority."""
        return self.zones

    def zone_names(self) -> Mapping[str, str]:
        """Zone code -> balancing authority name."""
        return dict(ZONE_NAMES)

    def current(self, zone: str) -> IntensitySample:
        """The newest complete hour within :attr:`lookback`.

        :raises UnknownZoneError: ``zone`` is not mapped to a balancing authority.
        :raises IntensityUnavailable: a request failed or no hour is complete.
        """
        zone, ba = self._respondent(zone)
        now = aware_utc(self.now(), "now()")
        first = floor_hour(now - self.lookback)
        hours = [h for h in hourly_mixes(self._rows(zone, ba, first, floor_hour(now) + _HOUR)) if h.complete]
        hours = [h for h in hours if h.start >= first and _priced(h)]
        if not hours:
            raise IntensityUnavailable(
                f"{_SERVICE} fuel-type-data: no complete hour for {ba} between {_iso(first)} and {_iso(now)} "
                "(EIA-930 data arrive one to two hours late; longer gaps happen when a balancing authority "
                "files late)",
                provider=self.name,
                zone=zone,
            )
        return self._sample(zone, ba, hours[-1])

    def forecast(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Always empty: EIA publishes no generation forecast by energy source."""
        self._respondent(zone)
        return []

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Live samples of every complete hour overlapping ``[start, end)``, oldest first.

        :raises IntensityUnavailable: a request failed.
        """
        zone, ba = self._respondent(zone)
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        if end <= start:
            return []
        first = floor_hour(start)
        rows = self._rows(zone, ba, first - _HOUR, end + _HOUR)
        return [
            self._sample(zone, ba, h)
            for h in hourly_mixes(rows)
            if h.complete and h.end > start and h.start < end and _priced(h)
        ]

    # -- helpers ------------------------------------------------------------------------------

    def _respondent(self, zone: str) -> tuple[str, str]:
        code = zone.strip().upper() if isinstance(zone, str) else None
        if code is None or code not in RESPONDENT_BY_ZONE:
            raise UnknownZoneError(
                f"{self.name} covers {len(RESPONDENT_BY_ZONE)} US balancing-authority zones (US-CAL-CISO, "
                f"US-TEX-ERCO, US-MIDA-PJM...), not {zone!r}",
                provider=self.name,
                zone=zone if isinstance(zone, str) else None,
            )
        return code, RESPONDENT_BY_ZONE[code]

    def _sample(self, zone: str, ba: str, hour: HourMix) -> IntensitySample:
        unlisted = {c for c in hour.by_code if c not in FUEL_BY_CODE} - self._unlisted
        if unlisted:
            self._unlisted |= unlisted
            _logger.warning("%s: energy source codes %s are not known to carbonkit; priced as unknown",
                            _SERVICE, ", ".join(sorted(unlisted)))
        return IntensitySample(
            time=hour.start,
            g_per_kwh=mix_intensity(hour.by_fuel()),
            zone=zone,
            source=f"{_SERVICE}, {_DATASET} for {ba}, x {IPCC_2014.name}; published one to two hours "
            "after the hour",
            kind="live",
            period_s=_HOUR.total_seconds(),
            signal="average",
            factors=IPCC_2014.name,
        )

    def _rows(self, zone: str, ba: str, start: datetime, end: datetime) -> list[tuple[datetime, str, float]]:
        """Every row of ``ba`` whose hour-ending period lies in ``[start + 1 h, end]``, all pages."""
        what = f"{_SERVICE} fuel-type-data"
        rows: list[tuple[datetime, str, float]] = []
        offset = 0
        for _page in range(MAX_PAGES):
            params: dict[str, str] = {
                "frequency": "hourly",
                "data[0]": "value",
                "facets[respondent][]": ba,
                "start": _fmt(start + _HOUR),
                "end": _fmt(end),
                "sort[0][column]": "period",
                "sort[0][direction]": "desc",
                "offset": str(offset),
                "length": str(PAGE_LENGTH),
                KEY_PARAM: self.api_key,
            }
            payload = self._get(zone, what, params)
            try:
                page, total = parse_rows(payload, ba)
            except ValueError as exc:
                raise IntensityUnavailable(f"{what}: unexpected payload: {exc}", provider=self.name, zone=zone) from exc
            returned = len(payload["response"]["data"])
            rows.extend(page)
            offset += returned
            if returned == 0 or total is None or offset >= total:
                return rows
        _logger.warning("%s: more than %d pages for %s; the oldest rows were not fetched", what, MAX_PAGES, ba)
        return rows

    def _get(self, zone: str, what: str, params: Mapping[str, str]) -> Any:
        import httpx

        try:
            payload = get_json(
                self.client,
                f"{self.base_url}{ROUTE}",
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
            if isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code in (401, 403):
                raise IntensityUnavailable(
                    f"{exc}; the API key was refused: check CARBONKIT_EIA_API_KEY (a free key: "
                    "https://www.eia.gov/opendata/register.php)",
                    provider=self.name,
                    zone=zone,
                ) from exc
            raise
        if isinstance(payload, Mapping) and "error" in payload and "response" not in payload:
            message = f"{what}: API error: {error_message(payload) or payload['error']!r}"
            raise IntensityUnavailable(message.replace(self.api_key, "***"), provider=self.name, zone=zone)
        return payload
