"""No plugin can hang, crash or exit the caller; readings are validated; energy and duration share one span.

Every blocking fake waits on an Event that the test sets at the end, so no thread is left stuck
after the test, and no assertion depends on a sleep: bounds on time are generous (several times
what the deadline is) so that a loaded machine passes them every time.
"""

from __future__ import annotations

import json
import math
import threading
import time

import pytest

import carbonkit
from carbonkit import hookimpl
from carbonkit.testing import FakeIntensity, FakePowerSource, RecordingReporter, mock_http_client
from carbonkit.tracker import READ_DEADLINE_S


def make(**kwargs):
    kwargs.setdefault("sources", [FakePowerSource(watts=[100.0])])
    kwargs.setdefault("provider", FakeIntensity(g_per_kwh=200.0))
    kwargs.setdefault("reporters", [])
    kwargs.setdefault("location", "XX")
    kwargs.setdefault("interval_s", 0.01)
    kwargs.setdefault("http_client", mock_http_client())
    return carbonkit.Tracker(**kwargs)


@pytest.fixture
def release():
    """An Event every blocking fake waits on; set when the test ends, so no thread stays stuck."""
    event = threading.Event()
    yield event
    event.set()


class Blocking(FakePowerSource):
    """A source whose read() blocks once ``block`` is set, until ``release`` is."""

    def __init__(self, release: threading.Event, *, after: int = 0, **kwargs):
        super().__init__(**kwargs)
        self._release = release
        self._after = after
        self.blocked = threading.Event()

    def read(self):
        if self.reads >= self._after:
            self.blocked.set()
            self._release.wait(60)
        return super().read()


def test_a_source_that_blocks_mid_run_is_abandoned_and_the_run_goes_on(release):
    """The blocked source is cut short with a reason; the others, the epochs and stop() go on."""
    stuck = Blocking(release, after=3, name="stuck:gpu", component="gpu", watts=[300.0])
    good = FakePowerSource(watts=[100.0], name="good:cpu")
    rec = RecordingReporter()
    t = make(sources=[good, stuck], reporters=[rec], epochs=3)
    assert stuck.blocked.wait(30)
    for _ in range(3):
        t.epoch_start()
        t.epoch_end()
    a = time.monotonic()
    r = t.stop(timeout_s=10.0)
    took = time.monotonic() - a
    assert took < 10.0
    assert len(r.epochs) == 3  # the epochs were not held back by the blocked source
    assert any("stuck:gpu blocked in read()" in c for c in r.cut_short)
    assert sum("stuck:gpu" in w for w in r.warnings) == 1
    reads_before = good.reads
    assert reads_before > 3  # the good source was read after the other one blocked
    assert r.components["cpu"].it_energy_kwh * 3.6e6 == pytest.approx(100.0 * r.duration_s, rel=1e-6)
    assert r.components["gpu"].it_energy_kwh > 0  # what it measured before it blocked is kept
    assert rec.events("on_report")


def test_a_first_read_that_blocks_does_not_hang_the_constructor(release):
    """Tracker() returns within the read deadline (plus margin) when a source blocks at once."""
    stuck = Blocking(release, after=0, name="stuck:gpu", component="gpu")
    a = time.monotonic()
    t = make(sources=[FakePowerSource(), stuck])
    assert time.monotonic() - a < READ_DEADLINE_S + 8
    r = t.stop()
    assert any("stuck:gpu" in c for c in r.cut_short)
    assert r.energy_kwh > 0


@pytest.mark.parametrize(
    "value, words",
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-5.0, "negative"),
        (1e300, "above the ceiling"),
        ("12", "not a number"),
        (None, "not a number"),
    ],
)
def test_a_bad_reading_is_rejected_with_one_warning_and_no_nan_anywhere(tmp_path, value, words):
    """NaN, infinity, negative, absurd, string and None readings never reach a figure."""
    class Flaky(FakePowerSource):  # returns what it is given, unconverted, every second read
        def read(self):
            self.reads += 1
            return [value] if self.reads % 2 == 0 else [80.0]

    src = Flaky(name="flaky:cpu", labels=["cpu0"])
    t = make(sources=[src], log_dir=tmp_path, reporters=None, quiet=True, epochs=2)
    for _ in range(2):
        t.epoch_start()
        t.epoch_end()
    r = t.stop()
    data = r.to_dict()
    text = json.dumps(data, allow_nan=False)  # raises on NaN or infinity
    assert "NaN" not in text and "Infinity" not in text
    assert math.isfinite(r.energy_kwh) and math.isfinite(r.co2eq_g) and r.energy_kwh >= 0
    # Only the good readings count: 80 W over the whole run, give or take the rejected gaps.
    assert r.it_energy_kwh * 3.6e6 <= 80.0 * r.duration_s * 1.0001
    warnings = [w for w in r.warnings if "flaky:cpu" in w and "rejected" in w]
    assert warnings and words in warnings[0].lower()
    (log,) = tmp_path.glob("*.jsonl")
    lines = log.read_text().splitlines()
    for line in lines:
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in the run log"))
    assert json.loads(lines[-1])["type"] == "report"  # the log never switched itself off
    assert sum(1 for line in lines if json.loads(line)["type"] == "epoch") == 2


def test_an_energy_counter_that_jumps_impossibly_is_not_counted():
    """A counter advancing faster than the ceiling allows is rebased, not counted."""
    state = {"j": 0.0, "n": 0}

    def counter():
        state["n"] += 1
        state["j"] += 1.0 if state["n"] != 5 else 1e12  # one absurd jump
        return [state["j"]]

    src = FakePowerSource(watts=counter, kind="energy", name="jumpy:cpu", labels=["cpu0"])
    t = make(sources=[src])
    while state["n"] < 8:
        time.sleep(0.01)
    r = t.stop()
    assert r.it_energy_kwh * 3.6e6 < 1e6
    assert any("jumpy:cpu" in w and "advanced" in w for w in r.warnings)


def test_a_source_that_raises_is_stopped_and_keeps_what_it_measured():
    """read() raising (even SystemExit) stops that source with one warning; the process lives on."""

    class Exiting(FakePowerSource):
        def read(self):
            if self.reads >= 2:
                raise SystemExit(3)
            return super().read()

    src = Exiting(watts=[50.0], name="exit:gpu", component="gpu")
    t = make(sources=[FakePowerSource(), src])
    while src.reads < 2:
        time.sleep(0.01)
    r = t.stop()
    assert any("exit:gpu failed" in w and "sys.exit(3)" in w for w in r.warnings)
    assert r.components["gpu"].it_energy_kwh > 0


def test_a_reporter_that_blocks_is_disabled_and_delays_nothing_else(release, tmp_path, monkeypatch):
    """A reporter stuck in on_sample: the run log still gets every epoch; stop() returns in time."""
    import carbonkit._dispatch as dispatch

    monkeypatch.setattr(dispatch, "REPORTER_DEADLINE_S", 0.5)

    class Stuck(carbonkit.ReporterBase):
        name = "stuck"
        entered = threading.Event()

        def on_sample(self, t_s, readings):
            self.entered.set()
            release.wait(60)

    from carbonkit.runlog import RunLogWriter

    writer = RunLogWriter(tmp_path)
    t = make(reporters=[Stuck(), writer], epochs=4)
    assert Stuck.entered.wait(30)
    for _ in range(4):
        t.epoch_start()
        t.epoch_end()
    a = time.monotonic()
    r = t.stop(timeout_s=8.0)
    assert time.monotonic() - a < 8.0 + 1.0
    assert len(r.epochs) == 4
    assert any("reporter 'stuck'" in w and "disabled" in w for w in r.warnings), r.warnings
    records = [json.loads(line) for line in writer.path.read_text().splitlines()]
    assert [rec["type"] for rec in records].count("epoch") == 4
    assert records[-1]["type"] == "report"


def test_a_reporter_that_raises_is_disabled_with_one_warning():
    class Broken(carbonkit.ReporterBase):
        name = "broken"

        def on_start(self, run):
            raise SystemExit("reporter exit")

    rec = RecordingReporter()
    r = make(reporters=[Broken(), rec]).stop()
    assert sum("reporter 'broken'" in w for w in r.warnings) == 1
    assert rec.events("on_report")


# -- plugins in process: hooks that block, raise, exit or break the contract ------------------


class Grid:
    __name__ = "grid"

    @hookimpl
    def register_power_sources(self):
        return [FakePowerSource(name="grid:cpu", watts=[80.0])]


def test_hooks_that_block_or_exit_drop_only_their_plugin(release):
    """One plugin blocks in a hook, another calls sys.exit: Tracker() returns, both are named."""

    class Hang:
        __name__ = "hang"

        @hookimpl
        def register_power_sources(self):
            release.wait(60)
            return []

    class Exit:
        __name__ = "exiter"

        @hookimpl
        def register_reporters(self):
            raise SystemExit(1)

    class NoDevices(FakePowerSource):
        def devices(self):
            return 1 / 0

    class BadDevices:
        __name__ = "baddev"

        @hookimpl
        def register_power_sources(self):
            return [NoDevices(name="baddev:gpu", component="gpu")]

    pm = carbonkit.make_plugin_manager(plugins=[Hang(), Exit(), BadDevices(), Grid()], entrypoints=False)
    a = time.monotonic()
    t = carbonkit.Tracker(plugin_manager=pm, location="XX", quiet=True, interval_s=0.01,
                          http_client=mock_http_client())
    took = time.monotonic() - a
    r = t.stop()
    assert took < 20
    assert r.components["cpu"].sources == ("grid:cpu",)
    text = "\n".join(r.warnings)
    assert "'hang' was dropped: blocked for more than" in text and "register_power_sources" in text
    assert "'exiter' was dropped: called sys.exit(1) in register_reporters" in text
    assert "baddev:gpu" in text and "ZeroDivisionError" in text


def test_only_when_nothing_is_left_is_there_no_power_source_error():
    class Raises:
        __name__ = "raises"

        @hookimpl
        def register_power_sources(self):
            raise RuntimeError("driver gone")

    pm = carbonkit.make_plugin_manager(plugins=[Raises()], entrypoints=False)
    with pytest.raises(carbonkit.NoPowerSourceError):
        carbonkit.Tracker(plugin_manager=pm, location="XX", quiet=True, http_client=mock_http_client())


# -- one span ---------------------------------------------------------------------------------


class SlowGrid:
    """A plugin whose discovery takes a while: construction time must not be in the span."""

    __name__ = "slow_grid"

    def __init__(self, source):
        self.source = source

    @hookimpl
    def register_power_sources(self):
        time.sleep(0.3)
        return [self.source]


@pytest.mark.parametrize("kind", ["power", "energy"])
def test_constant_power_gives_power_times_duration_for_one_span(kind):
    """A device at constant 80 W: energy = 80 W x duration_s within 1 %, for counters and power."""
    if kind == "power":
        src = FakePowerSource(watts=[80.0], name="const:cpu")
    else:
        t0 = time.monotonic()
        src = FakePowerSource(watts=lambda: [80.0 * (time.monotonic() - t0)], kind="energy", name="const:cpu",
                              labels=["cpu0"])
    pm = carbonkit.make_plugin_manager(plugins=[SlowGrid(src)], entrypoints=False)
    t = carbonkit.Tracker(plugin_manager=pm, location="XX", quiet=True, pue=1.0, interval_s=0.2,
                          http_client=mock_http_client())
    time.sleep(3.0)  # the run itself: what is measured, not a synchronisation
    r = t.stop()
    assert r.it_energy_kwh * 3.6e6 == pytest.approx(80.0 * r.duration_s, rel=0.01)


class RaisesInReporters:
    __name__ = "raises"

    @hookimpl
    def register_reporters(self):
        raise RuntimeError("exporter down")


def test_quiet_means_no_console_output_at_all_but_warnings_are_kept(capfd, caplog, tmp_path):
    """quiet=True: nothing on stdout or stderr, even with warnings; they reach the report, the
    run log and logging."""
    import logging

    pm = carbonkit.make_plugin_manager(plugins=[RaisesInReporters(), Grid()], entrypoints=False, log_failures=False)
    with caplog.at_level(logging.WARNING, logger="carbonkit"):
        t = carbonkit.Tracker(plugin_manager=pm, location="XX", quiet=True, log_dir=tmp_path, interval_s=0.01,
                              http_client=mock_http_client())
        r = t.stop()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert any("'raises' was dropped" in w for w in r.warnings)
    assert "'raises' was dropped" in caplog.text
    (log,) = tmp_path.glob("*.jsonl")
    assert "'raises' was dropped" in log.read_text()


def test_not_quiet_prints_each_warning_once_on_stderr(capfd):
    pm = carbonkit.make_plugin_manager(plugins=[RaisesInReporters(), Grid()], entrypoints=False, log_failures=False)
    carbonkit.Tracker(plugin_manager=pm, location="XX", interval_s=0.01, http_client=mock_http_client()).stop()
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("'raises' was dropped") == 1


def test_unknown_names_in_the_plugin_lists_are_warned_about(monkeypatch):
    monkeypatch.setenv("CARBONKIT_DISABLE_PLUGINS", "console_reporterr")
    monkeypatch.setenv("CARBONKIT_PLUGINS", "rapl,nvlm")
    pm = carbonkit.make_plugin_manager(log_failures=False)
    notes = pm.carbonkit_unknown_names
    assert any("CARBONKIT_DISABLE_PLUGINS names 'console_reporterr'" in n and "'console_reporter'" in n for n in notes)
    assert any("CARBONKIT_PLUGINS names 'nvlm'" in n and "'nvml'" in n for n in notes)
    assert not any("'rapl'" in n.split("names")[1][:8] for n in notes)
    r = carbonkit.Tracker(plugin_manager=pm, sources=[FakePowerSource()], location="XX", quiet=True,
                          http_client=mock_http_client()).stop()
    assert any("nvlm" in w for w in r.warnings)


def test_pause_while_high_works_right_after_a_short_first_epoch():
    """The README's pattern: the prediction it needs is made as soon as the first epoch ends."""
    from datetime import datetime, timedelta, timezone

    t = make(epochs=5, provider=FakeIntensity(g_per_kwh=100.0, forecast_step_s=300.0, forecast_horizon_s=7200.0))
    t.epoch_start()
    t.epoch_end()  # a very short first epoch
    outcome = t.pause_while_high(threshold=500.0, deadline=datetime.now(timezone.utc) + timedelta(hours=1))
    assert outcome.paused_s == 0.0  # 100 g/kWh is below the threshold: no pause, and no error
    r = t.stop()
    assert r.prediction is not None and r.prediction.based_on == 1


def test_stopped_trackers_leave_no_thread_behind():
    """Workers, reporters, sampler and intensity threads all end once a tracker has stopped."""
    before = set(threading.enumerate())  # other tests' abandoned threads are not this test's
    for _ in range(5):
        pm = carbonkit.make_plugin_manager(plugins=[Grid()], entrypoints=False)
        carbonkit.Tracker(plugin_manager=pm, location="XX", quiet=True, interval_s=0.01, reporters=[RecordingReporter()],
                          http_client=mock_http_client()).stop()
    limit = time.monotonic() + 30
    while mine := [t.name for t in threading.enumerate() if t.name.startswith("carbonkit") and t not in before]:
        assert time.monotonic() < limit, mine
        time.sleep(0.01)
