"""carbonkit plugin ``mlflow``: a run's energy and CO2eq in the active MLflow run.

Used when the program has an active MLflow run when the tracker starts (or names one in
``CARBONKIT_MLFLOW_RUN_ID``); otherwise this small module is all that is imported, and MLflow is
never imported by carbonkit. The exporter is in :mod:`carbonkit_mlflow.exporter`; what it logs is
in the README.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from carbonkit import hookimpl

if TYPE_CHECKING:
    from carbonkit import Unavailable

    from .exporter import MlflowExporter

__all__ = ["MlflowExporter", "register_reporters"]

ENABLE_ENV = "CARBONKIT_MLFLOW"
RUN_ID_ENV = "CARBONKIT_MLFLOW_RUN_ID"


def __getattr__(name: str) -> Any:
    if name in ("MlflowExporter", "active_run_id"):
        from . import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_reporters() -> list[MlflowExporter | Unavailable]:
    """Offer the exporter when the program has an active MLflow run (or names one)."""
    if "mlflow" not in sys.modules and not (os.environ.get(RUN_ID_ENV) or "").strip():
        return []  # the program never imported MLflow: it has no MLflow run
    from .exporter import offer

    return offer()
