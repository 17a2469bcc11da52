"""Tests of the intensity_dk plugin against a faithful fake of Energi Data Service.

The fake is an ``httpx.MockTransport`` whose handler checks each request's method, host, path
and exact query parameters before answering with a recorded-shape body from
``fixtures/intensity_dk/`` (shapes as documented for the ``CO2Emis`` and ``CO2EmisProg``
datasets: newest rows first, ``Minutes5UTC`` without offset, ``CO2Emission`` with 6 decimals).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pluggy
import pytest

import carbonkit
import carbonkit.hookspecs
import carbonkit_intensity_dk
from carbonkit import IntensitySample, IntensityUnavailable, UnknownZoneError
from carbonkit_intensity_dk import EnergiDataServiceProvider, parse_records

FIXTURES = Path(__file__).parent / "fixtures" / "intensity_dk"
BASE = "https://api.energidataservice.dk"
NOW = datetime(2024, 11, 5, 13, 27, 30, tzinfo=timezone.utc)
# The live window for NOW: two hours back from the current 5-minute interval, to its end.
LIVE_PARAMS = {"start": "2024-11-05T11:25", "end": "2024-11-05T13:30", "timezone": "UTC", "limit": "74"}


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakeEDS:
    """Answers queued responses in order; asserts every request is the one expected."""

    def __init__(self, host: str = "api.energidataservice.dk") -> None:
        self.host = host
        self.queue: list[tuple[str, dict[str, str], Callable[[httpx.Request], httpx.Response]]] = []
        self.requests: list[httpx.Request] = []

    def expect(
        self,
        path: str,
        params: dict[str, str],
        *,
        status: int = 200,
        content: bytes = b"",
        headers: dict[str, str] | None = None,
        raises: type[httpx.TransportError] | None = None,
    ) -> None:
        def respond(request: httpx.Request) -> httpx.Response:
            if raises is not None:
                raise raises("simulated", request=request)
            return httpx.Response(status, content=content, headers=headers)

        self.queue.append((path, params, respond))

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.queue, f"unexpected request: {request.url}"
        path, params, respond = self.queue.pop(0)
        assert request.method == "GET"
        assert request.url.scheme == "https" and request.url.host == self.host
        assert request.url.path == path
        # Exactly these parameters, each once, nothing else (no filter, no sort).
        assert sorted(request.url.params.multi_items()) == sorted(params.items())
        return respond(request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler), timeout=5.0)


@pytest.fixture
def eds() -> FakeEDS:
    return FakeEDS()


def provider(eds: FakeEDS, now: Callable[[], datetime] = lambda: NOW, **kwargs: object) -> EnergiDataServiceProvider:
    return EnergiDataServiceProvider(client=eds.client(), now=now, **kwargs)  # type: ignore[arg-type]


# -- live values ---------------------------------------------------------------------------


def test_dk1_live_is_newest_co2emis_row(eds: FakeEDS) -> None:
    """DK-DK1 current() is the newest DK1 CO2Emis row in the UTC window, as a live 5-minute sample."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_window.json"))
    sample = provider(eds).current("DK-DK1")
    assert sample == IntensitySample(
        time=datetime(2024, 11, 5, 13, 25, tzinfo=timezone.utc),
        g_per_kwh=147.0,
        zone="DK-DK1",
        source="Energi Data Service CO2Emis (DK1)",
        kind="live",
        period_s=300.0,
    )


def test_dk2_live_is_newest_co2emis_row(eds: FakeEDS) -> None:
    """DK-DK2 current() reads the DK2 rows of the same response shape."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_window.json"))
    sample = provider(eds).current("DK-DK2")
    assert (sample.time.hour, sample.time.minute) == (13, 25)
    assert sample.g_per_kwh == 98.0
    assert sample.zone == "DK-DK2"
    assert sample.source == "Energi Data Service CO2Emis (DK2)"


def test_query_string_is_utc_minutes_with_timezone(eds: FakeEDS) -> None:
    """Times go out as yyyy-MM-ddTHH:mm (no seconds) with timezone=UTC, URL-encoded, and a
    limit that fits the window's rows: 2 areas x (25 intervals + 12 for a DST hour) = 74."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_window.json"))
    provider(eds).current("DK-DK1")
    assert eds.requests[0].url.query == b"start=2024-11-05T11%3A25&end=2024-11-05T13%3A30&timezone=UTC&limit=74"


def test_dk_is_mean_of_both_areas_for_same_interval(eds: FakeEDS) -> None:
    """DK is the unweighted mean of DK1 and DK2 for the newest interval both areas have."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_window.json"))
    sample = provider(eds).current("DK")
    assert sample.g_per_kwh == pytest.approx((147.0 + 98.0) / 2)
    assert sample.zone == "DK"
    assert sample.source == "Energi Data Service CO2Emis (mean of DK1 and DK2)"


def test_dk_skips_interval_only_one_area_has(eds: FakeEDS) -> None:
    """When DK2 lags, DK uses the newest interval with both areas (13:20, DK2 as integer 101)."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_dk2_lagging.json"))
    sample = provider(eds).current("DK")
    assert sample.time == datetime(2024, 11, 5, 13, 20, tzinfo=timezone.utc)
    assert sample.g_per_kwh == pytest.approx((150.0 + 101.0) / 2)


def test_dk1_still_uses_its_newest_row_when_dk2_lags(eds: FakeEDS) -> None:
    """A single area is not held back by the other area's lag."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_dk2_lagging.json"))
    assert provider(eds).current("DK-DK1").time == datetime(2024, 11, 5, 13, 25, tzinfo=timezone.utc)


def test_null_values_are_skipped() -> None:
    """A row whose CO2Emission is null carries no value and is left out."""
    rows = parse_records(
        {
            "total": 2,
            "dataset": "CO2Emis",
            "records": [
                {
                    "Minutes5UTC": "2024-11-05T13:25:00",
                    "Minutes5DK": "2024-11-05T14:25:00",
                    "PriceArea": "DK1",
                    "CO2Emission": None,
                },
                {
                    "Minutes5UTC": "2024-11-05T13:20:00",
                    "Minutes5DK": "2024-11-05T14:20:00",
                    "PriceArea": "DK1",
                    "CO2Emission": 94,
                },
            ],
        }
    )
    assert [(r.time.minute, r.g_per_kwh) for r in rows] == [(20, 94.0)]


# -- forecast ------------------------------------------------------------------------------


def test_dk2_forecast_window_from_co2emisprog(eds: FakeEDS) -> None:
    """forecast() asks CO2EmisProg for the 5-minute-aligned UTC window and returns it oldest first."""
    eds.expect(
        "/dataset/CO2EmisProg",
        {"start": "2024-11-05T13:00", "end": "2024-11-05T13:15", "timezone": "UTC", "limit": "30"},
        content=body("co2emisprog_window.json"),
    )
    samples = provider(eds).forecast(
        "DK-DK2",
        datetime(2024, 11, 5, 13, 2, tzinfo=timezone.utc),
        datetime(2024, 11, 5, 13, 14, tzinfo=timezone.utc),
    )
    assert [(s.time.minute, s.g_per_kwh) for s in samples] == [(0, 101.0), (5, 99.0), (10, 97.0)]
    assert {(s.kind, s.period_s, s.zone, s.source) for s in samples} == {
        ("forecast", 300.0, "DK-DK2", "Energi Data Service CO2EmisProg (DK2)")
    }


def test_dk_forecast_combines_areas_per_interval(eds: FakeEDS) -> None:
    """The DK forecast is the per-interval mean of the DK1 and DK2 forecasts."""
    eds.expect(
        "/dataset/CO2EmisProg",
        {"start": "2024-11-05T13:00", "end": "2024-11-05T13:15", "timezone": "UTC", "limit": "30"},
        content=body("co2emisprog_window.json"),
    )
    samples = provider(eds).forecast(
        "DK",
        datetime(2024, 11, 5, 14, 0, tzinfo=timezone(timedelta(hours=1))),  # 13:00 UTC, given in CET
        datetime(2024, 11, 5, 13, 15, tzinfo=timezone.utc),
    )
    assert [s.g_per_kwh for s in samples] == [(120 + 101) / 2, (118 + 99) / 2, (121 + 97) / 2]
    assert samples[0].source == "Energi Data Service CO2EmisProg (mean of DK1 and DK2)"


def test_autumn_dst_rows_keyed_by_utc(eds: FakeEDS) -> None:
    """On the autumn change the repeated Danish 02:00-02:05 rows stay distinct UTC intervals."""
    eds.expect(
        "/dataset/CO2EmisProg",
        {"start": "2024-10-27T00:00", "end": "2024-10-27T01:10", "timezone": "UTC", "limit": "52"},
        content=body("co2emisprog_dst_autumn.json"),
    )
    samples = provider(eds).forecast(
        "DK-DK1",
        datetime(2024, 10, 27, 0, 0, tzinfo=timezone.utc),
        datetime(2024, 10, 27, 1, 10, tzinfo=timezone.utc),
    )
    times = [s.time for s in samples]
    assert len(times) == 14 == len(set(times))
    assert times == sorted(times)
    assert [s.g_per_kwh for s in samples][:2] == [90.0, 91.0]
    assert [s.g_per_kwh for s in samples][-2:] == [87.0, 88.0]


def test_spring_dst_gap_has_no_hole_in_utc(eds: FakeEDS) -> None:
    """On the spring change (Danish 02:00-02:55 skipped) the UTC intervals are contiguous."""
    eds.expect(
        "/dataset/CO2EmisProg",
        {"start": "2024-03-31T00:50", "end": "2024-03-31T01:10", "timezone": "UTC", "limit": "32"},
        content=body("co2emisprog_dst_spring.json"),
    )
    samples = provider(eds).forecast(
        "DK-DK2",
        datetime(2024, 3, 31, 0, 50, tzinfo=timezone.utc),
        datetime(2024, 3, 31, 1, 10, tzinfo=timezone.utc),
    )
    assert [s.time.strftime("%H:%M") for s in samples] == ["00:50", "00:55", "01:00", "01:05"]
    assert [s.g_per_kwh for s in samples] == [144.0, 143.0, 141.0, 140.0]


def test_empty_window_needs_no_request(eds: FakeEDS) -> None:
    """forecast() with end <= start returns [] without calling the API."""
    assert provider(eds).forecast("DK", NOW, NOW) == []
    assert eds.requests == []


def test_naive_datetimes_are_rejected(eds: FakeEDS) -> None:
    """A naive start is a programming error named in the message."""
    with pytest.raises(ValueError, match="timezone-aware"):
        provider(eds).forecast("DK", datetime(2024, 11, 5, 13, 0), NOW)


# -- UTC placement and coverage ------------------------------------------------------------
#
# The service reads start/end as Danish time unless timezone=UTC is honoured (EDS API guide,
# parameter "timezone"). These payloads have the captured shape (newest first, both areas,
# 6-decimal values) of an answer whose window was read as Danish time: their rows are
# correct (Minutes5UTC is UTC, Minutes5DK is Copenhagen time, +01:00 in November and +02:00
# in July) but lie 1 or 2 hours earlier in UTC than asked.


def test_live_rows_are_placed_by_utc_when_the_window_was_read_as_danish_winter_time(
    eds: FakeEDS, caplog: pytest.LogCaptureFixture
) -> None:
    """Asked 11:25-13:30 UTC, served 11:25-13:30 Danish (+01:00): the newest row inside the UTC
    window is 12:25 UTC (Minutes5DK 13:25), and the 24 rows before 11:25 UTC are dropped, once
    said as a warning on the carbonkit logger."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_window_read_as_danish_winter.json"))
    with caplog.at_level(logging.WARNING, logger="carbonkit"):
        sample = provider(eds).current("DK-DK1")
    assert (sample.time, sample.g_per_kwh) == (datetime(2024, 11, 5, 12, 25, tzinfo=timezone.utc), 124.0)
    (record,) = [r for r in caplog.records if r.name == "carbonkit"]
    assert record.levelname == "WARNING"
    assert record.getMessage().startswith(
        "Energi Data Service CO2Emis: 24 rows from 2024-11-05T10:25Z to 2024-11-05T11:20Z lie outside the UTC "
        "window asked (2024-11-05T11:25Z to 2024-11-05T13:30Z) and are ignored"
    )


def test_live_rows_are_placed_by_utc_when_the_window_was_read_as_danish_summer_time(eds: FakeEDS) -> None:
    """Same in July (+02:00): only 08:25 UTC (Minutes5DK 10:25) is inside 08:25-10:30 UTC."""
    now = datetime(2024, 7, 1, 10, 27, 30, tzinfo=timezone.utc)
    eds.expect(
        "/dataset/CO2Emis",
        {"start": "2024-07-01T08:25", "end": "2024-07-01T10:30", "timezone": "UTC", "limit": "74"},
        content=body("co2emis_window_read_as_danish_summer.json"),
    )
    sample = provider(eds, now=lambda: now).current("DK")
    assert sample.time == datetime(2024, 7, 1, 8, 25, tzinfo=timezone.utc)
    assert sample.g_per_kwh == pytest.approx((224.0 + 174.0) / 2)


def test_forecast_shortfall_is_warned_once(eds: FakeEDS, caplog: pytest.LogCaptureFixture) -> None:
    """Asked 13:00-15:00 UTC, served 12:00-14:00 UTC: the samples are 13:00-13:55 placed by UTC
    (values of the rows whose Minutes5UTC says so), and the shortfall is one warning; the same
    shortfall again is not warned twice."""
    params = {"start": "2024-11-05T13:00", "end": "2024-11-05T15:00", "timezone": "UTC", "limit": "72"}
    dk = provider(eds)
    start, end = datetime(2024, 11, 5, 13, 0, tzinfo=timezone.utc), datetime(2024, 11, 5, 15, 0, tzinfo=timezone.utc)
    with caplog.at_level(logging.WARNING, logger="carbonkit"):
        for _ in range(2):
            eds.expect("/dataset/CO2EmisProg", params, content=body("co2emisprog_window_read_as_danish.json"))
            samples = dk.forecast("DK-DK2", start, end)
    assert [s.time.strftime("%H:%M") for s in samples] == [f"13:{m:02d}" for m in range(0, 60, 5)]
    assert [s.g_per_kwh for s in samples] == [90.0 + 12 + i for i in range(12)]
    messages = [r.getMessage() for r in caplog.records if r.name == "carbonkit"]
    assert messages == [
        messages[0],  # rows outside the window
        "Energi Data Service CO2EmisProg: the forecast for DK-DK2 covers 2024-11-05T13:00Z to 2024-11-05T14:00Z, "
        "not all of 2024-11-05T13:00Z to 2024-11-05T15:00Z asked: it ends early (the published forecast ends there)",
    ]
    assert "lie outside the UTC window asked" in messages[0]


def test_forecast_cut_by_a_row_limit_is_said(eds: FakeEDS, caplog: pytest.LogCaptureFixture) -> None:
    """'total' above the rows returned means the answer was cut: the warning says so, and that
    the forecast starts late (newest rows first, so the oldest were cut)."""
    eds.expect(
        "/dataset/CO2EmisProg",
        {"start": "2024-11-05T13:00", "end": "2024-11-05T15:00", "timezone": "UTC", "limit": "72"},
        content=body("co2emisprog_cut_by_limit.json"),
    )
    with caplog.at_level(logging.WARNING, logger="carbonkit"):
        samples = provider(eds).forecast(
            "DK", datetime(2024, 11, 5, 13, 0, tzinfo=timezone.utc), datetime(2024, 11, 5, 15, 0, tzinfo=timezone.utc)
        )
    assert [s.time.strftime("%H:%M") for s in samples] == ["14:35", "14:40", "14:45", "14:50", "14:55"]
    (message,) = [r.getMessage() for r in caplog.records if r.name == "carbonkit"]
    assert message == (
        "Energi Data Service CO2EmisProg: the forecast for DK covers 2024-11-05T14:35Z to 2024-11-05T15:00Z, "
        "not all of 2024-11-05T13:00Z to 2024-11-05T15:00Z asked: the response holds 10 of 48 rows "
        "(cut by a row limit); it starts late"
    )


def test_hourly_rows_use_hourutc(eds: FakeEDS) -> None:
    """A dataset with HourUTC/HourDK rows is placed by HourUTC, one-hour samples."""
    eds.expect(
        "/dataset/CO2EmisHour",
        {"start": "2024-11-05T13:00", "end": "2024-11-05T15:00", "timezone": "UTC", "limit": "72"},
        content=body("hourly_window.json"),
    )
    samples = provider(eds, forecast_dataset="CO2EmisHour").forecast(
        "DK-DK1", datetime(2024, 11, 5, 13, 0, tzinfo=timezone.utc), datetime(2024, 11, 5, 15, 0, tzinfo=timezone.utc)
    )
    assert [(s.time.hour, s.g_per_kwh, s.period_s) for s in samples] == [(13, 130.0, 3600.0), (14, 140.0, 3600.0)]


def test_record_without_a_utc_time_field_is_refused() -> None:
    """A row with only the local-time field cannot be placed: a clear error naming the fields."""
    with pytest.raises(ValueError, match=r"records\[0\]: record has no UTC time field \(Minutes5UTC or HourUTC\)"):
        parse_records({"records": [{"Minutes5DK": "2024-11-05T14:25:00", "PriceArea": "DK1", "CO2Emission": 1.0}]})


def test_request_bounds_can_be_set(eds: FakeEDS) -> None:
    """max_bytes and deadline_s reach the shared HTTP helper: a body over max_bytes is refused."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_window.json"))
    with pytest.raises(IntensityUnavailable, match=r"^Energi Data Service CO2Emis: body over the limit of 2 KiB"):
        provider(eds, max_bytes=2048).current("DK-DK1")
    with pytest.raises(carbonkit.ConfigError, match="deadline_s must be a number of seconds > 0, got 0"):
        provider(eds, deadline_s=0)


# -- failures ------------------------------------------------------------------------------


def test_empty_records_live(eds: FakeEDS) -> None:
    """An empty records list is no data: IntensityUnavailable naming the area and window."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_empty.json"))
    with pytest.raises(IntensityUnavailable) as info:
        provider(eds).current("DK-DK1")
    assert str(info.value) == (
        "Energi Data Service CO2Emis: no records for DK1 between 2024-11-05T11:25Z and 2024-11-05T13:30Z (UTC)"
    )
    assert info.value.provider == "intensity_dk:energidataservice"
    assert info.value.zone == "DK-DK1"


def test_rows_outside_requested_window_are_ignored(eds: FakeEDS) -> None:
    """Rows the API sends from outside the window (a day old here) do not count as current."""
    eds.expect(
        "/dataset/CO2Emis",
        {"start": "2024-11-06T11:25", "end": "2024-11-06T13:30", "timezone": "UTC", "limit": "74"},
        content=body("co2emis_window.json"),
    )
    with pytest.raises(IntensityUnavailable, match="no records for DK1 between 2024-11-06T11:25Z"):
        provider(eds, now=lambda: NOW + timedelta(days=1)).current("DK-DK1")


def test_empty_records_forecast_beyond_horizon(eds: FakeEDS) -> None:
    """A forecast window beyond the horizon ({"records": []}) raises, naming both areas for DK."""
    eds.expect(
        "/dataset/CO2EmisProg",
        {"start": "2024-11-06T13:00", "end": "2024-11-06T14:00", "timezone": "UTC", "limit": "48"},
        content=body("co2emisprog_empty.json"),
    )
    with pytest.raises(IntensityUnavailable, match="no records for DK1 and DK2 between 2024-11-06T13:00Z"):
        provider(eds).forecast(
            "DK",
            datetime(2024, 11, 6, 13, 0, tzinfo=timezone.utc),
            datetime(2024, 11, 6, 14, 0, tzinfo=timezone.utc),
        )


def test_http_500_with_html_body(eds: FakeEDS) -> None:
    """A 500 with an HTML page says so, with the start of the body, chained."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, status=500, content=body("error_500.html"))
    with pytest.raises(IntensityUnavailable) as info:
        provider(eds).current("DK-DK2")
    message = str(info.value)
    assert message.startswith("Energi Data Service CO2Emis: HTTP 500 with an HTML body: '<!DOCTYPE html>")
    assert "Internal Server Error" in message
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)


def test_http_403_waf_text_body(eds: FakeEDS) -> None:
    """A firewall 403 with a plain-text body is reported with its text."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, status=403, content=body("error_403.txt"))
    expected = "HTTP 403 with a text body: 'Access has been blocked by application'"
    with pytest.raises(IntensityUnavailable, match=expected):
        provider(eds).current("DK")


def test_empty_body(eds: FakeEDS) -> None:
    """A 200 with no body at all is reported as such."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=b"")
    with pytest.raises(IntensityUnavailable, match="HTTP 200 with an empty body"):
        provider(eds).current("DK-DK1")


def test_malformed_json(eds: FakeEDS) -> None:
    """A truncated JSON body is reported with its first bytes, chained from the decode error."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_window.json")[:60])
    with pytest.raises(IntensityUnavailable, match=r"body is not JSON .*'\{\\n  \"total\": 50") as info:
        provider(eds).current("DK-DK1")
    assert isinstance(info.value.__cause__, ValueError)


def test_missing_key_in_record(eds: FakeEDS) -> None:
    """A record without CO2Emission is an unexpected payload, naming the record and key."""
    eds.expect(
        "/dataset/CO2Emis",
        LIVE_PARAMS,
        content=b'{"total": 1, "dataset": "CO2Emis", "records": [{"Minutes5UTC": "2024-11-05T13:25:00", '
        b'"Minutes5DK": "2024-11-05T14:25:00", "PriceArea": "DK1"}]}',
    )
    with pytest.raises(IntensityUnavailable, match=r"unexpected payload: records\[0\]: record lacks 'CO2Emission'"):
        provider(eds).current("DK-DK1")


def test_error_envelope_instead_of_records(eds: FakeEDS) -> None:
    """A JSON object without 'records' is an unexpected payload listing the keys it has."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=b'{"error": "bad request"}')
    with pytest.raises(IntensityUnavailable, match=r"no 'records' key \(keys: \['error'\]\)"):
        provider(eds).current("DK-DK1")


def test_timeout(eds: FakeEDS) -> None:
    """A read timeout raised by the transport becomes IntensityUnavailable saying it timed out."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, raises=httpx.ReadTimeout)
    with pytest.raises(IntensityUnavailable, match=r"request timed out \(ReadTimeout") as info:
        provider(eds).current("DK-DK1")
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_connection_error(eds: FakeEDS) -> None:
    """A refused connection becomes IntensityUnavailable naming the error."""
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, raises=httpx.ConnectError)
    with pytest.raises(IntensityUnavailable, match=r"request failed \(ConnectError"):
        provider(eds).current("DK")


def test_429_bans_for_five_minutes_then_retries(eds: FakeEDS, caplog: pytest.LogCaptureFixture) -> None:
    """After a 429 (text body, no Retry-After) no request is made for 5 minutes; then it calls again."""
    clock = [NOW]
    dk = provider(eds, now=lambda: clock[0])
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, status=429, content=body("error_429.txt"))
    with caplog.at_level(logging.INFO, logger="carbonkit_intensity_dk.provider"):
        with pytest.raises(IntensityUnavailable) as info:
            dk.current("DK-DK1")
    assert "rate limited (HTTP 429 with a text body: 'Max allowed requests per 10 seconds" in str(info.value)
    assert "not calling again until 2024-11-05T13:32:30Z" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)
    assert dk.banned_until == NOW + timedelta(minutes=5)
    assert "rate limited" in caplog.text

    clock[0] = NOW + timedelta(minutes=4, seconds=59)
    with pytest.raises(IntensityUnavailable, match=r"rate limited .*until 2024-11-05T13:32:30Z"):
        dk.current("DK-DK2")
    with pytest.raises(IntensityUnavailable, match="rate limited"):
        dk.forecast("DK", clock[0], clock[0] + timedelta(hours=1))
    assert len(eds.requests) == 1  # nothing sent during the ban

    clock[0] = NOW + timedelta(minutes=5)
    eds.expect(
        "/dataset/CO2Emis",
        {"start": "2024-11-05T11:30", "end": "2024-11-05T13:35", "timezone": "UTC", "limit": "74"},
        content=body("co2emis_window.json"),
    )
    assert dk.current("DK-DK1").g_per_kwh == 147.0
    assert len(eds.requests) == 2
    assert dk.banned_until is None


def test_429_retry_after_header_sets_ban(eds: FakeEDS, caplog: pytest.LogCaptureFixture) -> None:
    """A Retry-After header (seconds) sets the ban length instead of the 5-minute default."""
    dk = provider(eds)
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, status=429, content=b"", headers={"Retry-After": "30"})
    with caplog.at_level(logging.INFO, logger="carbonkit_intensity_dk.provider"):
        with pytest.raises(IntensityUnavailable, match="until 2024-11-05T13:28:00Z"):
            dk.current("DK")
    assert dk.banned_until == NOW + timedelta(seconds=30)


def test_unknown_zone(eds: FakeEDS) -> None:
    """A zone outside DK raises UnknownZoneError listing the zones covered, with no request."""
    with pytest.raises(UnknownZoneError, match="covers zones DK, DK-DK1, DK-DK2, not 'SE-SE3'"):
        provider(eds).current("SE-SE3")
    assert eds.requests == []


def test_bad_base_url_is_rejected_at_construction(eds: FakeEDS) -> None:
    """A base URL without http(s) scheme is a ConfigError naming the value."""
    with pytest.raises(carbonkit.ConfigError, match=r"'ftp://example\.org'"):
        EnergiDataServiceProvider(client=eds.client(), base_url="ftp://example.org")


# -- hook ----------------------------------------------------------------------------------


def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("carbonkit")
    pm.add_hookspecs(carbonkit.hookspecs)
    pm.register(carbonkit_intensity_dk, name="intensity_dk")
    pm.check_pending()
    return pm


def test_hook_offers_provider_using_given_client_and_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook returns one provider for DK zones at priority 100 that calls CARBONKIT_DK_API_URL
    through the client it was given."""
    monkeypatch.setenv("CARBONKIT_DK_API_URL", "https://eds.example.test/")
    eds = FakeEDS(host="eds.example.test")
    results = plugin_manager().hook.register_intensity_providers(
        config=carbonkit.Config(location="DK-DK1"), http_client=eds.client()
    )
    (offered,) = [p for batch in results for p in batch]
    assert isinstance(offered, carbonkit.IntensityProvider)
    assert offered.name == "intensity_dk:energidataservice"
    assert offered.zones == frozenset({"DK-DK1", "DK-DK2", "DK"})
    assert offered.priority == 100
    assert offered.base_url == "https://eds.example.test"
    assert eds.requests == []  # the hook does not touch the network

    offered.now = lambda: NOW
    eds.expect("/dataset/CO2Emis", LIVE_PARAMS, content=body("co2emis_window.json"))
    assert offered.current("DK-DK1").g_per_kwh == 147.0


def test_hook_reads_options_before_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """config.options['intensity_dk.*'] wins over CARBONKIT_DK_* variables."""
    monkeypatch.setenv("CARBONKIT_DK_API_URL", "https://ignored.example.test")
    monkeypatch.setenv("CARBONKIT_DK_LIVE_DATASET", "CO2EmisV2")
    config = carbonkit.Config(options={"intensity_dk.api_url": "http://127.0.0.1:9/"})
    results = plugin_manager().hook.register_intensity_providers(config=config, http_client=FakeEDS().client())
    (offered,) = [p for batch in results for p in batch]
    assert offered.base_url == "http://127.0.0.1:9"
    assert offered.live_dataset == "CO2EmisV2"
    assert offered.forecast_dataset == "CO2EmisProg"


def test_hook_reports_bad_setting_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad CARBONKIT_DK_API_URL gives a warned Unavailable note naming the value, not an exception."""
    monkeypatch.setenv("CARBONKIT_DK_API_URL", "api.energidataservice.dk")
    results = plugin_manager().hook.register_intensity_providers(
        config=carbonkit.Config(), http_client=FakeEDS().client()
    )
    (note,) = [p for batch in results for p in batch]
    assert isinstance(note, carbonkit.Unavailable)
    assert note.plugin == "intensity_dk" and note.warn
    assert "'api.energidataservice.dk'" in note.reason
