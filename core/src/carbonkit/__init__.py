"""carbonkit: measure, predict and report the energy use and carbon footprint of compute.

Three lines in a training loop::

    tracker = carbonkit.Tracker(epochs=100)
    for epoch in range(100):
        tracker.epoch_start(); train(); tracker.epoch_end()
    report = tracker.stop()

Heavy modules (numpy, httpx) are imported only when first needed, so ``import carbonkit``
stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    CarbonkitError,
    ConfigError,
    IntensityError,
    IntensityUnavailable,
    MeasurementError,
    NoPowerSourceError,
    PluginContractError,
    PluginError,
    PluginLoadError,
    RunLogError,
    UnknownZoneError,
)
from .hookspecs import hookimpl

__version__ = "0.1.0"

_LAZY = {
    "ComponentReport": "records",
    "Config": "config",
    "DroppedSource": "records",
    "EpochRecord": "records",
    "Fallback": "records",
    "IntensityProvenance": "records",
    "IntensityProvider": "protocols",
    "IntensitySample": "records",
    "IntensityUse": "records",
    "PowerSource": "protocols",
    "Prediction": "records",
    "Predictor": "protocols",
    "Report": "records",
    "Reporter": "protocols",
    "ReporterBase": "protocols",
    "RunStart": "protocols",
    "SimulatedSource": "sources",
    "Tracker": "tracker",
    "Unavailable": "records",
    "load_run": "runlog",
    "make_plugin_manager": "plugins",
}

__all__ = sorted(
    [
        *_LAZY,
        "CarbonkitError",
        "ConfigError",
        "IntensityError",
        "IntensityUnavailable",
        "MeasurementError",
        "NoPowerSourceError",
        "PluginContractError",
        "PluginError",
        "PluginLoadError",
        "RunLogError",
        "UnknownZoneError",
        "__version__",
        "hookimpl",
    ]
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'carbonkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
