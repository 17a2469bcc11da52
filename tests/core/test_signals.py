"""Signals (average or marginal), publication lag, and the order providers are tried in."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import carbonkit
from carbonkit import IntensitySample, IntensityUnavailable
from carbonkit._accounting import IntensityTimeline, carbon
from carbonkit.plugins import ordered_providers
from carbonkit.runlog import iter_records, load_run
from carbonkit.testing import FakeIntensity, FakePowerSource, mock_http_client

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def make(**kwargs):
    kwargs.setdefault("sources", [FakePowerSource()])
    kwargs.setdefault("location", "XX")
    kwargs.setdefault("quiet", True)
    kwargs.setdefault("interval_s", 0.01)
    kwargs.setdefault("http_client", mock_http_client())
    return carbonkit.Tracker(**kwargs)


def finish(tracker):
    """Stop once the first intensity fetch is done (synchronised, not slept for)."""
    assert tracker._first_fetch.wait(30), "the first intensity fetch did not end"
    return tracker.stop()


# -- choosing the signal -------------------------------------------------------------------------


def test_signal_is_checked_at_construction_naming_the_value_and_what_is_accepted(monkeypatch):
    with pytest.raises(carbonkit.ConfigError, match=r"signal='marginl' is not accepted: signal must be 'average'.*'marginal'"):
        make(signal="marginl")
    monkeypatch.setenv("CARBONKIT_SIGNAL", "lowest")
    with pytest.raises(carbonkit.ConfigError, match=r"CARBONKIT_SIGNAL='lowest' is not accepted: signal must be"):
        make()
    monkeypatch.setenv("CARBONKIT_SIGNAL", "Marginal")
    t = make(provider=FakeIntensity(signal="marginal", name="m:one"))
    assert t.config.signal == "marginal" and t.config.describe_source("signal") == "CARBONKIT_SIGNAL"
    finish(t)


def test_average_is_the_default_and_the_report_says_so():
    r = finish(make(provider=FakeIntensity(g_per_kwh=80.0, name="avg:one", period_s=3600)))
    assert r.intensity.signal == "average"
    assert r.intensity.signal_shares == {"average": pytest.approx(1.0)}
    assert {u.signal for u in r.intensity.used} == {"average"}


def test_a_marginal_run_is_priced_by_the_marginal_provider():
    marginal = FakeIntensity(g_per_kwh=600.0, name="m:one", signal="marginal", priority=90, period_s=3600)
    average = FakeIntensity(g_per_kwh=100.0, name="a:one", priority=100, period_s=3600)
    r = finish(make(provider=ordered_providers([average, marginal], "XX", None, "marginal"), signal="marginal"))
    assert r.intensity.signal == "marginal"
    assert r.intensity.signal_shares == {"marginal": pytest.approx(1.0)}
    (use,) = r.intensity.used
    assert use.provider == "m:one" and use.signal == "marginal"
    assert r.intensity_g_per_kwh == pytest.approx(600.0)
    assert not r.intensity.fallbacks


def test_a_marginal_provider_that_fails_is_a_recorded_fallback_to_average_values():
    marginal = FakeIntensity(name="m:one", signal="marginal", fail=IntensityUnavailable("HTTP 503 from the service"))
    average = FakeIntensity(g_per_kwh=100.0, name="a:one", period_s=3600)
    r = finish(make(provider=[marginal, average], signal="marginal"))
    (fallback,) = r.intensity.fallbacks
    assert fallback.provider == "m:one" and "HTTP 503" in fallback.reason
    assert fallback.used.startswith("a:one") and "average signal" in fallback.used
    assert r.intensity.signal == "marginal"
    assert r.intensity.signal_shares == {"average": pytest.approx(1.0)}
    assert any("asked for the marginal signal, but 100% of its energy was priced with average values" in w
               for w in r.warnings)


def test_no_marginal_provider_at_all_is_recorded_from_the_start(tmp_path):
    """No provider of the requested signal covers the zone: a fallback record from the first second,
    in the report and in the run log, never a silent switch."""
    average = FakeIntensity(g_per_kwh=100.0, name="a:one", period_s=3600)
    r = finish(make(provider=[average], signal="marginal", log_dir=tmp_path, reporters=None))
    first = r.intensity.fallbacks[0]
    assert first.provider == "marginal signal"
    assert first.reason == "no installed intensity provider gives the marginal signal for XX"
    assert first.used == "a:one (average signal)"
    (log,) = tmp_path.glob("*.jsonl")
    records = list(iter_records(log))
    header = records[0]
    assert header["signal"] == "marginal"
    assert header["provider_details"][0] == {"name": "a:one", "priority": 50, "signal": "average", "max_lag_s": None}
    assert any(rec["type"] == "fallback" and rec["provider"] == "marginal signal" for rec in records)
    assert all(rec["signal"] == "average" for rec in records if rec["type"] == "intensity")
    final = next(rec for rec in records if rec["type"] == "report")["report"]["intensity"]
    assert final["signal"] == "marginal" and final["signal_shares"] == {"average": pytest.approx(1.0)}


def test_an_average_run_never_takes_marginal_values():
    marginal = FakeIntensity(g_per_kwh=900.0, name="m:one", signal="marginal", priority=500)
    average = FakeIntensity(g_per_kwh=100.0, name="a:one", priority=10)
    chain = ordered_providers([marginal, average], "XX", None)
    assert [p.name for p in chain] == ["a:one"]
    with pytest.raises(carbonkit.ConfigError, match=r"'m:one' gives the marginal signal.*signal='marginal'"):
        ordered_providers([marginal, average], "XX", "m:one")
    assert ordered_providers([marginal, average], "XX", "m:one", "marginal")[0] is marginal


def test_provider_order_is_priority_then_named_zone_then_name_with_other_signal_after():
    ps = [
        FakeIntensity(name="z:regional", zones={"DE"}, priority=100),
        FakeIntensity(name="a:regional", zones={"DE"}, priority=100),
        FakeIntensity(name="a:global", zones={"*"}, priority=100),
        FakeIntensity(name="em:global", zones={"*"}, priority=90),
        FakeIntensity(name="wt:marginal", zones={"DE"}, priority=90, signal="marginal"),
        FakeIntensity(name="static:table", zones={"*"}, priority=10),
    ]
    expected_average = ["a:regional", "z:regional", "a:global", "em:global", "static:table"]
    for order in (ps, ps[::-1]):
        assert [p.name for p in ordered_providers(order, "DE", None)] == expected_average
        assert [p.name for p in ordered_providers(order, "DE", None, "marginal")] == ["wt:marginal", *expected_average]
    # intensity_provider= still picks one, the rest follow in order.
    assert [p.name for p in ordered_providers(ps, "DE", "em")][:2] == ["em:global", "a:regional"]


@pytest.mark.parametrize("attr, value", [("signal", "lowest"), ("max_lag_s", -1.0), ("max_lag_s", "1h")])
def test_a_provider_declaring_a_bad_signal_or_lag_is_dropped(attr, value):
    class Plugin:
        @carbonkit.hookimpl
        def register_intensity_providers(self):
            p = FakeIntensity(name="bad:decl", zones={"XX"})
            object.__setattr__(p, attr, value)
            return [p]

    from carbonkit.plugins import collect_intensity_providers, make_plugin_manager

    pm = make_plugin_manager(plugins=[Plugin()], entrypoints=False)
    offers = collect_intensity_providers(pm, carbonkit.Config(), mock_http_client())
    assert "bad:decl" not in [p.name for p in offers.objects]
    ((plugin, why),) = offers.errors
    assert f"{attr}={value!r}" in why


# -- lag ------------------------------------------------------------------------------------------


def live(at: datetime, value: float, period_s: float = 3600.0, signal: str = "average") -> IntensitySample:
    return IntensitySample(time=at, g_per_kwh=value, zone="US-CAL-CISO", source="hourly (test)", kind="live",
                           period_s=period_s, signal=signal)


def average() -> IntensitySample:
    return IntensitySample(time=T0 - timedelta(days=30), g_per_kwh=400.0, zone="US-CAL-CISO", source="yearly (test)",
                           kind="average", year=2024)


def test_a_lagging_value_is_held_for_the_providers_declared_lag_then_the_average_takes_over():
    """EIA publishes an hour's value one to two hours late: with max_lag_s = 7200, the value of
    12:00-13:00 prices 13:00 to 15:00; at 15:00 and later the yearly average does."""
    timeline = IntensityTimeline(lags={"eia": 7200.0})
    timeline.add(average(), "static")
    timeline.add(live(T0, 250.0), "eia")
    at = lambda hours: timeline.at((T0 + timedelta(hours=hours)).timestamp())  # noqa: E731
    assert at(0.5)[0].g_per_kwh == 250.0  # its own period
    assert at(2.9)[0].g_per_kwh == 250.0  # held: 1.9 h past its period, under the 2 h lag
    assert at(3.1)[0].g_per_kwh == 400.0  # past the lag: the average
    # Without a declared lag a live value is held for one hour from its start only.
    plain = IntensityTimeline()
    plain.add(average(), "static")
    plain.add(live(T0, 250.0), "eia")
    assert plain.at((T0 + timedelta(hours=1.5)).timestamp())[0].g_per_kwh == 400.0
    # A newer value replaces it as soon as it is there.
    timeline.add(live(T0 + timedelta(hours=1), 210.0), "eia")
    assert at(2.5)[0].g_per_kwh == 210.0


def test_the_age_of_a_held_value_is_recorded_with_its_use():
    """Three hours of 60 s intervals, each 1 kWh: the first priced inside the value's period, the
    rest held for up to 2 h; the use records the largest age (the midpoint of the last interval)."""
    timeline = IntensityTimeline(lags={"eia": 7200.0})
    timeline.add(live(T0, 250.0), "eia")
    first = int(T0.timestamp() // 60)
    parts = [(k, 3.6e6) for k in range(first, first + 180)]
    grams, kwh, uses = carbon(parts, timeline, 60.0, 1.0)
    assert kwh == pytest.approx(180.0) and grams == pytest.approx(250.0 * 180)
    ((key, (use_kwh, use_g, age)),) = uses.items()
    assert key == ("eia", "hourly (test)", "live", "US-CAL-CISO", None, "average")
    assert age == pytest.approx(2 * 3600 - 30)  # the last interval's middle, 1 h 59.5 min past 13:00


def test_the_requested_signal_wins_over_the_other_at_every_step():
    timeline = IntensityTimeline(signal="marginal")
    timeline.add(live(T0, 100.0), "avg")
    timeline.add(live(T0, 700.0, signal="marginal"), "wt")
    assert timeline.at((T0 + timedelta(minutes=10)).timestamp())[1] == "wt"
    # Once the marginal value is too old and no marginal value covers the time, the average one does.
    timeline.add(live(T0 + timedelta(hours=2), 120.0), "avg")
    assert timeline.at((T0 + timedelta(hours=2, minutes=10)).timestamp())[1] == "avg"


def test_a_tracker_holds_a_lagging_value_and_reports_its_age(tmp_path):
    """A provider whose latest value ended 90 minutes ago, declaring a 2-hour lag: the run is priced
    at that value, not the average, and the report (and a log recomputed) say how old it was."""
    now = datetime.now(timezone.utc)

    class Lagging:
        name = "eia:test"
        zones = frozenset({"XX"})
        priority = 100
        max_lag_s = 7200.0

        def current(self, zone):
            return live(now - timedelta(hours=2, minutes=30), 250.0)

        def forecast(self, zone, start, end):
            return []

    t = make(provider=[Lagging(), FakeIntensity(g_per_kwh=400.0, name="static:x", kind="average")],
             log_dir=tmp_path, reporters=None)
    r = finish(t)
    (use,) = [u for u in r.intensity.used if u.provider == "eia:test"]
    assert use.energy_share == pytest.approx(1.0)
    # Ages are taken at the middle of each accounting minute: up to 30 s before the run's start.
    assert 90 * 60 - 31 <= use.max_age_s < 95 * 60
    (log,) = tmp_path.glob("*.jsonl")
    lines = log.read_text().splitlines()
    unfinished = tmp_path / "killed.jsonl"
    unfinished.write_text("\n".join(line for line in lines if json.loads(line)["type"] != "report") + "\n")
    again = load_run(unfinished)
    assert again.intensity.used[0].provider == "eia:test"
    assert again.intensity.used[0].max_age_s == pytest.approx(use.max_age_s, abs=1.0)


def test_old_logs_without_signals_still_read(tmp_path):
    """A report record written before signals existed reads back as the average signal."""
    r = finish(make(provider=FakeIntensity(g_per_kwh=80.0, name="avg:one", period_s=3600)))
    data = r.to_dict()
    data["intensity"].pop("signal")
    data["intensity"].pop("signal_shares")
    for u in data["intensity"]["used"]:
        u.pop("signal")
        u.pop("max_age_s")
    old = carbonkit.Report.from_dict(data)
    assert old.intensity.signal == "average"
    assert old.intensity.signal_shares == {"average": pytest.approx(1.0)}
    assert old.intensity.used[0].signal == "average" and old.intensity.used[0].max_age_s == 0.0


def test_carbonkit_report_shows_the_share_each_signal_priced(tmp_path, capsys):
    from carbonkit.cli import main

    marginal = FakeIntensity(g_per_kwh=600.0, name="m:one", signal="marginal", period_s=3600)
    finish(make(provider=[marginal], signal="marginal", log_dir=tmp_path, reporters=None))
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "XX (live 100%; signal marginal 100%)" in out
    assert "m:one: m:one (test) (live, marginal signal, XX)" in out
    assert main(["report", "--json", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert json.dumps(data).count('"signal": "marginal"') >= 2
    (source,) = [s for s in data["total"]["intensity_sources"] if s["provider"] == "m:one"]
    assert source["signal"] == "marginal"


def test_providers_given_explicitly_are_tried_by_signal_and_never_mix_into_an_average_run():
    marginal = FakeIntensity(g_per_kwh=600.0, name="m:one", signal="marginal")
    average = FakeIntensity(g_per_kwh=100.0, name="a:one")
    t = make(provider=[average, marginal], signal="marginal")
    assert [p.name for p in t.providers] == ["m:one", "a:one", "constant:world"]
    finish(t)
    with pytest.raises(carbonkit.ConfigError, match=r"'m:one' gives the marginal signal.*signal='marginal'"):
        make(provider=[average, marginal])
