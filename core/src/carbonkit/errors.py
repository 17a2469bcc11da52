"""Exceptions raised by carbonkit.

The tree::

    CarbonkitError
    ├── ConfigError(CarbonkitError, ValueError)      # a bad argument or setting, at construction
    ├── PluginError
    │   ├── PluginLoadError                          # an entry point failed with a non-import error
    │   └── PluginContractError(PluginError, TypeError)  # a hook returned something off-contract
    ├── NoPowerSourceError(CarbonkitError, LookupError)
    ├── MeasurementError                             # a power source failed mid-run
    ├── RunLogError(CarbonkitError, ValueError)      # a run log cannot be read back
    └── IntensityError
        ├── IntensityUnavailable                     # network or API failure
        └── UnknownZoneError(IntensityError, KeyError)

Every message names the value involved and says what is accepted or what to do next.
Exceptions carry the objects involved as attributes (``.plugin``, ``.hook``, ``.zone``).
"""

from __future__ import annotations

__all__ = [
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
]


class CarbonkitError(Exception):
    """Base class of every error carbonkit raises on purpose."""


class ConfigError(CarbonkitError, ValueError):
    """An argument, environment variable or setting has a value carbonkit cannot use."""


class PluginError(CarbonkitError):
    """A plugin could not be loaded or broke the plugin contract."""

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None):
        super().__init__(message)
        self.plugin = plugin
        self.hook = hook


class PluginLoadError(PluginError):
    """An entry point raised something other than ImportError while being loaded."""


class PluginContractError(PluginError, TypeError):
    """A hook returned an object that does not satisfy its protocol, or a duplicate name."""


class NoPowerSourceError(CarbonkitError, LookupError):
    """No power source is available on this machine."""


class MeasurementError(CarbonkitError):
    """A power source failed while it was being read."""


class RunLogError(CarbonkitError, ValueError):
    """A run log is missing, empty or not a carbonkit run log."""


class IntensityError(CarbonkitError):
    """Carbon intensity could not be obtained."""

    def __init__(self, message: str, *, provider: str | None = None, zone: str | None = None):
        super().__init__(message)
        self.provider = provider
        self.zone = zone


class IntensityUnavailable(IntensityError):
    """A provider could not answer now: network failure, HTTP error, bad or empty payload."""


class UnknownZoneError(IntensityError, KeyError):
    """The zone code is not known to any provider."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
