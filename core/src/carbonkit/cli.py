"""The ``carbonkit`` command line.

``carbonkit plugins [--json]`` lists the discovered plugins and what they offer on this machine;
``carbonkit run [options] -- CMD ARGS...`` measures a command from start to end and exits with
its exit code (``128 + N`` when signal N ended it). With ``--json`` the last line of standard
output is one JSON object. ``carbonkit run`` passes SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and
SIGUSR2 on to the command and waits for it; on Linux the command gets SIGTERM if carbonkit dies.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import CarbonkitError, ConfigError

__all__ = ["main"]


def _print_json(obj: Any) -> None:
    from ._redact import redact_strings

    sys.stdout.write(json.dumps(redact_strings(obj), allow_nan=False) + "\n")
    sys.stdout.flush()


def _tags(values: Sequence[str]) -> dict[str, str]:
    tags = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag expects KEY=VALUE, got {item!r}")
        tags[key] = value
    return tags


# -- carbonkit plugins ------------------------------------------------------------------------


def plugins_data() -> dict[str, Any]:
    """Describe every plugin and what it offers on this machine (plain JSON types)."""
    from ._http import default_http_client
    from .config import Config
    from .plugins import (
        collect_intensity_providers,
        collect_power_sources,
        collect_predictors,
        collect_reporters,
        list_plugins,
        make_plugin_manager,
        provider_signal,
    )

    pm = make_plugin_manager()
    config = Config.from_env()
    rows: dict[str, dict[str, Any]] = {
        p.name: {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "builtin": p.builtin,
            "hooks": list(p.hooks),
            "power_sources": [],
            "intensity_providers": [],
            "predictors": [],
            "reporters": [],
            "unavailable": [],
            "errors": [],
        }
        for p in list_plugins(pm)
    }

    def note(offers: Any, key: str, describe: Any) -> None:
        for obj in offers.objects:
            rows[offers.owners[obj.name]][key].append(describe(obj))
        for n in offers.notes:
            target = rows.get(n.plugin) or next(iter(rows.values()))
            target["unavailable"].append({"reason": n.reason, "hint": n.hint, "warn": n.warn})
        for plugin, err in offers.errors:
            rows[plugin]["errors"].append(err)

    with default_http_client() as client:
        sources = collect_power_sources(pm, config)
        note(
            sources,
            "power_sources",
            lambda s: {
                "name": s.name,
                "component": s.component,
                "method": s.method,
                "kind": s.kind,
                "devices": [str(d) for d in s.devices()],
            },
        )
        for s in sources.objects:
            try:
                s.close()
            except Exception:
                pass
        note(
            collect_intensity_providers(pm, config, client),
            "intensity_providers",
            lambda p: {
                "name": p.name,
                "priority": p.priority,
                "signal": provider_signal(p),
                "zones": sorted(p.zones) if len(p.zones) <= 20 else [f"{len(p.zones)} zones"],
            },
        )
        note(collect_predictors(pm, config), "predictors", lambda p: {"name": p.name})
        note(collect_reporters(pm, config), "reporters", lambda r: {"name": r.name})
    skipped = [
        {"name": s.name, "distribution": s.distribution, "reason": s.reason}
        for s in getattr(pm, "carbonkit_skipped", [])
    ]
    from ._redact import redact_strings

    data = {"carbonkit_version": __version__, "plugins": list(rows.values()), "skipped": skipped}
    return redact_strings(data)  # type: ignore[no-any-return]


def _cmd_plugins(args: argparse.Namespace) -> int:
    data = plugins_data()
    if args.json:
        _print_json(data)
        return 0
    out = sys.stdout
    for p in data["plugins"]:
        label = "built in" if p["builtin"] else f"{p['distribution']} {p['version']}"
        out.write(f"{p['name']} ({label})\n")
        for s in p["power_sources"]:
            out.write(
                f"  power source {s['name']}: {s['component']}, {s['method']}, {s['kind']}, "
                f"{len(s['devices'])} device(s): {', '.join(s['devices'])}\n"
            )
        for i in p["intensity_providers"]:
            out.write(f"  intensity provider {i['name']} (priority {i['priority']}, {i['signal']} signal): "
                      f"zones {', '.join(i['zones'])}\n")
        for r in p["predictors"]:
            out.write(f"  predictor {r['name']}\n")
        for r in p["reporters"]:
            out.write(f"  reporter {r['name']}\n")
        for u in p["unavailable"]:
            hint = f" ({u['hint']})" if u["hint"] else ""
            out.write(f"  unavailable: {u['reason']}{hint}\n")
        for e in p["errors"]:
            out.write(f"  error: {e}\n")
    for s in data["skipped"]:
        out.write(f"skipped {s['name']} ({s['distribution']}): {s['reason']}\n")
    return 0


# -- carbonkit run ----------------------------------------------------------------------------

#: Signals that ``carbonkit run`` passes on to the command (those this platform has).
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
#: Of those, the ones that end carbonkit when no command runs yet (while ``--start-within`` waits).
_ENDING_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
#: Of those, the ones a terminal sends to its whole foreground process group (Ctrl-C, Ctrl-\).
_KEYBOARD_SIGNALS = ("SIGINT", "SIGQUIT")
#: Exit status when the command is not found, and when it is found but cannot be executed (as a shell).
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _signums(names: Sequence[str]) -> frozenset[int]:
    return frozenset(int(getattr(signal, n)) for n in names if hasattr(signal, n))


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_status(returncode: int) -> int:
    """The exit status a shell reports for a process: its exit code, or ``128 + N`` when signal N
    ended it (``subprocess`` gives ``-N`` for that)."""
    return returncode if returncode >= 0 else 128 - returncode


def _terminal_foreground_group() -> int | None:
    """The foreground process group of the controlling terminal, or None without one."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return None
    try:
        return os.tcgetpgrp(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def _keyboard_reached(pid: int) -> bool:
    """Whether a keyboard signal (Ctrl-C, Ctrl-\\) that carbonkit received reached ``pid`` too: the
    terminal sends it to its foreground process group, so it did when ``pid`` is in that group."""
    getpgid = getattr(os, "getpgid", None)
    if getpgid is None:
        return False
    foreground = _terminal_foreground_group()
    if foreground is None:
        return False  # no controlling terminal: the signal was sent to carbonkit alone
    try:
        return bool(getpgid(pid) == foreground)
    except OSError:
        return False


class _SignalRelay:
    """Catches :data:`FORWARDED_SIGNALS` from :meth:`install` to :meth:`restore`.

    Each signal is recorded (never raised as an exception, so it cannot strike code at an unlucky
    point) and, while a command is attached, passed on to it. A signal also wakes :meth:`sleep` at
    once, through :func:`signal.set_wakeup_fd`, even when it arrives just before the sleep starts.
    A signal that was ignored when carbonkit started stays ignored, by carbonkit and by the command.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._pid: int | None = None
        self._group: int | None = None  # the command's own process group (--pause-resume)
        self._on_ending: Callable[[], None] | None = None
        self._previous: dict[int, Any] = {}
        self._previous_wakeup_fd = -1
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._ending = _signums(_ENDING_SIGNALS)
        self._keyboard = _signums(_KEYBOARD_SIGNALS)

    def install(self) -> None:
        """Start catching; only possible in the main thread (elsewhere nothing is caught)."""
        if threading.current_thread() is not threading.main_thread():
            return
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._wake = (reader, writer)
        self._previous_wakeup_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        for signum in sorted(_signums(FORWARDED_SIGNALS)):
            if signal.getsignal(signum) == signal.SIG_IGN:
                continue
            self._previous[signum] = signal.signal(signum, self._handle)

    def reassert(self) -> None:
        """Catch the signals again where something installed its own handler since :meth:`install`
        (a :class:`~carbonkit.Tracker` handles SIGTERM by stopping itself; under ``carbonkit run``
        SIGTERM is for the command, and the tracker is stopped once the command has exited)."""
        for signum in self._previous:
            if signal.getsignal(signum) != self._handle:
                signal.signal(signum, self._handle)

    def restore(self, *, exiting: bool = False) -> None:
        """Stop passing signals on and release the wake-up descriptor; put back the handlers in force
        before :meth:`install`, or, when the process is ``exiting`` (its work is done and its status
        known), ignore these signals until it has exited: one arriving on the way out, such as a
        second Ctrl-C, must change neither the status nor print a traceback. (Python puts the
        default actions back while it shuts down, so a handler alone would not cover that.)"""
        self._pid = None
        self._group = None
        self._on_ending = None
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_IGN if exiting else handler)
        self._previous.clear()
        if self._wake is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            for sock in self._wake:
                sock.close()
            self._wake = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        pid = self._pid
        if pid is not None and self._group is not None and signum in self._keyboard:
            # In a group of its own the command is out of the terminal's reach: Ctrl-C and Ctrl-\
            # go to its whole group, as the terminal would have sent them.
            try:
                os.killpg(self._group, signum)
            except OSError:
                pass
        elif pid is not None and not (signum in self._keyboard and _keyboard_reached(pid)):
            self._send(pid, signum)
        on_ending = self._on_ending
        if pid is not None and on_ending is not None and signum in self._ending:
            on_ending()  # a paused command is continued, after the signal was sent, and stays so

    @staticmethod
    def _send(pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except OSError:
            pass  # it has just exited

    def ending(self) -> int | None:
        """The first signal received that ends carbonkit when no command runs, or None."""
        return next((s for s in self.received if s in self._ending), None)

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less: a signal wakes it at once."""
        if self._wake is None:
            time.sleep(seconds)
            return
        reader = self._wake[0]
        select.select([reader], [], [], max(0.0, seconds))
        try:
            while reader.recv(512):
                pass
        except OSError:
            pass  # drained

    def attach(self, pid: int, since: int) -> list[int]:
        """Pass signals on to ``pid`` from now on. The ending signals received since ``received[since]``
        (while the command was being started, so it cannot have had them) are passed on now; the
        others received before are returned: there was no command to give them to."""
        self._pid = pid
        for signum in self.received[since:]:
            if signum in self._ending:
                self._send(pid, signum)
        return [s for s in self.received if s not in self._ending]

    def attach_group(self, pgid: int, on_ending: Callable[[], None]) -> None:
        """The command leads its own process group ``pgid``: keyboard signals go to the whole group,
        and ``on_ending()`` is called (in the handler, after the signal was passed on) for each
        ending signal."""
        self._group = pgid
        self._on_ending = on_ending

    def wake(self) -> None:
        """Cut a :meth:`sleep` short from another thread."""
        wake = self._wake
        if wake is None:
            return
        try:
            wake[1].send(b"\0")
        except OSError:
            pass  # the buffer is full (a wake-up is pending anyway) or the relay is closed

    def detach(self) -> None:
        """Stop passing signals on (the command has exited; its pid may soon be reused)."""
        self._pid = None
        self._group = None
        self._on_ending = None


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that has the kernel send the command SIGTERM when carbonkit dies
    (``prctl(PR_SET_PDEATHSIG)``), even of SIGKILL, so that the command is never left running on
    its own; if carbonkit is already gone when the command starts, the command is not run. None
    elsewhere, or where ``prctl`` cannot be found."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec: nothing that can block
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(128 + int(signal.SIGTERM))  # carbonkit died before the request took effect

    return preexec


def _own_process_group(then: Callable[[], None] | None) -> Callable[[], None]:
    """A ``preexec_fn`` that puts the command in a process group of its own (so that the whole
    group can be paused), then runs ``then``. ``Popen`` returns once the command has been executed,
    so the group exists before carbonkit signals it."""

    def preexec() -> None:  # runs in the child between fork and exec: nothing that can block
        os.setpgid(0, 0)
        if then is not None:
            then()

    return preexec


def _cannot_run(name: str) -> tuple[int, str] | None:
    """Why the command ``name`` cannot be run, as (exit status, reason); None when it looks runnable.

    Checked before anything is measured, so a typo gives one clear error and no report."""
    if os.sep in name or (os.altsep and os.altsep in name):
        if os.path.isdir(name):
            return EXIT_NOT_EXECUTABLE, "it is a directory"
        if not os.path.exists(name):
            return EXIT_NOT_FOUND, "no such file"
        if not os.access(name, os.X_OK):
            return EXIT_NOT_EXECUTABLE, "permission denied (the file is not executable)"
        return None
    if shutil.which(name) is not None:
        return None
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or os.curdir, name)
        if os.path.isfile(candidate):
            return EXIT_NOT_EXECUTABLE, f"permission denied ({candidate} is not executable)"
    return EXIT_NOT_FOUND, "command not found (not on PATH)"


def _wait_for_exit(proc: subprocess.Popen[bytes], relay: _SignalRelay) -> int:
    """Wait for the command to exit, passing signals on until then; return its return code.

    Where :func:`os.waitid` exists, the exit is seen without reaping the process, so its pid cannot
    be reused by another process before signals stop being passed on to it."""
    waitid, no_wait = getattr(os, "waitid", None), getattr(os, "WNOWAIT", None)
    if waitid is not None and no_wait is not None:
        try:
            waitid(os.P_PID, proc.pid, os.WEXITED | no_wait)
        except ChildProcessError:
            pass
    relay.detach()
    return proc.wait()


def _stdout_at_line_start() -> bool:
    """True only when it is certain that standard output ends with a newline (or is empty).

    The command writes to the same standard output, so carbonkit cannot know what it wrote last;
    only a regular file can be read back (through its own descriptor, else ``/proc/self/fd``)."""
    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        position = os.lseek(fd, 0, os.SEEK_CUR)
        if position == 0:
            return True
        try:
            last = os.pread(fd, 1, position - 1)
        except OSError:  # opened write-only, as a shell's `>` does
            with open(f"/proc/self/fd/{fd}", "rb") as again:
                again.seek(position - 1)
                last = again.read(1)
        return last == b"\n"
    except (OSError, ValueError, AttributeError):
        return False


def _print_report_line(data: dict[str, Any]) -> None:
    """Write the report as the last line of standard output, on a line of its own."""
    from ._redact import redact_strings

    text = json.dumps(redact_strings(data), allow_nan=False) + "\n"
    if not _stdout_at_line_start():
        text = "\n" + text
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Whoever read standard output is gone; keep Python from failing again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ConfigError("carbonkit run needs a command after '--', e.g. carbonkit run -- python train.py")
    problem = _cannot_run(command[0])
    if problem is not None:
        status, reason = problem
        sys.stderr.write(f"carbonkit: cannot run {command[0]!r}: {reason}\n")
        return status
    relay = _SignalRelay()
    relay.install()  # from here on no signal is lost, and none raises at an unlucky point
    try:
        return _run_measured(args, command, relay)
    finally:
        relay.restore(exiting=_running_as_program())


def _running_as_program() -> bool:
    """Whether this process is the ``carbonkit`` command (``carbonkit ...`` or ``python -m
    carbonkit ...``), which ends when ``carbonkit run`` returns, rather than a program that called
    :func:`main` and goes on (and whose own signal handlers must come back)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name in ("carbonkit.__main__", "carbonkit.cli"):
        return True
    return os.path.basename(sys.argv[0] if sys.argv else "") == "carbonkit"


def _cancelled(relay: _SignalRelay, when: str) -> int | None:
    signum = relay.ending()
    if signum is None:
        return None
    sys.stderr.write(f"carbonkit: cancelled {when} ({_signal_name(signum)}); the command was not run\n")
    return 128 + signum


def _pause_setup(args: argparse.Namespace) -> tuple[Any, Any, float, float] | None:
    """For ``--pause-resume``: the policy, the intensity feed, the expected duration and the check
    interval, checked before anything runs (None without ``--pause-resume``)."""
    from datetime import datetime, timezone

    given = [name for name in ("deadline", "threshold", "series", "check_every") if getattr(args, name, None)]
    if not getattr(args, "pause_resume", False):
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ConfigError(f"{flags} only apply with --pause-resume")
        return None
    if not hasattr(os, "killpg") or not hasattr(os, "waitid"):
        raise ConfigError("--pause-resume needs POSIX process groups and os.waitid (Linux)")
    if not args.deadline:
        raise ConfigError("--pause-resume needs --deadline TIME|DURATION: when the command must be done (e.g. 24h)")
    if args.expected_duration is None:
        raise ConfigError(
            "--pause-resume needs --expected-duration DURATION: how long the command runs when not paused "
            "(to know how late it may resume and still meet the deadline)"
        )
    from ._pause_group import (
        DEFAULT_CHECK_S,
        MIN_CHECK_S,
        ProviderFeed,
        SeriesFileFeed,
        parse_deadline,
        parse_threshold,
    )
    from .scheduling import PausePolicy, parse_duration

    expected = parse_duration(args.expected_duration, what="--expected-duration")
    if expected <= 0:
        raise ConfigError(f"--expected-duration must be > 0, got {args.expected_duration!r}")
    check = DEFAULT_CHECK_S
    if args.check_every:
        check = parse_duration(args.check_every, what="--check-every")
        if check < MIN_CHECK_S:
            raise ConfigError(f"--check-every must be at least {MIN_CHECK_S:g} s, got {args.check_every!r}")
    deadline = parse_deadline(args.deadline, datetime.now(timezone.utc))
    policy = PausePolicy(
        threshold=parse_threshold(args.threshold or "plan"), deadline=deadline, max_sleep_s=max(check, 1.0)
    )
    feed: Any = (
        SeriesFileFeed(args.series) if args.series
        else ProviderFeed(args.location, deadline, getattr(args, "signal", None))
    )
    return policy, feed, expected, check


def _run_measured(args: argparse.Namespace, command: list[str], relay: _SignalRelay) -> int:
    pausing = _pause_setup(args)
    try:
        return _run_measured_with(args, command, relay, pausing)
    finally:
        close = getattr(pausing[1], "close", None) if pausing else None
        if close is not None:
            close()


def _run_measured_with(
    args: argparse.Namespace, command: list[str], relay: _SignalRelay, pausing: tuple[Any, Any, float, float] | None
) -> int:
    if args.start_within:
        from .scheduling import NoForecastError, plan_start_within, wait_for_best_start

        try:
            plan = plan_start_within(
                args.start_within, args.expected_duration or "1h", args.location, signal=getattr(args, "signal", None)
            )
        except NoForecastError as exc:
            from ._redact import redact_text

            sys.stderr.write(f"carbonkit: {redact_text(str(exc))}; starting now\n")
        else:
            sys.stderr.write(
                f"carbonkit: starting at {plan.start.isoformat()} in {plan.zone} "
                f"({100 * plan.saving:.1f}% less CO2eq than starting now, forecast by {plan.provider}); "
                "Ctrl-C cancels\n"
            )
            sys.stderr.flush()
            wait_for_best_start(plan, sleep=relay.sleep, cancel=lambda: relay.ending() is not None)
        status = _cancelled(relay, "while waiting")
        if status is not None:
            return status
    from .tracker import Tracker

    tracker = Tracker(
        location=args.location,
        pue=args.pue,
        interval_s=args.interval,
        log_dir=args.log_dir,
        quiet=True if args.quiet else None,
        tags=_tags(args.tag) or None,
        signal=getattr(args, "signal", None),
    )
    relay.reassert()
    status = _cancelled(relay, "before the command started")
    if status is not None:
        tracker.stop()
        return status
    since = len(relay.received)
    preexec = _parent_death_signal()
    if pausing is not None:
        preexec = _own_process_group(preexec)
    try:
        proc = subprocess.Popen(command, preexec_fn=preexec)  # noqa: PLW1509 (see _parent_death_signal's docstring)
    except OSError as exc:
        tracker.stop()
        sys.stderr.write(f"carbonkit: cannot run {command[0]!r}: {exc.strerror or exc}\n")
        return EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_NOT_EXECUTABLE
    for signum in relay.attach(proc.pid, since):
        sys.stderr.write(f"carbonkit: {_signal_name(signum)} came before the command started; not passed on\n")
    summary: dict[str, Any] | None = None
    if pausing is not None:
        from ._pause_group import run_with_pauses

        policy, feed, expected, check = pausing
        summary = run_with_pauses(
            proc, relay=relay, tracker=tracker, policy=policy, feed=feed, expected_s=expected, check_s=check
        )
    status = exit_status(_wait_for_exit(proc, relay))
    report = tracker.stop()
    if summary is not None:
        _say_paused(summary, report)
    if args.json:
        data = report.to_dict()
        data["exit_code"] = status
        data["command"] = command
        if summary is not None:
            data["pause_resume"] = summary
        _print_report_line(data)
    return status


def _say_paused(summary: dict[str, Any], report: Any) -> None:
    """One line on stderr: how long the command was paused and how long it ran."""
    paused = float(report.paused_s)
    ran = max(float(report.duration_s) - paused, 0.0)
    sys.stderr.write(
        f"carbonkit: paused {summary['pauses']} time(s), {paused:.1f} s in all; "
        f"ran {ran:.1f} s (deadline {summary['deadline']})\n"
    )
    sys.stderr.flush()


# -- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carbonkit", description="Measure, predict and report the energy and carbon footprint of compute."
    )
    parser.add_argument("--version", action="version", version=f"carbonkit {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("plugins", help="list plugins and what they offer on this machine")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_plugins)

    r = sub.add_parser(
        "run",
        help="measure a command: carbonkit run [options] -- CMD ARGS...",
        usage=(
            "carbonkit run [--location Z] [--signal S] [--pue X] [--interval S] [--log-dir D] [--tag K=V] [--json] "
            "[--start-within DURATION] [--expected-duration DURATION] "
            "[--pause-resume --deadline TIME|DURATION [--threshold T] [--series FILE] [--check-every DURATION]] "
            "-- CMD ARGS..."
        ),
    )
    r.add_argument("--location", help="zone code such as DK-DK2, GB, SE-SE3 (default: CARBONKIT_LOCATION)")
    r.add_argument("--pue", type=float, help="power usage effectiveness, >= 1 (default: CARBONKIT_PUE or 1.58)")
    r.add_argument("--interval", type=float, help="seconds between samples (default 1)")
    r.add_argument("--log-dir", help="write a JSON Lines run log in this folder")
    r.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="label the run (repeatable)")
    r.add_argument("--json", action="store_true", help="print the report as one JSON object, last on stdout")
    r.add_argument("--quiet", action="store_true", help="no console report")
    r.add_argument(
        "--signal", choices=("average", "marginal"), type=str.lower,
        help="price the run with the average (default, or CARBONKIT_SIGNAL) or the marginal signal",
    )
    r.add_argument(
        "--start-within",
        metavar="DURATION",
        help="wait for the lowest-carbon start within DURATION (e.g. 12h), from the intensity forecast",
    )
    r.add_argument(
        "--expected-duration",
        metavar="DURATION",
        help="how long the command runs when not paused: for --start-within (default 1h) and --pause-resume",
    )
    r.add_argument(
        "--pause-resume",
        action="store_true",
        help="pause the command's process group (SIGSTOP) while the intensity is high; needs --deadline "
        "and --expected-duration (see docs/pause-resume.md)",
    )
    r.add_argument(
        "--deadline", metavar="TIME|DURATION",
        help="with --pause-resume: when the command must be done (ISO time with offset, or e.g. 24h from now)",
    )
    r.add_argument(
        "--threshold", metavar="G_PER_KWH|pNN|plan",
        help="with --pause-resume: run while the intensity is at or below g/kWh, or a percentile of the "
        "forecast up to the deadline (p25), or follow the Pause and Resume plan of the remaining work "
        "(plan, the default)",
    )
    r.add_argument(
        "--series", metavar="FILE",
        help="with --pause-resume: take the intensity from this CSV of time,g_per_kwh (re-read when it changes) "
        "instead of the zone's providers",
    )
    r.add_argument(
        "--check-every", metavar="DURATION",
        help="with --pause-resume: look at the intensity this often (default 5m)",
    )
    r.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    r.set_defaults(func=_cmd_run)

    # Further commands live next to what they drive; each module adds its own subparsers.
    from . import _cli_intensity, _cli_report, _cli_reprice, _cli_schedule, _cli_setup, _cli_zones

    for module in (_cli_intensity, _cli_report, _cli_schedule, _cli_reprice, _cli_setup, _cli_zones):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CarbonkitError as exc:
        from ._redact import redact_text
        from ._text import printable

        sys.stderr.write(f"carbonkit: error: {printable(redact_text(str(exc)))}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
