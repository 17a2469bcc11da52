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
import sys
import threading
from collections.abc import Callable, Mapping
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..records import Report
    from ..tracker import Tracker

__all__ = ["METRIC_PREFIX", "LoopWatch", "TrainingRun", "local_rank_from_env"]

_logger = logging.getLogger("carbonkit")

#: Every figure the callbacks log is named ``carbonkit/<figure>``.
METRIC_PREFIX = "carbonkit/"
#: The most epochs a tracker accepts as planned (see ``Tracker(epochs=)``).
MAX_PLANNED_EPOCHS = 10_000_000
#: Variables through which launchers tell a process its rank on its host, in the order read.
LOCAL_RANK_VARIABLES = ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID")
#: How the report says that an exception left a training loop that has no exception hook.
LOOP_LEFT = "training ended by an exception before the"
#: How often the watch thread looks whether the framework's training loop is still running.
WATCH_INTERVAL_S = 0.5


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


class LoopWatch:
    """Whether a framework's training loop (one function, on one thread) is still running.

    For frameworks with no hook for an exception: found from inside the loop (a callback hook),
    it can later tell, from any thread, whether the loop's function is still on that thread's
    stack. It reads code objects on a stack, never a frame's locals from another thread.
    """

    def __init__(self, code: CodeType, thread_id: int) -> None:
        self.code = code
        self.thread_id = thread_id

    @classmethod
    def find(cls, names: tuple[str, ...], is_owner: Callable[[object], bool]) -> LoopWatch | None:
        """The innermost caller named one of ``names`` whose ``self`` passes ``is_owner``, on the
        calling thread (call it from the loop's own callback hook); None when there is none."""
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name in names:
                try:
                    owner = is_owner(frame.f_locals.get("self"))
                except Exception:  # an owner that cannot be checked is not ours
                    owner = False
                if owner:
                    return cls(frame.f_code, threading.get_ident())
            frame = frame.f_back
        return None

    def running(self) -> bool:
        """Whether the loop's function is still on its thread's stack."""
        frame: FrameType | None = sys._current_frames().get(self.thread_id)
        while frame is not None:
            if frame.f_code is self.code:
                return True
            frame = frame.f_back
        return False


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
        self._lock = threading.RLock()
        self._watch: LoopWatch | None = None
        #: Set when the run's tracker has stopped (or there is none to stop).
        self.finished = threading.Event()

    # -- starting and ending -------------------------------------------------------------------

    def start(self, planned: int | None, *, measure: bool = True, watch: LoopWatch | None = None) -> None:
        """Start a tracker for a new training run (this process measures only when ``measure``).

        A run still open from an earlier training (one that ended in a way the framework did not
        report) is stopped first. With ``watch`` (frameworks with no exception hook), a thread
        stops the tracker once the training loop is gone without :meth:`finish` having been
        called, and so does :meth:`check_loop`.
        """
        self.finish(note="a new training run started before this one was seen to end")
        self.report = None
        self.tracker = None
        self._watch = None
        self.finished = threading.Event()
        self.measuring = measure
        if not measure:
            self.finished.set()
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
        if watch is not None:
            self._watch = watch
            threading.Thread(
                target=self._watch_main, args=(watch, self.finished), name="carbonkit-loop-watch", daemon=True
            ).start()

    def _watch_main(self, watch: LoopWatch, finished: threading.Event) -> None:
        while not finished.wait(WATCH_INTERVAL_S):
            try:
                self.check_loop(watch)
            except Exception as exc:  # never let the watch die noisily; the exit handler remains
                _logger.warning("carbonkit: watching the %s training loop failed: %r", self.framework, exc)
                return

    def check_loop(self, watch: LoopWatch | None = None) -> None:
        """Stop the tracker when the training loop ended without the framework's end hook (an
        exception left it)."""
        watch = watch or self._watch
        if watch is None or watch is not self._watch or self.report is not None or self.tracker is None:
            return
        if not watch.running():
            self.finish(note=f"{LOOP_LEFT} {self.framework} trainer's end of training")

    def finish(self, exception: BaseException | None = None, note: str | None = None) -> Report | None:
        """Stop the tracker (once) and keep its report; the report says when training ended by an
        exception (its type only: a message may hold data that must not be logged)."""
        with self._lock:
            return self._finish(exception, note)

    def _finish(self, exception: BaseException | None, note: str | None) -> Report | None:
        tracker = self.tracker
        if tracker is None:
            return self.report
        why = None
        if exception is not None:
            why = (f"training ended by an exception ({type(exception).__name__}); the report covers "
                   "the run until then")
        elif note is not None:
            why = f"{note}; the report covers the run until then"
        report = self.report
        if report is None:
            report = tracker.stop()
        elif exception is None or not any(w.startswith(LOOP_LEFT) for w in report.warnings):
            return report  # stopped already; only the type of the exception that ended it is added
        if why is not None and why not in report.warnings:
            report = attrs.evolve(report, warnings=(*report.warnings, why))
        self.report = report
        self.finished.set()
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
        that does not measure). Read after an exception left the training loop of a framework
        with no exception hook, it stops the tracker first."""
        self._run.check_loop()
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
