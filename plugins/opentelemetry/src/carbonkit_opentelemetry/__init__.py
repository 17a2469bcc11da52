"""carbonkit plugin ``opentelemetry``: a run's energy and CO2eq as OpenTelemetry metrics.

Used when the application set an OpenTelemetry meter provider (or ``CARBONKIT_OPENTELEMETRY=1``);
otherwise this small module is all that is imported. The exporter is in
:mod:`carbonkit_opentelemetry.exporter`; instrument names and units are in the README.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from carbonkit import hookimpl

if TYPE_CHECKING:
    from carbonkit import Unavailable

    from .exporter import OpenTelemetryExporter

__all__ = ["OpenTelemetryExporter", "register_reporters"]

ENABLE_ENV = "CARBONKIT_OPENTELEMETRY"


def __getattr__(name: str) -> Any:
    if name in ("OpenTelemetryExporter", "METRICS"):
        from . import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_reporters() -> list[OpenTelemetryExporter | Unavailable]:
    """Offer the exporter when the application configured a meter provider, or when enabled."""
    value = (os.environ.get(ENABLE_ENV) or "").strip().lower()
    if value in ("", "auto") and "opentelemetry.metrics" not in sys.modules:
        return []  # the application never imported OpenTelemetry: it configured no provider
    from .exporter import offer

    return offer()
