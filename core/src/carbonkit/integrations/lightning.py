"""A PyTorch Lightning callback that tracks ``Trainer.fit``::

    from carbonkit.integrations.lightning import CarbonkitCallback

    callback = CarbonkitCallback(location="DK-DK2", budget_g=500, on_over_budget="stop")
    trainer = lightning.Trainer(max_epochs=10, callbacks=[callback])
    trainer.fit(model, data)
    print(callback.report)

It takes the :class:`carbonkit.Tracker` arguments; the planned epochs come from the trainer
(``max_epochs``, capped by ``max_steps``) unless ``epochs=`` is given. Each training epoch is a
tracker epoch; at its end ``carbonkit/energy_kwh`` and ``carbonkit/co2eq_g`` (the figures so far,
and the latest prediction once there is one) are logged with ``pl_module.log``, and the run's
totals go to the trainer's loggers when training ends. With ``on_over_budget="stop"`` it sets
``trainer.should_stop`` at the end of the epoch in which the budget was exceeded.

The callback is a ``Callback`` of each of the ``lightning`` and ``pytorch_lightning`` packages
that is installed, so that ``lightning.Trainer`` and ``pytorch_lightning.Trainer`` both take it.
"""

from __future__ import annotations

from typing import Any

from ._lightning_hooks import LightningHooks
from ._training_run import TrainingRun

# One callback for both package names: a trainer takes only its own package's callbacks, and
# both packages can be installed side by side (lightning depends on pytorch-lightning).
_bases: list[type] = []
try:
    from lightning.pytorch.callbacks import Callback as _LightningCallback

    _bases.append(_LightningCallback)
except ImportError:
    pass
try:
    from pytorch_lightning.callbacks import Callback as _PytorchLightningCallback

    _bases.append(_PytorchLightningCallback)
except ImportError:
    pass
if not _bases:
    raise ImportError(
        "carbonkit.integrations.lightning needs PyTorch Lightning, which is not installed: pip install lightning"
    )

__all__ = ["CarbonkitCallback"]


class CarbonkitCallback(LightningHooks, *_bases):  # type: ignore[misc]  # the bases are untyped here
    """Track ``Trainer.fit`` with a :class:`carbonkit.Tracker` (see the module's documentation).

    :param tracker_args: The :class:`carbonkit.Tracker` arguments, positional (``epochs``...) or
        by name.
    :raises ConfigError: for an argument the tracker does not take or a value it refuses.
    """

    def __init__(self, *tracker_args: Any, **tracker_kwargs: Any) -> None:
        super().__init__()
        self._run = TrainingRun("Lightning", tracker_kwargs, tracker_args)
