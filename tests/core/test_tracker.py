"""The Tracker with fakes passed straight in: no plugin manager, no hardware, no network."""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta, timezone

import pytest

import carbonkit
from carbonkit.testing import FakeIntensity, FakePowerSource, RecordingReporter, step


def make(**kwargs):
    kwargs.setdefault("sources", [FakePowerSource(watts=[100.0])])
    kwargs.setdefault("provider", FakeIntensity(g_per_kwh=200.0))
    kwargs.setdefault("reporters", [])
    kwargs.setdefault("location", "XX")
    kwargs.setdefault("interval_s", 0.01)
    return carbonkit.Tracker(**kwargs)


def test_two_devices_at_100_and_200_watts_give_300_watts_of_energy():
    """Devices of one component are summed, never averaged."""
    t = make(sources=[FakePowerSource(watts=[100.0, 200.0], component="gpu")], pue=1.0)
    time.sleep(0.2)
    r = t.stop()
    assert r.it_energy_kwh * 3.6e6 == pytest.approx(300.0 * r.duration_s, rel=1e-6)
    assert r.components["gpu"].devices == ("gpu0", "gpu1")


def test_pue_one_and_co2_is_energy_times_intensity():
    """pue=1.0 gives energy_kwh == it_energy_kwh; CO2eq equals energy times the intensity used."""
    r = make(pue=1.0).stop()
    assert r.energy_kwh == r.it_energy_kwh
    assert r.co2eq_g == pytest.approx(r.energy_kwh * 200.0)
    assert r.intensity_g_per_kwh == pytest.approx(200.0)


def test_pue_is_applied_and_reported_with_its_source():
    """Energy after PUE is IT energy times PUE; the report names where the PUE came from."""
    r = make(pue=1.2).stop()
    assert r.energy_kwh == pytest.approx(r.it_energy_kwh * 1.2)
    assert "user-supplied" in r.pue_source
    default = make().stop()
    assert default.pue == carbonkit.config.DEFAULT_PUE and "Uptime Institute" in default.pue_source


def test_four_equal_epochs_prediction_is_close_to_actual():
    """After the first of four equal epochs the linear prediction is within a few percent."""
    rec = RecordingReporter()
    t = make(epochs=4, reporters=[rec], pue=1.0)
    for _ in range(4):
        t.epoch_start()
        time.sleep(0.15)
        t.epoch_end()
    r = t.stop()
    p = r.prediction
    assert p is not None and p.based_on == 1 and p.epochs == 4
    epochs_kwh = sum(e.it_energy_kwh for e in r.epochs)
    assert p.it_energy_kwh == pytest.approx(epochs_kwh, rel=0.05)
    assert p.duration_s == pytest.approx(sum(e.duration_s for e in r.epochs), rel=0.05)
    assert p.co2eq_g == pytest.approx(p.energy_kwh * 200.0)
    assert rec.events("on_prediction") == [p]
    assert len(rec.events("on_epoch")) == 4


def test_totals_cover_the_whole_run_and_epochs_are_a_breakdown():
    """Time outside epochs counts in the totals; epoch energy is its share of the same series."""
    t = make(pue=1.0)
    time.sleep(0.1)
    t.epoch_start()
    time.sleep(0.1)
    t.epoch_end()
    time.sleep(0.1)
    r = t.stop()
    (epoch,) = r.epochs
    assert epoch.it_energy_kwh * 3.6e6 == pytest.approx(100.0 * epoch.duration_s, rel=1e-6)
    assert r.it_energy_kwh > 2.5 * epoch.it_energy_kwh


def test_epoch_end_alone_starts_where_the_last_one_ended():
    """Calling only epoch_end() splits the run into consecutive epochs."""
    t = make(epochs=3)
    for _ in range(3):
        time.sleep(0.05)
        t.epoch_end()
    r = t.stop()
    assert [e.index for e in r.epochs] == [0, 1, 2]
    assert r.epochs[1].start_s == r.epochs[0].end_s


def test_context_manager_measures_the_block():
    """``with Tracker() as t`` sets t.report when the block ends."""
    with make() as t:
        time.sleep(0.05)
    assert isinstance(t.report, carbonkit.Report) and t.report.duration_s >= 0.05


def test_intensity_that_steps_mid_run_prices_each_interval_at_its_own_value():
    """A forecast that steps from 100 to 300 g/kWh on a whole second prices each second separately."""
    start = datetime.now(timezone.utc)
    at = datetime.fromtimestamp(math.ceil(start.timestamp()) + 1, tz=timezone.utc)  # a bucket boundary
    provider = FakeIntensity(g_per_kwh=step(at, 100.0, 300.0), forecast_step_s=0.05, forecast_horizon_s=10.0)
    t = make(provider=provider, pue=1.0, intensity_resolution_s=1)
    while datetime.now(timezone.utc) < at + timedelta(seconds=1.2):
        time.sleep(0.05)
    r = t.stop()
    before = (at - r.start_time).total_seconds()
    kwh_before = 100.0 * before / 3.6e6  # the source draws 100 W
    kwh_after = r.energy_kwh - kwh_before
    assert r.co2eq_g == pytest.approx(kwh_before * 100.0 + kwh_after * 300.0, rel=1e-3)
    assert 100.0 < r.intensity_g_per_kwh < 300.0


def test_failing_provider_falls_back_and_records_why(caplog):
    """A provider that raises gives way to the world average, recorded with its reason."""
    bad = FakeIntensity(fail=carbonkit.IntensityUnavailable("HTTP 500 from test"), name="bad:one")
    with caplog.at_level(logging.WARNING, logger="carbonkit"):
        r = make(provider=bad).stop()
    assert [f.provider for f in r.intensity.fallbacks] == ["bad:one"]
    assert "HTTP 500" in r.intensity.fallbacks[0].reason
    assert r.intensity.used[0].provider == "constant:world"
    assert r.intensity_g_per_kwh == pytest.approx(472.94)
    assert any("bad:one" in w for w in r.warnings)


def test_provider_chain_uses_the_next_provider():
    """With several providers, the next one answers when the first fails."""
    bad = FakeIntensity(fail=RuntimeError("boom"), name="bad:one")
    good = FakeIntensity(g_per_kwh=42.0, name="good:two")
    r = make(provider=[bad, good]).stop()
    assert r.intensity.used[0].provider == "good:two"
    assert r.intensity.fallbacks[0].used == "good:two"


def test_a_device_failing_mid_run_keeps_what_it_measured(caplog):
    """A source that starts raising is stopped with one warning; its energy so far is kept."""
    flaky = FakePowerSource(watts=[100.0], name="fake:flaky", fail_after=5)
    steady = FakePowerSource(watts=[50.0], name="fake:steady", component="gpu")
    with caplog.at_level(logging.WARNING, logger="carbonkit"):
        t = make(sources=[flaky, steady], pue=1.0)
        time.sleep(0.3)
        r = t.stop()
    assert r.components["cpu"].it_energy_kwh > 0
    assert r.components["gpu"].it_energy_kwh * 3.6e6 == pytest.approx(50.0 * r.duration_s, rel=1e-6)
    assert sum("fake:flaky failed" in w for w in r.warnings) == 1
    assert flaky.reads == 5


def test_better_method_wins_per_component_and_the_report_says_what_was_dropped():
    """Measured beats estimated beats simulated, per component; dropped sources are named."""
    measured = FakePowerSource(name="a:cpu", method="measured")
    estimated = FakePowerSource(name="b:cpu", method="estimated")
    sim_gpu = FakePowerSource(name="c:gpu", method="simulated", component="gpu")
    t = make(sources=[estimated, measured, sim_gpu])
    r = t.stop()
    assert r.components["cpu"].sources == ("a:cpu",)
    assert r.methods == {"cpu": "measured", "gpu": "simulated"}
    assert [(d.name, d.reason) for d in r.dropped_sources] == [("b:cpu", "a measured source covers cpu")]
    assert estimated.closed


def test_a_failing_reporter_is_disabled_and_the_run_goes_on():
    """A reporter that raises is turned off with a warning; the run and other reporters go on."""

    class Broken(carbonkit.ReporterBase):
        name = "broken"

        def on_sample(self, t_s, readings):
            raise OSError("disk full")

    rec = RecordingReporter()
    r = make(reporters=[Broken(), rec]).stop()
    assert any("broken" in w and "disk full" in w for w in r.warnings)
    assert rec.events("on_report") == [r]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"epochs": 0}, "epochs must be a whole number >= 1"),
        ({"epochs": 2, "predict_after": 3}, "predict_after=3 is more than epochs=2"),
        ({"pue": 0.9}, "pue must be a number between 1.0 and 5.0"),
        ({"interval_s": -1}, "interval_s=-1 is not a positive number"),
        ({"location": "Copenhagen Denmark"}, "location must be a zone code"),
        ({"attribution": "gpu"}, "attribution must be 'machine', 'process' or 'cgroup'"),
        ({"sources": ["not a source"]}, "sources must be PowerSource objects"),
        ({"tags": {"a": 1}}, "tags must map strings to strings"),
    ],
)
def test_bad_arguments_are_errors_at_construction_naming_the_value(kwargs, words):
    """Every invalid argument is a ConfigError that names the value and what is accepted."""
    with pytest.raises(carbonkit.ConfigError, match=words):
        make(**kwargs)


def test_bad_environment_value_is_named(monkeypatch):
    """A malformed CARBONKIT_PUE is an error naming the variable."""
    monkeypatch.setenv("CARBONKIT_PUE", "one point five")
    with pytest.raises(carbonkit.ConfigError, match="CARBONKIT_PUE='one point five'"):
        make()


def test_no_source_at_all_is_a_clear_error():
    """An empty source list is an error naming what to install."""
    with pytest.raises(carbonkit.NoPowerSourceError, match="install carbonkit-rapl"):
        make(sources=[])


def test_location_from_environment_and_world_fallback(monkeypatch):
    """location=None reads CARBONKIT_LOCATION, else uses WORLD with one warning."""
    monkeypatch.setenv("CARBONKIT_LOCATION", "dk-dk2")
    assert make(location=None).stop().location == "DK-DK2"
    monkeypatch.delenv("CARBONKIT_LOCATION")
    r = make(location=None).stop()
    assert r.location == "WORLD"
    assert sum("no location given" in w for w in r.warnings) == 1


def test_hot_path_only_appends_timestamps():
    """epoch_start/epoch_end read no source and touch no reporter on the calling thread."""
    source = FakePowerSource()
    rec = RecordingReporter()
    t = make(sources=[source], reporters=[rec], interval_s=60)
    reads, events = source.reads, len(rec.history)
    for _ in range(1000):
        t.epoch_start()
        t.epoch_end()
    assert source.reads == reads and len(rec.history) == events
    r = t.stop()
    assert len(r.epochs) == 1000


def test_stop_is_idempotent_and_report_is_frozen():
    """stop() twice returns the same report; the report is immutable and serialisable."""
    t = make()
    r1, r2 = t.stop(), t.stop()
    assert r1 is r2
    with pytest.raises(AttributeError):
        r1.co2eq_g = 0  # type: ignore[misc]
    d = r1.to_dict()
    assert carbonkit.Report.from_dict(d) == r1


def test_process_attribution_reports_machine_and_attributed_figures():
    """attribution='process' charges the process tree's share and keeps the machine figure."""
    t = make(attribution="process", pue=1.0)
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        sum(i * i for i in range(1000))
    r = t.stop()
    cpu = r.components["cpu"]
    assert r.attribution == "process"
    assert cpu.machine_it_energy_kwh * 3.6e6 == pytest.approx(100.0 * r.duration_s, rel=1e-6)
    assert 0 < cpu.it_energy_kwh <= cpu.machine_it_energy_kwh


def test_sci_per_functional_unit_in_the_report():
    """functional_unit + units put SCI = (E x I + M) / R in the report, embodied share included."""
    embodied = {"cpu": {"kgco2e": 100.0, "lifetime_years": 4, "source": "test figure"}}
    t = make(functional_unit="sample", embodied=embodied, pue=1.0)
    t.add_units(600)
    t.add_units(400)
    time.sleep(0.05)
    r = t.stop()
    assert r.functional_unit == "sample" and r.units == 1000
    m_g = 100_000.0 * r.duration_s / (4 * 365.25 * 24 * 3600)
    assert r.sci.operational_g == pytest.approx(r.co2eq_g)
    assert r.sci.embodied_g == pytest.approx(m_g, rel=1e-3)
    assert r.sci.sci_g_per_unit == pytest.approx((r.co2eq_g + r.sci.embodied_g) / 1000)
    assert carbonkit.Report.from_dict(r.to_dict()) == r


def test_sci_units_at_stop_and_missing_units_warn():
    """stop(units=N) overrides the count; a unit with no count gives a warning and no SCI."""
    r = make(functional_unit="token").stop(units=5)
    assert r.units == 5 and r.sci is not None and r.sci.unknown == ("cpu",)
    r2 = make(functional_unit="token").stop()
    assert r2.sci is None and any("no units were counted" in w for w in r2.warnings)
    with pytest.raises(carbonkit.ConfigError, match="add_units takes a finite number >= 0"):
        make().add_units(-1)
    with pytest.raises(carbonkit.ConfigError, match="embodied"):
        make(embodied={"gpu": {"kgco2e": 1}})


def test_job_identity_from_launchers():
    """The run-log header records the job id and ranks that report aggregation counts by."""
    from carbonkit.tracker import _job_identity

    assert _job_identity({}, {"SLURM_JOB_ID": "77", "SLURM_PROCID": "3", "SLURM_LOCALID": "1"}) == {
        "job": "77", "rank": 3, "local_rank": 1,
    }
    assert _job_identity({"job": "mine"}, {"TORCHELASTIC_RUN_ID": "abc", "RANK": "0"})["job"] == "mine"
    assert _job_identity({}, {"TORCHELASTIC_RUN_ID": "none"})["job"] is None
