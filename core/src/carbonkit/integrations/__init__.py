"""Callbacks that track a training run inside a framework's own loop.

- :mod:`carbonkit.integrations.lightning`: ``CarbonkitCallback`` for PyTorch Lightning
  (``lightning``; :mod:`carbonkit.integrations.pytorch_lightning` for the older
  ``pytorch_lightning`` package name);
- :mod:`carbonkit.integrations.huggingface`: ``CarbonkitCallback`` for the Hugging Face
  ``transformers`` ``Trainer``;
- :mod:`carbonkit.integrations.keras`: ``CarbonkitCallback`` for Keras 3.

Each takes the :class:`carbonkit.Tracker` arguments, starts a tracker when training starts (the
planned epochs read from the trainer's own settings), marks the framework's epochs, puts the
figures so far into the framework's logs, stops training at the end of an epoch when a budget with
``on_over_budget="stop"`` is exceeded, and stops the tracker when training ends, also by an
exception. This package imports no framework; each module imports only its own, and says what to
install when it is missing. ``docs/integrations.md`` has the details.
"""

from __future__ import annotations

__all__: list[str] = []
