"""Reporters get events through their own thread and a bounded queue, so none can delay another.

The sampler hands each event to every reporter's :class:`Channel` and goes on: putting an event
costs a lock and a deque append. Each channel's thread calls its reporter's methods in order. A
reporter that raises is disabled with one warning; one that stays in a call longer than
:data:`REPORTER_DEADLINE_S` is disabled the next time anyone looks (the sampler does every tick)
and its thread is left behind; a reporter that falls behind by :data:`QUEUE_LIMIT` events loses
the oldest ones (counted, with one warning) rather than growing memory.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["QUEUE_LIMIT", "REPORTER_DEADLINE_S", "Channel"]

#: A reporter call that takes longer than this disables the reporter.
REPORTER_DEADLINE_S = 10.0
#: Events a reporter may fall behind by before the oldest are dropped.
QUEUE_LIMIT = 10_000

_CLOSE = "close"


class Channel:
    """One reporter, its queue and its thread.

    :param reporter: The reporter object.
    :param warn: Called with a message when the reporter fails (from any thread).
    :param clock: Monotonic seconds.
    """

    def __init__(self, reporter: Any, warn: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.reporter = reporter
        self.name = _name(reporter)
        self._warn = warn
        self._clock = clock
        self._queue: collections.deque[tuple[str, tuple[Any, ...]]] = collections.deque()
        # Re-entrant: a signal handler on the main thread may queue a warning while put() runs there.
        self._cond = threading.Condition(threading.RLock())
        self._busy: tuple[str, float] | None = None  # (event, since) while in a reporter call
        self.disabled: str | None = None  # why, once disabled
        self.dropped = 0
        self.finished = threading.Event()  # set when close() has run (or the channel gave up)
        self._thread = threading.Thread(target=self._serve, name=f"carbonkit-reporter-{self.name}", daemon=True)
        self._thread.start()

    def put(self, event: str, *args: Any) -> None:
        """Queue ``event`` for the reporter (never blocks)."""
        if self.disabled is not None:
            return
        with self._cond:
            if len(self._queue) >= QUEUE_LIMIT and event != _CLOSE:
                self._queue.popleft()
                self.dropped += 1
                if self.dropped == 1:
                    self._warn(f"reporter {self.name!r} is falling behind; its oldest events are being dropped")
            self._queue.append((event, args))
            self._cond.notify()

    def close(self) -> None:
        """Queue the reporter's ``close()``: the last call it receives."""
        if self.disabled is not None:
            self.finished.set()
            return
        self.put(_CLOSE)

    def check(self) -> None:
        """Disable the reporter if it has been in one call for longer than the deadline."""
        busy = self._busy
        if busy is not None and self.disabled is None and self._clock() - busy[1] > REPORTER_DEADLINE_S:
            self._disable(f"blocked in {busy[0]} for more than {REPORTER_DEADLINE_S:g} s")

    def _disable(self, why: str) -> None:
        with self._cond:
            if self.disabled is not None:
                return
            self.disabled = why
            self._queue.clear()
            self._cond.notify()
        # The warning first: whoever waits on ``finished`` (stop()) then finds it in the run's warnings.
        self._warn(f"reporter {self.name!r} {why} and was disabled; the run goes on without it")
        self.finished.set()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._queue and self.disabled is None:
                    self._cond.wait()
                if self.disabled is not None:
                    return
                event, args = self._queue.popleft()
            method = getattr(self.reporter, event, None)
            if method is not None:
                self._busy = (event, self._clock())
                try:
                    method(*args)
                except KeyboardInterrupt:  # pragma: no cover - never delivered to this thread
                    raise
                except BaseException as exc:  # noqa: BLE001 - SystemExit from a reporter must not escape
                    self._busy = None
                    if event == _CLOSE:
                        self._warn(f"reporter {self.name!r} failed to close: {exc!r}")
                    else:
                        self._disable(f"failed in {event} ({exc!r})")
                        self._try_close()
                        return
                self._busy = None
                if self.disabled is not None:  # disabled while it was in this call: drop the result
                    return
            if event == _CLOSE:
                self.finished.set()
                return

    def _try_close(self) -> None:
        try:
            self.reporter.close()
        except BaseException:  # noqa: BLE001,S110 - it already failed once; one warning is enough
            pass

    def join(self, timeout_s: float) -> bool:
        """Wait until the reporter has closed; return False when it did not in time."""
        return self.finished.wait(max(timeout_s, 0.0))


def _name(reporter: Any) -> str:
    try:
        name = reporter.name
    except Exception:
        name = None
    return name if isinstance(name, str) and name else type(reporter).__name__
