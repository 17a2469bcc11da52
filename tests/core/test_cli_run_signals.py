"""`carbonkit run -- CMD` with real processes and real signals: forwarding, exit statuses, the
parent-death signal, a missing command, and the --json line.

Every test starts ``python -m carbonkit run`` in a new session (``start_new_session=True``): it
then has no controlling terminal, as under a batch scheduler, so a SIGINT or SIGQUIT sent to it
cannot have reached the command from a keyboard, and carbonkit passes it on. Each command prints a
line when it is ready and another when a signal arrives; the tests wait for those lines, never for
time to pass. POSIX semantics (signal numbers, ``128 + N``) are those of bash's "EXIT STATUS" and
``subprocess.Popen.returncode`` (``-N`` for a process ended by signal N).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from child_process import TIMEOUT_S, CarbonkitRun, report, run_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: Generous: a carbonkit process starts in about a second even on a loaded 2-core machine.

#: The command: prints "ready PID", then on each of the six signals prints "got N" and exits 40 + N.
#: The line is one write(2) and the exit immediate: Linux may deliver the parent-death signal more
#: than once (once per exiting thread of a multi-threaded parent), and a handler interrupted inside
#: a buffered print would tear its own line.
HANDLES_ALL = """
import os, signal, sys
def on_signal(signum, frame):
    os.write(1, f"got {signum}\\n".encode())
    os._exit(40 + signum)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(s, on_signal)
print(f"ready {os.getpid()}", flush=True)
while True:
    signal.pause()
"""

#: The command: leaves every signal at its default action (most end the process).
DEFAULTS = """
import os, signal
print(f"ready {os.getpid()}", flush=True)
while True:
    signal.pause()
"""


class Run(CarbonkitRun):
    """A ``python -m carbonkit run`` process whose stdout and stderr are read line by line."""

    def __init__(self, *args: str, stdin: int | None = subprocess.DEVNULL) -> None:
        super().__init__(args, stdin)
        self.command_pid: int | None = None

    def ready(self) -> int:
        """Wait for the command's ready line; return the command's pid."""
        self.command_pid = int(self.out.until("ready ").split()[1])
        return self.command_pid

    def cleanup(self) -> None:
        for pid in (self.proc.pid, self.command_pid):
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.reap()


@pytest.fixture
def run() -> Iterator[type[Run]]:
    """Start carbonkit runs; whatever a failing test leaves running is killed afterwards."""
    started: list[Run] = []

    class Tracked(Run):
        def __init__(self, *args: str, **kwargs: int | None) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    # A process inherits ignored signals, and carbonkit rightly keeps them ignored: make sure the
    # test runner's own dispositions (a shell's `&` ignores SIGINT and SIGQUIT) do not leak in.
    ignored = [s for s in (signal.SIGINT, signal.SIGQUIT) if signal.getsignal(s) == signal.SIG_IGN]
    for s in ignored:
        signal.signal(s, signal.SIG_DFL)
    try:
        yield Tracked
    finally:
        for s in ignored:
            signal.signal(s, signal.SIG_IGN)
        for r in started:
            r.cleanup()


FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"]


@pytest.mark.parametrize("name", FORWARDED)
def test_signal_sent_to_carbonkit_reaches_the_command(run, name):
    """Each of the six signals sent to carbonkit reaches the command; carbonkit exits with the
    command's own code, which is also the report's exit_code."""
    signum = int(getattr(signal, name))
    r = run("--json", "--", sys.executable, "-c", HANDLES_ALL)
    r.ready()
    os.kill(r.proc.pid, signum)
    status, out, err = r.finish()
    assert f"got {signum}\n" in out, (out, err)
    assert status == 40 + signum, err
    assert report(out)["exit_code"] == status


@pytest.mark.parametrize(("name", "status"), [("SIGTERM", 143), ("SIGUSR1", 128 + int(signal.SIGUSR1))])
def test_command_ended_by_a_signal_gives_128_plus_n(run, name, status):
    """A command that the forwarded signal ends: carbonkit exits 128 + N, as a shell reports it."""
    r = run("--json", "--", sys.executable, "-c", DEFAULTS)
    r.ready()
    os.kill(r.proc.pid, getattr(signal, name))
    code, out, err = r.finish()
    assert code == status, err
    assert report(out)["exit_code"] == status


def test_carbonkit_waits_for_the_command_after_passing_sigterm_on(run):
    """Told to end, carbonkit passes SIGTERM on and waits: the command finishes its own way
    (here only once the test lets it) and carbonkit then reports and exits with its code."""
    slow_stop = (
        "import os, signal, sys\n"
        "def on_term(signum, frame):\n"
        "    print(f'got {signum}', flush=True)\n"
        "    sys.stdin.readline()\n"  # cleaning up until the test says go
        "    print('cleaned up', flush=True)\n"
        "    sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "print(f'ready {os.getpid()}', flush=True)\n"
        "while True:\n"
        "    signal.pause()\n"
    )
    r = run("--json", "--", sys.executable, "-c", slow_stop, stdin=subprocess.PIPE)
    r.ready()
    os.kill(r.proc.pid, signal.SIGTERM)
    assert r.out.until("got ") == "got 15\n"
    assert r.proc.poll() is None  # still there, waiting for the command
    assert r.proc.stdin is not None
    go = datetime.now(timezone.utc)
    r.proc.stdin.write("go\n")
    r.proc.stdin.flush()
    status, out, err = r.finish()
    assert status == 7, err
    data = report(out)
    assert "cleaned up\n" in out and data["exit_code"] == 7
    # Measured to the command's end, not stopped when SIGTERM reached carbonkit.
    assert datetime.fromisoformat(str(data["end_time"]).replace("Z", "+00:00")) >= go
    assert data.get("ended_by") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_command_gets_sigterm_when_carbonkit_is_killed(run):
    """carbonkit killed by SIGKILL (uncatchable): the kernel sends the command SIGTERM (Linux
    prctl(2) PR_SET_PDEATHSIG), so it does not run on alone."""
    r = run("--", sys.executable, "-c", HANDLES_ALL)
    r.ready()
    os.kill(r.proc.pid, signal.SIGKILL)
    # The command holds the stdout pipe too: its output ends when it exits.
    assert "got 15\n" in r.out.rest()
    assert r.proc.wait(timeout=TIMEOUT_S) == -signal.SIGKILL


def test_ignored_signal_stays_ignored(run):
    """A signal ignored when carbonkit starts (as `nohup` does for SIGHUP) stays ignored, for the
    command too, as it would without carbonkit."""
    probe = (
        "import signal\n"
        "print('ignored' if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN else 'default', flush=True)\n"
    )
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        r = run("--", sys.executable, "-c", probe)
    finally:
        signal.signal(signal.SIGHUP, previous)
    status, out, err = r.finish()
    assert status == 0, err
    assert out == ["ignored\n"]


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda tmp: "no-such-command-xyz", 127, "command not found"),
        (lambda tmp: str(tmp / "missing" / "tool"), 127, "no such file"),
        (lambda tmp: str(tmp), 126, "is a directory"),
        (lambda tmp: str(tmp / "script.sh"), 126, "not executable"),
    ],
)
def test_command_that_cannot_run_is_one_error_and_no_report(run, tmp_path, make, status, reason):
    """Not found: 127; found but not executable: 126, as a shell says. One line on stderr, no
    report on stdout even with --json, and no run log: nothing was measured."""
    (tmp_path / "script.sh").write_text("#!/bin/sh\necho ran\n")  # mode 0644: not executable
    logs = tmp_path / "logs"
    name = make(tmp_path)
    r = run("--json", "--log-dir", str(logs), "--", name)
    code, out, err = r.finish()
    assert code == status
    assert out == []
    assert err.startswith(f"carbonkit: cannot run {name!r}: ") and reason in err
    assert err.count("\n") == 1
    assert not logs.exists() or not any(logs.iterdir())


def test_command_not_on_path_but_present_is_not_executable(run, tmp_path):
    """A name found on PATH without execute permission is 126 (bash: "Permission denied")."""
    (tmp_path / "mytool").write_text("#!/bin/sh\necho ran\n")
    env_path = f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "carbonkit", "run", "--", "mytool"],
        env={**run_env(), "PATH": env_path}, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )
    assert proc.returncode == 126 and "mytool is not executable" in proc.stderr and proc.stdout == ""


def test_json_report_is_the_last_line_when_the_output_has_no_trailing_newline(run):
    """The command's output ends mid-line: the report still starts a line of its own, and it is
    the last line; its exit_code is carbonkit's status."""
    r = run("--json", "--", sys.executable, "-c", "import sys; sys.stdout.write('no newline'); sys.exit(5)")
    status, out, err = r.finish()
    assert status == 5, err
    assert out[0] == "no newline\n"
    assert report(out)["exit_code"] == 5 and report(out)["command"][0] == sys.executable


@pytest.mark.parametrize("mode", ["w", "w+"])
@pytest.mark.parametrize(("printed", "expected_first"), [("line\n", "line\n"), ("part", "part\n")])
def test_json_to_a_file_adds_a_newline_only_when_needed(tmp_path, mode, printed, expected_first):
    """Standard output a regular file (written only, as a shell's `>`, or read-write): carbonkit
    reads back the last byte, so there is no blank line when the output already ended one."""
    target = tmp_path / "out.txt"
    code = f"import sys; sys.stdout.write({printed!r})"
    with open(target, mode) as handle:
        proc = subprocess.run(
            [sys.executable, "-m", "carbonkit", "run", "--json", "--", sys.executable, "-c", code],
            env=run_env(), stdout=handle, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT_S, check=False,
        )
    assert proc.returncode == 0, proc.stderr
    lines = target.read_text().splitlines(keepends=True)
    assert len(lines) == 2 and lines[0] == expected_first
    assert json.loads(lines[1])["exit_code"] == 0


def test_json_alone_in_a_file_has_no_blank_line(tmp_path):
    """A command that prints nothing: the file holds exactly the report."""
    target = tmp_path / "out.json"
    with open(target, "w") as handle:
        proc = subprocess.run(
            [sys.executable, "-m", "carbonkit", "run", "--json", "--", sys.executable, "-c", "pass"],
            env=run_env(), stdout=handle, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT_S, check=False,
        )
    assert proc.returncode == 0, proc.stderr
    text = target.read_text()
    assert text.count("\n") == 1 and json.loads(text)["exit_code"] == 0


# -- the pieces, in process --------------------------------------------------------------------


def test_relay_records_a_signal_and_wakes_its_sleep_at_once():
    """A signal caught by the relay is recorded, not raised, and cuts a long sleep short (it was
    sent before the sleep began: the wake-up descriptor keeps it)."""
    from carbonkit.cli import _SignalRelay

    before = signal.getsignal(signal.SIGTERM)
    relay = _SignalRelay()
    relay.install()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)
        relay.sleep(600.0)  # returns at once, or the test times out
        assert relay.received == [signal.SIGUSR1, signal.SIGTERM]
        assert relay.ending() == signal.SIGTERM  # SIGUSR1 does not end a wait
    finally:
        relay.restore()
    assert signal.getsignal(signal.SIGTERM) == before


def test_keyboard_signal_is_not_sent_twice_to_the_terminals_foreground_group(monkeypatch):
    """Ctrl-C reaches the terminal's whole foreground process group: when the command is in it,
    carbonkit does not send it a second SIGINT; without a terminal, or with the command in another
    group, it does."""
    from carbonkit import cli

    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        group = os.getpgid(child.pid)
        monkeypatch.setattr(cli, "_terminal_foreground_group", lambda: group)
        assert cli._keyboard_reached(child.pid)
        monkeypatch.setattr(cli, "_terminal_foreground_group", lambda: group + 1)
        assert not cli._keyboard_reached(child.pid)
        monkeypatch.setattr(cli, "_terminal_foreground_group", lambda: None)
        assert not cli._keyboard_reached(child.pid)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=TIMEOUT_S)


def test_exit_status_is_the_shells():
    """0..255 as given; -N (subprocess's "ended by signal N") as 128 + N."""
    from carbonkit.cli import exit_status

    assert [exit_status(c) for c in (0, 3, 255, -2, -15)] == [0, 3, 255, 130, 143]


def test_no_controlling_terminal_here_means_no_foreground_group():
    """In a new session (as these tests run carbonkit) there is no controlling terminal."""
    probe = "from carbonkit.cli import _terminal_foreground_group as f; print(f())"
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=TIMEOUT_S, start_new_session=True, check=False,
    )
    assert proc.stdout == "None\n", proc.stderr
