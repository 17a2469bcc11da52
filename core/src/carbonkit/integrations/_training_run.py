"""What every framework callback shares: one tracked training run, started when training starts.

A :class:`TrainingRun` holds the :class:`~carbonkit.Tracker` arguments (checked when the callback
is made), starts a tracker when the framework starts training (with the planned epochs read from
the trainer, unless ``epochs=`` was given), forwards the framework's epoch boundaries, gives the
figures to log, says when the budget asks training to stop, and stops the tracker once, however
training ends. Only one process per host measures: the callbacks tell it whether this process is
its host's local rank 0.

Nothing here imports a framework.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..records import Report
    from ..tracker import Tracker

__all__ = ["METRIC_PREFIX", "TrainingRun", "local_rank_from_env"]

_logger = logging.getLogger("carbonkit")

#: Every figure the callbacks log is named ``carbonkit/<figure>``.
METRIC_PREFIX = "carbonkit/"
#: The most epochs a tracker accepts as planned (see ``Tracker(epochs=)``).
MAX_PLANNED_EPOCHS = 10_000_000
#: Variables through which launchers tell a process its rank on its host, in the order read.
LOCAL_RANK_VARIABLES = ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID")


def local_rank_from_env(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank on its host from the launcher's variables (torchrun, Slurm, Open MPI,
    MPICH); 0 when none is set (a single process)."""
    env = os.environ if environ is None else environ
    for name in LOCAL_RANK_VARIABLES:
        value = (env.get(name) or "").strip()
        if value.isdigit():
            return int(value)
    return 0


def planned_epochs(value: object) -> int | None:
    """A trainer's planned epochs as the tracker takes them: a whole number from 1 to 10,000,000,
    else None (unlimited or unknown: no prediction)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value != value or value < 1 or value > MAX_PLANNED_EPOCHS:  # NaN, none left, unlimited
        return None
    return int(value)


class TrainingRun:
    """One tracked training run at a time, driven by a framework callback.

    :param framework: The framework's name, for messages (``"lightning"``).
    :param tracker_kwargs: The :class:`~carbonkit.Tracker` arguments, checked here (names, and
        values that can be checked without starting anything).
    :param tracker_args: Positional :class:`~carbonkit.Tracker` arguments (``epochs``, ...).
    :raises ConfigError: for an argument the tracker does not take, or a value it would refuse.
    """

    def __init__(
        self, framework: str, tracker_kwargs: Mapping[str, Any], tracker_args: tuple[Any, ...] = ()
    ) -> None:
        self.framework = framework
        self.kwargs: dict[str, Any] = _check_arguments(framework, tracker_args, dict(tracker_kwargs))
        action = self.kwargs.get("on_over_budget", "warn")
        #: Whether the budget may ask the framework to stop (every rank knows, measuring or not).
        self.stops_on_budget = action == "stop"
        self.tracker: Tracker | None = None
        self.report: Report | None = None
        self.measuring = False
        self._failed_figures = False

    # -- starting and ending -------------------------------------------------------------------

    def start(self, planned: int | None, *, measure: bool = True) -> None:
        """Start a tracker for a new training run (this process measures only when ``measure``).

        A run still open from an earlier training (one that ended in a way the framework did not
        report) is stopped first.
        """
        self.finish(note="a new training run started before this one was seen to end")
        self.report = None
        self.tracker = None
        self.measuring = measure
        if not measure:
            return
        from ..tracker import Tracker

        kwargs = dict(self.kwargs)
        if kwargs.get("epochs") is None:
            kwargs["epochs"] = planned
            if planned is not None and kwargs.get("predict_after") is not None and kwargs["predict_after"] > planned:
                raise ConfigError(
                    f"predict_after={kwargs['predict_after']!r} is more than the {planned} epoch(s) the "
                    f"{self.framework} trainer plans; give predict_after= from 1 to {planned}"
                )
        self._failed_figures = False
        self.tracker = Tracker(**kwargs)

    def finish(self, exception: BaseException | None = None, note: str | None = None) -> Report | None:
        """Stop the tracker (once) and keep its report; the report says when training ended by an
        exception (its type only: a message may hold data that must not be logged)."""
        tracker = self.tracker
        if tracker is None or self.report is not None:
            return self.report
        report = tracker.stop()
        why = None
        if exception is not None:
            why = (f"training ended by an exception ({type(exception).__name__}); the report covers "
                   "the run until then")
        elif note is not None:
            why = f"{note}; the report covers the run until then"
        if why is not None and why not in report.warnings:
            report = attrs.evolve(report, warnings=(*report.warnings, why))
        self.report = report
        return report

    # -- during training ---------------------------------------------------------------------

    def epoch_start(self) -> None:
        if self.tracker is not None and self.report is None:
            self.tracker.epoch_start()

    def epoch_end(self) -> None:
        if self.tracker is not None and self.report is None:
            self.tracker.epoch_end()

    def figures(self) -> dict[str, float]:
        """The figures so far to log, as of the tracker's latest sample (this call never waits).

        ``carbonkit/energy_kwh`` and ``carbonkit/co2eq_g`` (PUE included, this host), and, once
        there is a prediction, ``carbonkit/predicted_energy_kwh`` and
        ``carbonkit/predicted_co2eq_g`` (the latest one). After the run: the report's totals.
        Empty on a process that does not measure.
        """
        tracker = self.tracker
        if tracker is None:
            return {}
        if self.report is not None:
            return report_figures(self.report)
        try:
            snap = tracker.snapshot(timeout_s=0)
        except Exception as exc:  # a figure to log is never worth a failed training run
            if not self._failed_figures:
                self._failed_figures = True
                _logger.warning("carbonkit: no figures for the %s logs: %r", self.framework, exc)
            return {}
        out = {f"{METRIC_PREFIX}energy_kwh": float(snap.energy_kwh), f"{METRIC_PREFIX}co2eq_g": float(snap.co2eq_g)}
        prediction = snap.prediction
        if prediction is not None:
            if prediction.energy_kwh is not None:
                out[f"{METRIC_PREFIX}predicted_energy_kwh"] = float(prediction.energy_kwh)
            if prediction.co2eq_g is not None:
                out[f"{METRIC_PREFIX}predicted_co2eq_g"] = float(prediction.co2eq_g)
        return out

    def wants_stop(self) -> bool:
        """True once the budget, with ``on_over_budget="stop"``, asks training to stop (a plain
        attribute read)."""
        tracker = self.tracker
        return bool(tracker is not None and self.report is None and getattr(tracker, "should_stop", False))

    def stopped_by_budget(self) -> None:
        """Record in the report that the callback asked its framework to stop."""
        tracker = self.tracker
        if tracker is not None and self.report is None:
            tracker.stopped_by_budget()


def report_figures(report: Report) -> dict[str, float]:
    """The run's totals under the names the callbacks log during the run."""
    return {f"{METRIC_PREFIX}energy_kwh": float(report.energy_kwh), f"{METRIC_PREFIX}co2eq_g": float(report.co2eq_g)}


def _check_arguments(framework: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check the tracker arguments now, rather than when training starts; return them by name."""
    from ..config import Config
    from ..tracker import Tracker

    signature = inspect.signature(Tracker)
    accepted = [name for name in signature.parameters if name != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"the {framework} CarbonkitCallback got the argument {unknown[0]!r}, which Tracker does not take; "
            f"it takes the Tracker arguments: {', '.join(accepted)}"
        )
    try:
        kwargs = dict(signature.bind_partial(*args, **kwargs).arguments)
    except TypeError as exc:
        raise ConfigError(f"the {framework} CarbonkitCallback takes the Tracker arguments: {exc}") from None
    action = kwargs.get("on_over_budget", "warn")
    named = isinstance(action, str) and action in ("warn", "stop")
    if not (named or (callable(action) and not isinstance(action, str))):
        raise ConfigError(
            f"on_over_budget={action!r} is not accepted: it must be 'warn', 'stop' or a function taking "
            "the BudgetExceeded event"
        )
    fields = {a.name for a in attrs.fields(Config)} - {"given_by"}
    checkable = {
        name: value for name, value in kwargs.items()
        if name in fields and value is not None and not (name == "predictor" and not isinstance(value, str))
    }
    Config.from_env(**checkable)
    return kwargs


class TrackedCallback:
    """The public surface every framework callback shares: ``tracker``, ``report``, ``stop()``,
    and a ``with`` block that stops the tracker however the block ends."""

    _run: TrainingRun

    @property
    def tracker(self) -> Tracker | None:
        """The tracker of the current (or last) training run; None before training starts, and
        on a process that does not measure (not its host's local rank 0)."""
        return self._run.tracker

    @property
    def report(self) -> Report | None:
        """The report of the last training run, once it ended (None before, and on a process
        that does not measure)."""
        return self._run.report

    @property
    def measuring(self) -> bool:
        """Whether this process measures (it is its host's local rank 0)."""
        return self._run.measuring

    def stop(self) -> Report | None:
        """Stop the tracker now, if training has not ended it yet, and return the report."""
        return self._run.finish()

    def __enter__(self) -> TrackedCallback:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._run.finish(exception=exc)
