"""`carbonkit run --start-within`: a signal while waiting for the best start always ends carbonkit
cleanly (130 for Ctrl-C, 128 + N for the others) and the command never runs.

Real ``python -m carbonkit run --start-within 12h`` processes plan on the GB forecast of a local
stand-in of the Carbon Intensity API (``tests/standins.py``, real response shapes) whose trough is
six hours ahead, so every run waits. The test synchronises on the line carbonkit prints when it
starts waiting ("starting at ...") and sends the signal at once, 20 times: the signal lands at
whatever point carbonkit has reached, which is what used to break (a KeyboardInterrupt raised
between printing that line and entering the wait's ``try``, or inside its handler).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import IO

import pytest
from standins import StandIn

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TIMEOUT_S = 60.0
MARKER = "the-command-ran"
ROUNDS = 20


@pytest.fixture(scope="module")
def trough_api() -> Iterator[StandIn]:
    """The GB stand-in with its lowest intensity six hours from now (a V around the trough)."""
    trough = datetime.now(timezone.utc) + timedelta(hours=6)

    def curve(when: datetime) -> int:
        return int(100 + 20 * abs((when - trough).total_seconds()) / 3600)

    with StandIn(gb_curve=curve) as standin:
        yield standin


def env_for(standin: StandIn) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env.update(CARBONKIT_GB_API_URL=f"{standin.url}/gb", CARBONKIT_LOCATION="GB", CARBONKIT_QUIET="1")
    return env


def wait_for_line(stream: IO[str], needle: str) -> tuple[str, str]:
    """Read ``stream`` until a line containing ``needle``; return that line and all read so far.
    Read by a thread, so that a carbonkit that never prints it fails the test instead of hanging it."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)
            if needle in line:
                return
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen = ""
    while True:
        try:
            line = lines.get(timeout=TIMEOUT_S)
        except queue.Empty:
            pytest.fail(f"carbonkit did not print {needle!r} within {TIMEOUT_S} s; stderr so far: {seen!r}")
        if line is None:
            pytest.fail(f"carbonkit ended before printing {needle!r}; stderr: {seen!r}")
        seen += line
        if needle in line:
            return line, seen


def start_waiting(standin: StandIn) -> tuple[subprocess.Popen[str], str]:
    """Start carbonkit run --start-within and return once it says it is waiting."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbonkit", "run", "--start-within", "12h", "--expected-duration", "1h", "--",
         sys.executable, "-c", f"print({MARKER!r})"],
        env=env_for(standin), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # no controlling terminal: nothing but the test signals it
    )
    assert proc.stderr is not None
    try:
        _, seen = wait_for_line(proc.stderr, "starting at")
    except BaseException:
        proc.kill()
        proc.communicate(timeout=TIMEOUT_S)
        raise
    return proc, seen


def finish(proc: subprocess.Popen[str], seen: str) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=TIMEOUT_S)
        pytest.fail(f"carbonkit kept waiting after the signal; stderr: {seen + err!r}")
    return proc.returncode, out, seen + err


def test_ctrl_c_while_waiting_always_exits_130_without_running_the_command(trough_api):
    """SIGINT right after "starting at", 20 times (every other time twice in a row, as an
    impatient Ctrl-C Ctrl-C): always 130, one "cancelled" line, no traceback, no command."""
    for round_ in range(ROUNDS):
        proc, seen = start_waiting(trough_api)
        assert "Ctrl-C cancels" in seen
        proc.send_signal(signal.SIGINT)
        if round_ % 2:
            proc.send_signal(signal.SIGINT)
        status, out, err = finish(proc, seen)
        assert status == 130, f"round {round_}: exit {status}; stderr: {err}"
        assert "cancelled while waiting (SIGINT); the command was not run" in err, f"round {round_}: {err}"
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, f"round {round_}: {err}"
        assert MARKER not in out and out == "", f"round {round_}: stdout {out!r}"


@pytest.mark.parametrize(("name", "status"), [("SIGTERM", 143), ("SIGHUP", 129), ("SIGQUIT", 131)])
def test_other_ending_signals_while_waiting_exit_128_plus_n(trough_api, name, status):
    """SIGTERM, SIGHUP or SIGQUIT while waiting: carbonkit ends at once with 128 + N, and the
    command never runs (there is nothing to pass the signal on to yet)."""
    proc, seen = start_waiting(trough_api)
    proc.send_signal(getattr(signal, name))
    code, out, err = finish(proc, seen)
    assert code == status, err
    assert f"cancelled while waiting ({name})" in err and out == ""


def test_sigusr1_while_waiting_does_not_end_the_wait(trough_api):
    """SIGUSR1 (meant for the command, which is not running yet) does not cancel the wait; a
    SIGTERM after it does, and carbonkit says SIGTERM, not SIGUSR1."""
    proc, seen = start_waiting(trough_api)
    proc.send_signal(signal.SIGUSR1)
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc, seen)
    assert code == 143, err
    assert "cancelled while waiting (SIGTERM)" in err and out == ""
