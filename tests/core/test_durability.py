"""Durable epochs and graceful ends, with real signals sent to real processes.

Each test starts a Python process that tracks a run with a run log, waits until the process says
it is ready, then waits for what must be on disk (polling the file, with a generous limit) before
it sends the signal: nothing depends on a sleep being long enough.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import carbonkit

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading, time
    import carbonkit
    from carbonkit.testing import FakeIntensity, FakePowerSource

    log_dir, mode = sys.argv[1], sys.argv[2]
    hang = threading.Event()

    class Hanging(FakeIntensity):  # a live API that never answers: the intensity state stays unknown
        def current(self, zone):
            hang.wait(3600)

    if mode == "user-handler":
        def handler(signum, frame):
            print("user handler", signum, flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, handler)

    def run(t):
        for _ in range(3):
            t.epoch_start()
            time.sleep(0.02)
            t.epoch_end()
        print("ready", flush=True)
        while True:
            time.sleep(0.05)

    kwargs = dict(sources=[FakePowerSource(watts=[150.0])], provider=Hanging(name="hanging"), reporters=None,
                  location="XX", log_dir=log_dir, interval_s=30.0, quiet=True, epochs=10)
    if mode == "with":
        with carbonkit.Tracker(**kwargs) as t:
            run(t)
    else:
        run(carbonkit.Tracker(**kwargs))
    """
)


def start(tmp_path: Path, mode: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path), mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        pytest.fail(f"the tracked process did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc


def end(proc: subprocess.Popen[str], signum: int) -> tuple[str, str]:
    """Send ``signum``, wait (bounded) for the process to end, never leave it running."""
    proc.send_signal(signum)
    try:
        return proc.communicate(timeout=60)
    finally:
        proc.kill()


def records(tmp_path: Path) -> list[dict]:
    logs = list(tmp_path.glob("*.jsonl"))
    if len(logs) != 1:
        return []
    out = []
    for line in logs[0].read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def wait_for_epochs(tmp_path: Path, n: int, limit_s: float) -> float:
    """Poll the run log until it holds ``n`` epoch records; return how long that took."""
    a = time.monotonic()
    while time.monotonic() - a < limit_s:
        if sum(r.get("type") == "epoch" for r in records(tmp_path)) >= n:
            return time.monotonic() - a
        time.sleep(0.02)
    pytest.fail(f"{n} epochs were not in the run log within {limit_s} s: {records(tmp_path)}")


def test_epochs_reach_the_log_within_one_interval_and_survive_sigkill(tmp_path):
    """interval_s is 30 s and the intensity API never answers: the epochs are on disk long before
    the first regular sample, and load_run recovers all of them after SIGKILL."""
    proc = start(tmp_path, "plain")
    try:
        took = wait_for_epochs(tmp_path, 3, limit_s=25.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert took < 25.0
    report = carbonkit.load_run(next(tmp_path.glob("*.jsonl")))
    assert report.completed is False
    assert [e.index for e in report.epochs] == [0, 1, 2]
    for e in report.epochs:
        assert e.it_energy_kwh * 3.6e6 == pytest.approx(150.0 * e.duration_s, rel=1e-6)


def test_sigterm_writes_the_report_and_ends_the_process_as_sigterm_does(tmp_path):
    proc = start(tmp_path, "plain")
    wait_for_epochs(tmp_path, 3, limit_s=25.0)
    end(proc, signal.SIGTERM)
    assert proc.returncode == -signal.SIGTERM
    last = records(tmp_path)[-1]
    assert last["type"] == "report"
    assert last["report"]["ended_by"] == "SIGTERM"
    assert len(last["report"]["epochs"]) == 3
    report = carbonkit.load_run(next(tmp_path.glob("*.jsonl")))
    assert [e.index for e in report.epochs] == [0, 1, 2]


def test_sigterm_chains_to_the_handler_the_program_installed(tmp_path):
    proc = start(tmp_path, "user-handler")
    wait_for_epochs(tmp_path, 3, limit_s=25.0)
    out, _ = end(proc, signal.SIGTERM)
    assert "user handler 15" in out
    assert proc.returncode == 0
    last = records(tmp_path)[-1]
    assert last["type"] == "report" and last["report"]["ended_by"] == "SIGTERM"


@pytest.mark.parametrize("mode", ["with", "plain"])
def test_ctrl_c_writes_the_report_inside_and_outside_a_with_block(tmp_path, mode):
    """KeyboardInterrupt leaves the with block (stop) or ends the interpreter (atexit): both
    write the final report with every finished epoch."""
    proc = start(tmp_path, mode)
    wait_for_epochs(tmp_path, 3, limit_s=25.0)
    _, err = end(proc, signal.SIGINT)
    assert "KeyboardInterrupt" in err
    last = records(tmp_path)[-1]
    assert last["type"] == "report"
    assert len(last["report"]["epochs"]) == 3
    assert last["report"]["ended_by"] == (None if mode == "with" else "exit")
