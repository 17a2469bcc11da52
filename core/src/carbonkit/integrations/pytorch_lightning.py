"""The PyTorch Lightning callback under the older package name (``import pytorch_lightning as
pl``): the same class as :class:`carbonkit.integrations.lightning.CarbonkitCallback`, which is a
``pytorch_lightning`` callback whenever that package is installed. Importing this module checks
that it is."""

from __future__ import annotations

try:
    import pytorch_lightning  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "carbonkit.integrations.pytorch_lightning needs the pytorch_lightning package, which is not installed: "
        "pip install pytorch-lightning (or pip install lightning and use carbonkit.integrations.lightning)"
    ) from exc

from .lightning import CarbonkitCallback

__all__ = ["CarbonkitCallback"]
