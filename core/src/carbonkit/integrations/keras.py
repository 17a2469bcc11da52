"""A Keras 3 callback that tracks ``Model.fit``::

    from carbonkit.integrations.keras import CarbonkitCallback

    callback = CarbonkitCallback(location="FR", budget_g=200, on_over_budget="stop")
    with callback:          # optional: stops the tracker even when fit() raises
        history = model.fit(x, y, epochs=20, callbacks=[callback])
    history.history["carbonkit/energy_kwh"]   # the figures so far, one per epoch
    print(callback.report)

It takes the :class:`carbonkit.Tracker` arguments; the planned epochs are the epochs ``fit`` will
run (``epochs`` less ``initial_epoch``) unless ``epochs=`` is given. The tracker starts at the
first epoch. At each epoch's end the figures so far (``carbonkit/energy_kwh``,
``carbonkit/co2eq_g``, and the latest prediction once there is one) are added to the epoch's
``logs``, so they are in the ``History``, the progress bar and every callback after this one.
With ``on_over_budget="stop"`` it sets ``model.stop_training`` at the end of the epoch in which the
budget was exceeded.

Keras has no hook for an exception: ``on_train_end`` stops the tracker when ``fit`` returns. When
an exception leaves ``fit``, the tracker is stopped by whichever comes first: reading
``callback.report``, leaving a ``with callback:`` block, ``callback.stop()``, a watch thread that
sees ``fit`` gone (within half a second), the next ``fit`` with the same callback, or the
tracker's own exit handler when the program ends. Only the host's local rank 0 (``LOCAL_RANK`` and
the usual launcher variables) measures.
"""

from __future__ import annotations

from typing import Any

try:
    import keras
    from keras.callbacks import Callback
except ImportError as exc:
    raise ImportError(
        "carbonkit.integrations.keras needs Keras 3 and a backend, and could not import them "
        f"({exc}): pip install keras torch, and set KERAS_BACKEND=torch (or jax, tensorflow)"
    ) from exc

if int(str(keras.__version__).split(".")[0]) < 3:
    raise ImportError(
        f"carbonkit.integrations.keras needs Keras 3, found {keras.__version__}: pip install 'keras>=3'"
    )

from ._training_run import LoopWatch, TrackedCallback, TrainingRun, local_rank_from_env, planned_epochs

__all__ = ["CarbonkitCallback"]


class CarbonkitCallback(TrackedCallback, Callback):  # type: ignore[misc]  # Callback is untyped here
    """Track ``Model.fit`` with a :class:`carbonkit.Tracker` (see the module's documentation).

    :param tracker_args: The :class:`carbonkit.Tracker` arguments, positional (``epochs``...) or
        by name.
    :raises ConfigError: for an argument the tracker does not take or a value it refuses.
    """

    def __init__(self, *tracker_args: Any, **tracker_kwargs: Any) -> None:
        super().__init__()
        self._run = TrainingRun("Keras", tracker_kwargs, tracker_args)
        self._starting = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._starting = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._starting:  # the first epoch's index tells how many are left when resuming
            self._starting = False
            total = (self.params or {}).get("epochs")
            planned = planned_epochs(total - epoch) if isinstance(total, int) else None
            # Keras has no exception hook: watch fit(), to stop the tracker if an exception leaves it.
            watch = LoopWatch.find(("fit",), self._is_my_model)
            self._run.start(planned, measure=local_rank_from_env() == 0, watch=watch)
        self._run.epoch_start()

    def _is_my_model(self, obj: object) -> bool:
        return obj is not None and obj is self.model

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._run.epoch_end()
        if logs is not None:
            logs.update(self._run.figures())
        if self._run.wants_stop():
            self.model.stop_training = True
            self._run.stopped_by_budget()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._starting = False
        self._run.finish()
