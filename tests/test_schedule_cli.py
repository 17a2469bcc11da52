"""Carbon-aware scheduling end to end: `carbonkit schedule` and `run --start-within` on a local GB API stand-in,
and `Tracker.pause_while_high` inside a training loop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from standins import StandIn, gb_value

import carbonkit
from carbonkit.testing import FakeIntensity, FakePowerSource, RecordingReporter

pytestmark = pytest.mark.entrypoints


def env_for(standin: StandIn) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env["CARBONKIT_GB_API_URL"] = f"{standin.url}/gb"
    return env


def step_mean(start: datetime, hours: float) -> float:
    """Mean of the stand-in's half-hourly forecast over [start, start + hours), as a step function."""
    end = start + timedelta(hours=hours)
    t, total = start, 0.0
    while t < end:
        slot = t.replace(minute=t.minute - t.minute % 30, second=0, microsecond=0)
        nxt = min(slot + timedelta(minutes=30), end)
        total += gb_value(slot) * (nxt - t).total_seconds()
        t = nxt
    return total / (hours * 3600)


def test_schedule_gb_json_finds_the_best_start_in_the_forecast():
    """`schedule --location GB --duration 3h --window 12h --json` plans on the GB forecast."""
    with StandIn() as standin:
        proc = subprocess.run(
            [sys.executable, "-m", "carbonkit", "schedule", "--location", "GB", "--duration", "3h", "--window", "12h", "--json"],
            env=env_for(standin), capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout.splitlines()[-1])
    assert plan["algorithm"] == "flexible_start"
    start = datetime.fromisoformat(plan["start"].replace("Z", "+00:00"))
    now = datetime.now(timezone.utc)
    assert now - timedelta(minutes=5) <= start <= now + timedelta(hours=12)
    assert plan["g_per_kwh"] == pytest.approx(step_mean(start, 3), rel=1e-6)
    # the best over every half-hour boundary in the window (and now) is what was chosen
    candidates = [start] + [
        (now + timedelta(minutes=30 * k)).replace(minute=(now + timedelta(minutes=30 * k)).minute // 30 * 30, second=0, microsecond=0)
        for k in range(1, 25)
    ]
    best = min(step_mean(c, 3) for c in candidates if now <= c <= now + timedelta(hours=12) or c == start)
    assert plan["g_per_kwh"] <= best + 1e-6
    assert plan["now_g_per_kwh"] >= plan["g_per_kwh"] and 0 <= plan["saving"] < 1
    assert [start.isoformat().replace("+00:00", "Z")[:16]] == [plan["intervals"][0][0][:16]]


def test_schedule_format_slurm_prints_an_sbatch_begin_value():
    """`--format slurm` prints YYYY-MM-DDTHH:MM:SS, the form `sbatch --begin` accepts."""
    with StandIn() as standin:
        proc = subprocess.run(
            [sys.executable, "-m", "carbonkit", "schedule", "--location", "GB", "--duration", "3h", "--window", "12h", "--format", "slurm"],
            env=env_for(standin), capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", proc.stdout.strip().splitlines()[-1])


def test_run_start_within_waits_and_ctrl_c_cancels_cleanly():
    """`run --start-within` waits for the trough; Ctrl-C while waiting exits 130 and never runs the command."""
    trough = datetime.now(timezone.utc) + timedelta(hours=6)

    def curve(when: datetime) -> int:
        return int(100 + 20 * abs((when - trough).total_seconds()) / 3600)

    with StandIn(gb_curve=curve) as standin:
        env = env_for(standin)
        env.update(CARBONKIT_LOCATION="GB", CARBONKIT_QUIET="1")
        marker = "ran-the-command"
        with subprocess.Popen(
            [sys.executable, "-m", "carbonkit", "run", "--start-within", "12h", "--expected-duration", "1h", "--",
             sys.executable, "-c", f"print({marker!r})"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as proc:
            timer = threading.Timer(120, proc.kill)  # never wait forever on a line that does not come
            timer.start()
            try:
                line = ""
                while "starting at" not in line:
                    line = proc.stderr.readline()
                    if not line:
                        break
                assert "starting at" in line, line
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=60)
            finally:
                timer.cancel()
                proc.kill()
    assert proc.returncode == 130
    assert marker not in out and "cancelled while waiting" in err


class DropsAfterFirstFetch:
    """Intensity 500 g/kWh until ``after_s`` past the provider's first forecast request, then 100.

    The drop is placed when the tracker first asks, not when the test starts, and the test's
    clock for the pause (see :meth:`clock_from_fetch`) starts at that request: however long a
    loaded machine takes between the fetch and the pause, the pause sees the drop ``after_s``
    ahead."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self.fetched_at: datetime | None = None
        self.provider = FakeIntensity(g_per_kwh=self.value, forecast_step_s=0.1, forecast_horizon_s=30.0)

    def value(self, when: datetime) -> float:
        if self.fetched_at is None:
            self.fetched_at = datetime.now(timezone.utc)
        return 500.0 if when < self.fetched_at + timedelta(seconds=self.after_s) else 100.0

    @property
    def drop(self) -> datetime:
        assert self.fetched_at is not None
        return self.fetched_at + timedelta(seconds=self.after_s)

    def wait_for_forecast(self, tracker: carbonkit.Tracker) -> None:
        """Block until the tracker holds the forecast (a condition, bounded at 30 s)."""
        for _ in range(3000):
            if tracker._latest_forecast:
                return
            time.sleep(0.01)
        pytest.fail("the tracker never received the forecast")

    def clock_from_fetch(self):
        """A clock that reads the fetch time now, and advances with real time from here."""
        shift = datetime.now(timezone.utc) - self.fetched_at
        return lambda: datetime.now(timezone.utc) - shift


def test_pause_while_high_sleeps_until_the_forecast_drops():
    """Inside an epoch, the pause lasts until intensity falls below the threshold; it is not training time."""
    grid = DropsAfterFirstFetch(after_s=1.6)  # pauses under 1 s are not worth it
    rec = RecordingReporter()
    t = carbonkit.Tracker(
        epochs=2, sources=[FakePowerSource()], provider=grid.provider, reporters=[rec], location="XX", interval_s=0.02
    )
    grid.wait_for_forecast(t)
    t.epoch_start()
    called = time.monotonic()
    outcome = t.pause_while_high(
        threshold=300.0, deadline=datetime.now(timezone.utc) + timedelta(hours=1), remaining_s=60,
        clock=grid.clock_from_fetch(),
    )
    returned = time.monotonic()
    t.epoch_end()
    r = t.stop()
    first = outcome.decisions[0]
    assert first.pause and grid.drop <= first.resume_at <= grid.drop + timedelta(seconds=0.15)  # forecast steps are 0.1 s
    assert outcome.paused_s == pytest.approx(first.sleep_s, abs=0.1)
    assert not outcome.decisions[-1].pause
    (epoch,) = r.epochs
    # The epoch's pause is the call's span: at least the time slept, at most the call's own duration.
    assert outcome.paused_s - 1e-3 <= epoch.paused_s <= returned - called + 1e-3
    assert epoch.duration_s == pytest.approx(epoch.end_s - epoch.start_s - epoch.paused_s)
    assert r.paused_s == pytest.approx(epoch.paused_s)


def test_pause_while_high_needs_a_deadline_and_remaining_time():
    """Without a deadline, or without remaining_s before any prediction, it is a clear error."""
    t = carbonkit.Tracker(sources=[FakePowerSource()], provider=FakeIntensity(), reporters=[], location="XX")
    with pytest.raises(carbonkit.ConfigError, match="deadline="):
        t.pause_while_high(threshold=100)
    with pytest.raises(carbonkit.ConfigError, match="remaining_s="):
        t.pause_while_high(threshold=100, deadline=datetime.now(timezone.utc) + timedelta(hours=1))
    t.stop()


def test_pause_is_logged_and_recovered(tmp_path):
    """The pause is a run-log record, and load_run of a killed log keeps it out of training time."""
    grid = DropsAfterFirstFetch(after_s=1.3)
    t = carbonkit.Tracker(
        epochs=2, sources=[FakePowerSource()], provider=grid.provider, reporters=[carbonkit.runlog.RunLogWriter(tmp_path)],
        location="XX", interval_s=0.02,
    )
    grid.wait_for_forecast(t)
    t.epoch_start()
    t.pause_while_high(
        threshold=300.0, deadline=datetime.now(timezone.utc) + timedelta(hours=1), remaining_s=60,
        clock=grid.clock_from_fetch(),
    )
    t.epoch_end()
    r = t.stop()
    (path,) = tmp_path.glob("*.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    assert any('"type":"pause"' in line for line in lines)
    path.write_text("".join(lines[:-1]))  # as if killed before the report
    recovered = carbonkit.load_run(path)
    assert r.paused_s > 1.0
    assert recovered.paused_s == pytest.approx(r.paused_s)
    assert recovered.epochs[0].duration_s == pytest.approx(r.epochs[0].duration_s, abs=1e-6)
