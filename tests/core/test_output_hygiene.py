"""What the tracker writes: no secrets, no terminal control sequences, no world-writable logs, and a
run log that survives its folder being deleted."""

from __future__ import annotations

import json
import shutil
import stat
import time

import carbonkit
import carbonkit.runlog as runlog
from carbonkit.default_plugins.console_reporter import ConsoleReporter
from carbonkit.testing import FakeIntensity, FakePowerSource, mock_http_client


def make(**kwargs):
    kwargs.setdefault("sources", [FakePowerSource(watts=[100.0])])
    kwargs.setdefault("provider", FakeIntensity(g_per_kwh=200.0))
    kwargs.setdefault("location", "XX")
    kwargs.setdefault("interval_s", 0.01)
    kwargs.setdefault("http_client", mock_http_client())
    return carbonkit.Tracker(**kwargs)


def test_secrets_in_options_never_reach_the_run_log_or_the_report(tmp_path):
    t = make(
        log_dir=tmp_path, reporters=None, quiet=True,
        options={"entsoe_token": "s3cret-token", "endpoint": "https://user:hunter2@api.example/x?api_key=k3y"},
    )
    r = t.stop()
    (log,) = tmp_path.glob("*.jsonl")
    text = log.read_text() + json.dumps(r.to_dict())
    assert "s3cret-token" not in text and "hunter2" not in text and "k3y" not in text
    header = json.loads(log.read_text().splitlines()[0])
    assert header["config"]["options"]["entsoe_token"] == "'***'"


def test_run_logs_are_never_world_writable_whatever_the_umask(tmp_path):
    import os

    old = os.umask(0)
    try:
        make(log_dir=tmp_path / "logs", reporters=None, quiet=True).stop()
    finally:
        os.umask(old)
    (log,) = (tmp_path / "logs").glob("*.jsonl")
    assert not log.stat().st_mode & stat.S_IWOTH
    assert not (tmp_path / "logs").stat().st_mode & stat.S_IWOTH


def test_console_output_has_no_terminal_control_sequences_and_shows_the_pue(capfd):
    """A source label carrying escape sequences (clear screen, a window title) is printed inert."""
    evil = FakePowerSource(watts=[50.0], name="evil:gpu\x1b[2J\x1b]0;owned\x07", component="gpu",
                           labels=["gpu0\r\x1b[1A"])
    t = make(sources=[FakePowerSource(), evil], reporters=[ConsoleReporter()], epochs=2, pue=1.3)
    t.epoch_start()
    t.epoch_end()
    t.stop()
    _, err = capfd.readouterr()
    assert "\x1b" not in err and "\r" not in err and "\x07" not in err
    assert "evil:gpu" in err
    assert "x PUE 1.3" in err.split("Predicted consumption")[1].split("\n")[2]


def test_a_log_folder_deleted_mid_run_gives_one_warning_and_the_run_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(runlog, "CHECK_EVERY_S", 0.0)  # look on every write rather than every 5 s
    folder = tmp_path / "logs"
    t = make(log_dir=folder, reporters=None, quiet=True, epochs=3)
    t.epoch_start()
    t.epoch_end()
    limit = time.monotonic() + 30  # the first epoch is written within milliseconds
    while not list(folder.glob("*.jsonl")) or '"type":"epoch"' not in next(folder.glob("*.jsonl")).read_text():
        assert time.monotonic() < limit, "the first epoch never reached the run log"
        time.sleep(0.01)
    shutil.rmtree(folder)
    for _ in range(2):
        t.epoch_start()
        t.epoch_end()
    r = t.stop()
    warnings = [w for w in r.warnings if "was deleted during the run" in w]
    assert len(warnings) == 1
    (log,) = folder.glob("*.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[0]["type"] == "header" and records[-1]["type"] == "report"
    assert len(records[-1]["report"]["epochs"]) == 3
