"""The PyTorch Lightning callback's hooks, shared by the ``lightning`` and ``pytorch_lightning``
package names (this module imports neither)."""

from __future__ import annotations

import math
from typing import Any

from ._training_run import TrackedCallback, TrainingRun, planned_epochs, report_figures

__all__ = ["LightningHooks", "lightning_planned_epochs"]


def lightning_planned_epochs(trainer: Any) -> int | None:
    """Epochs this ``fit`` will run, from the trainer's own limits: ``max_epochs`` (less the epochs
    already done when resuming), capped by ``max_steps`` when one is set and the epoch's length
    is known. None when unlimited (``max_epochs=-1`` and no ``max_steps``)."""
    done = int(getattr(trainer, "current_epoch", 0) or 0)
    max_epochs = getattr(trainer, "max_epochs", None)
    planned: float | None = None
    if isinstance(max_epochs, int) and max_epochs > 0:
        planned = max_epochs - done
    max_steps = getattr(trainer, "max_steps", -1)
    batches = getattr(trainer, "num_training_batches", math.inf)
    accumulate = getattr(trainer, "accumulate_grad_batches", 1) or 1
    if isinstance(max_steps, int) and max_steps > 0 and isinstance(batches, (int, float)) and 0 < batches < math.inf:
        steps_per_epoch = math.ceil(batches / accumulate)
        left = max_steps - int(getattr(trainer, "global_step", 0) or 0)
        by_steps = math.ceil(left / steps_per_epoch)
        planned = by_steps if planned is None else min(planned, by_steps)
    return planned_epochs(planned)


class LightningHooks(TrackedCallback):
    """Lightning hooks: a tracker per ``fit``, the training epochs as its epochs.

    The tracker starts in ``on_train_start`` (the data is set up then, so ``max_steps`` can be
    turned into epochs) on the host's local rank 0 only, and stops in ``on_train_end`` or
    ``on_exception``.
    """

    _run: TrainingRun

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        local_rank = int(getattr(trainer, "local_rank", 0) or 0)
        self._run.start(lightning_planned_epochs(trainer), measure=local_rank == 0)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._run.epoch_start()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._run.epoch_end()
        for name, value in self._run.figures().items():
            # Only the processes that measure log, hence rank_zero_only (no collective call).
            pl_module.log(name, value, on_step=False, on_epoch=True, rank_zero_only=True)
        if self._run.stops_on_budget:
            stop = self._run.wants_stop()
            # Every rank calls this collective: one host over budget stops them all together.
            stop = bool(trainer.strategy.reduce_boolean_decision(stop, all=False))
            if stop:
                trainer.should_stop = True
                self._run.stopped_by_budget()

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        report = self._run.finish()
        if report is None:
            return
        figures = report_figures(report)
        for logger in getattr(trainer, "loggers", ()) or ():
            logger.log_metrics(figures, step=trainer.global_step)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._run.finish(exception=exception)
