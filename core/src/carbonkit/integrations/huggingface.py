"""A Hugging Face ``transformers`` ``Trainer`` callback that tracks ``Trainer.train``::

    from carbonkit.integrations.huggingface import CarbonkitCallback

    callback = CarbonkitCallback(location="GB", budget_kwh=2.0, on_over_budget="stop")
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[callback])
    with callback:          # optional: stops the tracker even when training raises
        trainer.train()
    print(callback.report)

It takes the :class:`carbonkit.Tracker` arguments; the planned epochs come from the trainer's
state (``num_train_epochs``, or the epochs ``max_steps`` amounts to) unless ``epochs=`` is given.
Each of the trainer's epochs is a tracker epoch. At each epoch's end the figures so far
(``carbonkit/energy_kwh``, ``carbonkit/co2eq_g``, and the latest prediction once there is one)
are logged with ``trainer.log`` (so they reach ``trainer.state.log_history`` and every callback's
``on_log``: the progress bar, TensorBoard, W&B...); every other ``on_log`` adds them to the
``logs`` the callbacks after this one receive and to the matching ``log_history`` entry; when
training ends the run's totals are appended to ``log_history``. With ``on_over_budget="stop"``
it sets ``control.should_training_stop`` at the end of the epoch in which the budget was exceeded.

The ``Trainer`` has no hook for an exception: ``on_train_end`` stops the tracker when training
ends normally. When an exception leaves the training loop, the tracker is stopped by whichever
comes first: reading ``callback.report``, leaving a ``with callback:`` block, ``callback.stop()``,
a watch thread that sees the loop gone (within half a second), the next ``train()`` with the same
callback, or the tracker's own exit handler when the program ends.
"""

from __future__ import annotations

import weakref
from typing import Any

try:
    from transformers import TrainerCallback
except ImportError as exc:
    raise ImportError(
        "carbonkit.integrations.huggingface needs Hugging Face transformers, which is not installed: "
        "pip install transformers torch accelerate"
    ) from exc

from ._training_run import LoopWatch, TrackedCallback, TrainingRun, planned_epochs, report_figures

__all__ = ["CarbonkitCallback"]


class CarbonkitCallback(TrackedCallback, TrainerCallback):  # type: ignore[misc]  # untyped here
    """Track ``Trainer.train`` with a :class:`carbonkit.Tracker` (see the module's documentation).

    Only the host's local main process (``state.is_local_process_zero``) measures.

    :param tracker_args: The :class:`carbonkit.Tracker` arguments, positional (``epochs``...) or
        by name.
    :raises ConfigError: for an argument the tracker does not take or a value it refuses.
    """

    def __init__(self, *tracker_args: Any, **tracker_kwargs: Any) -> None:
        super().__init__()
        self._run = TrainingRun("Hugging Face", tracker_kwargs, tracker_args)
        self._trainer: weakref.ref[Any] | None = None  # found on the stack when training starts
        self._logging = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        done = int(state.epoch or 0)  # epochs already trained when resuming from a checkpoint
        planned = planned_epochs((state.num_train_epochs or 0) - done)
        # The Trainer has no exception hook: watch its loop, to stop the tracker if an exception
        # leaves it (the loop is the innermost caller whose trainer holds this callback).
        self._trainer = None
        watch = LoopWatch.find(("_inner_training_loop", "train"), self._is_my_trainer)
        self._run.start(planned, measure=bool(getattr(state, "is_local_process_zero", True)), watch=watch)

    def _is_my_trainer(self, obj: object) -> bool:
        callbacks = getattr(getattr(obj, "callback_handler", None), "callbacks", None)
        mine = isinstance(callbacks, list) and any(cb is self for cb in callbacks)
        if mine:
            self._trainer = weakref.ref(obj)
        return mine

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._run.epoch_start()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self._run.epoch_end()
        figures = self._run.figures()
        trainer = self._trainer() if self._trainer is not None else None
        if figures and trainer is not None and callable(getattr(trainer, "log", None)):
            # Through Trainer.log: into log_history and to every callback's on_log (TensorBoard...).
            self._logging = True
            try:
                trainer.log(dict(figures))
            finally:
                self._logging = False
        elif figures:
            state.log_history.append({**figures, "epoch": state.epoch, "step": state.global_step})
        if self._run.stops_on_budget and _agree(args, self._run.wants_stop()):
            control.should_training_stop = True
            self._run.stopped_by_budget()
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs is None or self._logging or self._run.report is not None:
            return
        figures = self._run.figures()
        if not figures:
            return
        last = state.log_history[-1] if state.log_history else None
        same = isinstance(last, dict) and _entry_of(last, logs)
        logs.update(figures)
        if same and isinstance(last, dict):
            last.update(figures)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        report = self._run.finish()
        if report is not None:
            state.log_history.append({**report_figures(report), "epoch": state.epoch, "step": state.global_step})


def _entry_of(entry: dict[str, Any], logs: dict[str, Any]) -> bool:
    """Whether ``entry`` is the ``log_history`` entry of ``logs``: ``Trainer.log`` appends
    ``{**logs, "step": ...}`` just before it calls ``on_log``."""
    try:
        return all(k in entry and bool(entry[k] == v) for k, v in logs.items())
    except Exception:  # a value that does not compare to one truth value (an array)
        return False


def _agree(args: Any, stop: bool) -> bool:
    """One decision for every process of a distributed run: stop when any host asks to.

    Every process calls this at every epoch end (with ``on_over_budget="stop"``), so the
    collective call matches across them; a single process decides alone.
    """
    if int(getattr(args, "world_size", 1) or 1) <= 1:
        return stop
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return stop
    flag = torch.tensor([1 if stop else 0], device=args.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())
