"""`carbonkit run --pause-resume`: a real command's process group is stopped while the intensity is
high and continued when it drops, when the deadline needs it, or when carbonkit is told to end.

The intensity comes from a series file (``--series``, the CSV ``carbonkit schedule`` reads) that
carbonkit reads again whenever it changes: a test makes the grid "clean" by replacing the file.
Every test synchronises on events: carbonkit's "pausing ..." and "resuming ..." lines on stderr,
the command's own lines on stdout, and the command's state in ``/proc/PID/stat`` (polled with a
bound), never on time passing. The commands are started in a new session (no controlling terminal),
as under a batch scheduler.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from child_process import TIMEOUT_S, CarbonkitRun, Lines, report, run_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process states from /proc (Linux)")


#: The command: prints "ready PID", then on SIGINT, SIGTERM or SIGHUP prints "got N" and exits 40 + N;
#: on a line "go" on stdin (or its end) prints "done" and exits 0.
COMMAND = """
import os, signal, sys
def on_signal(signum, frame):
    print(f"got {signum}", flush=True)
    os._exit(40 + signum)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, on_signal)
print(f"ready {os.getpid()}", flush=True)
line = sys.stdin.readline()
if line == "" or line.strip() == "go":
    print("done", flush=True)
    sys.exit(0)
while True:
    signal.pause()
"""


def write_series(path: Path, high_until: datetime | None, *, high: float = 500.0, low: float = 50.0) -> None:
    """Hourly values from two hours ago to six hours ahead: ``high`` before ``high_until``, ``low``
    from then on (None: low everywhere). Replaced atomically, so carbonkit never reads half a file."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = ["time,g_per_kwh"]
    for i in range(-2, 7):
        t = now + timedelta(hours=i)
        rows.append(f"{t.isoformat()},{high if high_until is not None and t < high_until else low}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(rows) + "\n")
    os.replace(tmp, path)


def dirty_for_an_hour(path: Path) -> None:
    write_series(path, datetime.now(timezone.utc) + timedelta(hours=1))


def state(pid: int) -> str | None:
    """The process state letter from /proc/PID/stat (None once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2]


def wait_state(pid: int, want: set[str | None]) -> str | None:
    """Poll the state until it is one of ``want`` (bounded by TIMEOUT_S)."""
    limit = time.monotonic() + TIMEOUT_S
    seen = state(pid)
    while seen not in want:
        if time.monotonic() > limit:
            pytest.fail(f"process {pid} stayed in state {seen!r}, expected one of {sorted(map(str, want))}")
        time.sleep(0.01)
        seen = state(pid)
    return seen


class PausedRun(CarbonkitRun):
    """``python -m carbonkit run --pause-resume ... -- python -c COMMAND``, read line by line."""

    def __init__(self, series: Path, *args: str, stdin: int | None = subprocess.PIPE) -> None:
        super().__init__(
            ["--json", "--pause-resume", "--series", str(series), "--check-every", "0.05s", *args,
             "--", sys.executable, "-c", COMMAND],
            stdin,
        )
        self.pid: int | None = None

    def paused(self) -> int:
        """Wait for the "pausing" line; return the command's pid (the group's leader) once the
        kernel shows it stopped."""
        line = self.err.until("carbonkit: pausing the command (process group ")
        self.pid = int(line.split("process group ")[1].split(")")[0])
        assert wait_state(self.pid, {"T"}) == "T"
        return self.pid

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def cleanup(self) -> None:
        for pid in (self.pid,):
            if pid is not None:
                try:
                    os.killpg(pid, signal.SIGCONT)
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.reap()


@pytest.fixture
def run():
    started: list[PausedRun] = []

    def make(*args: str, **kwargs: int | None) -> PausedRun:
        r = PausedRun(*args, **kwargs)  # type: ignore[arg-type]
        started.append(r)
        return r

    try:
        yield make
    finally:
        for r in started:
            r.cleanup()


def test_paused_while_dirty_resumed_when_the_intensity_drops(run, tmp_path):
    """Above the threshold the command's group is stopped (state T); once the series says the
    intensity is low, it is continued and finishes; the pause is in the report and the run log,
    and not counted as running time."""
    series = tmp_path / "series.csv"
    dirty_for_an_hour(series)
    logs = tmp_path / "logs"
    r = run(series, "--deadline", "10h", "--expected-duration", "1h", "--threshold", "100", "--log-dir", str(logs))
    pid = r.paused()
    write_series(series, None)  # clean from now on
    r.err.until("carbonkit: resuming the command: intensity 50.0 g/kWh is at or below the threshold 100.0")
    assert wait_state(pid, {"S", "R", "D"}) != "T"
    assert r.out.until("ready ") == f"ready {pid}\n"
    r.send("go\n")
    status, out, err = r.finish()
    assert status == 0, err
    assert "done\n" in out
    data = report(out)
    assert data["exit_code"] == 0
    summary = data["pause_resume"]
    assert isinstance(summary, dict)
    assert summary["pauses"] == 1 and summary["threshold"] == 100.0
    assert summary["intensity_from"] == f"the series in {series}"
    paused = float(data["paused_s"])  # type: ignore[arg-type]
    assert 0 < paused <= float(data["duration_s"])  # type: ignore[arg-type]
    assert summary["paused_s"] == pytest.approx(paused, abs=0.5)
    records = [json.loads(line) for f in logs.iterdir() for line in f.read_text().splitlines()]
    pauses = [rec for rec in records if rec["type"] == "pause"]
    assert len(pauses) == 1 and pauses[0]["paused_s"] == pytest.approx(paused, abs=1e-3)
    assert pauses[0]["decisions"][0]["pause"] is True and pauses[0]["decisions"][-1]["pause"] is False
    assert f"paused 1 time(s), {paused:.1f} s in all" in err


def test_deadline_resumes_a_command_the_grid_would_keep_paused(run, tmp_path):
    """Dirty for the next hour, but the deadline is 20 s away and the command needs 10 s: it is
    paused, then continued when the remaining work needs all the time left, and it finishes
    before the deadline."""
    series = tmp_path / "series.csv"
    dirty_for_an_hour(series)
    r = run(series, "--deadline", "20s", "--expected-duration", "10s", "--threshold", "100",
            stdin=subprocess.DEVNULL)
    r.err.until("carbonkit: pausing the command")
    r.err.until("carbonkit: resuming the command: ")
    status, out, err = r.finish()
    assert status == 0, err  # stdin at end of file: the command exits at once
    assert "no slack" in err or "too short to be worth it" in err
    data = report(out)
    summary = data["pause_resume"]
    assert isinstance(summary, dict) and summary["pauses"] == 1
    deadline = datetime.fromisoformat(str(summary["deadline"]))
    end = datetime.fromisoformat(str(data["end_time"]).replace("Z", "+00:00"))
    assert end <= deadline
    assert float(data["paused_s"]) > 0  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "status"), [("SIGTERM", 40 + 15), ("SIGINT", 40 + 2), ("SIGHUP", 40 + 1)])
def test_ending_signal_while_paused_continues_the_command_and_ends_it_cleanly(run, tmp_path, name, status):
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP to carbonkit while the command is stopped: the command
    gets the signal and SIGCONT, handles it and exits; carbonkit reports and exits with its status."""
    series = tmp_path / "series.csv"
    write_series(series, None)
    r = run(series, "--deadline", "10h", "--expected-duration", "1h", "--threshold", "100")
    r.out.until("ready ")  # its handlers are in place
    dirty_for_an_hour(series)
    pid = r.paused()
    os.kill(r.proc.pid, getattr(signal, name))
    code, out, err = r.finish()
    assert f"got {int(getattr(signal, name))}\n" in out, (out, err)
    assert code == status, err
    assert state(pid) in (None, "Z")
    assert "resuming the command: carbonkit was told to end" in err
    data = report(out)
    assert data["exit_code"] == status and float(data["paused_s"]) > 0  # type: ignore[arg-type]


def test_default_sigterm_while_paused_ends_the_command(run, tmp_path):
    """A command that leaves SIGTERM at its default action: stopped, then SIGTERM to carbonkit ends
    it (143), not left stopped with the signal pending."""
    series = tmp_path / "series.csv"
    dirty_for_an_hour(series)
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbonkit", "run", "--pause-resume", "--series", str(series), "--check-every", "0.05s",
         "--deadline", "10h", "--expected-duration", "1h", "--threshold", "100", "--",
         sys.executable, "-c", "import signal\nwhile True: signal.pause()"],
        env=run_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    err = Lines(proc.stderr)
    line = err.until("carbonkit: pausing the command (process group ")
    pid = int(line.split("process group ")[1].split(")")[0])
    try:
        assert wait_state(pid, {"T"}) == "T"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT_S) == 143
        assert state(pid) in (None, "Z")
    finally:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        proc.kill()
        proc.wait(timeout=TIMEOUT_S)
        assert proc.stdout is not None
        proc.stdout.close()
        proc.stderr.close()


def test_carbonkit_killed_while_paused_does_not_leave_the_command_stopped(run, tmp_path):
    """SIGKILL to carbonkit while the group is stopped: the group becomes orphaned with a stopped
    member, so the kernel sends it SIGHUP and SIGCONT (and the parent-death signal is SIGTERM): the
    command wakes, handles a signal and exits; its output (the pipe it holds) ends."""
    series = tmp_path / "series.csv"
    write_series(series, None)
    r = run(series, "--deadline", "10h", "--expected-duration", "1h", "--threshold", "100")
    r.out.until("ready ")
    dirty_for_an_hour(series)
    pid = r.paused()
    os.kill(r.proc.pid, signal.SIGKILL)
    out = r.out.rest()  # ends when the command has exited
    assert any(line in ("got 1\n", "got 15\n") for line in out), out
    assert wait_state(pid, {None, "Z"}) in (None, "Z")


def test_plan_threshold_pauses_for_the_cleaner_hours_ahead(run, tmp_path):
    """The default threshold is the Pause and Resume plan of the remaining work: with a dirty hour
    now and clean hours ahead inside the window, the command waits; when the series changes to a
    clean now, the plan runs now and the command is continued."""
    series = tmp_path / "series.csv"
    dirty_for_an_hour(series)
    r = run(series, "--deadline", "10h", "--expected-duration", "1h")
    r.paused()
    write_series(series, None)
    line = r.err.until("carbonkit: resuming the command: ")
    assert "the plan runs now" in line
    r.out.until("ready ")
    r.send("go\n")
    status, out, err = r.finish()
    assert status == 0, err
    assert report(out)["pause_resume"]["threshold"] == "plan"  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pause-resume", "--expected-duration", "1h"], "--pause-resume needs --deadline"),
        (["--pause-resume", "--deadline", "2h"], "--pause-resume needs --expected-duration"),
        (["--deadline", "2h"], "--deadline only apply with --pause-resume"),
        (["--pause-resume", "--deadline", "soon", "--expected-duration", "1h"], "--deadline must be a time"),
        (["--pause-resume", "--deadline", "2026-05-01T06:00:00", "--expected-duration", "1h"], "has no UTC offset"),
        (["--pause-resume", "--deadline", "2h", "--expected-duration", "1h", "--threshold", "dirty"],
         "threshold must be an intensity in g/kWh"),
        (["--pause-resume", "--deadline", "2h", "--expected-duration", "1h", "--series", "/nonexistent/s.csv"],
         "cannot read it"),
    ],
)
def test_bad_pause_options_are_one_clear_error_and_nothing_runs(args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "carbonkit", "run", *args, "--", sys.executable, "-c", "print('ran')"],
        env=run_env(), capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "ran" not in proc.stdout


# -- the pieces, in process --------------------------------------------------------------------


def test_group_pause_ends_continued_in_every_interleaving_with_an_ending_signal():
    """release() (the signal handler) at any point of stop(): the last signal sent is SIGCONT."""
    from carbonkit._pause_group import GroupPause

    for point in range(3):
        sent: list[int] = []
        holder: list[GroupPause] = []

        def send(pgid: int, signum: int, point: int = point, sent: list[int] = sent,
                 holder: list[GroupPause] = holder) -> None:
            sent.append(signum)
            if point == 1 and signum == signal.SIGSTOP:
                holder[0].release()  # the handler runs just after SIGSTOP was sent

        group = GroupPause(123, send=send)
        holder.append(group)
        if point == 0:
            group.release()
        stopped = group.stop()
        if point == 2:
            group.release()
        assert not sent or sent[-1] == signal.SIGCONT, (point, sent)
        assert group.disabled and (point == 2 or not stopped)
        assert group.stop() is False  # never again


def test_deadline_parsing():
    from carbonkit._pause_group import parse_deadline

    now = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
    assert parse_deadline("12h", now) == now + timedelta(hours=12)
    assert parse_deadline("2026-05-02T06:00:00+02:00", now) == datetime(2026, 5, 2, 4, tzinfo=timezone.utc)
    assert parse_deadline("2026-05-02T06:00:00Z", now) == datetime(2026, 5, 2, 6, tzinfo=timezone.utc)


# -- the zone's providers: the GB stand-in ------------------------------------------------------


def test_paused_on_the_providers_forecast_and_resumed_when_it_drops(tmp_path):
    """Without --series the intensity is the zone's providers' forecast: the local stand-in of the
    GB Carbon Intensity API (real response shapes) forecasts 400 g/kWh for the next three hours and
    100 after, so the command is paused (threshold 200); once the stand-in says 100 for every slot,
    the next look resumes it."""
    from standins import StandIn

    clean_from = [datetime.now(timezone.utc) + timedelta(hours=3)]

    def curve(when: datetime) -> int:
        return 400 if when < clean_from[0] else 100

    with StandIn(gb_curve=curve) as standin:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
        environment.update(CARBONKIT_GB_API_URL=f"{standin.url}/gb", CARBONKIT_LOCATION="GB", CARBONKIT_QUIET="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "carbonkit", "run", "--json", "--pause-resume", "--check-every", "0.2s",
             "--deadline", "20h", "--expected-duration", "1h", "--threshold", "200", "--",
             sys.executable, "-c", COMMAND],
            env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        pid = None
        try:
            line = err.until("carbonkit: pausing the command (process group ")
            assert "intensity 400.0 g/kWh is above the threshold 200.0" in line
            pid = int(line.split("process group ")[1].split(")")[0])
            assert wait_state(pid, {"T"}) == "T"
            clean_from[0] = datetime.now(timezone.utc) - timedelta(hours=2)
            line = err.until("carbonkit: resuming the command: ")
            assert "intensity 100.0 g/kWh is at or below the threshold 200.0" in line
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.wait(timeout=TIMEOUT_S) == 0
            data = report(out.rest())
            assert data["pause_resume"]["intensity_from"] == "the intensity providers' forecast for GB"  # type: ignore[index]
            assert float(data["paused_s"]) > 0  # type: ignore[arg-type]
        finally:
            if pid is not None:
                try:
                    os.killpg(pid, signal.SIGCONT)
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            proc.kill()
            proc.wait(timeout=TIMEOUT_S)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                stream.close()


def test_a_zone_without_a_forecast_runs_straight_through_and_says_why():
    """SE-SE3 with no forecast installed here (only the yearly average table): nothing to pause
    for; the command runs, and carbonkit says why, once. The command waits for its stdin to close,
    which the test does once carbonkit has said so."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbonkit", "run", "--json", "--pause-resume", "--check-every", "0.05s",
         "--deadline", "2h", "--expected-duration", "1h", "--",
         sys.executable, "-c", "import sys; sys.stdin.read(); print('ran')"],
        env=run_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    err, out = Lines(proc.stderr), Lines(proc.stdout)
    try:
        line = err.until("carbonkit: no forecast: ")
        assert "no intensity forecast for zone 'SE-SE3'" in line
        assert "the command runs while the intensity is unknown" in line
        proc.stdin.close()
        status = proc.wait(timeout=TIMEOUT_S)
        lines = out.rest()
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT_S)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
    assert status == 0, err.rest()
    assert lines[0] == "ran\n"
    assert sum("carbonkit: no forecast: " in line for line in err.rest()) == 1
    data = json.loads(lines[-1])
    assert data["pause_resume"]["pauses"] == 0 and data["paused_s"] == 0


def test_a_deadline_without_slack_is_said_and_the_command_is_never_paused(tmp_path):
    """Expected to run longer than the time left: carbonkit says so and never pauses, dirty or not."""
    series = tmp_path / "series.csv"
    dirty_for_an_hour(series)
    proc = subprocess.run(
        [sys.executable, "-m", "carbonkit", "run", "--json", "--pause-resume", "--series", str(series),
         "--check-every", "0.05s", "--deadline", "1h", "--expected-duration", "2h", "--threshold", "100", "--",
         sys.executable, "-c", "print('ran')"],
        env=run_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "leaves no time to pause a command expected to run 7200 s: it runs straight through" in proc.stderr
    assert "pausing" not in proc.stderr
    data = json.loads(proc.stdout.splitlines()[-1])
    assert data["pause_resume"]["pauses"] == 0 and data["paused_s"] == 0


def test_a_terminal_on_stdin_is_warned_about(tmp_path):
    """The command runs in a background process group: a terminal on standard input is named as a
    risk (reading from it would stop the command)."""
    series = tmp_path / "series.csv"
    write_series(series, None)
    primary, secondary = os.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "carbonkit", "run", "--pause-resume", "--series", str(series),
             "--deadline", "2h", "--expected-duration", "1h", "--", sys.executable, "-c", "pass"],
            env=run_env(), stdin=secondary, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
            start_new_session=True,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 0, proc.stderr
    assert "standard input is a terminal, but the command runs in a process group of its own" in proc.stderr
