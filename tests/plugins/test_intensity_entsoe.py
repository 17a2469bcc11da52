"""carbonkit-intensity-entsoe against a local stand-in of the Transparency Platform (real XML shapes)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from standin_entsoe import (
    ACK_NS,
    TOKEN,
    TOTAL_FORECAST_MW,
    UNAUTHORIZED_HTML,
    WIND_FORECAST_MW,
    EntsoeStandIn,
    ack,
    solar_forecast_mw,
)

import carbonkit_intensity_entsoe as plugin
import carbonkit_intensity_static
from carbonkit import Config, IntensityUnavailable, Unavailable, UnknownZoneError
from carbonkit.emission_factors import IPCC_2014
from carbonkit.testing import assert_plugin_valid
from carbonkit_intensity_entsoe import EntsoeProvider, NoData, parse_document, timeline
from carbonkit_intensity_entsoe.documents import parse_resolution

# Hand computation of DE's newest complete interval (the stand-in's A75):
# gas B04 10 000 MW x 490, lignite B02 5 000 x 820, hard coal B05 3 000 x 820, wind B19 20 000 x 11,
# solar B16 5 000 x 48; pumped-storage generation B10 1 000 MW is storage (not priced), the
# pumping series (outBiddingZone, 2 000 MW) is not generation.
#   (4 900 000 + 4 100 000 + 2 460 000 + 220 000 + 240 000) / (10 000 + 5 000 + 3 000 + 20 000 + 5 000)
DE_LIVE = 11_920_000 / 43_000  # 277.209...
# The rest of DE's forecast is priced at the non-wind, non-solar part of that mix:
#   (4 900 000 + 4 100 000 + 2 460 000) / 18 000
DE_REST = 11_460_000 / 18_000  # 636.67


def de_forecast(t: datetime) -> float:
    """The forecast for the quarter hour at ``t``: A71 total 50 000 MW, A69 solar and wind 15 000 MW,
    the rest (50 000 - solar - 15 000) at DE_REST."""
    solar = solar_forecast_mw(t)
    rest = TOTAL_FORECAST_MW - solar - WIND_FORECAST_MW
    return (DE_REST * rest + 48 * solar + 11 * WIND_FORECAST_MW) / TOTAL_FORECAST_MW


@pytest.fixture
def standin():
    with EntsoeStandIn() as s:
        yield s


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as c:
        yield c


def provider(standin: EntsoeStandIn, client: httpx.Client, **kw) -> EntsoeProvider:
    return EntsoeProvider(client=client, token=TOKEN, base_url=standin.url, now=standin.now, **kw)


# -- parsing ------------------------------------------------------------------------------------

DOC = """<?xml version="1.0" encoding="UTF-8"?>
<GL_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-6:generationloaddocument:{version}">
  <type>A75</type><process.processType>A16</process.processType>
  <TimeSeries>
    <businessType>A01</businessType><objectAggregation>A08</objectAggregation>
    <inBiddingZone_Domain.mRID codingScheme="A01">10YFI-1--------U</inBiddingZone_Domain.mRID>
    <quantity_Measure_Unit.name>MAW</quantity_Measure_Unit.name><curveType>{curve}</curveType>
    <MktPSRType><psrType>B01</psrType></MktPSRType>
    <Period>
      <timeInterval><start>2025-10-21T12:00Z</start><end>2025-10-21T13:15Z</end></timeInterval>
      <resolution>PT15M</resolution>
      <Point><position>1</position><quantity>723.2</quantity></Point>
      <Point><position>3</position><quantity>701</quantity></Point>
    </Period>
  </TimeSeries>
  <TimeSeries>
    <businessType>A04</businessType><objectAggregation>A08</objectAggregation>
    <outBiddingZone_Domain.mRID codingScheme="A01">10YFI-1--------U</outBiddingZone_Domain.mRID>
    <quantity_Measure_Unit.name>MAW</quantity_Measure_Unit.name><curveType>A01</curveType>
    <MktPSRType><psrType>B10</psrType></MktPSRType>
    <Period>
      <timeInterval><start>2025-10-21T12:00Z</start><end>2025-10-21T13:00Z</end></timeInterval>
      <resolution>PT60M</resolution>
      <Point><position>1</position><quantity>250</quantity></Point>
    </Period>
  </TimeSeries>
</GL_MarketDocument>
"""


def at(hh: int, mm: int) -> datetime:
    return datetime(2025, 10, 21, hh, mm, tzinfo=timezone.utc)


def test_a03_curves_repeat_the_previous_quantity_for_omitted_positions():
    """A03: positions 2, 4 and 5 are absent and repeat 723.2, 701 and 701 up to the Period's end."""
    series = parse_document(DOC.format(version="3:0", curve="A03").encode())
    biomass = series[0]
    assert [(p.start, p.quantity) for p in biomass.points] == [
        (at(12, 0), 723.2), (at(12, 15), 723.2), (at(12, 30), 701.0), (at(12, 45), 701.0), (at(13, 0), 701.0),
    ]
    assert biomass.points[-1].end == at(13, 15)


def test_a01_curves_leave_absent_positions_missing():
    series = parse_document(DOC.format(version="3:0", curve="A01").encode())
    assert [p.start for p in series[0].points] == [at(12, 0), at(12, 30)]


def test_namespaces_are_matched_on_local_names_and_consumption_is_flagged():
    """Another document version parses the same; the outBiddingZone series is consumption."""
    for version in ("3:0", "7:0", "2:1"):
        series = parse_document(DOC.format(version=version, curve="A03").encode())
        assert [(s.psr_type, s.consumption) for s in series] == [("B01", False), ("B10", True)]
    intervals = timeline(series)
    assert all("B10" not in i.by_type for i in intervals)  # pumping is not generation


def test_the_no_data_acknowledgement_and_other_acknowledgements():
    with pytest.raises(NoData, match="No matching data found"):
        parse_document(ack("No matching data found for Data item Actual Total Load [6.1.A] (10YNO-4--------9)").encode())
    other = ack("The amount of requested data exceeds allowed limit", code="B11")
    with pytest.raises(ValueError, match="reason B11.*exceeds allowed limit"):
        parse_document(other.encode())
    assert ACK_NS.endswith(":7:0")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (UNAUTHORIZED_HTML.encode(), "HTML page"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "DOCTYPE"),
        (b"404 page not found", "not XML"),
        (b"<Other_Document/>", "unexpected document"),
    ],
)
def test_bodies_that_are_not_generation_documents_are_refused(body, words):
    with pytest.raises(ValueError, match=words):
        parse_document(body)


@pytest.mark.parametrize(("text", "minutes"), [("PT15M", 15), ("PT30M", 30), ("PT60M", 60), ("PT1H", 60), ("P1D", 1440)])
def test_resolutions(text, minutes):
    assert parse_resolution(text) == timedelta(minutes=minutes)


def test_mixed_resolutions_cut_the_timeline_at_every_boundary():
    """An hourly type and a quarter-hourly type: four intervals per hour, the hourly value in each."""
    doc = DOC.format(version="3:0", curve="A03").replace(
        "<Period>\n      <timeInterval><start>2025-10-21T12:00Z</start><end>2025-10-21T13:00Z</end></timeInterval>",
        "<Period>\n      <timeInterval><start>2025-10-21T12:00Z</start><end>2025-10-21T13:00Z</end></timeInterval>",
    ).replace("outBiddingZone_Domain.mRID", "inBiddingZone_Domain.mRID").replace("<psrType>B10</psrType>", "<psrType>B04</psrType>")
    intervals = timeline(parse_document(doc.encode()))
    assert [(i.start, i.end - i.start) for i in intervals][:4] == [
        (at(12, m), timedelta(minutes=15)) for m in (0, 15, 30, 45)
    ]
    assert all(i.by_type["B04"] == 250.0 for i in intervals[:4])
    # 13:00-13:15 has biomass only, and gas reported in the hours before: incomplete
    assert intervals[-1].start == at(13, 0) and not intervals[-1].complete
    assert all(i.complete for i in intervals[:4])


# -- the provider against the stand-in ------------------------------------------------------------


def test_current_is_the_newest_complete_interval_priced_by_hand(standin, client):
    """The coal series is an hour late: the newest complete interval is the last quarter hour it
    covers, where wind is still 20 000 MW (30 000 after it)."""
    sample = provider(standin, client).current("DE")
    assert sample.g_per_kwh == pytest.approx(DE_LIVE)
    assert sample.time == standin.coal_end() - timedelta(minutes=15)
    assert sample.period_s == 900
    assert (sample.zone, sample.kind, sample.signal, sample.factors) == ("DE", "live", "average", IPCC_2014.name)
    assert "A75" in sample.source and "10Y1001A1001A83F" in sample.source
    query = standin.requests[-1]
    assert query["documentType"] == "A75" and query["processType"] == "A16"
    assert query["in_Domain"] == "10Y1001A1001A83F"
    now = standin.now()
    end = datetime.strptime(query["periodEnd"], "%Y%m%d%H%M").replace(tzinfo=timezone.utc)
    assert now <= end < now + timedelta(hours=1)  # the window ends now (at the next whole hour)


def test_forecast_combines_a69_per_type_and_the_a71_rest_by_hand(standin, client):
    now = standin.now()
    samples = provider(standin, client).forecast("DE", now, now + timedelta(hours=6))
    assert samples and all(s.kind == "forecast" and s.factors == IPCC_2014.name for s in samples)
    assert samples[0].time <= now < samples[0].time + timedelta(seconds=samples[0].period_s)
    assert samples[-1].time + timedelta(seconds=samples[-1].period_s) >= now + timedelta(hours=6)
    for s in samples:
        assert s.g_per_kwh == pytest.approx(de_forecast(s.time)), s.time
    assert "A69" in samples[0].source and "A71" in samples[0].source
    assert {q["documentType"] for q in standin.requests} == {"A69", "A71", "A75"}


def test_forecast_after_current_reuses_its_mix_for_the_rest(standin, client):
    """current() already found the newest complete mix: forecast() asks only for A71 and A69."""
    p = provider(standin, client)
    p.current("DE")
    standin.requests.clear()
    now = standin.now()
    samples = p.forecast("DE", now, now + timedelta(hours=2))
    assert [q["documentType"] for q in standin.requests] == ["A71", "A69"]
    assert all(s.g_per_kwh == pytest.approx(de_forecast(s.time)) for s in samples)


def test_forecast_without_a69_prices_all_of_a71_at_the_recent_mix(standin, client):
    """SE-SE3 has no wind and solar forecast (999): hydro 6 000 x 24 + nuclear 4 000 x 12 over 10 000 = 19.2."""
    now = standin.now()
    samples = provider(standin, client).forecast("SE-SE3", now, now + timedelta(hours=3))
    assert samples and all(s.g_per_kwh == pytest.approx(19.2) for s in samples)
    assert "no wind and solar forecast" in samples[0].source


def test_history_spans_a_switch_from_hourly_to_quarter_hourly(client):
    """Two Periods in each series, PT60M then PT15M: hourly samples before, quarter-hourly after.
    Before: (490 x 10 000 + 11 x 20 000) / 30 000; after: (490 x 12 000 + 11 x 20 000) / 32 000."""
    now = datetime(2026, 12, 2, 14, 5, tzinfo=timezone.utc)
    switch = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
    with EntsoeStandIn(now=lambda: now, switch_at=switch) as standin:
        samples = provider(standin, client).history("DE", switch - timedelta(hours=3), switch + timedelta(hours=2))
    before = [s for s in samples if s.time < switch]
    after = [s for s in samples if s.time >= switch]
    assert [s.time for s in before] == [switch - timedelta(hours=k) for k in (3, 2, 1)]
    assert all(s.period_s == 3600 and s.g_per_kwh == pytest.approx(5_120_000 / 30_000) for s in before)
    assert len(after) == 8 and all(s.period_s == 900 for s in after)
    assert all(s.g_per_kwh == pytest.approx(6_100_000 / 32_000) for s in after)


def test_no_data_is_unavailable_with_the_services_text(standin, client):
    with pytest.raises(IntensityUnavailable) as info:
        provider(standin, client).current("FR")
    assert "no data for FR" in str(info.value) and "No matching data found" in str(info.value)


def test_a_bad_token_says_so_and_never_shows_the_token(standin, client):
    bad = "0badc0de-1111-2222-3333-444455556666"
    p = EntsoeProvider(client=client, token=bad, base_url=standin.url, now=standin.now)
    with pytest.raises(IntensityUnavailable) as info:
        p.current("DE")
    text = str(info.value) + repr(info.value.__cause__) + str(info.value.__cause__)
    assert "401" in text and "CARBONKIT_ENTSOE_TOKEN" in str(info.value)
    assert bad not in text and bad not in repr(p)
    assert standin.requests[-1]["securityToken"] == bad  # it was sent, as a query parameter


def test_an_unreachable_service_is_unavailable_without_the_token(client):
    p = EntsoeProvider(client=client, token=TOKEN, base_url="http://127.0.0.1:9/api", deadline_s=5)
    with pytest.raises(IntensityUnavailable) as info:
        p.current("DE")
    assert TOKEN not in str(info.value)


def test_unknown_zones_and_bad_settings_are_refused(standin, client):
    with pytest.raises(UnknownZoneError, match="US-CAL-CISO"):
        provider(standin, client).current("US-CAL-CISO")
    with pytest.raises(Exception, match="CARBONKIT_ENTSOE_API_URL.*'web-api.tp.entsoe.eu'"):
        EntsoeProvider(client=client, token=TOKEN, base_url="web-api.tp.entsoe.eu")
    with pytest.raises(Exception, match="CARBONKIT_ENTSOE_TOKEN") as info:
        EntsoeProvider(client=client, token="two words")
    assert "two words" not in str(info.value)


def test_every_mapped_zone_is_known_to_the_static_provider():
    known = carbonkit_intensity_static.known_zones()
    assert set(plugin.EIC_BY_ZONE) <= set(known), set(plugin.EIC_BY_ZONE) - set(known)
    assert {"DE", "FR", "DK-DK1", "SE-SE3", "IT-NO"} <= set(plugin.EIC_BY_ZONE)
    assert plugin.EIC_BY_ZONE["DE"] == "10Y1001A1001A83F"
    assert len(set(plugin.EIC_BY_ZONE.values())) == len(plugin.EIC_BY_ZONE)


def test_provider_declares_its_capabilities_and_lag(client):
    p = EntsoeProvider(client=client, token=TOKEN)
    assert p.capabilities == frozenset({"live", "forecast", "history"})
    assert p.max_lag_s == 3600 and p.signal == "average" and p.priority == 100
    assert p.known_zones() == p.zones and p.zone_names()["SE-SE3"].startswith("South Central Sweden")


# -- the hook ---------------------------------------------------------------------------------------


def test_without_a_token_the_plugin_says_how_to_get_one(monkeypatch, client):
    monkeypatch.delenv("CARBONKIT_ENTSOE_TOKEN", raising=False)
    [note] = plugin.register_intensity_providers(Config(), client)
    assert isinstance(note, Unavailable) and "CARBONKIT_ENTSOE_TOKEN" in note.reason
    assert "transparency@entsoe.eu" in note.hint and "https://transparency.entsoe.eu/" in note.hint


def test_with_a_token_the_plugin_offers_the_provider(monkeypatch, client):
    monkeypatch.setenv("CARBONKIT_ENTSOE_TOKEN", TOKEN)
    monkeypatch.setenv("CARBONKIT_ENTSOE_API_URL", "http://127.0.0.1:1/api/")
    [p] = plugin.register_intensity_providers(Config(), client)
    assert isinstance(p, EntsoeProvider) and p.base_url == "http://127.0.0.1:1/api"
    assert TOKEN not in repr(p) and TOKEN not in json.dumps(repr(p))
    monkeypatch.setenv("CARBONKIT_ENTSOE_API_URL", "ftp://nowhere")
    [note] = plugin.register_intensity_providers(Config(), client)
    assert isinstance(note, Unavailable) and note.warn and "ftp://nowhere" in note.reason


def test_plugin_is_valid(monkeypatch):
    monkeypatch.setenv("CARBONKIT_ENTSOE_TOKEN", TOKEN)
    assert_plugin_valid(plugin)


def test_the_token_never_reaches_a_log_line(standin, client, caplog):
    """httpx logs every request URL at INFO: the core's filter redacts the token in it."""
    caplog.set_level("DEBUG")
    provider(standin, client).current("DE")
    bad = EntsoeProvider(client=client, token="0badc0de-1111-2222-3333-444455556666", base_url=standin.url)
    with pytest.raises(IntensityUnavailable):
        bad.current("DE")
    assert "HTTP Request: GET" in caplog.text and "securityToken=***" in caplog.text
    assert TOKEN not in caplog.text and "0badc0de-1111-2222-3333-444455556666" not in caplog.text


def test_history_asks_a_week_at_most_per_request(standin, client):
    now = standin.now()
    samples = provider(standin, client).history("DE", now - timedelta(days=10), now - timedelta(days=9))
    assert samples and all(s.g_per_kwh == pytest.approx(DE_LIVE) for s in samples)
    spans = [
        datetime.strptime(q["periodEnd"], "%Y%m%d%H%M") - datetime.strptime(q["periodStart"], "%Y%m%d%H%M")
        for q in standin.requests
    ]
    assert len(spans) == 1 and spans[0] <= timedelta(days=7)
    standin.requests.clear()
    provider(standin, client).history("DE", now - timedelta(days=10), now - timedelta(days=1))
    spans = [
        datetime.strptime(q["periodEnd"], "%Y%m%d%H%M") - datetime.strptime(q["periodStart"], "%Y%m%d%H%M")
        for q in standin.requests
    ]
    assert len(spans) == 2 and all(s <= timedelta(days=7) for s in spans)


def test_unlisted_production_types_are_priced_as_unknown():
    assert plugin.fuel_of("B99") == "unknown" and plugin.fuel_of(None) == "unknown"
    assert plugin.fuel_of("B10") == "storage" and plugin.fuel_of("B18") == "wind"
