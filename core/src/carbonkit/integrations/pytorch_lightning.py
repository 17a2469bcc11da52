"""The PyTorch Lightning callback for the ``pytorch_lightning`` package name (``import
pytorch_lightning as pl``): the same callback as :mod:`carbonkit.integrations.lightning`, built
on ``pytorch_lightning.Callback``, since a ``pytorch_lightning.Trainer`` takes only its own
package's callbacks."""

from __future__ import annotations

from typing import Any

try:
    from pytorch_lightning.callbacks import Callback
except ImportError as exc:
    raise ImportError(
        "carbonkit.integrations.pytorch_lightning needs the pytorch_lightning package, which is not installed: "
        "pip install pytorch-lightning (or pip install lightning and use carbonkit.integrations.lightning)"
    ) from exc

from ._lightning_hooks import LightningHooks
from ._training_run import TrainingRun

__all__ = ["CarbonkitCallback"]


class CarbonkitCallback(LightningHooks, Callback):  # type: ignore[misc]  # Callback is untyped here
    """Track ``pytorch_lightning.Trainer.fit`` (see :mod:`carbonkit.integrations.lightning`).

    :param tracker_args: The :class:`carbonkit.Tracker` arguments, positional (``epochs``...) or
        by name.
    :raises ConfigError: for an argument the tracker does not take or a value it refuses.
    """

    def __init__(self, *tracker_args: Any, **tracker_kwargs: Any) -> None:
        super().__init__()
        self._run = TrainingRun("Lightning", tracker_kwargs, tracker_args)
