"""carbonkit-intensity-eia against a local stand-in of the EIA Open Data API v2 (real JSON envelope)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from standin_eia import KEY, EiaStandIn

import carbonkit_intensity_eia as plugin
import carbonkit_intensity_static
from carbonkit import Config, IntensityUnavailable, Unavailable, UnknownZoneError
from carbonkit.emission_factors import IPCC_2014
from carbonkit.testing import assert_plugin_valid
from carbonkit_intensity_eia import EiaProvider, hourly_mixes, parse_rows

# Hand computation of a complete CISO hour (the stand-in's CISO_MIX, MWh):
# NG 4 000 x 490, NUC 2 000 x 12, WAT 1 000 x 24, SUN 6 000 x 48, WND 3 000 x 11, OTH 200 x 700, OIL 0;
# BAT -500 (storage: not priced), COL null (missing):
#   (1 960 000 + 24 000 + 24 000 + 288 000 + 33 000 + 140 000) / 16 200
CISO = 2_469_000 / 16_200  # 152.41


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as c:
        yield c


def provider(standin: EiaStandIn, client: httpx.Client, **kw) -> EiaProvider:
    return EiaProvider(client=client, api_key=KEY, base_url=standin.url, now=standin.now, **kw)


def test_current_is_the_newest_complete_hour_priced_by_hand(client):
    """The newest published hour has only NG and SUN: incomplete. The one before it is used;
    periods are hour-ending, so the row for HH covers HH-1 to HH."""
    with EiaStandIn() as standin:
        sample = provider(standin, client).current("US-CAL-CISO")
        query = standin.requests[-1]
        newest = standin.newest_period()
    assert sample.g_per_kwh == pytest.approx(CISO)
    assert sample.time == newest - timedelta(hours=2) and sample.period_s == 3600
    assert (sample.zone, sample.kind, sample.signal, sample.factors) == ("US-CAL-CISO", "live", "average", IPCC_2014.name)
    assert "CISO" in sample.source and "one to two hours" in sample.source
    assert query["facets[respondent][]"] == ["CISO"] and query["frequency"] == ["hourly"]
    assert query["data[0]"] == ["value"] and query["sort[0][direction]"] == ["desc"]


def test_pages_are_followed_until_the_total(client):
    """With 7 rows a page the answer takes many pages; the value is the same."""
    with EiaStandIn(page_cap=7) as standin:
        sample = provider(standin, client).current("US-CAL-CISO")
        offsets = [int(q["offset"][0]) for q in standin.requests]
    assert sample.g_per_kwh == pytest.approx(CISO)
    assert len(offsets) > 3 and offsets == list(range(0, 7 * len(offsets), 7))


def test_history_gives_every_complete_hour(client):
    with EiaStandIn() as standin:
        newest = standin.newest_period()
        samples = provider(standin, client).history("US-CAL-CISO", newest - timedelta(hours=6), newest)
    # the hour ending at `newest` is incomplete (only NG and SUN arrived): five complete hours
    assert [s.time for s in samples] == [newest - timedelta(hours=k) for k in (6, 5, 4, 3, 2)]
    assert all(s.g_per_kwh == pytest.approx(CISO) for s in samples)


def test_there_is_no_forecast(client):
    with EiaStandIn() as standin:
        now = standin.now()
        assert provider(standin, client).forecast("US-TEX-ERCO", now, now + timedelta(hours=6)) == []
        assert standin.requests == []
    assert EiaProvider(client=client, api_key=KEY).capabilities == frozenset({"live", "history"})


def test_a_bad_key_shows_the_services_error_and_never_the_key(client):
    bad = "NotAValidKey0000000000000000000000000000"
    with EiaStandIn() as standin:
        p = EiaProvider(client=client, api_key=bad, base_url=standin.url)
        with pytest.raises(IntensityUnavailable) as info:
            p.current("US-CAL-CISO")
        assert standin.requests[-1]["api_key"] == [bad]
    text = str(info.value)
    assert "API_KEY_INVALID" in text and "CARBONKIT_EIA_API_KEY" in text and "403" in text
    assert bad not in text and bad not in str(info.value.__cause__) and bad not in repr(p)


def test_a_respondent_without_data_is_unavailable(client):
    with EiaStandIn() as standin, pytest.raises(IntensityUnavailable, match="no complete hour for ERCO"):
        provider(standin, client).current("US-TEX-ERCO")


def test_rows_strings_numbers_nulls_and_negatives():
    """Values come as strings, numbers or null; periods are hour-ending; negatives of non-storage
    sources count as zero and storage is not priced."""
    payload = {"response": {"total": "5", "data": [
        {"period": "2026-12-02T05", "respondent": "ERCO", "fueltype": "SUN", "value": "-5"},
        {"period": "2026-12-02T05", "respondent": "ERCO", "fueltype": "NG", "value": 1000},
        {"period": "2026-12-02T05", "respondent": "ERCO", "fueltype": "WND", "value": "3000.5"},
        {"period": "2026-12-02T05", "respondent": "ERCO", "fueltype": "BAT", "value": "-250"},
        {"period": "2026-12-02T05", "respondent": "ERCO", "fueltype": "COL", "value": None},
    ]}}
    rows, total = parse_rows(payload, "ERCO")
    start = datetime(2026, 12, 2, 4, tzinfo=timezone.utc)
    assert total == 5 and {(r[1], r[2]) for r in rows} == {("SUN", -5.0), ("NG", 1000.0), ("WND", 3000.5), ("BAT", -250.0)}
    assert all(r[0] == start for r in rows)
    [hour] = hourly_mixes(rows)
    assert hour.by_fuel() == {"solar": 0.0, "gas": 1000.0, "wind": 3000.5}
    with pytest.raises(ValueError, match="response"):
        parse_rows({"error": "x"}, "ERCO")
    with pytest.raises(ValueError, match="period"):
        parse_rows({"response": {"data": [{"period": "02/12/2026", "fueltype": "NG", "value": "1"}]}}, "ERCO")


def test_zones_follow_the_electricity_maps_names_and_the_static_table_knows_most():
    zones = plugin.RESPONDENT_BY_ZONE
    for zone, ba in {"US-CAL-CISO": "CISO", "US-TEX-ERCO": "ERCO", "US-MIDA-PJM": "PJM", "US-MIDW-MISO": "MISO",
                     "US-NY-NYIS": "NYIS", "US-NE-ISNE": "ISNE", "US-CENT-SWPP": "SWPP", "US-NW-BPAT": "BPAT"}.items():
        assert zones[zone] == ba
    assert len(set(zones.values())) == len(zones) == 65
    # The static yearly table has no row for these BAs (generation-only or small ones): it falls
    # back to the US average for them. Every other mapped zone is in it.
    static_lacks = {"US-FLA-NSB", "US-MIDW-GLHB", "US-NW-AVRN", "US-NW-GWA", "US-NW-WWA",
                    "US-SE-AEC", "US-SW-DEAA", "US-SW-GRIF", "US-SW-HGMA"}
    assert set(zones) - set(carbonkit_intensity_static.known_zones()) == static_lacks


def test_unknown_zones_and_bad_settings(client):
    with pytest.raises(UnknownZoneError, match="'DE'"):
        EiaProvider(client=client, api_key=KEY).current("DE")
    with pytest.raises(Exception, match="CARBONKIT_EIA_API_URL.*'api.eia.gov/v2'"):
        EiaProvider(client=client, api_key=KEY, base_url="api.eia.gov/v2")
    with pytest.raises(Exception, match="CARBONKIT_EIA_API_KEY") as info:
        EiaProvider(client=client, api_key=" ")
    assert info.value is not None


def test_without_a_key_the_plugin_says_how_to_get_one(monkeypatch, client):
    monkeypatch.delenv("CARBONKIT_EIA_API_KEY", raising=False)
    [note] = plugin.register_intensity_providers(Config(), client)
    assert isinstance(note, Unavailable) and "CARBONKIT_EIA_API_KEY" in note.reason
    assert "https://www.eia.gov/opendata/register.php" in note.hint


def test_with_a_key_the_plugin_offers_the_provider(monkeypatch, client):
    monkeypatch.setenv("CARBONKIT_EIA_API_KEY", KEY)
    monkeypatch.setenv("CARBONKIT_EIA_API_URL", "http://127.0.0.1:1/v2/")
    [p] = plugin.register_intensity_providers(Config(), client)
    assert isinstance(p, EiaProvider) and p.base_url == "http://127.0.0.1:1/v2"
    assert p.max_lag_s == 7200 and p.priority == 100 and KEY not in repr(p)
    assert p.zone_names()["US-CAL-CISO"] == "California Independent System Operator"


def test_plugin_is_valid(monkeypatch):
    monkeypatch.setenv("CARBONKIT_EIA_API_KEY", KEY)
    assert_plugin_valid(plugin)


def test_the_key_never_reaches_a_log_line(client, caplog):
    """httpx logs every request URL at INFO: the core's filter redacts the key in it."""
    caplog.set_level("DEBUG")
    with EiaStandIn(page_cap=50) as standin:
        provider(standin, client).current("US-CAL-CISO")
    assert "HTTP Request: GET" in caplog.text and "api_key=***" in caplog.text
    assert KEY not in caplog.text
