"""What happens to running trackers when the process is ended.

- ``SIGTERM`` (what Slurm, Kubernetes and ``kill`` send): while a tracker runs, carbonkit's handler
  stops every running tracker (each writes its final ``report`` record, marked
  ``ended_by="SIGTERM"``), then hands the signal on: to the handler that was there before (a
  framework's own), or, when that was the default, by restoring the default and sending SIGTERM
  again, so the process ends exactly as it would have (status 128 + 15). The handler is
  installed only from the main thread, only over the default or a Python handler (never over
  ``SIG_IGN`` or a handler set from C), and removed when the last tracker stops.
  ``CARBONKIT_HANDLE_SIGTERM=0`` leaves SIGTERM alone.
- ``SIGINT`` (Ctrl-C) raises ``KeyboardInterrupt`` as usual: leaving a ``with Tracker()`` block
  stops the tracker and writes the report; a tracker that was never stopped is stopped when the
  interpreter exits (``atexit``).
- ``SIGKILL`` cannot be caught: the run log holds every record flushed before it (every finished
  epoch among them), and :func:`carbonkit.load_run` recomputes the report from it.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tracker import Tracker

__all__ = ["register", "unregister"]

_lock = threading.RLock()  # the SIGTERM handler runs on the main thread, maybe inside register()
_trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()
_previous: Any = None  # the SIGTERM handler we replaced
_installed = False
_atexit = False
#: Seconds each tracker gets to finish when the process is ending.
END_TIMEOUT_S = 5.0


def register(tracker: Tracker) -> None:
    """Track ``tracker`` until it stops; install the SIGTERM handler if this is the first one."""
    global _atexit
    with _lock:
        _trackers.add(tracker)
        if not _atexit:
            atexit.register(_at_exit)
            _atexit = True
    _install()


def unregister(tracker: Tracker) -> None:
    """Forget ``tracker``; restore the previous SIGTERM handler when none is left running."""
    with _lock:
        _trackers.discard(tracker)
        empty = len(_trackers) == 0
    if empty:
        _uninstall()


def _wanted() -> bool:
    return os.environ.get("CARBONKIT_HANDLE_SIGTERM", "1").strip().lower() not in ("0", "false", "no", "off")


def _install() -> None:
    global _previous, _installed
    if _installed or not _wanted() or threading.current_thread() is not threading.main_thread():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):  # pragma: no cover - no SIGTERM on this platform
        return
    if current is signal.SIG_IGN or current is None:  # ignored on purpose, or set from C: leave it
        return
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # pragma: no cover - not the main interpreter
        return
    _previous = current
    _installed = True


def _uninstall() -> None:
    global _installed
    if not _installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:  # only if nobody replaced ours since
            signal.signal(signal.SIGTERM, _previous)
    except (ValueError, OSError):  # pragma: no cover
        pass
    _installed = False


def _running() -> list[Tracker]:
    with _lock:
        return list(_trackers)


def _on_sigterm(signum: int, frame: Any) -> None:
    previous = _previous
    for tracker in _running():
        try:
            tracker._terminate("SIGTERM", END_TIMEOUT_S)
        except Exception:  # noqa: S110 - the process is ending; hand the signal on regardless
            pass
    _uninstall()
    if callable(previous):
        previous(signum, frame)
        return
    # It was the default: end the process as SIGTERM would have.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _at_exit() -> None:
    for tracker in _running():
        try:
            tracker._terminate("exit", END_TIMEOUT_S)
        except Exception:  # noqa: S110 - interpreter shutdown: nothing left to tell
            pass
