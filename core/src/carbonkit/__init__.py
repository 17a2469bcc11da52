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
import logging

from .errors import (  # re-exported
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

# A library's warnings go to ``logging``; without a handler configured by the application they are
# not printed by logging's last resort (the console reporter prints them, unless quiet=True).
logging.getLogger("carbonkit").addHandler(logging.NullHandler())

TYPE_CHECKING = False  # type checkers treat this name as true; importing typing costs ~8 ms
if TYPE_CHECKING:  # the lazy names, for type checkers
    from .config import Config as Config
    from .decorators import track as track
    from .default_plugins.adaptive_predictor import AdaptivePredictor as AdaptivePredictor
    from .default_plugins.linear_predictor import LinearPredictor as LinearPredictor
    from .hookspecs import hookimpl as hookimpl
    from .plugins import make_plugin_manager as make_plugin_manager
    from .protocols import (
        IntensityProvider as IntensityProvider,
    )
    from .protocols import (
        PowerSource as PowerSource,
    )
    from .protocols import (
        Predictor as Predictor,
    )
    from .protocols import (
        Reporter as Reporter,
    )
    from .protocols import (
        ReporterBase as ReporterBase,
    )
    from .protocols import (
        RunStart as RunStart,
    )
    from .records import (
        BudgetExceeded as BudgetExceeded,
    )
    from .records import (
        BudgetReport as BudgetReport,
    )
    from .records import (
        ComponentReport as ComponentReport,
    )
    from .records import (
        DroppedSource as DroppedSource,
    )
    from .records import (
        EpochRecord as EpochRecord,
    )
    from .records import (
        Fallback as Fallback,
    )
    from .records import (
        HostReport as HostReport,
    )
    from .records import (
        IntensityProvenance as IntensityProvenance,
    )
    from .records import (
        IntensitySample as IntensitySample,
    )
    from .records import (
        IntensityUse as IntensityUse,
    )
    from .records import (
        Prediction as Prediction,
    )
    from .records import (
        Report as Report,
    )
    from .records import (
        ResolvedLocation as ResolvedLocation,
    )
    from .records import (
        Snapshot as Snapshot,
    )
    from .records import (
        Unavailable as Unavailable,
    )
    from .runlog import load_run as load_run
    from .sources import SimulatedSource as SimulatedSource
    from .tracker import Tracker as Tracker

__version__ = "0.1.0"

_LAZY = {
    "AdaptivePredictor": "default_plugins.adaptive_predictor",
    "LinearPredictor": "default_plugins.linear_predictor",
    "BudgetExceeded": "records",
    "BudgetReport": "records",
    "ComponentReport": "records",
    "Config": "config",
    "DroppedSource": "records",
    "EpochRecord": "records",
    "Fallback": "records",
    "HostReport": "records",
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
    "ResolvedLocation": "records",
    "hookimpl": "hookspecs",
    "RunStart": "protocols",
    "SimulatedSource": "sources",
    "Snapshot": "records",
    "Tracker": "tracker",
    "Unavailable": "records",
    "load_run": "runlog",
    "make_plugin_manager": "plugins",
    "track": "decorators",
}

__all__ = [
    "AdaptivePredictor",
    "BudgetExceeded",
    "BudgetReport",
    "CarbonkitError",
    "ComponentReport",
    "Config",
    "ConfigError",
    "DroppedSource",
    "EpochRecord",
    "Fallback",
    "HostReport",
    "IntensityError",
    "IntensityProvenance",
    "IntensityProvider",
    "IntensitySample",
    "IntensityUnavailable",
    "IntensityUse",
    "LinearPredictor",
    "MeasurementError",
    "NoPowerSourceError",
    "PluginContractError",
    "PluginError",
    "PluginLoadError",
    "PowerSource",
    "Prediction",
    "Predictor",
    "Report",
    "Reporter",
    "ReporterBase",
    "ResolvedLocation",
    "RunLogError",
    "RunStart",
    "SimulatedSource",
    "Snapshot",
    "Tracker",
    "Unavailable",
    "UnknownZoneError",
    "__version__",
    "hookimpl",
    "load_run",
    "make_plugin_manager",
    "track",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'carbonkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
