"""Sleeping until the planned start, cancellable: what ``carbonkit run --start-within`` waits with."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from attrs import field, frozen

from ..errors import ConfigError
from ..records import _Record, _utc
from .plans import SchedulePlan
from .series import _utcnow

__all__ = ["WaitResult", "wait_for_best_start"]

# Records keep the logger name they had when scheduling was one module.
_logger = logging.getLogger("carbonkit.scheduling")


@frozen(kw_only=True)
class WaitResult(_Record):
    """How a wait ended: ``started`` (the start time came) or ``cancelled`` (Ctrl-C)."""

    start: datetime = field(converter=_utc)
    started: bool
    cancelled: bool
    waited_s: float


def wait_for_best_start(
    plan: SchedulePlan | datetime,
    *,
    clock: Callable[[], datetime] = _utcnow,
    sleep: Callable[[float], None] = time.sleep,
    chunk_s: float = 60.0,
    cancel: Callable[[], bool] | None = None,
) -> WaitResult:
    """Sleep until the plan's start (or the given time), in chunks of at most ``chunk_s`` so a
    clock change or a suspended machine does not oversleep.

    The wait is cancelled when ``cancel()`` returns true (it is asked before every look at the
    clock, so also after the last sleep), or when KeyboardInterrupt (Ctrl-C) interrupts a sleep: the function
    then returns a :class:`WaitResult` with ``cancelled=True`` and ``started=False``, and the caller
    decides what follows.

    A program that must never miss a Ctrl-C should not rely on KeyboardInterrupt, which Python
    raises wherever the program happens to be; ``carbonkit run --start-within`` instead catches
    the signals itself, passes a ``sleep`` that a signal wakes at once and a ``cancel`` that says
    whether one came, then exits 130 without running the command.

    :param clock: Returns the current time, timezone-aware (injectable for tests).
    :param sleep: Sleeps for a number of seconds (injectable for tests); it may return early.
    :param cancel: Returns true when the wait should stop now (default: never).
    """
    start = plan.start if isinstance(plan, SchedulePlan) else _utc(plan)
    if not chunk_s > 0:
        raise ConfigError(f"chunk_s must be > 0, got {chunk_s!r}")
    began = clock()
    cancelled = False
    try:
        while True:
            if cancel is not None and cancel():
                cancelled = True
                break
            left = (start - clock()).total_seconds()
            if left <= 0:
                break
            sleep(min(left, chunk_s))
    except KeyboardInterrupt:
        cancelled = True
    waited = (clock() - began).total_seconds()
    if cancelled:
        _logger.info("carbonkit scheduling: wait for %s cancelled after %.0f s", start.isoformat(), waited)
    return WaitResult(start=start, started=not cancelled, cancelled=cancelled, waited_s=waited)
