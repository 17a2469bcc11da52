"""Run logs: written as the run goes, readable after SIGKILL, read back by load_run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import carbonkit
from carbonkit.runlog import iter_records
from carbonkit.testing import FakeIntensity, FakePowerSource

KILLED_RUN = """
import sys, time
import carbonkit
from carbonkit.testing import FakeIntensity, FakePowerSource
t = carbonkit.Tracker(epochs=10, sources=[FakePowerSource(watts=[100.0, 50.0])], provider=FakeIntensity(g_per_kwh=250.0),
                      reporters=None, quiet=True, location="XX", interval_s=0.02, log_dir=sys.argv[1], pue=1.0)
for i in range(3):
    t.epoch_start(); time.sleep(0.1); t.epoch_end()
time.sleep(0.3)
print("ready", flush=True)
time.sleep(60)
"""


def only_log(folder):
    (path,) = list(folder.glob("*.jsonl"))
    return path


def test_completed_run_log_round_trips(tmp_path):
    """A stopped run's log ends with its report; load_run returns exactly that report."""
    t = carbonkit.Tracker(
        epochs=2, sources=[FakePowerSource()], provider=FakeIntensity(), reporters=None, quiet=True,
        location="XX", interval_s=0.01, log_dir=tmp_path, plugin_manager=carbonkit.testing.plugin_manager_for_tests(),
    )
    for _ in range(2):
        t.epoch_start()
        time.sleep(0.05)
        t.epoch_end()
    report = t.stop()
    path = only_log(tmp_path)
    kinds = [r["type"] for r in iter_records(path)]
    assert kinds[0] == "header" and kinds[-1] == "report"
    assert {"sample", "intensity", "epoch", "prediction"} <= set(kinds)
    assert carbonkit.load_run(path) == report


def test_killed_run_is_recovered_from_its_raw_readings(tmp_path):
    """SIGKILL mid-run: load_run recomputes the finished epochs and the energy so far."""
    with subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path)], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline().strip() == "ready"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    report = carbonkit.load_run(only_log(tmp_path))
    assert report.completed is False
    assert [e.index for e in report.epochs] == [0, 1, 2]
    for e in report.epochs:
        assert e.it_energy_kwh * 3.6e6 == pytest.approx(150.0 * e.duration_s, rel=1e-3)
        assert e.co2eq_g == pytest.approx(e.energy_kwh * 250.0, rel=1e-6)
    assert report.it_energy_kwh * 3.6e6 == pytest.approx(150.0 * report.duration_s, rel=1e-3)
    assert report.prediction is not None and report.prediction.epochs == 10
    assert any("did not stop" in w for w in report.warnings)


def test_torn_last_line_is_ignored(tmp_path):
    """A half-written last line (the kill came mid-write) does not stop the log being read."""
    t = carbonkit.Tracker(
        sources=[FakePowerSource()], provider=FakeIntensity(), reporters=[carbonkit.runlog.RunLogWriter(tmp_path)],
        location="XX", interval_s=0.01,
    )
    time.sleep(0.05)
    t.stop()
    path = only_log(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][:25])  # drop the report, tear a line
    report = carbonkit.load_run(path)
    assert report.completed is False and report.it_energy_kwh > 0


def test_not_a_run_log_is_a_clear_error(tmp_path):
    """A file that is not a run log raises RunLogError naming it."""
    bad = tmp_path / "x.jsonl"
    bad.write_text(json.dumps({"type": "sample"}) + "\n")
    with pytest.raises(carbonkit.RunLogError, match="not a carbonkit run log"):
        carbonkit.load_run(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(carbonkit.RunLogError):
        carbonkit.load_run(empty)
