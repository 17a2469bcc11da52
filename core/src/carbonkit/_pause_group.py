"""Pausing a command while the grid is dirty: what ``carbonkit run --pause-resume`` does.

The command runs in a process group of its own. While the carbon intensity is above the
threshold (:class:`~carbonkit.scheduling.PausePolicy`'s rules: a number in g/kWh, a percentile
of the forecast, or ``"plan"``, the Pause and Resume plan of the remaining work), the whole group
gets SIGSTOP; it gets SIGCONT when the intensity drops, when the deadline needs the remaining
work to start, or when carbonkit is told to end (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT), so the
command is never left stopped. If carbonkit itself is killed (SIGKILL) while the group is
stopped, the kernel's rule for orphaned process groups (POSIX: a group that becomes orphaned with
a stopped member gets SIGHUP then SIGCONT) resumes it, and the parent-death signal (SIGTERM)
reaches a running command.

The remaining work is ``--expected-duration`` minus the time the command has run (wall time
since it started, less the time paused). Once the command has run longer than expected,
carbonkit no longer pauses it: the estimate was wrong and the deadline would be at risk.

The intensity comes from a series file (re-read whenever it changes) or from the zone's intensity
providers (their forecast, asked again at every check, on a worker thread under a deadline).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

from ._guard import Worker, describe_failure
from .errors import ConfigError

if TYPE_CHECKING:
    import subprocess

    from .scheduling import ForecastLike, PauseDecision, PausePolicy

__all__ = [
    "DEFAULT_CHECK_S",
    "GroupPause",
    "IntensityFeed",
    "ProviderFeed",
    "SeriesFileFeed",
    "parse_deadline",
    "parse_threshold",
    "run_with_pauses",
]

#: Seconds between two looks at the intensity (``--check-every``), by default.
DEFAULT_CHECK_S = 300.0
#: The shortest ``--check-every`` accepted.
MIN_CHECK_S = 0.05
#: How long one read of the providers' forecast may take before it counts as no answer.
FEED_DEADLINE_S = 60.0


def parse_deadline(text: str, now: datetime) -> datetime:
    """``--deadline``: an ISO 8601 time with a UTC offset, or a duration from ``now`` (``12h``).

    :raises ConfigError: naming the value and what is accepted.
    """
    from .scheduling import parse_duration

    raw = str(text).strip()
    try:
        seconds = parse_duration(raw, what="--deadline")
    except ConfigError:
        pass
    else:
        return now + timedelta(seconds=seconds)
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--deadline must be a time such as 2026-05-01T06:00:00Z or a duration from now such as 12h; "
            f"got {text!r}"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(f"--deadline {text!r} has no UTC offset; write it as e.g. {raw}Z or {raw}+01:00")
    return value.astimezone(timezone.utc)


def parse_threshold(text: str) -> float | str:
    """``--threshold``: g/kWh (a number), a percentile of the forecast (``p25``) or ``plan``."""
    raw = str(text).strip().lower()
    try:
        return float(raw)
    except ValueError:
        return raw  # PausePolicy checks it and names what is accepted


class IntensityFeed(Protocol):
    """Where the intensity comes from: ``read(now)`` gives the value in force now (g/kWh, or None
    when unknown), the forecast, and a note when something went wrong (else "")."""

    description: str

    def read(self, now: datetime) -> tuple[float | None, ForecastLike, str]: ...


class SeriesFileFeed:
    """A CSV of ``time,g_per_kwh`` (the format ``carbonkit schedule --series`` reads), read again
    whenever the file changes (its inode, size or modification time), so that a forecast written
    by another program is followed. A file that cannot be read keeps the last good series."""

    def __init__(self, path: str) -> None:
        from ._cli_schedule import read_series_csv

        self.path = path
        self.description = f"the series in {path}"
        self._read = read_series_csv
        self._key: tuple[int, int, int] | None = None
        self._series: Any = read_series_csv(path)  # a bad file is a clear error at once
        self._key = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def read(self, now: datetime) -> tuple[float | None, ForecastLike, str]:
        note = ""
        key = self._stat()
        if key is not None and key != self._key:
            try:
                self._series = self._read(self.path)
                self._key = key
            except ConfigError as exc:
                note = f"{exc}; the last series read is kept"
        series = self._series
        t = now.timestamp()
        if not series.start <= t < series.end:
            return None, series, note or f"{self.description} does not cover {now.isoformat()}"
        return float(series.value_at(t)), series, note


class ProviderFeed:
    """The zone's intensity providers: their forecast up to the deadline, asked at every read on a
    worker thread (never longer than ``FEED_DEADLINE_S``); the value in force now is taken from it
    by the same rule that prices a run (a live value covering now, else the forecast for now)."""

    def __init__(self, zone: str | None, deadline: datetime, signal_name: str | None) -> None:
        from ._http import default_http_client
        from .config import Config

        config = Config.from_env(location=zone, signal=signal_name)  # a bad zone or signal is an error now
        self.zone = config.location or zone
        self.deadline = deadline
        self.signal = signal_name
        self.description = f"the intensity providers' forecast for {self.zone or 'WORLD'}"
        self._client = default_http_client()
        self._worker = Worker("carbonkit-pause-feed")

    def _fetch(self, now: datetime) -> Any:
        from .scheduling import forecast_from_providers

        end = max(self.deadline, now + timedelta(hours=1))
        return forecast_from_providers(self.zone, now, end, http_client=self._client, signal=self.signal)

    def read(self, now: datetime) -> tuple[float | None, ForecastLike, str]:
        from ._accounting import IntensityTimeline
        from ._redact import redact_text

        outcome = self._worker.call(self._fetch, now, deadline_s=FEED_DEADLINE_S)
        if not outcome.ok:
            error = outcome.error
            reason = str(error) if error is not None and not outcome.timed_out else describe_failure(
                outcome, FEED_DEADLINE_S
            )
            return None, None, redact_text(f"no forecast: {reason}")
        got = outcome.value
        timeline = IntensityTimeline()
        for sample in got.samples:
            timeline.add(sample, got.provider)
        entry = timeline.at(now.timestamp())
        return (None if entry is None else entry[0].g_per_kwh), list(got.samples), ""

    def close(self) -> None:
        self._worker.close()
        self._client.close()


class GroupPause:
    """SIGSTOP and SIGCONT for a process group, safe against an ending signal at any point.

    :meth:`release` is called from carbonkit's signal handler when an ending signal arrives: it
    turns pausing off for good and sends SIGCONT when the group is (or is about to be) stopped.
    Python runs that handler between two steps of the main thread, and :meth:`stop` marks the
    group stopped *before* sending SIGSTOP and looks again after it, so in every interleaving the
    group ends up continued.
    """

    def __init__(self, pgid: int, send: Callable[[int, int], None] | None = None) -> None:
        self.pgid = pgid
        self.stopped = False
        self.disabled = False
        self._send = send or _killpg

    def stop(self) -> bool:
        """Stop the group; False (nothing sent) once :meth:`release` has been called."""
        if self.disabled:
            return False
        self.stopped = True
        self._send(self.pgid, signal.SIGSTOP)
        if self.disabled:  # an ending signal came while stopping: undo at once
            self._send(self.pgid, signal.SIGCONT)
            return False
        return True

    def resume(self) -> None:
        """Continue the group."""
        self._send(self.pgid, signal.SIGCONT)
        self.stopped = False

    def release(self) -> None:
        """Never stop the group again, and continue it now if it may be stopped."""
        self.disabled = True
        if self.stopped:
            self._send(self.pgid, signal.SIGCONT)


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except OSError:
        pass  # the group has exited


class _ExitWatch:
    """Tells when the command has exited, without reaping it (so its pid cannot be reused while
    signals are still passed on): a thread waits with ``waitid(WEXITED | WNOWAIT)`` and then wakes
    the main thread's sleep."""

    def __init__(self, pid: int, wake: Callable[[], None]) -> None:
        self.exited = threading.Event()
        self._pid = pid
        self._wake = wake
        threading.Thread(target=self._watch, name="carbonkit-exit-watch", daemon=True).start()

    def _watch(self) -> None:
        try:
            os.waitid(os.P_PID, self._pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        except OSError:
            pass
        self.exited.set()
        self._wake()


def _stdin_is_a_terminal() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False


def _say(message: str) -> None:
    from ._redact import redact_text
    from ._text import printable

    try:
        sys.stderr.write(f"carbonkit: {printable(redact_text(message), single_line=True)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def run_with_pauses(
    proc: subprocess.Popen[bytes],
    *,
    relay: Any,
    tracker: Any,
    policy: PausePolicy,
    feed: IntensityFeed,
    expected_s: float,
    check_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Pause the command's group while :meth:`PausePolicy.decide` says so, until it exits or an
    ending signal arrives; return a summary for the report (``paused_s``, ``pauses``...). The
    caller then waits for the exit as usual.

    Each pause is recorded in the tracker (:meth:`~carbonkit.Tracker.begin_pause` and
    ``end_pause``): in the report's ``paused_s`` and as a ``pause`` line of the run log, with the
    decisions taken during it.
    """
    from .scheduling import PauseOutcome

    group = GroupPause(proc.pid)
    relay.attach_group(proc.pid, group.release)
    watch = _ExitWatch(proc.pid, relay.wake)
    began = clock()
    paused_total = 0.0
    pauses = 0
    pause_began: tuple[float, float] | None = None  # (clock, tracker token)
    decisions: list[PauseDecision] = []
    notes: list[str] = []
    last_note = ""

    def end_pause(reason: str) -> None:
        nonlocal pause_began, paused_total
        if pause_began is None:
            return
        started, token = pause_began
        pause_began = None
        paused_total += clock() - started
        tracker.end_pause(
            token,
            PauseOutcome(paused_s=clock() - started, sleeps=sum(1 for d in decisions if d.pause),
                         cancelled=group.disabled, decisions=decisions),
        )
        decisions.clear()
        _say(f"resuming the command: {reason}")

    if _stdin_is_a_terminal():
        _say(
            "standard input is a terminal, but the command runs in a process group of its own: reading from "
            "the terminal would stop it (SIGTTIN); give it its input from a file or a pipe"
        )
    left = (policy.deadline - datetime.now(timezone.utc)).total_seconds()
    if left <= expected_s:
        message = (
            f"the deadline ({policy.deadline.isoformat()}) leaves no time to pause a command expected to run "
            f"{expected_s:.0f} s: it runs straight through"
        )
        notes.append(message)
        _say(message)
    try:
        while not watch.exited.is_set():
            if relay.ending() is not None or group.disabled:
                group.release()
                end_pause("carbonkit was told to end")
                break
            ran_s = clock() - began - paused_total - (clock() - pause_began[0] if pause_began else 0.0)
            if ran_s >= expected_s:
                if pause_began is not None:
                    group.resume()
                    end_pause("it has run longer than expected")
                message = (
                    f"the command has run longer than --expected-duration ({ran_s:.0f} s); "
                    "it is not paused again"
                )
                notes.append(message)
                _say(message)
                break
            now = datetime.now(timezone.utc)
            current, forecast, note = feed.read(now)
            if note and note != last_note:
                notes.append(note)
                _say(f"{note}; the command runs while the intensity is unknown")
            last_note = note
            decision = policy.decide(
                now=now, current_g_per_kwh=current, remaining_s=max(expected_s - ran_s, 0.0), forecast=forecast
            )
            if pause_began is not None:
                decisions.append(decision)
            if decision.pause:
                if pause_began is None:
                    if not group.stop():
                        continue  # an ending signal came: the loop ends at its next look
                    pause_began = (clock(), tracker.begin_pause())
                    decisions.append(decision)
                    pauses += 1
                    _say(f"pausing the command (process group {proc.pid}): {decision.reason}")
                wait = min(decision.sleep_s, check_s)
            else:
                if pause_began is not None:
                    group.resume()
                    end_pause(decision.reason)
                wait = check_s
            relay.sleep(wait)
    finally:
        if pause_began is not None:  # never leave the command stopped
            told = group.disabled or relay.ending() is not None
            group.release()
            end_pause("carbonkit was told to end" if told else "carbonkit is ending")
        group.release()
    return {
        "deadline": policy.deadline.isoformat(),
        "expected_duration_s": expected_s,
        "threshold": policy.threshold,
        "intensity_from": feed.description,
        "pauses": pauses,
        "paused_s": paused_total,
        "notes": notes,
    }

