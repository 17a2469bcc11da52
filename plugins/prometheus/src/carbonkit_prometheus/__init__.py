"""carbonkit plugin ``prometheus``: a run's energy and CO2eq for Prometheus, scraped or pushed.

Used only when ``CARBONKIT_PROMETHEUS_PORT`` (a ``/metrics`` endpoint) or
``CARBONKIT_PROMETHEUS_PUSHGATEWAY`` is set; otherwise it offers nothing, and this module is all
that is imported (every tracker and every ``carbonkit`` command imports each plugin, so it stays
small). The exporter is in :mod:`carbonkit_prometheus.exporter`; metric names are in the README.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from carbonkit import hookimpl

if TYPE_CHECKING:
    from carbonkit import Unavailable

    from .exporter import PrometheusExporter

__all__ = ["PrometheusExporter", "endpoints", "register_reporters"]

PORT_ENV = "CARBONKIT_PROMETHEUS_PORT"
ADDRESS_ENV = "CARBONKIT_PROMETHEUS_ADDRESS"
PUSHGATEWAY_ENV = "CARBONKIT_PROMETHEUS_PUSHGATEWAY"


def __getattr__(name: str) -> Any:
    if name in ("PrometheusExporter", "endpoints", "PUSH_TIMEOUT_S"):
        from . import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_reporters() -> list[PrometheusExporter | Unavailable]:
    """Offer the exporter when ``CARBONKIT_PROMETHEUS_PORT`` or ``..._PUSHGATEWAY`` is set; else nothing."""
    if not (os.environ.get(PORT_ENV) or "").strip() and not (os.environ.get(PUSHGATEWAY_ENV) or "").strip():
        return []
    from .exporter import offer

    return offer()
