"""Calls into plugin code under a deadline, off the caller's thread.

Python cannot kill a thread, so a call that misses its deadline is *abandoned*: its worker thread
is left to finish (or hang) on its own, its result is thrown away, and the next call gets a fresh
worker. The caller never waits longer than the deadline, and nothing the plugin does reaches it:
every exception, ``SystemExit`` included, comes back as an :class:`Outcome`. Only
``KeyboardInterrupt`` is not caught (it is only ever raised in the main thread, which never runs
plugin code here).

One :class:`Worker` serves a sequence of calls (the sampler's reads, the composition's hook
calls), so a call costs a queue hand-off, not a thread start.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from attrs import define, frozen

__all__ = ["Outcome", "Worker", "call_with_deadline", "describe_failure"]


@frozen
class Outcome:
    """What a guarded call did: ``ok`` with ``value``, ``error`` (any exception), or ``timed_out``."""

    ok: bool
    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False


@define(eq=False)
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    done: threading.Event
    outcome: Outcome | None = None


class Worker:
    """A daemon thread that runs calls one after the other, each under its caller's deadline.

    :param name: The thread's name (shown by debuggers and ``py-spy``).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[_Job | None] | None = None
        self._lock = threading.Lock()
        self.abandoned = 0  # threads left behind by calls that missed their deadline

    def _ensure(self) -> queue.SimpleQueue[_Job | None]:
        with self._lock:
            if self._queue is None:
                q: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
                threading.Thread(target=_serve, args=(q,), name=self.name, daemon=True).start()
                self._queue = q
            return self._queue

    def call(self, fn: Callable[..., Any], *args: Any, deadline_s: float, **kwargs: Any) -> Outcome:
        """Run ``fn(*args, **kwargs)`` on the worker; wait at most ``deadline_s`` seconds."""
        q = self._ensure()
        job = _Job(fn, args, kwargs, threading.Event())
        q.put(job)
        if job.done.wait(max(deadline_s, 0.0)) and job.outcome is not None:
            return job.outcome
        with self._lock:  # leave that thread to its fate; the next call starts another
            if self._queue is q:
                self._queue = None
                self.abandoned += 1
        q.put(None)  # it exits after the stuck call, if that ever returns
        return Outcome(ok=False, timed_out=True)

    def close(self) -> None:
        """Let the worker thread end (it is a daemon: this only tidies up)."""
        with self._lock:
            q, self._queue = self._queue, None
        if q is not None:
            q.put(None)


def _serve(q: queue.SimpleQueue[_Job | None]) -> None:
    while True:
        job = q.get()
        if job is None:
            return
        try:
            job.outcome = Outcome(ok=True, value=job.fn(*job.args, **job.kwargs))
        except KeyboardInterrupt:  # pragma: no cover - never delivered to a non-main thread
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit from a plugin must not escape
            job.outcome = Outcome(ok=False, error=exc)
        job.done.set()


def call_with_deadline(fn: Callable[..., Any], *args: Any, deadline_s: float, name: str = "carbonkit-call",
                       **kwargs: Any) -> Outcome:
    """Run one call on a fresh daemon thread under a deadline (for one-off calls)."""
    worker = Worker(name)
    try:
        return worker.call(fn, *args, deadline_s=deadline_s, **kwargs)
    finally:
        worker.close()


def describe_failure(outcome: Outcome, deadline_s: float) -> str:
    """A short phrase for a failed outcome: ``'blocked for more than 2 s'``, ``'raised ValueError: x'``."""
    if outcome.timed_out:
        return f"blocked for more than {deadline_s:g} s"
    exc = outcome.error
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    text = str(exc)
    return f"raised {type(exc).__name__}" + (f": {text}" if text else "")
