"""Tests of the intensity_gb plugin against a faithful fake of the NESO Carbon Intensity API.

The fake is an ``httpx.MockTransport`` whose handler checks each request's method, host, exact
path and (empty) query before answering with a body from ``fixtures/intensity_gb/``, written
in the documented shapes: the national envelope, the three regional envelopes, the error JSON,
``{}`` and HTML error pages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pluggy
import pytest

import carbonkit
import carbonkit.hookspecs
import carbonkit_intensity_gb
from carbonkit import ConfigError, IntensitySample, IntensityUnavailable, UnknownZoneError
from carbonkit_intensity_gb import CarbonIntensityGBProvider, outward_code, parse_regional

FIXTURES = Path(__file__).parent / "fixtures" / "intensity_gb"
NOW = datetime(2024, 11, 5, 13, 10, tzinfo=timezone.utc)
T = datetime(2024, 11, 5, tzinfo=timezone.utc)


def at(hour: int, minute: int = 0) -> datetime:
    return T.replace(hour=hour, minute=minute)


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakeAPI:
    """Answers queued responses in order; asserts every request is the one expected."""

    def __init__(self, host: str = "api.carbonintensity.org.uk") -> None:
        self.host = host
        self.queue: list[tuple[str, Callable[[httpx.Request], httpx.Response]]] = []
        self.requests: list[httpx.Request] = []

    def expect(
        self,
        path: str,
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

        self.queue.append((path, respond))

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.queue, f"unexpected request: {request.url}"
        path, respond = self.queue.pop(0)
        assert request.method == "GET"
        assert request.url.scheme == "https" and request.url.host == self.host
        assert request.url.raw_path == path.encode()
        assert request.url.query == b""
        return respond(request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler), timeout=5.0)


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


def provider(api: FakeAPI, now: Callable[[], datetime] = lambda: NOW, **kwargs: object) -> CarbonIntensityGBProvider:
    return CarbonIntensityGBProvider(client=api.client(), now=now, **kwargs)  # type: ignore[arg-type]


# -- national ------------------------------------------------------------------------------


def test_national_live_uses_actual(api: FakeAPI) -> None:
    """/intensity with an actual gives a live sample of the latest completed half hour."""
    api.expect("/intensity", content=body("intensity.json"))
    assert provider(api).current("GB") == IntensitySample(
        time=at(12, 30),
        g_per_kwh=176.0,
        zone="GB",
        source="Carbon Intensity API (NESO), national, actual",
        kind="live",
        period_s=1800.0,
    )


def test_national_current_without_actual_is_forecast(api: FakeAPI) -> None:
    """When the current slot has only a forecast, that value is used and labelled forecast."""
    api.expect("/intensity", content=body("intensity_no_actual.json"))
    sample = provider(api).current("gb")
    assert (sample.time, sample.g_per_kwh, sample.kind) == (at(13), 185.0, "forecast")
    assert sample.source == "Carbon Intensity API (NESO), national, forecast (no actual yet)"


def test_national_forecast_window(api: FakeAPI) -> None:
    """fw48h is asked from the start slot + 1 minute; slots overlapping the window come back,
    the completed one with its actual (live), the others forecast."""
    api.expect("/intensity/2024-11-05T12:31Z/fw48h", content=body("intensity_fw48h.json"))
    samples = provider(api).forecast("GB", at(12, 40), at(14, 0))
    assert [(s.time, s.g_per_kwh, s.kind) for s in samples] == [
        (at(12, 30), 176.0, "live"),
        (at(13, 0), 185.0, "forecast"),
        (at(13, 30), 191.0, "forecast"),
    ]
    assert {s.period_s for s in samples} == {1800.0}


def test_national_horizon_shorter_than_asked(api: FakeAPI, caplog: pytest.LogCaptureFixture) -> None:
    """A forecast ending early (23:30) gives the slots there are, de-duplicated, and logs it."""
    api.expect("/intensity/2024-11-05T13:01Z/fw48h", content=body("intensity_fw48h_short.json"))
    with caplog.at_level(logging.INFO, logger="carbonkit_intensity_gb.provider"):
        samples = provider(api).forecast("GB", at(13, 0), at(13) + timedelta(hours=24))
    times = [s.time for s in samples]
    assert len(times) == 21 == len(set(times))  # 13:00 .. 23:00, the repeated slot once
    assert times[0] == at(13) and times[-1] == at(23)
    assert "ends at 2024-11-05T23:30Z, before the requested 2024-11-06T13:00Z" in caplog.text


def test_stale_current_slot_is_refused(api: FakeAPI) -> None:
    """A newest slot that ended more than max_age ago (outage) is not passed off as current."""
    api.expect("/intensity", content=body("intensity.json"))
    with pytest.raises(IntensityUnavailable, match="newest slot ended at 2024-11-05T13:00Z, more than 2 h"):
        provider(api, now=lambda: at(15, 30)).current("GB")


def test_date_without_data(api: FakeAPI) -> None:
    """{"data": []} is no data: IntensityUnavailable."""
    api.expect("/intensity", content=body("no_data.json"))
    with pytest.raises(IntensityUnavailable, match=r"/intensity: no intensity in the response"):
        provider(api).current("GB")


# -- regional ------------------------------------------------------------------------------


def test_regional_postcode_current_envelope_2(api: FakeAPI) -> None:
    """/regional/postcode/{pc} (a one-element list holding the region) gives its forecast value."""
    api.expect("/regional/postcode/RG10", content=body("regional_postcode_RG10.json"))
    gb = provider(api, postcode="RG10")
    sample = gb.current("GB")
    assert (sample.time, sample.g_per_kwh, sample.kind, sample.zone) == (at(13), 176.0, "forecast", "GB")
    assert sample.source == (
        "Carbon Intensity API (NESO), regional, South England (region 12, postcode RG10), forecast"
    )
    assert gb.name == "intensity_gb:regional" and gb.priority == 101


def test_full_postcode_sends_outward_code_only(api: FakeAPI) -> None:
    """A full postcode, in any case and spacing, is cut to its outward code before sending."""
    api.expect("/regional/postcode/RG10", content=body("regional_postcode_RG10.json"))
    assert provider(api, postcode=" rg10  9xx ").current("GB").g_per_kwh == 176.0


def test_regional_postcode_forecast_envelope_3(api: FakeAPI) -> None:
    """The postcode forecast (data is one object with an inner data list) gives forecast slots."""
    api.expect(
        "/regional/intensity/2024-11-05T13:01Z/fw48h/postcode/RG10",
        content=body("regional_intensity_fw48h_postcode_RG10.json"),
    )
    samples = provider(api, postcode="RG10").forecast("GB", at(13, 10), at(14, 30))
    assert [(s.time, s.g_per_kwh) for s in samples] == [(at(13), 176.0), (at(13, 30), 178.0), (at(14), 180.0)]
    assert {s.kind for s in samples} == {"forecast"}
    assert samples[0].source.endswith("South England (region 12, postcode RG10), forecast")


def test_region_id_current_and_forecast(api: FakeAPI) -> None:
    """A region id selects /regional/regionid/{id} and its forecast; it wins over a postcode."""
    gb = provider(api, region_id=13, postcode="RG10")
    api.expect("/regional/regionid/13", content=body("regional_regionid_13.json"))
    sample = gb.current("GB")
    assert sample.g_per_kwh == 172.0
    assert sample.source == "Carbon Intensity API (NESO), regional, London (region 13), forecast"
    api.expect(
        "/regional/intensity/2024-11-05T13:01Z/fw48h/regionid/13",
        content=body("regional_intensity_fw48h_regionid_13.json"),
    )
    samples = gb.forecast("GB", at(13), at(13) + timedelta(hours=48))
    assert len(samples) == 96
    assert samples[0].time == at(13) and samples[-1].time == at(12, 30) + timedelta(days=2)


def test_envelope_1_all_regions_picks_region_id() -> None:
    """The all-regions envelope (periods each listing 18 regions) yields the chosen region's slots."""
    payload = json.loads(body("regional_intensity_fw_all_regions.json"))
    series = parse_regional(payload, region_id=12)
    assert (series.region_id, series.shortname, series.postcode) == (12, "South England", None)
    assert [(p.start, p.forecast, p.actual) for p in series.periods] == [
        (at(13), 176.0, None),
        (at(13, 30), 181.0, None),
    ]
    with pytest.raises(ValueError, match="lists every region, and no region id"):
        parse_regional(payload)


def test_envelope_1_served_to_region_id_provider(api: FakeAPI) -> None:
    """If the API answers a region-id request with the all-regions envelope, the region is still found."""
    api.expect("/regional/regionid/12", content=body("regional_intensity_fw_all_regions.json"))
    sample = provider(api, region_id=12).current("GB")
    assert (sample.time, sample.g_per_kwh) == (at(13), 176.0)


def test_envelope_1_served_to_postcode_provider(api: FakeAPI) -> None:
    """With only a postcode, the all-regions envelope cannot be resolved: a clear error."""
    api.expect("/regional/postcode/RG10", content=body("regional_intensity_fw_all_regions.json"))
    with pytest.raises(IntensityUnavailable, match="unexpected payload: the response lists every region"):
        provider(api, postcode="RG10").current("GB")


def test_unknown_postcode_error_json(api: FakeAPI) -> None:
    """The API's 400 error JSON is reported with its code and message."""
    api.expect("/regional/postcode/W7", status=400, content=body("error_400_postcode.json"))
    with pytest.raises(IntensityUnavailable) as info:
        provider(api, postcode="W7").current("GB")
    assert str(info.value) == (
        "Carbon Intensity API /regional/postcode/W7: HTTP 400: 400 Bad Request: No postcode match can be found."
    )
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)


def test_empty_object_body(api: FakeAPI) -> None:
    """HTTP 200 with {} (unknown postcode, beyond the horizon, outage) raises saying so."""
    api.expect("/regional/intensity/2024-11-05T13:01Z/fw48h/postcode/ZE3", content=body("empty_object.json"))
    with pytest.raises(IntensityUnavailable, match=r"empty response \{\} \(the API answers so for an unknown postcode"):
        provider(api, postcode="ZE3").forecast("GB", at(13), at(14))


def test_invalid_postcode_rejected_at_construction(api: FakeAPI) -> None:
    """A value that is not a UK postcode is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="postcode '12345' is not a UK postcode"):
        provider(api, postcode="12345")
    with pytest.raises(ConfigError, match=r"from 1 to 17.*got 18"):
        provider(api, region_id=18)
    examples = ("SW1A 1AA", "sw1a1aa", "W7", "EC1A", "M1 1AE")
    assert [outward_code(p) for p in examples] == ["SW1A", "SW1A", "W7", "EC1A", "M1"]


# -- failures ------------------------------------------------------------------------------


def test_http_500_error_json(api: FakeAPI) -> None:
    """A 500 with the API's error JSON gives its message."""
    api.expect("/intensity", status=500, content=body("error_500.json"))
    expected = r"HTTP 500: 500 Internal Server Error: Requested resource not found\."
    with pytest.raises(IntensityUnavailable, match=expected):
        provider(api).current("GB")


def test_http_502_html_body(api: FakeAPI) -> None:
    """An HTML error page is reported by status and its first bytes."""
    api.expect("/intensity", status=502, content=body("error_502.html"))
    with pytest.raises(IntensityUnavailable, match=r"HTTP 502 with an HTML body: '<html>\\r\\n<head><title>502 Bad Gateway"):
        provider(api).current("GB")


def test_empty_body(api: FakeAPI) -> None:
    """A 200 with no body at all is reported as such."""
    api.expect("/intensity", content=b"")
    with pytest.raises(IntensityUnavailable, match="/intensity: HTTP 200 with an empty body"):
        provider(api).current("GB")


def test_malformed_json(api: FakeAPI) -> None:
    """A truncated body is not JSON: the message quotes its start; the cause is the decode error."""
    api.expect("/intensity", content=body("intensity.json")[:40])
    with pytest.raises(IntensityUnavailable, match=r"body is not JSON .*'\{\\n  \"data\": \[") as info:
        provider(api).current("GB")
    assert isinstance(info.value.__cause__, ValueError)


def test_missing_intensity_key(api: FakeAPI) -> None:
    """A period without 'intensity' is an unexpected payload naming the key."""
    api.expect("/intensity", content=b'{"data":[{"from":"2024-11-05T12:30Z","to":"2024-11-05T13:00Z"}]}')
    with pytest.raises(IntensityUnavailable, match=r"unexpected payload: data\[0\]: period lacks 'intensity'"):
        provider(api).current("GB")


def test_timeout(api: FakeAPI) -> None:
    """A read timeout raised by the transport becomes IntensityUnavailable saying it timed out."""
    api.expect("/intensity/2024-11-05T13:01Z/fw48h", raises=httpx.ReadTimeout)
    with pytest.raises(IntensityUnavailable, match=r"request timed out \(ReadTimeout") as info:
        provider(api).forecast("GB", at(13), at(14))
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_429_backs_off(api: FakeAPI, caplog: pytest.LogCaptureFixture) -> None:
    """A 429 stops requests until Retry-After has passed."""
    clock = [NOW]
    gb = provider(api, now=lambda: clock[0])
    api.expect("/intensity", status=429, content=b"Too Many Requests", headers={"Retry-After": "120"})
    with caplog.at_level(logging.INFO, logger="carbonkit_intensity_gb.provider"):
        with pytest.raises(IntensityUnavailable, match=r"HTTP 429 with a text body: 'Too Many Requests'.*until 2024-11-05T13:12:00Z"):
            gb.current("GB")
    clock[0] = NOW + timedelta(seconds=119)
    with pytest.raises(IntensityUnavailable, match="rate limited"):
        gb.current("GB")
    assert len(api.requests) == 1
    clock[0] = NOW + timedelta(seconds=120)
    api.expect("/intensity", content=body("intensity.json"))
    assert gb.current("GB").g_per_kwh == 176.0


def test_request_bounds_and_backoff_come_from_the_core(api: FakeAPI) -> None:
    """Requests go through carbonkit.http: its Backoff, and max_bytes refusing a large body."""
    import carbonkit.http

    assert carbonkit_intensity_gb.Backoff is carbonkit.http.Backoff
    api.expect("/intensity/2024-11-05T13:01Z/fw48h", content=body("regional_intensity_fw48h_regionid_13.json"))
    with pytest.raises(IntensityUnavailable, match=r"^Carbon Intensity API /intensity/2024-11-05T13:01Z/fw48h: body over the limit of 4 KiB"):
        provider(api, max_bytes=4096).forecast("GB", at(13), at(14))
    with pytest.raises(ConfigError, match="max_bytes must be a whole number of bytes >= 1024, got 10"):
        provider(api, max_bytes=10)


def test_unknown_zone(api: FakeAPI) -> None:
    """A zone other than GB raises UnknownZoneError without a request."""
    with pytest.raises(UnknownZoneError, match="covers zone GB only, not 'GB-NIR'"):
        provider(api).current("GB-NIR")
    assert api.requests == []


# -- hook ----------------------------------------------------------------------------------


def offered(config: carbonkit.Config, client: httpx.Client) -> list[object]:
    pm = pluggy.PluginManager("carbonkit")
    pm.add_hookspecs(carbonkit.hookspecs)
    pm.register(carbonkit_intensity_gb, name="intensity_gb")
    pm.check_pending()
    results = pm.hook.register_intensity_providers(config=config, http_client=client)
    return [p for batch in results for p in batch]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in ("CARBONKIT_POSTCODE", "CARBONKIT_GB_REGION_ID", "CARBONKIT_GB_API_URL"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_hook_national_only_by_default(clean_env: pytest.MonkeyPatch, api: FakeAPI) -> None:
    """Without a region the hook offers the national provider (GB, priority 100), using the given client."""
    (national,) = offered(carbonkit.Config(location="GB"), api.client())
    assert isinstance(national, carbonkit.IntensityProvider)
    assert (national.name, national.zones, national.priority) == ("intensity_gb:national", frozenset({"GB"}), 100)
    assert api.requests == []
    national.now = lambda: NOW
    api.expect("/intensity", content=body("intensity.json"))
    assert national.current("GB").kind == "live"


def test_hook_postcode_adds_regional(clean_env: pytest.MonkeyPatch) -> None:
    """config.postcode adds the regional provider, ranked above the national one."""
    regional, national = offered(carbonkit.Config(postcode="RG10 9XX"), FakeAPI().client())
    assert (regional.name, regional.priority, regional.postcode) == ("intensity_gb:regional", 101, "RG10")
    assert national.name == "intensity_gb:national"


def test_hook_region_id_from_option_and_env(clean_env: pytest.MonkeyPatch) -> None:
    """The region id comes from options['intensity_gb.region_id'], else CARBONKIT_GB_REGION_ID."""
    regional, _ = offered(carbonkit.Config(options={"intensity_gb.region_id": 13}), FakeAPI().client())
    assert regional.region_id == 13
    clean_env.setenv("CARBONKIT_GB_REGION_ID", "7")
    clean_env.setenv("CARBONKIT_POSTCODE", "RG10")
    regional, _ = offered(carbonkit.Config(), FakeAPI().client())
    assert (regional.region_id, regional.postcode, regional.selector) == (7, None, ("regionid", "7"))


def test_hook_uses_env_base_url(clean_env: pytest.MonkeyPatch) -> None:
    """CARBONKIT_GB_API_URL points every request elsewhere."""
    clean_env.setenv("CARBONKIT_GB_API_URL", "https://ci.example.test/")
    fake = FakeAPI(host="ci.example.test")
    (national,) = offered(carbonkit.Config(), fake.client())
    national.now = lambda: NOW
    fake.expect("/intensity", content=body("intensity.json"))
    assert national.current("GB").g_per_kwh == 176.0


def test_hook_bad_region_gives_note_and_national(clean_env: pytest.MonkeyPatch) -> None:
    """A bad region id gives a warned Unavailable note naming it, and still the national provider."""
    clean_env.setenv("CARBONKIT_GB_REGION_ID", "London")
    note, national = offered(carbonkit.Config(), FakeAPI().client())
    assert isinstance(note, carbonkit.Unavailable) and note.warn
    assert "CARBONKIT_GB_REGION_ID='London'" in note.reason
    assert national.name == "intensity_gb:national"


def test_hook_providers_share_rate_limit(clean_env: pytest.MonkeyPatch) -> None:
    """A 429 on the regional provider also pauses the national one: same API, same limit."""
    fake = FakeAPI()
    regional, national = offered(carbonkit.Config(postcode="RG10"), fake.client())
    regional.now = national.now = lambda: NOW
    fake.expect("/regional/postcode/RG10", status=429, content=b"")
    with pytest.raises(IntensityUnavailable, match="HTTP 429"):
        regional.current("GB")
    expected = r"rate limited \(HTTP 429 with an empty body\); not calling again until 2024-11-05T13:15:00Z"
    with pytest.raises(IntensityUnavailable, match=expected):
        national.current("GB")
    assert len(fake.requests) == 1
