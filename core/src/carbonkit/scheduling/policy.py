"""Pausing a running job while the intensity is high, and still finishing by a deadline
(:class:`PausePolicy`, behind ``Tracker.pause_while_high``)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import numpy as np
from attrs import field, frozen

from ..errors import ConfigError
from ..records import IntensitySample, _Record, _utc, tuple_of
from .durations import format_duration
from .pause_resume import pause_and_resume
from .series import IntensitySeries, _dt, _opt_utc, _utcnow

__all__ = ["ForecastLike", "PauseDecision", "PauseOutcome", "PausePolicy"]

_PERCENTILE_RE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


def _check_threshold(instance: Any, attribute: attrs.Attribute[Any], value: float | str) -> None:
    if isinstance(value, str):
        if value == "plan" or _PERCENTILE_RE.match(value):
            return
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return
    raise ConfigError(
        f"threshold must be an intensity in g/kWh (a number >= 0), a percentile of the forecast such as "
        f"'p25', or 'plan'; got {value!r}"
    )


def _check_positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{attribute.name} must be a number of seconds > 0, got {value!r}")


@frozen(kw_only=True)
class PauseDecision(_Record):
    """Whether to pause now, for how long, and why.

    :param pause: Sleep now (True) or go on running (False).
    :param sleep_s: How long to sleep before deciding again (0 when running).
    :param resume_at: ``now + sleep_s`` when pausing.
    :param reason: Why, in words.
    :param threshold_g_per_kwh: The threshold in force (None when unknown).
    :param current_g_per_kwh: The intensity now (None when unknown).
    :param slack_s: Seconds that can still be spent paused without missing the deadline.
    """

    pause: bool
    sleep_s: float
    resume_at: datetime | None = field(default=None, converter=_opt_utc)
    reason: str
    threshold_g_per_kwh: float | None = None
    current_g_per_kwh: float | None = None
    slack_s: float = 0.0


@frozen(kw_only=True)
class PauseOutcome(_Record):
    """What :meth:`PausePolicy.wait` did: seconds paused, sleeps, whether Ctrl-C cut it short,
    and every decision taken."""

    paused_s: float
    sleeps: int
    cancelled: bool
    decisions: tuple[PauseDecision, ...] = field(converter=tuple_of)


ForecastLike = IntensitySeries | Sequence[IntensitySample] | None


@frozen(kw_only=True)
class PausePolicy:
    """Pause a running job while the intensity is high, and still finish by a deadline.

    Pure logic: :meth:`decide` takes the time, the intensity now, the forecast and the
    remaining work; :meth:`wait` loops on it with an injected clock and sleep.

    :param threshold: Run while the intensity is at or below this. A number (g/kWh); a
        percentile of the forecast until the deadline, time-weighted (``"p25"``: the cleanest
        quarter of the time); or ``"plan"``: follow a Pause and Resume plan of the remaining
        work until the deadline (pause until its next run starts).
    :param deadline: When the job must be done (timezone-aware).
    :param max_sleep_s: Longest sleep before deciding again (so a fresh forecast is taken into
        account), default 15 minutes.
    :param recheck_s: Sleep between checks when no forecast says when intensity will drop
        (absolute threshold only), default 5 minutes.
    :param min_sleep_s: Sleeps shorter than this are not worth it: run instead (default 1 s).

    The rules, in order: no slack left before the deadline (remaining work included) -> run;
    the intensity now is unknown or at or below the threshold -> run; the forecast shows it
    dropping to the threshold at time T -> sleep until T (at most the slack and
    ``max_sleep_s``); the forecast shows no drop before it ends -> run (pausing would not help
    within what is known); no forecast -> sleep ``recheck_s`` (at most the slack) and look again.
    """

    threshold: float | str = field(validator=_check_threshold)
    deadline: datetime = field(converter=_utc)
    max_sleep_s: float = field(default=900.0, validator=_check_positive)
    recheck_s: float = field(default=300.0, validator=_check_positive)
    min_sleep_s: float = field(default=1.0, validator=_check_positive)

    def _series(self, forecast: ForecastLike) -> IntensitySeries | None:
        if forecast is None:
            return None
        if isinstance(forecast, IntensitySeries):
            return forecast
        items = list(forecast)
        if not items:
            return None
        if all(isinstance(s, IntensitySample) and s.kind == "average" for s in items):
            return None  # a yearly average says nothing about when intensity drops
        return IntensitySeries.from_samples(items) if len(items) > 1 or items[0].period_s else None

    def threshold_for(self, now: datetime, forecast: ForecastLike) -> float | None:
        """The threshold in g/kWh at ``now`` (None for a percentile or plan with no forecast)."""
        if isinstance(self.threshold, (int, float)):
            return float(self.threshold)
        series = self._series(forecast)
        if series is None or self.threshold == "plan":
            return None
        q = float(self.threshold[1:]) / 100.0
        t0 = now.timestamp()
        t1 = min(self.deadline.timestamp(), series.end)
        if t1 <= t0:
            t1 = series.end
        if t1 <= t0:
            return None
        bounds, vals = series.pieces(t0, t1)
        order = np.argsort(vals, kind="stable")
        weights = np.cumsum(np.diff(bounds)[order])
        k = int(np.searchsorted(weights, q * weights[-1], side="left"))
        return float(vals[order[min(k, order.size - 1)]])

    def decide(
        self,
        *,
        now: datetime,
        current_g_per_kwh: float | None,
        remaining_s: float,
        forecast: ForecastLike = None,
    ) -> PauseDecision:
        """Decide whether to pause at ``now``.

        :param now: The current time (aware).
        :param current_g_per_kwh: The intensity in force now, or None when unknown.
        :param remaining_s: Estimated running time still needed to finish.
        :param forecast: Forecast samples (or a series), or None.
        """
        now = _utc(now)
        if not (isinstance(remaining_s, (int, float)) and math.isfinite(remaining_s) and remaining_s >= 0):
            raise ConfigError(f"remaining_s must be a number of seconds >= 0, got {remaining_s!r}")
        slack = (self.deadline - now).total_seconds() - remaining_s
        threshold = self.threshold_for(now, forecast)
        current = None if current_g_per_kwh is None else float(current_g_per_kwh)

        def run(reason: str) -> PauseDecision:
            return PauseDecision(
                pause=False, sleep_s=0.0, reason=reason, threshold_g_per_kwh=threshold,
                current_g_per_kwh=current, slack_s=max(0.0, slack),
            )

        def pause(seconds: float, reason: str) -> PauseDecision:
            seconds = min(seconds, slack, self.max_sleep_s)
            if seconds < self.min_sleep_s:
                return run(f"{reason}, but a pause of {seconds:.1f} s is too short to be worth it")
            return PauseDecision(
                pause=True, sleep_s=seconds, resume_at=now + timedelta(seconds=seconds), reason=reason,
                threshold_g_per_kwh=threshold, current_g_per_kwh=current, slack_s=slack,
            )

        if slack <= 0:
            return run("no slack: the remaining work needs all the time left before the deadline")
        series = self._series(forecast)
        if self.threshold == "plan":
            if series is None:
                return run("no forecast to plan with")
            try:
                plan = pause_and_resume(series, remaining_s, slack, now) if remaining_s > 0 else None
            except ConfigError as exc:
                return run(f"cannot plan on the forecast: {exc}")
            if plan is None or plan.delay_s <= self.min_sleep_s:
                return run("the plan runs now")
            return pause(plan.delay_s, f"the plan resumes at {plan.start.isoformat()}")
        if current is None:
            return run("the intensity now is unknown")
        if threshold is None:
            return run(f"no forecast to take the percentile {self.threshold} of")
        if current <= threshold:
            return run(f"intensity {current:.1f} g/kWh is at or below the threshold {threshold:.1f}")
        high = f"intensity {current:.1f} g/kWh is above the threshold {threshold:.1f}"
        if series is None:
            return pause(self.recheck_s, f"{high}; no forecast, looking again in {format_duration(self.recheck_s)}")
        t0 = now.timestamp()
        if series.end <= t0:
            again = format_duration(self.recheck_s)
            return pause(self.recheck_s, f"{high}; the forecast is over, looking again in {again}")
        bounds, vals = series.pieces(t0, series.end)
        later = np.flatnonzero(vals[1:] <= threshold) + 1  # pieces after now at or below it
        if vals[0] <= threshold:
            # The live value is high though the forecast for now is not: look again soon.
            wait = self.recheck_s if later.size == 0 else min(self.recheck_s, float(bounds[later[0]]) - t0)
            return pause(wait, f"{high} (the forecast for now is below it); looking again in {format_duration(wait)}")
        if later.size == 0:
            return run(f"{high}, but the forecast shows no drop to it before it ends")
        when = float(bounds[later[0]])
        return pause(when - t0, f"{high}; the forecast drops to it at {_dt(when).isoformat()}")

    def wait(
        self,
        read: Callable[[datetime], tuple[float | None, ForecastLike]],
        *,
        remaining_s: float,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        max_decisions: int = 100_000,
    ) -> PauseOutcome:
        """Pause for as long as :meth:`decide` says, deciding again after each sleep.

        :param read: Called with the current time before each decision; returns the intensity
            now (g/kWh or None) and the forecast (samples, a series, or None).
        :param remaining_s: Estimated running time still needed (constant while paused).
        :param clock: Returns the current aware time (injectable).
        :param sleep: Sleeps a number of seconds (injectable).
        :returns: The outcome; ``paused_s`` is the wall time spent in this call. Ctrl-C while
            sleeping returns at once with ``cancelled=True`` (re-raise KeyboardInterrupt in the
            caller to stop the program).
        """
        began = clock()
        decisions: list[PauseDecision] = []
        sleeps = 0
        cancelled = False
        try:
            while len(decisions) < max_decisions:
                now = clock()
                current, forecast = read(now)
                decision = self.decide(now=now, current_g_per_kwh=current, remaining_s=remaining_s, forecast=forecast)
                decisions.append(decision)
                if not decision.pause:
                    break
                sleep(decision.sleep_s)
                sleeps += 1
        except KeyboardInterrupt:
            cancelled = True
        paused = (clock() - began).total_seconds() if sleeps or cancelled else 0.0
        return PauseOutcome(paused_s=paused, sleeps=sleeps, cancelled=cancelled, decisions=decisions)
