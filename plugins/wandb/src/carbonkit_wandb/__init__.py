"""carbonkit plugin ``wandb``: a run's energy and CO2eq in the active Weights & Biases run.

Used when the program has a W&B run (``wandb.init()`` before ``carbonkit.Tracker()``); otherwise
this small module is all that is imported, and wandb is never imported by carbonkit. The
exporter and its step policy are in :mod:`carbonkit_wandb.exporter` and the README.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from carbonkit import hookimpl

if TYPE_CHECKING:
    from carbonkit import Unavailable

    from .exporter import WandbExporter

__all__ = ["WandbExporter", "register_reporters"]

ENABLE_ENV = "CARBONKIT_WANDB"


def __getattr__(name: str) -> Any:
    if name == "WandbExporter":
        from . import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_reporters() -> list[WandbExporter | Unavailable]:
    """Offer the exporter when the program has an active W&B run."""
    if "wandb" not in sys.modules:
        return []  # the program never imported wandb: it has no W&B run
    from .exporter import offer

    return offer()
