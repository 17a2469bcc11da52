"""``carbonkit zones``, closest codes for a mistyped zone everywhere one is accepted, and
``--signal`` on ``carbonkit intensity`` and ``carbonkit schedule``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import carbonkit
from carbonkit import IntensitySample, Unavailable, _cli_intensity, _cli_zones
from carbonkit.cli import main
from carbonkit.scheduling import plan_from_providers
from carbonkit.testing import plugin_manager_for_tests


class Regional:
    """A live regional API with a catalogue, names, a declared lag and capabilities."""

    name = "regional:api"
    zones = frozenset({"DE", "FR", "SE-SE3"})
    priority = 100
    capabilities = frozenset({"live", "forecast", "history"})
    max_lag_s = 3600.0

    def known_zones(self):
        return {"DE", "FR", "SE-SE3"}

    def zone_names(self):
        return {"DE": "Germany", "FR": "France", "SE-SE3": "South Central Sweden"}

    def current(self, zone):
        now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        return IntensitySample(time=now - timedelta(hours=1), g_per_kwh=300.0, zone=zone, source="regional live",
                               period_s=3600, factors="IPCC 2014 AR5 lifecycle medians", estimated=False)

    def forecast(self, zone, start, end):
        hour = start.replace(minute=0, second=0, microsecond=0)
        return [IntensitySample(time=hour + timedelta(hours=i), g_per_kwh=300.0 - 20 * (i % 6), zone=zone,
                                source="regional forecast", kind="forecast", period_s=3600,
                                factors="IPCC 2014 AR5 lifecycle medians")
                for i in range(int((end - start).total_seconds() // 3600) + 2)]


class Marginal:
    """A marginal-signal service covering Germany, forecast only."""

    name = "marginal:api"
    zones = frozenset({"DE"})
    priority = 90
    signal = "marginal"
    capabilities = frozenset({"forecast", "live"})

    def current(self, zone):
        now = datetime.now(timezone.utc)
        return IntensitySample(time=now, g_per_kwh=650.0, zone=zone, source="marginal moer", period_s=300,
                               signal="marginal", estimated=True)

    def forecast(self, zone, start, end):
        return [IntensitySample(time=start + timedelta(minutes=5 * i), g_per_kwh=650.0 - (i % 24), zone=zone,
                                source="marginal moer forecast", kind="forecast", period_s=300, signal="marginal")
                for i in range(int((end - start).total_seconds() // 300) + 2)]


class Table:
    """An offline table with names for every zone it knows."""

    name = "table:static"
    zones = frozenset({"*"})
    priority = 10
    offline = True

    def known_zones(self):
        return {"DE", "FR", "SE-SE3", "DK-DK1", "DK-DK2", "US-CAL-CISO"}

    def zone_names(self):
        return {"DE": "Deutschland (table)", "DK-DK1": "West Denmark", "DK-DK2": "East Denmark",
                "US-CAL-CISO": "CAISO, USA"}

    def current(self, zone):
        return IntensitySample(time=datetime.now(timezone.utc), g_per_kwh=400.0, zone=zone, source="table 2024",
                               kind="average", year=2024)

    def forecast(self, zone, start, end):
        return []


class Plugin:
    @carbonkit.hookimpl
    def register_intensity_providers(self):
        return [Table(), Marginal(), Regional(),
                Unavailable(plugin="keyed", reason="no CARBONKIT_KEYED_TOKEN set",
                            hint="how to get one: https://example.org/token")]


@pytest.fixture
def pm():
    return plugin_manager_for_tests(Plugin())


def test_zones_lists_codes_names_and_coverage_by_kind(pm):
    data = _cli_zones.zones_data(None, pm=pm)
    by_zone = {z["zone"]: z for z in data["zones"]}
    assert set(by_zone) == {"DE", "FR", "SE-SE3", "DK-DK1", "DK-DK2", "US-CAL-CISO"}
    de = by_zone["DE"]
    assert de["name"] == "Germany"  # the live provider's name comes first: providers in the order tried
    assert de["providers"] == {
        "live": ["regional:api"],
        "forecast": ["regional:api"],
        "average": ["table:static", "constant:world"],
        "marginal": ["marginal:api"],
    }
    assert by_zone["DK-DK1"] == {"zone": "DK-DK1", "name": "West Denmark",
                                 "providers": {"average": ["table:static", "constant:world"]}}
    regional = next(p for p in data["providers"] if p["name"] == "regional:api")
    assert regional == {"name": "regional:api", "priority": 100, "signal": "average",
                        "capabilities": ["forecast", "history", "live"], "max_lag_s": 3600.0, "any_zone": False}
    assert data["unavailable"] == [{"plugin": "keyed", "reason": "no CARBONKIT_KEYED_TOKEN set",
                                    "hint": "how to get one: https://example.org/token"}]


def test_zones_query_matches_codes_and_names_and_suggests_when_nothing_does(pm, monkeypatch, capsys):
    assert [z["zone"] for z in _cli_zones.zones_data("sweden", pm=pm)["zones"]] == ["SE-SE3"]
    assert [z["zone"] for z in _cli_zones.zones_data("dk-", pm=pm)["zones"]] == ["DK-DK1", "DK-DK2"]
    miss = _cli_zones.zones_data("DK-DK3", pm=pm)
    assert miss["zones"] == [] and "DK-DK1" in miss["suggestions"]
    real = _cli_zones.zones_data
    monkeypatch.setattr(_cli_zones, "zones_data", lambda query: real(query, pm=plugin_manager_for_tests(Plugin())))
    assert main(["zones", "germny"]) == _cli_zones.EXIT_NO_MATCH
    assert "closest codes: DE" in capsys.readouterr().out
    assert main(["zones", "DE"]) == 0
    out = capsys.readouterr().out
    assert "DE  Germany" in out and "marginal:  marginal:api" in out
    assert "not available: keyed: no CARBONKIT_KEYED_TOKEN set (how to get one: https://example.org/token)" in out
    assert main(["zones", "--json", "FR"]) == 0
    assert [z["zone"] for z in json.loads(capsys.readouterr().out)["zones"]] == ["FR"]


def test_the_real_static_table_names_its_zones():
    """With the installed plugins, the shipped static table names zones (Electricity Maps names)."""
    data = _cli_zones.zones_data("SE-SE3")
    (se3,) = data["zones"]
    assert se3["name"] == "South Central Sweden"
    assert "intensity_static:table" in se3["providers"]["average"]


@pytest.mark.parametrize("mistyped, closest", [("DE-X", "DE"), ("SE3", "SE-SE3"), ("US-CAL-CSIO", "US-CAL-CISO")])
def test_a_mistyped_zone_names_the_closest_codes_in_intensity_schedule_and_tracker(pm, mistyped, closest):
    with pytest.raises(carbonkit.UnknownZoneError, match=f"closest known codes: .*{closest}"):
        _cli_intensity.query(mistyped, None, pm=pm)
    with pytest.raises(carbonkit.UnknownZoneError, match=f"closest known codes: .*{closest}"):
        plan_from_providers(mistyped, "1h", "6h", pm=pm)
    with pytest.raises(carbonkit.ConfigError, match=f"closest known codes: .*{closest}"):
        carbonkit.Tracker(location=mistyped, plugin_manager=pm, quiet=True,
                          sources=[carbonkit.testing.FakePowerSource()])


def test_schedule_cli_names_the_closest_codes(capsys):
    assert main(["schedule", "--location", "dk2", "--duration", "1h", "--window", "6h"]) == 2
    err = capsys.readouterr().err
    assert "'DK2' is not known" in err and "DK-DK2" in err


def test_intensity_shows_signal_kind_source_zone_factors_estimated_and_age(pm):
    data = _cli_intensity.query("DE", 3, pm=pm)
    cur = data["current"]
    assert data["signal"] == "average"
    assert cur["provider"] == "regional:api" and cur["signal"] == "average" and cur["kind"] == "live"
    assert cur["factors"] == "IPCC 2014 AR5 lifecycle medians" and cur["estimated"] is False
    assert 0 <= cur["age_s"] <= 3600  # the hour before the current one ended less than an hour ago
    assert data["forecast"][0]["signal"] == "average" and data["forecast"][0]["source"] == "regional forecast"
    marginal = _cli_intensity.query("DE", 3, pm=pm, signal="marginal")
    assert marginal["signal"] == "marginal" and marginal["fallback"] is False
    assert marginal["current"]["provider"] == "marginal:api" and marginal["current"]["signal"] == "marginal"
    assert marginal["current"]["estimated"] is True
    assert marginal["forecast"][0]["signal"] == "marginal"
    # No marginal provider for France: the average value, said to be a fallback of the other signal.
    fr = _cli_intensity.query("FR", None, pm=pm, signal="marginal")
    assert fr["fallback"] is True and fr["current"]["signal"] == "average"
    assert "no installed intensity provider gives the marginal signal for FR" in fr["warnings"]


def test_intensity_text_output_labels_every_figure(pm, monkeypatch, capsys):
    real = _cli_intensity.query
    monkeypatch.setattr(_cli_intensity, "query", lambda *a, **kw: real(*a, pm=plugin_manager_for_tests(Plugin()), **kw))
    assert main(["intensity", "DE", "--signal", "marginal", "--forecast", "1"]) == 0
    out = capsys.readouterr().out
    assert "DE: 650.0 gCO2eq/kWh (live, marginal signal, zone DE, estimated by the service; via marginal:api)" in out
    assert "forecast (" in out and "marginal signal" in out.split("forecast (")[1]
    assert main(["intensity", "DE"]) == 0
    out = capsys.readouterr().out
    assert "(live, average signal, zone DE, factors: IPCC 2014 AR5 lifecycle medians, measured, not estimated" in out
    assert "source: regional live" in out


def test_schedule_plans_on_the_signal_asked_for(pm):
    now = datetime.now(timezone.utc)
    average = plan_from_providers("DE", "1h", "6h", pm=pm, now=now)
    assert average.provider == "regional:api" and average.signal == "average"
    assert average.factors == "IPCC 2014 AR5 lifecycle medians" and average.source == "regional forecast"
    assert average.kind == "forecast"
    marginal = plan_from_providers("DE", "1h", "6h", pm=pm, now=now, signal="marginal")
    assert marginal.provider == "marginal:api" and marginal.signal == "marginal"
    fr = plan_from_providers("FR", "1h", "6h", pm=pm, now=now, signal="marginal")
    assert fr.signal == "average"
    assert any("no installed intensity provider gives the marginal signal for FR" in w for w in fr.warnings)
    assert any("is of the average signal, not the marginal signal asked for" in w for w in fr.warnings)


def test_schedule_text_and_json_say_the_signal(monkeypatch, capsys):
    from carbonkit import scheduling

    real = scheduling.plan_from_providers
    monkeypatch.setattr(scheduling, "plan_from_providers",
                        lambda *a, **kw: real(*a, pm=plugin_manager_for_tests(Plugin()), **kw))
    assert main(["schedule", "--location", "DE", "--duration", "1h", "--window", "6h", "--signal", "marginal"]) == 0
    out = capsys.readouterr().out
    assert "values:    forecast, marginal signal, zone DE; marginal moer forecast" in out
    assert main(["schedule", "--location", "DE", "--duration", "1h", "--window", "6h", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["signal"] == "average" and data["factors"] == "IPCC 2014 AR5 lifecycle medians"


def test_a_query_lists_the_code_first_then_codes_then_names():
    """`carbonkit zones DE`: Germany first, though "de" is also inside Bangladesh and Cabo Verde;
    `zones dk`: Denmark, then its price areas; `zones ger`: a name's word start."""
    from carbonkit.zones import ZoneCoverage, matching

    zones = [ZoneCoverage(zone=c, name=n) for c, n in [
        ("BD", "Bangladesh"), ("CV", "Cabo Verde"), ("DE", "Germany"), ("DK", "Denmark"),
        ("DK-DK1", "West Denmark"), ("DK-DK2", "East Denmark"), ("FR", "France"),
    ]]
    assert [z.zone for z in matching(zones, "DE")] == ["DE", "DK", "DK-DK1", "DK-DK2", "BD", "CV"]
    assert [z.zone for z in matching(zones, "dk")] == ["DK", "DK-DK1", "DK-DK2"]
    assert [z.zone for z in matching(zones, "ger")] == ["DE"]
    assert matching(zones, "") == zones and matching(zones, "zz") == []
