"""The intensity_watttime plugin against a local stand-in of the WattTime API v3
(``tests/account_standins.py``: Basic-auth login, bearer tokens, nginx's 403 page, 403
"Invalid scope" for a region outside the plan, the v3 envelope in lbs CO2/MWh)."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from account_standins import WattTimeStandIn, wt_value

import carbonkit
import carbonkit_intensity_watttime as wt
from carbonkit import IntensityUnavailable, Unavailable, UnknownZoneError
from carbonkit.testing import FakePowerSource, RecordingReporter, assert_plugin_valid

USER, PASSWORD = WattTimeStandIn.USERNAME, WattTimeStandIn.PASSWORD


@pytest.fixture
def client():
    with httpx.Client(timeout=5.0) as c:
        yield c


class Clock:
    """A monotonic clock the test moves by hand (the token's age)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def provider(standin: WattTimeStandIn, client: httpx.Client, **kwargs: object) -> wt.WattTimeProvider:
    return wt.WattTimeProvider(client=client, username=USER, password=PASSWORD, base_url=standin.url, **kwargs)  # type: ignore[arg-type]


def floor5(t: datetime) -> datetime:
    return t.replace(minute=t.minute - t.minute % 5, second=0, microsecond=0)


# -- the unit ---------------------------------------------------------------------------------------


def test_lbs_per_mwh_to_g_per_kwh_by_hand():
    """1 lb = 453.59237 g and 1 MWh = 1000 kWh: 1000 lbs/MWh is 453.59237 g/kWh, 900 is 408.233133."""
    assert wt.lbs_per_mwh_to_g_per_kwh(1000.0) == pytest.approx(453.59237, abs=1e-9)
    assert wt.lbs_per_mwh_to_g_per_kwh(900.0) == pytest.approx(408.233133, abs=1e-6)
    assert wt.G_PER_KWH_PER_LBS_PER_MWH == 453.59237 / 1000


# -- login, token, current ------------------------------------------------------------------------------


def test_current_logs_in_and_converts_the_real_time_point(client):
    """current(): /login with Basic auth, then /v3/forecast (one hour ahead) with the bearer token; the
    first point, 900 lbs/MWh, is 408.233133 g/kWh, a live marginal 5-minute sample."""
    with WattTimeStandIn(fixed_value=900.0) as s:
        sample = provider(s, client).current("US-CAL-CISO")
    (login_path, login_headers), (path, headers) = s.requests
    assert login_path == "/login"
    assert login_headers["authorization"] == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert path.startswith("/v3/forecast?") and "region=CAISO_NORTH" in path and "signal_type=co2_moer" in path
    assert "horizon_hours=1" in path
    assert headers["authorization"] == "Bearer eyJhbGciOiJSUzI1NiJ9.wt-token-0001.sig"
    assert sample.g_per_kwh == pytest.approx(408.233133, abs=1e-6)
    assert (sample.signal, sample.kind, sample.period_s, sample.zone) == ("marginal", "live", 300.0, "US-CAL-CISO")
    assert sample.time == floor5(sample.time)
    assert sample.source == (
        "WattTime co2_moer /v3/forecast real-time point (CAISO_NORTH, representative sub-region of US-CAL-CISO, "
        "model 2023-03-01; lbs/MWh x 0.45359237)"
    )


def test_the_token_is_reused_then_renewed_before_it_expires(client):
    """One login serves calls for 25 minutes; after that the token is renewed before use."""
    clock = Clock()
    with WattTimeStandIn() as s:
        p = provider(s, client, monotonic=clock)
        p.current("US-CAL-CISO")
        clock.t += 24 * 60
        p.current("US-CAL-CISO")
        assert s.paths().count("/login") == 1
        clock.t += 2 * 60  # 26 minutes old: renewed before the 30-minute expiry
        p.current("US-CAL-CISO")
    assert s.paths() == ["/login", "/v3/forecast", "/v3/forecast", "/login", "/v3/forecast"]
    assert s.requests[-1][1]["authorization"].endswith("wt-token-0002.sig")


@pytest.mark.parametrize("expired_status", [401, 403])
def test_an_expired_token_is_renewed_once_and_the_request_sent_again(client, expired_status):
    """The server drops the token early (401, or nginx's 403 page): one new login, one retry, a value."""
    with WattTimeStandIn(expired_status=expired_status) as s:
        p = provider(s, client)
        p.current("US-CAL-CISO")
        s.expire_tokens()
        sample = p.current("US-CAL-CISO")
    assert s.paths() == ["/login", "/v3/forecast", "/v3/forecast", "/login", "/v3/forecast"]
    assert sample.g_per_kwh == pytest.approx(wt_value(sample.time) * 0.45359237)


def test_a_token_refused_again_after_a_new_login_is_an_error_not_a_loop(client, caplog):
    """A server refusing every token: exactly two logins and two requests, then a clear error."""
    with WattTimeStandIn(always_expire=True) as s, caplog.at_level(logging.DEBUG):
        p = provider(s, client)
        with pytest.raises(IntensityUnavailable) as err:
            p.current("US-CAL-CISO")
    assert s.paths() == ["/login", "/v3/forecast", "/login", "/v3/forecast"]
    assert "refused again right after a new login (HTTP 401)" in str(err.value)
    for where in (str(err.value), caplog.text, repr(p)):
        assert PASSWORD not in where and "wt-token-" not in where


def test_bad_credentials_say_so_without_the_password(client, caplog):
    """/login answers nginx's 403 page for a wrong password: the message names the username and the
    variables to check; the password and its Basic encoding appear nowhere."""
    encoded = base64.b64encode(f"{USER}:wrong-Pa55word".encode()).decode()
    with WattTimeStandIn() as s, caplog.at_level(logging.DEBUG):
        p = wt.WattTimeProvider(client=client, username=USER, password="wrong-Pa55word", base_url=s.url)
        with pytest.raises(IntensityUnavailable) as err:
            p.current("US-CAL-CISO")
    text = str(err.value)
    assert f"the username '{USER}' or its password was rejected" in text
    assert "CARBONKIT_WATTTIME_PASSWORD" in text and "HTTP 403 with an HTML body" in text
    assert s.paths() == ["/login"]
    for where in (text, caplog.text, repr(p), repr(err.value.__cause__)):
        assert "wrong-Pa55word" not in where and encoded not in where


# -- the plan, units, regions -----------------------------------------------------------------------------


def test_a_region_outside_the_plan_is_a_clear_fallback_reason(client):
    """PSCO with the free plan: 403 Invalid scope, explained (CAISO_NORTH only; the index elsewhere)."""
    with WattTimeStandIn() as s:
        with pytest.raises(IntensityUnavailable) as err:
            provider(s, client).current("US-NW-PSCO")
    text = str(err.value)
    assert "/v3/forecast for region PSCO is not in this account's plan" in text
    assert "CAISO_NORTH only" in text and "signal-index, a percentile" in text
    assert "HTTP 403: Invalid query parameters" in text
    assert s.paths() == ["/login", "/v3/forecast"]  # a plan refusal is not a token problem: no new login


@pytest.mark.parametrize(
    "units, reason",
    [
        ("percentile", "signal-index values (0 to 100), not emission rates"),
        ("kg_co2_per_mwh", "meta.units is 'kg_co2_per_mwh', not 'lbs_co2_per_mwh'"),
    ],
)
def test_an_unexpected_unit_is_refused(client, units, reason):
    with WattTimeStandIn(units=units) as s:
        with pytest.raises(IntensityUnavailable, match=re.escape(reason)):
            provider(s, client).current("US-CAL-CISO")


def test_parse_series_of_the_migration_guide_example():
    """The v3 forecast example of WattTime's migration guide: 1048.4131919701972 lbs/MWh is
    475.552224 g/kWh (x 0.45359237), 5-minute points, the model date kept."""
    series = wt.parse_series(
        {"data": [{"point_time": "2022-07-15T00:00:00+00:00", "value": 1048.4131919701972},
                  {"point_time": "2022-07-15T00:05:00+00:00", "value": 1051.0880801214637}],
         "meta": {"data_point_period_seconds": 300, "region": "CAISO_NORTH",
                  "warnings": [{"type": "EXAMPLE_WARNING", "message": "This is just an example"}],
                  "signal_type": "co2_moer", "model": {"date": "2023-03-01"}, "units": "lbs_co2_per_mwh",
                  "generated_at_period_seconds": 300, "generated_at": "2022-07-15T00:00:00+00:00"}},
        expect_region="CAISO_NORTH",
    )
    assert [p.g_per_kwh for p in series.points] == pytest.approx([475.552224, 476.765533], abs=1e-6)
    assert series.period_s == 300.0 and series.model == "2023-03-01"
    assert series.generated_at == datetime(2022, 7, 15, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="meta.region is 'CAISO_NORTH', not the 'PSCO' asked"):
        wt.parse_series({"data": [], "meta": {"units": "lbs_co2_per_mwh", "region": "CAISO_NORTH"}}, expect_region="PSCO")


def test_coordinates_are_resolved_to_a_region_once(client):
    """With coordinates, /v3/region-from-loc names the region (once per provider)."""
    with WattTimeStandIn(plan_regions=("PSCO",)) as s:
        p = provider(s, client, coordinates=(39.74, -104.99), extra_zones={"US-NW-PSCO"})
        first = p.current("US-NW-PSCO")
        p.current("US-NW-PSCO")
    assert s.paths() == ["/login", "/v3/region-from-loc", "/v3/forecast", "/v3/forecast"]
    assert "latitude=39.74" in s.requests[1][0] and "longitude=-104.99" in s.requests[1][0]
    assert "region=PSCO" in s.requests[2][0]
    assert "(PSCO, from coordinates 39.74, -104.99, model 2023-03-01;" in first.source


def test_coordinates_without_coverage(client):
    with WattTimeStandIn() as s:
        p = provider(s, client, coordinates=(0.0, 0.0), extra_zones={"XX"})
        with pytest.raises(IntensityUnavailable, match="no region covers the coordinates"):
            p.current("XX")


def test_a_region_override_serves_the_run_zone(client):
    with WattTimeStandIn() as s:
        p = provider(s, client, region="CAISO_NORTH", extra_zones={"US-CAL-BANC"})
        sample = p.current("US-CAL-BANC")
    assert sample.zone == "US-CAL-BANC" and "(CAISO_NORTH, from CARBONKIT_WATTTIME_REGION," in sample.source
    assert "region=CAISO_NORTH" in s.requests[-1][0]


def test_a_zone_without_a_region_is_unknown_without_a_request(client):
    with WattTimeStandIn() as s:
        with pytest.raises(UnknownZoneError, match="no WattTime region for zone 'DE'"):
            provider(s, client).current("DE")
    assert s.requests == []


# -- forecast and history ---------------------------------------------------------------------------------


def test_forecast_covers_the_window_in_five_minute_points(client):
    start = datetime.now(timezone.utc)
    with WattTimeStandIn() as s:
        samples = provider(s, client).forecast("US-CAL-CISO", start, start + timedelta(hours=2))
    assert "horizon_hours=3" in s.requests[-1][0] or "horizon_hours=2" in s.requests[-1][0]
    assert samples[0].time <= start < samples[0].time + timedelta(minutes=5)
    assert samples[-1].time + timedelta(minutes=5) >= start + timedelta(hours=2) - timedelta(minutes=5)
    assert all(s_.kind == "forecast" and s_.signal == "marginal" for s_ in samples)
    assert [s_.g_per_kwh for s_ in samples] == pytest.approx([wt_value(s_.time) * 0.45359237 for s_ in samples])


def test_history_from_historical(client):
    end = floor5(datetime.now(timezone.utc)) - timedelta(hours=1)
    start = end - timedelta(hours=1)
    with WattTimeStandIn() as s:
        samples = provider(s, client).history("US-CAL-CISO", start, end)
    path = s.requests[-1][0]
    assert path.startswith("/v3/historical?") and "start=" in path and "end=" in path
    assert [x.time for x in samples] == [start + timedelta(minutes=5 * i) for i in range(12)]
    assert all(x.kind == "live" and x.period_s == 300.0 for x in samples)


# -- the hook --------------------------------------------------------------------------------------------


def test_without_an_account_the_plugin_says_how_to_get_one(client):
    (note,) = wt.register_intensity_providers(config=carbonkit.Config(), http_client=client)
    assert isinstance(note, Unavailable) and not note.warn
    assert "CARBONKIT_WATTTIME_USERNAME" in note.reason and "register" in note.hint and "CAISO_NORTH" in note.hint


def test_with_an_account_the_plugin_offers_the_marginal_provider(monkeypatch, client):
    monkeypatch.setenv("CARBONKIT_WATTTIME_USERNAME", USER)
    monkeypatch.setenv("CARBONKIT_WATTTIME_PASSWORD", PASSWORD)
    (p,) = wt.register_intensity_providers(config=carbonkit.Config(), http_client=client)
    assert isinstance(p, wt.WattTimeProvider)
    assert (p.signal, p.priority, p.base_url) == ("marginal", 90, "https://api.watttime.org")
    assert {"US-CAL-CISO", "US-TEX-ERCO", "US-MIDA-PJM", "US-MIDW-MISO"} <= p.zones
    assert PASSWORD not in repr(p)
    assert_plugin_valid(wt)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CARBONKIT_WATTTIME_USERNAME": USER}, "CARBONKIT_WATTTIME_PASSWORD is not set"),
        ({"CARBONKIT_WATTTIME_PASSWORD": PASSWORD}, "CARBONKIT_WATTTIME_USERNAME is not set"),
        ({"CARBONKIT_WATTTIME_LATITUDE": "95"}, "CARBONKIT_WATTTIME_LATITUDE='95' is not a number of degrees from -90 to 90"),
        ({"CARBONKIT_WATTTIME_LATITUDE": "40"}, "CARBONKIT_WATTTIME_LONGITUDE is not set"),
        ({"CARBONKIT_WATTTIME_REGION": "caiso north"}, "CARBONKIT_WATTTIME_REGION='caiso north' is not a WattTime region"),
        ({"CARBONKIT_WATTTIME_API_URL": "api.watttime.org"}, "CARBONKIT_WATTTIME_API_URL='api.watttime.org' must start with http"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, client, env, message):
    base = {"CARBONKIT_WATTTIME_USERNAME": USER, "CARBONKIT_WATTTIME_PASSWORD": PASSWORD}
    if "CARBONKIT_WATTTIME_USERNAME" in env or "CARBONKIT_WATTTIME_PASSWORD" in env:
        base = {}
    for k, v in {**base, **env}.items():
        monkeypatch.setenv(k, v)
    (note,) = wt.register_intensity_providers(config=carbonkit.Config(), http_client=client)
    assert isinstance(note, Unavailable) and note.warn
    assert message in note.reason and PASSWORD not in note.reason


# -- end to end ------------------------------------------------------------------------------------------


def env_for(standin: WattTimeStandIn) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env.update(
        CARBONKIT_WATTTIME_USERNAME=USER,
        CARBONKIT_WATTTIME_PASSWORD=PASSWORD,
        CARBONKIT_WATTTIME_API_URL=standin.url,
        CARBONKIT_SIGNAL="marginal",
        CARBONKIT_INTENSITY_PROVIDER="intensity_watttime",
    )
    return env


@pytest.mark.entrypoints
def test_cli_intensity_json_gives_the_marginal_rate():
    """`carbonkit intensity US-CAL-CISO --forecast 2 --json` with the WattTime provider chosen:
    marginal samples in g/kWh, 900 lbs/MWh shown as 408.233133; no secret in the output."""
    with WattTimeStandIn(fixed_value=900.0) as s:
        proc = subprocess.run(
            [sys.executable, "-m", "carbonkit", "intensity", "US-CAL-CISO", "--forecast", "2", "--json"],
            env=env_for(s), capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.splitlines()[-1])
    cur = data["current"]
    assert cur["provider"] == "intensity_watttime:moer" and cur["signal"] == "marginal"
    assert cur["g_per_kwh"] == pytest.approx(408.233133, abs=1e-6)
    assert len(data["forecast"]) >= 24 and all(f["signal"] == "marginal" for f in data["forecast"])
    assert PASSWORD not in proc.stdout + proc.stderr and "wt-token" not in proc.stdout + proc.stderr


@pytest.mark.entrypoints
def test_cli_schedule_plans_on_the_marginal_forecast():
    """`carbonkit schedule --location US-CAL-CISO --duration 30m --window 2h --json`: the stand-in's
    MOER rises through the day, so the cheapest start is now (or just after midnight UTC)."""
    with WattTimeStandIn() as s:
        proc = subprocess.run(
            [sys.executable, "-m", "carbonkit", "schedule", "--location", "US-CAL-CISO", "--duration", "30m",
             "--window", "2h", "--json"],
            env=env_for(s), capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout.splitlines()[-1])
    assert plan["provider"] == "intensity_watttime:moer"
    start = datetime.fromisoformat(plan["start"].replace("Z", "+00:00"))
    now = datetime.now(timezone.utc)
    assert start - now < timedelta(minutes=10) or start.hour == 0
    assert plan["g_per_kwh"] <= plan["now_g_per_kwh"]



class IntensityWaiter(RecordingReporter):
    """Sets ``got`` when the tracker has taken in a sample of ``provider`` (on_provider_sample
    comes after the sample is in the accounts)."""

    def __init__(self, provider: str) -> None:
        super().__init__()
        self.provider = provider
        self.got = threading.Event()

    def on_provider_sample(self, sample, provider) -> None:
        if provider == self.provider:
            self.got.set()


def test_a_tracker_prices_its_run_at_the_marginal_rate(client):
    """A tracker given the WattTime provider prices its run at the stand-in's 900 lbs/MWh,
    408.233133 g/kWh, and the report names the provider and its marginal signal."""
    waiter = IntensityWaiter("intensity_watttime:moer")
    with WattTimeStandIn(fixed_value=900.0) as s:
        p = provider(s, client)
        with carbonkit.Tracker(provider=[p], sources=[FakePowerSource(watts=[100.0])], reporters=[waiter],
                               location="US-CAL-CISO", signal="marginal", interval_s=0.05, quiet=True) as t:
            assert waiter.got.wait(30)
    report = t.report
    assert any(u.provider == "intensity_watttime:moer" for u in report.intensity.used), report.intensity
    assert report.intensity_g_per_kwh == pytest.approx(408.233133, abs=1e-6)
    assert report.intensity.signal == "marginal" and report.intensity.signal_shares == {"marginal": pytest.approx(1.0)}


def test_a_slow_login_is_cut_off_at_the_deadline(client):
    """/login trickling its body one byte every 2 s ends at the provider's deadline, with the
    helper's reason, and no data request follows."""
    with WattTimeStandIn(slow_byte_s=2.0) as s:
        p = provider(s, client, deadline_s=0.5)
        with pytest.raises(IntensityUnavailable, match="WattTime /login: no complete answer within 0.5 s"):
            p.current("US-CAL-CISO")
        assert s.slow_done.wait(30)
    assert s.paths() == ["/login"]


def test_zone_catalogue_and_names(client):
    """known_zones() is the table; zone_names() says which WattTime region serves each zone."""
    p = wt.WattTimeProvider(client=client, username=USER, password=PASSWORD)
    assert p.known_zones() == frozenset(wt.REGIONS_BY_ZONE) and len(wt.REGIONS_BY_ZONE) == 51
    names = p.zone_names()
    assert names["US-NW-BPAT"] == "Bonneville Power Administration (WattTime BPA)"
    assert names["US-TEX-ERCO"] == "ERCOT North Central (WattTime ERCOT_NORTHCENTRAL, representative sub-region)"


def test_the_region_override_is_for_the_run_zone_only(client):
    """With CARBONKIT_WATTTIME_REGION and the run's zone, another table zone still uses the table."""
    with WattTimeStandIn(plan_regions=("CAISO_NORTH", "PSCO")) as s:
        p = provider(s, client, region="PSCO", extra_zones={"US-CAL-CISO"})
        assert "(PSCO, from CARBONKIT_WATTTIME_REGION" in p.current("US-CAL-CISO").source
        assert "(PSCO, model" in p.current("US-NW-PSCO").source
        with pytest.raises(IntensityUnavailable, match="region BANC is not in this account's plan"):
            p.current("US-CAL-BANC")
