"""The intensity_electricitymaps plugin against a local stand-in of the Electricity Maps API v3
(``tests/account_standins.py``: the real shapes, the help centre's 401 bodies, 403 for what is
outside the token's plan)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from account_standins import ElectricityMapsStandIn, em_value

import carbonkit
import carbonkit_intensity_electricitymaps as em
from carbonkit import IntensityUnavailable, Unavailable
from carbonkit.testing import FakePowerSource, RecordingReporter, assert_plugin_valid, tracker_for

TOKEN = ElectricityMapsStandIn.TOKEN


@pytest.fixture
def standin():
    with ElectricityMapsStandIn() as s:
        yield s


@pytest.fixture
def client():
    with httpx.Client(timeout=5.0) as c:
        yield c


def provider(standin: ElectricityMapsStandIn, client: httpx.Client, **kwargs: object) -> em.ElectricityMapsProvider:
    return em.ElectricityMapsProvider(client=client, token=TOKEN, base_url=f"{standin.url}/v3", **kwargs)  # type: ignore[arg-type]


def hour_now() -> datetime:
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


# -- latest ------------------------------------------------------------------------------------


def test_latest_is_a_live_hourly_sample_with_factors_and_estimation(standin, client):
    """current('DE'): the latest entry, an hour long (temporalGranularity), average signal,
    lifecycle factors, and the service's isEstimated/estimationMethod in the sample."""
    sample = provider(standin, client).current("DE")
    path, headers = standin.requests[-1]
    assert headers["auth-token"] == TOKEN
    assert path.startswith("/v3/carbon-intensity/latest?")
    assert "zone=DE" in path and "emissionFactorType=lifecycle" in path
    when = hour_now()
    if sample.time != when:  # the hour turned between the request and this line
        when = sample.time
    assert sample.g_per_kwh == em_value("DE", when) == 300 + 7 * when.hour
    assert (sample.kind, sample.signal, sample.period_s, sample.zone) == ("live", "average", 3600.0, "DE")
    assert sample.factors == "Electricity Maps lifecycle emission factors"
    assert sample.estimated is True
    assert sample.source == "Electricity Maps carbon-intensity/latest (DE, lifecycle factors, estimated: TIME_SLICER_AVERAGE)"


def test_direct_factors_are_asked_and_recorded(standin, client):
    """emission_factor_type='direct' is sent and named in the sample (the stand-in's direct values are 40 lower)."""
    sample = provider(standin, client, emission_factor_type="direct").current("DE")
    assert "emissionFactorType=direct" in standin.requests[-1][0]
    assert sample.g_per_kwh == em_value("DE", sample.time, "direct") == 300 + 7 * sample.time.hour - 40
    assert sample.factors == "Electricity Maps direct emission factors"


def test_parse_entry_of_a_captured_latest():
    """The latest body quoted in electricitymaps-contrib#7477, parsed field by field."""
    entry = em.parse_entry(
        {"zone": "BE", "carbonIntensity": 214, "datetime": "2024-11-28T15:00:00.000Z",
         "updatedAt": "2024-11-28T14:46:10.233Z", "createdAt": "2024-11-25T15:43:23.481Z",
         "emissionFactorType": "lifecycle", "isEstimated": True, "estimationMethod": "TIME_SLICER_AVERAGE"}
    )
    assert entry.time == datetime(2024, 11, 28, 15, tzinfo=timezone.utc)
    assert entry.g_per_kwh == 214.0 and entry.estimated is True and entry.estimation_method == "TIME_SLICER_AVERAGE"
    assert entry.updated_at == datetime(2024, 11, 28, 14, 46, 10, 233000, tzinfo=timezone.utc)
    assert entry.created_at == datetime(2024, 11, 25, 15, 43, 23, 481000, tzinfo=timezone.utc)
    assert entry.period_s is None and entry.factor_type == "lifecycle"


def test_estimated_is_derived_from_updated_at_when_the_entry_does_not_say():
    """Without isEstimated, a value updated before its period began was computed ahead of the data."""
    ahead = em.parse_entry({"carbonIntensity": 90, "datetime": "2024-03-06T19:00:00.000Z", "updatedAt": "2024-03-06T18:48:27.926Z"})
    after = em.parse_entry({"carbonIntensity": 90, "datetime": "2024-03-06T17:00:00.000Z", "updatedAt": "2024-03-06T18:48:27.926Z"})
    unknown = em.parse_entry({"carbonIntensity": 90, "datetime": "2024-03-06T17:00:00.000Z"})
    assert (ahead.estimated, after.estimated, unknown.estimated) == (True, False, None)


@pytest.mark.parametrize(
    "entry, problem",
    [
        ({"carbonIntensity": -3, "datetime": "2024-03-06T17:00:00.000Z"}, "carbonIntensity is not a number >= 0"),
        ({"carbonIntensity": "214", "datetime": "2024-03-06T17:00:00.000Z"}, "carbonIntensity is not a number >= 0"),
        ({"carbonIntensity": 214}, "no 'datetime'"),
        ({"carbonIntensity": 214, "datetime": "yesterday"}, "not an ISO 8601 time"),
        ({"carbonIntensity": 214, "datetime": "2024-03-06T17:00:00Z", "temporalGranularity": "fortnightly"}, "temporalGranularity"),
    ],
)
def test_bad_entries_are_refused_with_the_reason(entry, problem):
    with pytest.raises(ValueError, match=problem):
        em.parse_entry(entry)


# -- history, past-range, forecast ---------------------------------------------------------------


def test_history_of_the_last_day_is_hourly_with_estimates_marked(standin, client):
    """history() over the last 6 hours reads /history (no temporalGranularity: the period is the
    spacing, one hour) and keeps each entry's estimation flag."""
    end = hour_now() + timedelta(hours=1)
    samples = provider(standin, client).history("DE", end - timedelta(hours=6), end)
    assert [urlparse_path(p) for p, _ in standin.requests] == ["/v3/carbon-intensity/history"]
    assert [s.time for s in samples] == [end - timedelta(hours=6 - i) for i in range(6)]
    assert all(s.period_s == 3600.0 and s.kind == "live" for s in samples)
    assert [s.g_per_kwh for s in samples] == [em_value("DE", s.time) for s in samples]
    assert [s.estimated for s in samples] == [False] * 4 + [True, True]
    assert samples[0].source == "Electricity Maps carbon-intensity/history (DE, lifecycle factors)"


def test_older_history_reads_past_range_in_ten_day_windows(standin, client):
    """A window older than 24 hours is asked of /past-range, at most 10 days per request."""
    end = hour_now() - timedelta(days=2)
    start = end - timedelta(days=12)
    samples = provider(standin, client).history("FR", start, end)
    ranges = [p for p, _ in standin.requests]
    assert len(ranges) == 2 and all(p.startswith("/v3/carbon-intensity/past-range?") for p in ranges)
    assert len(samples) == 12 * 24
    assert samples[0].time == start and samples[-1].time == end - timedelta(hours=1)


def test_forecast_window_from_forecast_endpoint(standin, client):
    """forecast() returns the hourly forecast values overlapping the window, kind forecast."""
    start = datetime.now(timezone.utc)
    samples = provider(standin, client).forecast("DE", start, start + timedelta(hours=6))
    assert len(samples) == 7  # the current hour, partly past, and the six after it
    assert samples[0].time == hour_now() or samples[0].time == hour_now() - timedelta(hours=1)
    assert all(s.kind == "forecast" and s.period_s == 3600.0 and s.estimated is None for s in samples)
    assert [s.g_per_kwh for s in samples] == [em_value("DE", s.time) for s in samples]


# -- errors ---------------------------------------------------------------------------------------


def test_bad_token_is_explained_and_never_shown(client, caplog):
    """HTTP 401 with the help centre's body: the message says the token was rejected and how to
    get one; neither the message nor any log line nor the repr holds the token."""
    with ElectricityMapsStandIn() as s, caplog.at_level(logging.DEBUG):
        bad = em.ElectricityMapsProvider(client=client, token="wrong-token-0000", base_url=f"{s.url}/v3")
        with pytest.raises(IntensityUnavailable) as err:
            bad.current("DE")
    text = str(err.value)
    assert "the token was rejected" in text and "HTTP 401: Invalid auth-token" in text
    assert "portal.electricitymaps.com" in text
    for where in (text, caplog.text, repr(bad), repr(err.value.__cause__)):
        assert "wrong-token-0000" not in where


def test_forecast_outside_the_plan_says_what_the_free_tier_gives(client):
    """HTTP 403 'Access denied' for the forecast: the reason names the plan's limits."""
    with ElectricityMapsStandIn(forecast_in_plan=False) as s:
        p = em.ElectricityMapsProvider(client=client, token=TOKEN, base_url=f"{s.url}/v3")
        now = datetime.now(timezone.utc)
        with pytest.raises(IntensityUnavailable) as err:
            p.forecast("DE", now, now + timedelta(hours=3))
        assert p.current("DE").g_per_kwh > 0  # latest still is in the plan
    text = str(err.value)
    assert "the forecast for zone DE is not in this token's plan" in text
    assert "free tier gives one zone" in text and "HTTP 403 with a text body: 'Access denied'" in text


def test_zone_outside_the_plan(client):
    with ElectricityMapsStandIn(plan_zones=("FR",)) as s:
        p = em.ElectricityMapsProvider(client=client, token=TOKEN, base_url=f"{s.url}/v3")
        with pytest.raises(IntensityUnavailable, match="/latest for zone DE is not in this token's plan"):
            p.current("DE")


@pytest.mark.parametrize("status", [400, 404])
def test_unknown_zone(client, status):
    with ElectricityMapsStandIn(unknown_zone_status=status) as s:
        p = em.ElectricityMapsProvider(client=client, token=TOKEN, base_url=f"{s.url}/v3")
        with pytest.raises(IntensityUnavailable) as err:
            p.current("XX-NOPE")
    assert "XX-NOPE" in str(err.value) and "Zone 'XX-NOPE' does not exist." in str(err.value)


def test_world_is_refused_without_a_request(standin, client):
    with pytest.raises(IntensityUnavailable, match="no zone WORLD"):
        provider(standin, client).current("WORLD")
    assert standin.requests == []


def test_an_html_page_instead_of_json_goes_through_the_http_limits(client):
    with ElectricityMapsStandIn(html_200=True) as s:
        p = em.ElectricityMapsProvider(client=client, token=TOKEN, base_url=f"{s.url}/v3")
        with pytest.raises(IntensityUnavailable, match="HTTP 200 with an HTML body, not JSON"):
            p.current("DE")


def test_a_slow_server_is_cut_off_at_the_deadline(client):
    """A body trickling one byte every 2 s ends at the provider's deadline, with the helper's reason."""
    with ElectricityMapsStandIn(slow_byte_s=2.0) as s:
        p = em.ElectricityMapsProvider(client=client, token=TOKEN, base_url=f"{s.url}/v3", deadline_s=0.5)
        with pytest.raises(IntensityUnavailable, match="no complete answer within 0.5 s"):
            p.current("DE")
        assert s.slow_done.wait(30)


# -- the hook and its settings ----------------------------------------------------------------------


def test_without_a_token_the_plugin_says_how_to_get_one(client):
    (note,) = em.register_intensity_providers(config=carbonkit.Config(), http_client=client)
    assert isinstance(note, Unavailable)
    assert note.reason == "no CARBONKIT_ELECTRICITYMAPS_TOKEN set"
    assert "https://portal.electricitymaps.com/" in note.hint and not note.warn


def test_with_a_token_the_plugin_offers_a_valid_provider(monkeypatch, client):
    monkeypatch.setenv("CARBONKIT_ELECTRICITYMAPS_TOKEN", TOKEN)
    monkeypatch.setenv("CARBONKIT_ELECTRICITYMAPS_API_URL", "https://em.example.test/v3/")
    (p,) = em.register_intensity_providers(config=carbonkit.Config(), http_client=client)
    assert isinstance(p, em.ElectricityMapsProvider)
    assert (p.zones, p.priority, p.signal, p.base_url) == (frozenset({"*"}), 90, "average", "https://em.example.test/v3")
    assert TOKEN not in repr(p)
    assert_plugin_valid(em)


def test_a_bad_emission_factor_type_names_the_variable_and_what_is_accepted(monkeypatch, client):
    monkeypatch.setenv("CARBONKIT_ELECTRICITYMAPS_TOKEN", TOKEN)
    monkeypatch.setenv("CARBONKIT_ELECTRICITYMAPS_EMISSION_FACTOR_TYPE", "operational")
    (note,) = em.register_intensity_providers(config=carbonkit.Config(), http_client=client)
    assert isinstance(note, Unavailable) and note.warn
    assert "CARBONKIT_ELECTRICITYMAPS_EMISSION_FACTOR_TYPE='operational'" in note.reason
    assert "accepted: lifecycle, direct" in note.reason


def test_a_token_with_whitespace_is_refused_without_showing_it(monkeypatch, client):
    monkeypatch.setenv("CARBONKIT_ELECTRICITYMAPS_TOKEN", "abc def-secret")
    (note,) = em.register_intensity_providers(config=carbonkit.Config(), http_client=client)
    assert isinstance(note, Unavailable) and "whitespace" in note.reason and "def-secret" not in note.reason


def test_constructor_rejects_bad_arguments(client):
    with pytest.raises(carbonkit.ConfigError, match="emission_factor_type must be one of"):
        em.ElectricityMapsProvider(client=client, token=TOKEN, emission_factor_type="marginal")
    with pytest.raises(carbonkit.ConfigError, match="must start with http"):
        em.ElectricityMapsProvider(client=client, token=TOKEN, base_url="api.electricitymaps.com")


# -- end to end: the CLI and a tracker ----------------------------------------------------------------


def env_for(standin: ElectricityMapsStandIn) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env.update(CARBONKIT_ELECTRICITYMAPS_TOKEN=TOKEN, CARBONKIT_ELECTRICITYMAPS_API_URL=f"{standin.url}/v3")
    return env


@pytest.mark.entrypoints
def test_cli_intensity_json_uses_electricity_maps(standin):
    """`carbonkit intensity DE --forecast 6 --json`: the live value and the forecast from the stand-in."""
    proc = subprocess.run(
        [sys.executable, "-m", "carbonkit", "intensity", "DE", "--forecast", "6", "--json"],
        env=env_for(standin), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.splitlines()[-1])
    cur = data["current"]
    assert cur["provider"] == "intensity_electricitymaps:api" and data["fallback"] is False
    when = datetime.fromisoformat(cur["time"].replace("Z", "+00:00"))
    assert cur["g_per_kwh"] == em_value("DE", when)
    assert cur["signal"] == "average" and cur["estimated"] is True
    assert cur["factors"] == "Electricity Maps lifecycle emission factors"
    assert data["forecast"] and all(f["provider"] == "intensity_electricitymaps:api" for f in data["forecast"])
    assert TOKEN not in proc.stdout + proc.stderr


@pytest.mark.entrypoints
def test_cli_schedule_plans_on_the_electricity_maps_forecast(standin):
    """`carbonkit schedule --location DE --duration 2h --window 8h --json`: the plan is the
    cheapest two hours of the stand-in's hourly forecast (rising by 7 g every hour: start now)."""
    proc = subprocess.run(
        [sys.executable, "-m", "carbonkit", "schedule", "--location", "DE", "--duration", "2h", "--window", "8h", "--json"],
        env=env_for(standin), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout.splitlines()[-1])
    assert plan["provider"] == "intensity_electricitymaps:api"
    start = datetime.fromisoformat(plan["start"].replace("Z", "+00:00"))
    # The values rise by 7 g an hour and fall back to 300 at midnight: the cheapest two hours start now,
    # or reach past midnight when the window does (an afternoon run can start at 22:xx or 23:xx).
    reaches_midnight = start.hour == 0 or (start + timedelta(hours=2)).date() > start.date()
    assert start.hour == datetime.now(timezone.utc).hour or reaches_midnight
    assert any("/v3/carbon-intensity/forecast" in p for p, _ in standin.requests)


def urlparse_path(path: str) -> str:
    return path.split("?", 1)[0]


def test_a_tracker_built_from_the_plugin_prices_its_run_at_the_latest_value(monkeypatch, standin, client):
    """tracker_for(the plugin) with the token set: the provider comes from the hook, the report
    is priced at the stand-in's value for the hour and names the provider and its factors."""
    monkeypatch.setenv("CARBONKIT_ELECTRICITYMAPS_TOKEN", TOKEN)
    monkeypatch.setenv("CARBONKIT_ELECTRICITYMAPS_API_URL", f"{standin.url}/v3")
    waiter = IntensityWaiter("intensity_electricitymaps:api")
    with tracker_for(em, http_client=client, sources=[FakePowerSource(watts=[100.0])], reporters=[waiter],
                     location="FR", interval_s=0.05) as t:
        assert waiter.got.wait(30)
    report = t.report
    (used,) = [u for u in report.intensity.used if u.provider == "intensity_electricitymaps:api"]
    (sample,) = [x for x in waiter.samples if x.kind == "live"]  # the forecast's samples come too
    assert sample.g_per_kwh == em_value("FR", sample.time) and sample.factors.startswith("Electricity Maps lifecycle")
    assert report.intensity_g_per_kwh == pytest.approx(sample.g_per_kwh)
    assert "lifecycle factors" in used.source


class IntensityWaiter(RecordingReporter):
    """Sets ``got`` once the tracker has taken in a sample of ``provider``."""

    def __init__(self, provider: str) -> None:
        super().__init__()
        self.provider = provider
        self.got = threading.Event()
        self.samples: list[carbonkit.IntensitySample] = []

    def on_provider_sample(self, sample, provider) -> None:
        if provider == self.provider:
            self.samples.append(sample)
            self.got.set()
