"""Tracker configuration: one frozen record, built from arguments and ``CARBONKIT_*`` variables.

Every value is checked when the :class:`Config` is built. An error names what the user set: the
variable and its text as given (``CARBONKIT_INTERVAL='0.0001' is below the floor: ...``) when the
value came from the environment, the argument (``interval_s=0.0001 is below the floor: ...``)
when it came from code, and says what is accepted, with the unit. ``True`` is never a number
(``interval_s=True`` is not one second). :meth:`Config.describe_source` says where each value came
from: ``"argument"``, the variable's name, or ``"default"``.

Environment variables (an argument always wins over its variable; a variable set to an empty or
blank string counts as unset):

================================  ==========================================================
``CARBONKIT_LOCATION``            zone code, e.g. ``DK-DK2``, ``GB``, ``SE-SE3``
``CARBONKIT_PUE``                 power usage effectiveness, 1.0 to 5.0
``CARBONKIT_LOG_DIR``             folder for run logs (``*.jsonl``); created if missing, so it
                                  must be a folder, or a path under one, carbonkit can write in
``CARBONKIT_INTERVAL``            seconds between samples, 0.01 to 300
``CARBONKIT_ATTRIBUTION``         ``machine`` (default) or ``process`` (any case)
``CARBONKIT_POSTCODE``            postcode or outward code for regional intensity (GB)
``CARBONKIT_INTENSITY_PROVIDER``  name of the intensity provider to use
``CARBONKIT_SIGNAL``              ``average`` (default) or ``marginal``: the intensity signal
                                  the run is priced with (any case)
``CARBONKIT_QUIET``               ``1``/``true``/``yes``/``on`` silences the console reporter;
                                  ``0``/``false``/``no``/``off`` does not
``CARBONKIT_EMBODIED``            embodied emissions per component, a JSON object or
                                  ``@path/to/file.json``
``CARBONKIT_BUDGET_G``            carbon budget of the run, grams CO2eq (> 0)
``CARBONKIT_BUDGET_KWH``          energy budget of the run, kWh including PUE (> 0)
``CARBONKIT_DISABLE_PLUGINS``     comma-separated plugin names not to load (read by the loader)
``CARBONKIT_PLUGINS``             comma-separated allow-list of external plugins (``""``: none)
``CARBONKIT_TRACE_PLUGINS``       ``1`` logs every hook call at DEBUG (read by the loader)
``CARBONKIT_HANDLE_SIGTERM``      ``0`` leaves SIGTERM alone (read by the tracker)
================================  ==========================================================

Floors and ceilings, and why (each error message repeats the reason for the bound it hit):

- ``interval_s`` (seconds between samples): **0.01 to 300**. The sampler reads every source and
  updates the accounts each interval. Measured (process CPU time over 5 s of an idle run, 8 fake
  devices, 2-core machine), a running tracker takes 0.04 % of one core at 1 s, 0.5 % at 0.05 s and
  2 % at 0.01 s, and (before this floor existed) 5 % at 0.001 s and 30 % at 0.0001 s: below
  0.01 s the tracker's own cost becomes part of what it measures, for no better figure (RAPL
  counters update about every millisecond, and the tracker integrates them exactly at any
  interval). Above 300 s one power reading stands for minutes of the run, so its
  phases (evaluation, checkpoints) are missed and the shortest intensity periods (5 minutes) are
  split by interpolation rather than measurement. A source may still ask for a shorter interval
  than the one configured (``max_interval_s``); the floor applies to what the user sets.
- ``intensity_refresh_s`` (seconds between intensity fetches): **60 to 86,400 (one day)**.
  Intensity APIs publish a new value every 5 to 60 minutes, so fetching more than once a minute
  only loads a free public service; after a day without a fetch the forecast fetched last (24 to
  48 hours ahead) runs out and the run is priced at stale or average values.
- ``intensity_resolution_s`` (length of the intervals CO2eq is accounted in): **a whole number of
  seconds from 1 to 3600 that divides an hour evenly** (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60,
  120, 300, 600, 900, 1200, 1800, 3600 and the other divisors of 3600). Intervals are aligned to
  UTC multiples of it, so with a divisor of the hour every hour starts a new interval and the
  intervals fall at the same minutes every hour; any other length drifts across the hourly and
  half-hourly boundaries where intensity changes. The accountant keeps one cumulative energy per
  interval, measured at 112 bytes each (``tracemalloc``, one simulated week): the default 60 s
  costs 1.1 MB per week of run, 1 s costs 68 MB per week, and below 1 s memory would grow by
  hundreds of MB per week with no gain: no intensity source changes faster than every 5 minutes.
  Above an hour, one intensity would price several hours of a grid that changes every hour.
- ``pue``: **1.0 to 5.0**. PUE is total facility power over IT power, so it is never below 1.0;
  5.0 is already more than three times the global average of 1.58 (Uptime Institute 2023), and a
  larger value is more likely a percentage or a typo than a data centre.
- ``epochs`` and ``predict_after``: **1 to 10,000,000**. The tracker keeps a record per epoch;
  beyond ten million the number is almost certainly steps or samples, which belong in
  ``functional_unit`` and ``add_units()``. ``predict_after`` is also at most ``epochs``.
- ``budget_g`` and ``budget_kwh``: a finite number **> 0** (grams CO2eq; kWh including PUE),
  or None for no budget. A budget of 0 would be exceeded by the first reading.
- ``pid``: a whole number > 0. ``tags``: strings to strings. ``options``: a mapping with string
  keys. ``quiet``: ``True`` or ``False`` only. ``embodied``: ``{"gpu": {"kgco2e": ...,
  "lifetime_years": ..., "source": ...}}`` (checked by :func:`carbonkit.reports.sci.embodied_from_config`).

The defaults (1 s, 900 s, 60 s, PUE 1.58) sit well inside every range.

Unknown variables. Plugins read their own ``CARBONKIT_*`` variables, so an unknown name is not an
error. :func:`unknown_variables` returns one warning per unknown name that looks like a mistake
for a known one (``CARBONKIT_INTERVALS``: did you mean ``CARBONKIT_INTERVAL``?), and never warns
for :data:`KNOWN_VARIABLES` or for names ending in one of :data:`PLUGIN_SUFFIXES` (a plugin's
endpoints, credentials and roots). Warnings name variables, never their values (they may be
secrets).
"""

from __future__ import annotations

import contextlib
import difflib
import math
import numbers
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from .errors import ConfigError

__all__ = [
    "ARGUMENT",
    "DEFAULT",
    "DEFAULT_PUE",
    "DEFAULT_PUE_SOURCE",
    "EPOCHS_MAX",
    "INTERVAL_MAX_S",
    "INTERVAL_MIN_S",
    "KNOWN_VARIABLES",
    "PLUGIN_SUFFIXES",
    "PUE_MAX",
    "PUE_MIN",
    "REFRESH_MAX_S",
    "REFRESH_MIN_S",
    "RESOLUTION_MAX_S",
    "RESOLUTION_MIN_S",
    "VARIABLES",
    "Config",
    "check_log_dir",
    "unknown_variables",
]

#: The default PUE: the industry-average power usage effectiveness of data centres.
DEFAULT_PUE = 1.58
DEFAULT_PUE_SOURCE = "default: global data-centre average, Uptime Institute Global Data Center Survey 2023"

ATTRIBUTIONS = ("machine", "process", "cgroup")

#: :meth:`Config.describe_source` for a value passed as an argument.
ARGUMENT = "argument"
#: :meth:`Config.describe_source` for a value nobody set.
DEFAULT = "default"

INTERVAL_MIN_S = 0.01
INTERVAL_MAX_S = 300.0
REFRESH_MIN_S = 60.0
REFRESH_MAX_S = 86_400.0
RESOLUTION_MIN_S = 1.0
RESOLUTION_MAX_S = 3600.0
PUE_MIN = 1.0
PUE_MAX = 5.0
EPOCHS_MAX = 10_000_000

#: The variables the core reads, and the Config field each one sets.
VARIABLES: Mapping[str, str] = {
    "CARBONKIT_LOCATION": "location",
    "CARBONKIT_PUE": "pue",
    "CARBONKIT_LOG_DIR": "log_dir",
    "CARBONKIT_INTERVAL": "interval_s",
    "CARBONKIT_ATTRIBUTION": "attribution",
    "CARBONKIT_POSTCODE": "postcode",
    "CARBONKIT_INTENSITY_PROVIDER": "intensity_provider",
    "CARBONKIT_QUIET": "quiet",
    "CARBONKIT_EMBODIED": "embodied",
    "CARBONKIT_SIGNAL": "signal",
    "CARBONKIT_BUDGET_G": "budget_g",
    "CARBONKIT_BUDGET_KWH": "budget_kwh",
}

#: Every ``CARBONKIT_*`` variable known to be read, by whom. Names here never draw a warning.
KNOWN_VARIABLES: Mapping[str, str] = {
    **{name: "core" for name in VARIABLES},
    "CARBONKIT_DISABLE_PLUGINS": "core (plugin loader)",
    "CARBONKIT_PLUGINS": "core (plugin loader)",
    "CARBONKIT_TRACE_PLUGINS": "core (plugin loader)",
    "CARBONKIT_HANDLE_SIGTERM": "core (signal handling)",
    "CARBONKIT_RAPL_ROOT": "rapl",
    "CARBONKIT_SYSFS_ROOT": "plugins reading sysfs, carbonkit setup rapl, cgroup accounting",
    "CARBONKIT_ETC_ROOT": "carbonkit setup rapl",
    "CARBONKIT_PROC_ROOT": "cgroup accounting",
    "CARBONKIT_NVML_PROCESS_GPUS": "nvml",
    "CARBONKIT_NVML_GPUS": "nvml",
    "CARBONKIT_CPU_TDP_W": "cpu_estimate",
    "CARBONKIT_CPU_ESTIMATE_DRAM": "cpu_estimate",
    "CARBONKIT_CPU_ESTIMATE_IDLE_FRACTION": "cpu_estimate",
    "CARBONKIT_DK_API_URL": "intensity_dk",
    "CARBONKIT_DK_LIVE_DATASET": "intensity_dk",
    "CARBONKIT_DK_FORECAST_DATASET": "intensity_dk",
    "CARBONKIT_GB_API_URL": "intensity_gb",
    "CARBONKIT_GB_REGION_ID": "intensity_gb",
    "CARBONKIT_AWS_METADATA_URL": "location",
    "CARBONKIT_GCP_METADATA_URL": "location",
    "CARBONKIT_AZURE_METADATA_URL": "location",
    "CARBONKIT_CLOUD_METADATA": "location",
    "CARBONKIT_CLOUD_METADATA_TIMEOUT": "location",
    "CARBONKIT_IP_GEOLOCATION": "location",
    "CARBONKIT_IP_GEOLOCATION_URL": "location",
    "CARBONKIT_ENTSOE_TOKEN": "ENTSO-E intensity plugin",
    "CARBONKIT_ELECTRICITYMAPS_TOKEN": "intensity_electricitymaps",
    "CARBONKIT_ELECTRICITYMAPS_API_URL": "intensity_electricitymaps",
    "CARBONKIT_ELECTRICITYMAPS_EMISSION_FACTOR_TYPE": "intensity_electricitymaps",
    "CARBONKIT_WATTTIME_USERNAME": "intensity_watttime",
    "CARBONKIT_WATTTIME_PASSWORD": "intensity_watttime",
    "CARBONKIT_WATTTIME_API_URL": "intensity_watttime",
    "CARBONKIT_WATTTIME_REGION": "intensity_watttime",
    "CARBONKIT_WATTTIME_LATITUDE": "intensity_watttime",
    "CARBONKIT_WATTTIME_LONGITUDE": "intensity_watttime",
    "CARBONKIT_ENTSOE_API_URL": "intensity_entsoe",
    "CARBONKIT_EIA_API_KEY": "EIA intensity plugin",
    "CARBONKIT_EIA_API_URL": "intensity_eia",
    "CARBONKIT_HOST": "core (multi-process jobs: the host's identity) and exporter plugins",
    "CARBONKIT_LOCK_DIR": "core (multi-process jobs: where the host locks live)",
    "CARBONKIT_ROLE": "core (multi-process jobs: force measurer or observer)",
    "CARBONKIT_PROMETHEUS_PORT": "Prometheus exporter plugin",
    "CARBONKIT_PROMETHEUS_ADDRESS": "Prometheus exporter plugin",
    "CARBONKIT_PROMETHEUS_PUSHGATEWAY": "Prometheus exporter plugin",
    "CARBONKIT_OPENTELEMETRY": "OpenTelemetry exporter plugin",
    "CARBONKIT_MLFLOW": "MLflow exporter plugin",
    "CARBONKIT_MLFLOW_RUN_ID": "MLflow exporter plugin",
    "CARBONKIT_WANDB": "Weights & Biases exporter plugin",
    "CARBONKIT_TEST_CHROMIUM": "the test suite (HTML report)",
}

#: A variable whose name ends in one of these belongs to a plugin (an endpoint, a credential, a
#: root folder, a port): never warned about, whatever it is close to.
PLUGIN_SUFFIXES = ("_TOKEN", "_API_KEY", "_KEY", "_SECRET", "_PASSWORD", "_URL", "_ROOT", "_PORT", "_HOST")

_PREFIX = "CARBONKIT_"
_ZONE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_POSTCODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{0,15}")
_HOUR_DIVISORS = tuple(d for d in range(1, 3601) if 3600 % d == 0)


class _Rejected(Exception):
    """Internal: a value is not accepted; carries the problem and what is accepted."""

    def __init__(self, problem: str, accepted: str) -> None:
        super().__init__(problem, accepted)
        self.problem = problem
        self.accepted = accepted


# -- the rules, one per field: value in, normalised value out, _Rejected when not accepted ------

_INTERVAL = f"interval_s must be a number of seconds from {INTERVAL_MIN_S:g} to {INTERVAL_MAX_S:g}"
_INTERVAL_FLOOR = (
    "the sampler reads every source each interval and at 0.01 s already takes about 2 % of a CPU core; "
    "shorter intervals cost more without a better figure (RAPL counters update about every 1 ms)"
)
_INTERVAL_CEILING = (
    "one power reading stands for the whole interval, so a longer one misses the run's phases and "
    "splits 5-minute intensity periods by interpolation"
)
_REFRESH = f"intensity_refresh_s must be a number of seconds from {REFRESH_MIN_S:g} to {REFRESH_MAX_S:g} (one day)"
_REFRESH_FLOOR = "intensity APIs publish every 5 to 60 minutes, so fetching more often only loads the service"
_REFRESH_CEILING = "forecasts reach 24 to 48 hours ahead, so a longer wait prices the run at stale or average values"
_RESOLUTION = (
    f"intensity_resolution_s must be a whole number of seconds from {RESOLUTION_MIN_S:g} to {RESOLUTION_MAX_S:g} "
    "that divides an hour evenly (1, 2, 5, 10, 15, 30, 60, 300, 900, 1800, 3600 or another divisor of 3600)"
)
_RESOLUTION_FLOOR = (
    "CO2eq is kept per interval, about 112 bytes each: 1 s already costs 68 MB per week of run, "
    "and no intensity source changes faster than every 5 minutes"
)
_RESOLUTION_CEILING = "one intensity would price several hours of a grid whose intensity changes every hour"
_RESOLUTION_DIVIDES = (
    "intervals are aligned to UTC multiples of it, and a length that does not divide the hour drifts "
    "across the hourly and half-hourly boundaries where intensity changes"
)
_PUE = f"pue must be a number between {PUE_MIN} and {PUE_MAX} (total facility power / IT power)"
_PUE_CEILING = "5.0 is already more than three times the global average of 1.58 (Uptime Institute 2023)"
_EPOCHS = f"epochs must be a whole number >= 1 and <= {EPOCHS_MAX:,} (planned epochs), or None for no prediction"
_PREDICT_AFTER = (
    f"predict_after must be a whole number >= 1 and <= {EPOCHS_MAX:,} (epochs to monitor before predicting)"
)
_EPOCHS_CEILING = (
    "the tracker keeps a record per epoch, and more than ten million is almost certainly steps or samples: "
    "count those with functional_unit= and add_units()"
)
_LOCATION = (
    "location must be a zone code such as 'DK-DK2', 'GB', 'SE-SE3' or 'WORLD' "
    "(letters, digits, '-' and '_', at most 32 characters)"
)
_POSTCODE_TEXT = "postcode must be a postcode or outward code such as 'RG10' or 'RG10 9XX' (letters, digits, spaces)"
_ATTRIBUTION = "attribution must be 'machine', 'process' or 'cgroup'"
_SIGNAL = (
    "signal must be 'average' (the emissions of all generation in the zone, the default) or 'marginal' "
    "(the emissions of the generation that responds to a change in demand)"
)
_QUIET = "quiet must be True or False"
_TAGS = "tags must map strings to strings, e.g. {'job': 'resnet50', 'team': 'vision'}"
_OPTIONS = "options must be a mapping with string keys, e.g. {'rapl.root': '/sys/class/powercap'}"
_PID = "pid must be a whole number > 0 (the process id at the root of the tracked process tree)"
_LOG_DIR = "log_dir must be a folder path (a str or os.PathLike), or None for no run log"
_BUDGET_G = "budget_g must be a number of grams CO2eq > 0 (the run's carbon budget), or None for none"
_BUDGET_KWH = "budget_kwh must be a number of kWh > 0, PUE included (the run's energy budget), or None for none"
_EMBODIED = "embodied must map components to {'kgco2e': kg per device, 'lifetime_years': years, 'source': text}"


def _name_rule(what: str, example: str) -> Callable[[object], str]:
    text = f"{what} must be a name such as {example} (no spaces)"

    def rule(value: object) -> str:
        if not isinstance(value, str):
            raise _Rejected("not a string", text)
        stripped = value.strip()
        if not stripped or any(c.isspace() for c in stripped) or len(stripped) > 200:
            raise _Rejected("not accepted", text)
        return stripped

    return rule


def _real(value: object, accepted: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _Rejected("not a number", accepted)
    number = float(value)
    if not math.isfinite(number):
        raise _Rejected("not a finite number", accepted)
    return number


def _whole(value: object, accepted: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _Rejected("not a whole number", accepted)
    return int(value)


def _bounded(number: float, low: float, high: float, accepted: str, floor_why: str, ceiling_why: str) -> float:
    if number <= 0 < low:
        raise _Rejected("not a positive number", accepted)
    if number < low:
        raise _Rejected("below the floor", f"{accepted}; {floor_why}")
    if number > high:
        raise _Rejected("above the ceiling", f"{accepted}; {ceiling_why}")
    return number


def _rule_interval(value: object) -> float:
    return _bounded(
        _real(value, _INTERVAL), INTERVAL_MIN_S, INTERVAL_MAX_S, _INTERVAL, _INTERVAL_FLOOR, _INTERVAL_CEILING
    )


def _rule_refresh(value: object) -> float:
    return _bounded(_real(value, _REFRESH), REFRESH_MIN_S, REFRESH_MAX_S, _REFRESH, _REFRESH_FLOOR, _REFRESH_CEILING)


def _rule_resolution(value: object) -> float:
    number = _bounded(
        _real(value, _RESOLUTION),
        RESOLUTION_MIN_S,
        RESOLUTION_MAX_S,
        _RESOLUTION,
        _RESOLUTION_FLOOR,
        _RESOLUTION_CEILING,
    )
    if number != int(number) or 3600 % int(number) != 0:
        below = max(d for d in _HOUR_DIVISORS if d <= number)
        above = min(d for d in _HOUR_DIVISORS if d >= number)
        raise _Rejected(
            "not a divisor of an hour", f"{_RESOLUTION}; the nearest are {below} and {above}; {_RESOLUTION_DIVIDES}"
        )
    return number


def _rule_pue(value: object) -> float:
    number = _real(value, _PUE)
    if number < PUE_MIN:
        raise _Rejected("below the floor", f"{_PUE}; a PUE is never below 1.0")
    if number > PUE_MAX:
        raise _Rejected("above the ceiling", f"{_PUE}; {_PUE_CEILING}")
    return number


def _rule_epochs(value: object) -> int:
    number = _whole(value, _EPOCHS)
    if number < 1:
        raise _Rejected("below the floor", _EPOCHS)
    if number > EPOCHS_MAX:
        raise _Rejected("above the ceiling", f"{_EPOCHS}; {_EPOCHS_CEILING}")
    return number


def _rule_predict_after(value: object) -> int:
    number = _whole(value, _PREDICT_AFTER)
    if number < 1:
        raise _Rejected("below the floor", _PREDICT_AFTER)
    if number > EPOCHS_MAX:
        raise _Rejected("above the ceiling", f"{_PREDICT_AFTER}; {_EPOCHS_CEILING}")
    return number


def _rule_budget(accepted: str) -> Callable[[object], float]:
    def rule(value: object) -> float:
        number = _real(value, accepted)
        if number <= 0:
            raise _Rejected("not a positive number", accepted)
        return number

    return rule


def _rule_location(value: object) -> str:
    if not isinstance(value, str):
        raise _Rejected("not a string", _LOCATION)
    zone = value.strip().upper()
    if not _ZONE.fullmatch(zone):
        raise _Rejected("not a zone code", _LOCATION)
    return zone


def _rule_postcode(value: object) -> str:
    if not isinstance(value, str):
        raise _Rejected("not a string", _POSTCODE_TEXT)
    postcode = value.strip()
    if not _POSTCODE.fullmatch(postcode):
        raise _Rejected("not a postcode", _POSTCODE_TEXT)
    return postcode


def _rule_attribution(value: object) -> str:
    if value not in ATTRIBUTIONS:
        raise _Rejected("not accepted", _ATTRIBUTION)
    return str(value)


def _rule_signal(value: object) -> str:
    from .records import SIGNALS

    if not isinstance(value, str) or value.strip().lower() not in SIGNALS:
        raise _Rejected("not accepted", _SIGNAL)
    return value.strip().lower()


def _rule_quiet(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Rejected("not a bool", _QUIET)
    return value


def _rule_progress(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Rejected("not a bool", "progress must be True or False")
    return value


def _rule_tags(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _Rejected("not accepted", _TAGS)
    return dict(value)


def _rule_options(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _Rejected("not accepted", _OPTIONS)
    return dict(value)


def _rule_pid(value: object) -> int:
    number = _whole(value, _PID)
    if number < 1:
        raise _Rejected("not accepted", _PID)
    return number


def _rule_log_dir(value: object) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise _Rejected("not a path", _LOG_DIR)
    path = Path(value)
    if "\x00" in str(path):
        raise _Rejected("not a path (it contains a NUL character)", _LOG_DIR)
    return path


def _rule_embodied(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _Rejected("not accepted", _EMBODIED)
    if value:
        from .reports.sci import embodied_from_config

        try:
            embodied_from_config(value)
        except ConfigError as exc:
            raise _Rejected("not accepted", str(exc)) from None
    return dict(value)


def _rule_functional_unit(value: object) -> str:
    text = "functional_unit must be a word such as 'sample' or 'token' (at most 64 characters), or None for no SCI"
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 64:
        raise _Rejected("not accepted", text)
    return value.strip()


def _rule_pue_source(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Rejected("not accepted", "pue_source must be a non-empty text saying where the PUE comes from")
    return value


_rule_provider = _name_rule("intensity_provider", "'intensity_dk' or 'intensity_gb:national'")
_rule_predictor = _name_rule("predictor", "'adaptive' or 'linear'")

_RULES: Mapping[str, Callable[[object], Any]] = {
    "location": _rule_location,
    "pue": _rule_pue,
    "pue_source": _rule_pue_source,
    "interval_s": _rule_interval,
    "epochs": _rule_epochs,
    "predict_after": _rule_predict_after,
    "log_dir": _rule_log_dir,
    "intensity_provider": _rule_provider,
    "intensity_refresh_s": _rule_refresh,
    "intensity_resolution_s": _rule_resolution,
    "predictor": _rule_predictor,
    "quiet": _rule_quiet,
    "attribution": _rule_attribution,
    "signal": _rule_signal,
    "postcode": _rule_postcode,
    "pid": _rule_pid,
    "tags": _rule_tags,
    "functional_unit": _rule_functional_unit,
    "embodied": _rule_embodied,
    "options": _rule_options,
    "progress": _rule_progress,
    "budget_g": _rule_budget(_BUDGET_G),
    "budget_kwh": _rule_budget(_BUDGET_KWH),
}


def _argument(name: str, value: object) -> Any:
    """Apply ``name``'s rule to a value given in code; the error names ``name=value``."""
    if value is None and name in _OPTIONAL:
        return None
    try:
        return _RULES[name](value)
    except _Rejected as exc:
        raise ConfigError(f"{name}={value!r} is {exc.problem}: {exc.accepted}") from None


_OPTIONAL = frozenset(
    {"location", "epochs", "log_dir", "intensity_provider", "postcode", "functional_unit", "budget_g", "budget_kwh"}
)


# attrs converters must be named functions (for type checkers): one per field.
def _c_location(value: object) -> str | None:
    return _argument("location", value)  # type: ignore[no-any-return]


def _c_pue(value: object) -> float:
    return _argument("pue", value)  # type: ignore[no-any-return]


def _c_pue_source(value: object) -> str:
    return _argument("pue_source", value)  # type: ignore[no-any-return]


def _c_interval(value: object) -> float:
    return _argument("interval_s", value)  # type: ignore[no-any-return]


def _c_epochs(value: object) -> int | None:
    return _argument("epochs", value)  # type: ignore[no-any-return]


def _c_predict_after(value: object) -> int:
    return _argument("predict_after", value)  # type: ignore[no-any-return]


def _c_log_dir(value: object) -> Path | None:
    return _argument("log_dir", value)  # type: ignore[no-any-return]


def _c_provider(value: object) -> str | None:
    return _argument("intensity_provider", value)  # type: ignore[no-any-return]


def _c_refresh(value: object) -> float:
    return _argument("intensity_refresh_s", value)  # type: ignore[no-any-return]


def _c_resolution(value: object) -> float:
    return _argument("intensity_resolution_s", value)  # type: ignore[no-any-return]


def _c_predictor(value: object) -> str:
    return _argument("predictor", value)  # type: ignore[no-any-return]


def _c_quiet(value: object) -> bool:
    return _argument("quiet", value)  # type: ignore[no-any-return]


def _c_attribution(value: object) -> str:
    return _argument("attribution", value)  # type: ignore[no-any-return]


def _c_signal(value: object) -> str:
    return _argument("signal", value)  # type: ignore[no-any-return]


def _c_postcode(value: object) -> str | None:
    return _argument("postcode", value)  # type: ignore[no-any-return]


def _c_pid(value: object) -> int:
    return _argument("pid", value)  # type: ignore[no-any-return]


def _c_tags(value: object) -> dict[str, str]:
    return _argument("tags", value)  # type: ignore[no-any-return]


def _c_functional_unit(value: object) -> str | None:
    return _argument("functional_unit", value)  # type: ignore[no-any-return]


def _c_embodied(value: object) -> dict[str, Any]:
    return _argument("embodied", value)  # type: ignore[no-any-return]


def _c_options(value: object) -> dict[str, Any]:
    return _argument("options", value)  # type: ignore[no-any-return]


def _c_progress(value: object) -> bool:
    return _argument("progress", value)  # type: ignore[no-any-return]


def _c_budget_g(value: object) -> float | None:
    return _argument("budget_g", value)  # type: ignore[no-any-return]


def _c_budget_kwh(value: object) -> float | None:
    return _argument("budget_kwh", value)  # type: ignore[no-any-return]


def _c_given_by(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"given_by must map field names to 'argument', 'default' or a variable name, got {value!r}")
    return dict(value)


def _check_predict_after(instance: Config, attribute: attrs.Attribute[int], value: int) -> None:
    if instance.epochs is not None and value > instance.epochs:
        raise ConfigError(
            f"predict_after={value} is more than epochs={instance.epochs}; it must be between 1 and epochs"
        )


def _check_given_by(instance: Config, attribute: attrs.Attribute[Mapping[str, str]], value: Mapping[str, str]) -> None:
    names = {a.name for a in attrs.fields(Config)} - {"given_by"}
    for key, source in value.items():
        if key not in names or not source.strip():
            raise ConfigError(
                f"given_by[{key!r}]={source!r} is not accepted: keys must be Config fields "
                f"({', '.join(sorted(names))}) and values a non-empty text such as '{ARGUMENT}', "
                f"'{DEFAULT}' or a CARBONKIT_* variable name"
            )


@frozen(kw_only=True)
class Config:
    """Everything a tracker and its plugins are configured with.

    Build it with :meth:`from_env` to apply ``CARBONKIT_*`` variables. Plugins read it in every
    hook; a third-party plugin reads its own settings from ``options``. Every field is checked
    at construction (see the module docstring for the accepted ranges and why); a bad value is a
    :class:`~carbonkit.ConfigError` naming it.

    :param location: Zone code, or None when not given (the tracker then resolves it).
    :param pue: Power usage effectiveness applied to IT energy (1.0 to 5.0).
    :param pue_source: Where the PUE came from, shown in reports.
    :param interval_s: Seconds between two samples of every power source (0.01 to 300).
    :param epochs: Planned epochs (1 to 10,000,000), or None for no prediction.
    :param predict_after: Epochs to monitor before predicting (1 to ``epochs``).
    :param log_dir: Folder for the run log, or None for none.
    :param intensity_provider: Name of the intensity provider to use, or None to choose.
    :param intensity_refresh_s: Seconds between two intensity fetches (60 to 86,400).
    :param intensity_resolution_s: CO2eq is accounted per interval of this many seconds of wall
        clock time (aligned to UTC), each at the intensity in force for it: a whole number of
        seconds from 1 to 3600 that divides an hour.
    :param predictor: Name of the predictor.
    :param quiet: Silence the console reporter.
    :param progress: Have the console reporter print one line per epoch.
    :param attribution: ``"machine"`` (whole machine), ``"process"`` (the tracked process
        tree's share) or ``"cgroup"`` (the share of this process's cgroup v2: a container or a
        Slurm job; :mod:`carbonkit.cgroups`).
    :param signal: Which intensity signal prices the run: ``"average"`` (the default) or
        ``"marginal"``. Providers of that signal are tried first; when none answers, the run
        falls back to average values and the report says which share each signal priced.
    :param postcode: Outward postcode, for regional providers that use one.
    :param pid: Root of the tracked process tree.
    :param tags: Free labels recorded in the run log and report.
    :param functional_unit: What the run produces, for Software Carbon Intensity
        (``"sample"``, ``"token"``...); None for no SCI.
    :param embodied: Embodied emissions per component, for SCI:
        ``{"gpu": {"kgco2e": 150, "lifetime_years": 4, "source": "..."}}``.
    :param options: Settings for third-party plugins, by key.
    :param budget_g: Carbon budget of the run in grams CO2eq (> 0), or None.
    :param budget_kwh: Energy budget of the run in kWh including PUE (> 0), or None.
    :param given_by: Where each value came from, by field: ``"argument"``, the
        ``CARBONKIT_*`` variable, or ``"default"``. Filled by :meth:`from_env`; read it with
        :meth:`describe_source`. Provenance only: it is left out of equality, so two configs
        with the same settings are equal whoever supplied them.
    """

    location: str | None = field(default=None, converter=_c_location)
    pue: float = field(default=DEFAULT_PUE, converter=_c_pue)
    pue_source: str = field(default=DEFAULT_PUE_SOURCE, converter=_c_pue_source)
    interval_s: float = field(default=1.0, converter=_c_interval)
    epochs: int | None = field(default=None, converter=_c_epochs)
    predict_after: int = field(default=1, converter=_c_predict_after, validator=_check_predict_after)
    log_dir: Path | None = field(default=None, converter=_c_log_dir)
    intensity_provider: str | None = field(default=None, converter=_c_provider)
    intensity_refresh_s: float = field(default=900.0, converter=_c_refresh)
    intensity_resolution_s: float = field(default=60.0, converter=_c_resolution)
    predictor: str = field(default="adaptive", converter=_c_predictor)
    quiet: bool = field(default=False, converter=_c_quiet)
    progress: bool = field(default=False, converter=_c_progress)
    attribution: str = field(default="machine", converter=_c_attribution)
    signal: str = field(default="average", converter=_c_signal)
    postcode: str | None = field(default=None, converter=_c_postcode)
    pid: int = field(factory=os.getpid, converter=_c_pid)
    tags: Mapping[str, str] = field(factory=dict, converter=_c_tags)
    functional_unit: str | None = field(default=None, converter=_c_functional_unit)
    embodied: Mapping[str, Any] = field(factory=dict, converter=_c_embodied)
    options: Mapping[str, Any] = field(factory=dict, converter=_c_options)
    budget_g: float | None = field(default=None, converter=_c_budget_g)
    budget_kwh: float | None = field(default=None, converter=_c_budget_kwh)
    given_by: Mapping[str, str] = field(factory=dict, converter=_c_given_by, validator=_check_given_by, eq=False)

    def describe_source(self, name: str) -> str:
        """Say where the value of field ``name`` came from.

        :param name: A field name, e.g. ``"pue"``.
        :returns: ``"argument"``, the ``CARBONKIT_*`` variable it was read from, or
            ``"default"``. For a config built directly (not through :meth:`from_env`), a field
            equal to its default is ``"default"`` and any other is ``"argument"``.
        :raises ConfigError: when ``name`` is not a field.
        """
        fields = {a.name: a for a in attrs.fields(Config) if a.name != "given_by"}
        if name not in fields:
            raise ConfigError(f"describe_source({name!r}): not a Config field; fields are {', '.join(sorted(fields))}")
        if name in self.given_by:
            return self.given_by[name]
        default: Any = fields[name].default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        return DEFAULT if getattr(self, name) == default else ARGUMENT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **arguments: Any) -> Config:
        """Build a config from explicit ``arguments``, filling unset ones (None) from the environment.

        Every argument and every variable read is checked; a variable set to an empty or blank
        string counts as unset. When ``log_dir`` is set, the folder (or, when it does not exist
        yet, its nearest existing parent) must accept a new file: see :func:`check_log_dir`.
        ``given_by`` records where each value came from.

        :param environ: The environment to read (default ``os.environ``).
        :raises ConfigError: naming the variable (``CARBONKIT_PUE='abc'``) or the argument
            (``pue=9``), the value as given, and what is accepted.
        """
        env = os.environ if environ is None else environ
        names = [a.name for a in attrs.fields(cls) if a.name != "given_by"]
        unknown = sorted(set(arguments) - set(names))
        if unknown:
            raise ConfigError(f"unknown argument {unknown[0]!r}; Config.from_env accepts {', '.join(names)}")
        values: dict[str, Any] = {}
        given_by: dict[str, str] = {}
        for name, value in arguments.items():
            if value is not None:
                values[name] = _argument(name, value)
                given_by[name] = ARGUMENT
        for var, name in VARIABLES.items():
            raw = env.get(var)
            if name in values or raw is None or raw.strip() == "":
                continue
            values[name] = _variable(var, name, raw)
            given_by[name] = var
        if values.get("log_dir") is not None:
            check_log_dir(values["log_dir"], given_by["log_dir"])
        if "pue" in values and "pue_source" not in values:
            shown = "pue argument" if given_by["pue"] == ARGUMENT else given_by["pue"]
            values["pue_source"] = f"user-supplied ({shown})"
            given_by["pue_source"] = given_by["pue"]
        for name in names:
            given_by.setdefault(name, DEFAULT)
        return cls(**values, given_by=given_by)


def _variable(var: str, name: str, raw: str) -> Any:
    """Parse and check the text of variable ``var``; the error names ``var='raw'``."""
    text = raw.strip()
    try:
        if name in ("pue", "interval_s", "budget_g", "budget_kwh"):
            accepted = {"pue": _PUE, "interval_s": _INTERVAL, "budget_g": _BUDGET_G, "budget_kwh": _BUDGET_KWH}[name]
            value: object = _parse_float(text, accepted)
        elif name in ("attribution", "signal"):
            value = text.lower()
        elif name == "quiet":
            value = _truthy(text)
        elif name == "embodied":
            value = _json_object(text)
        else:
            value = text
        return _RULES[name](value)
    except _Rejected as exc:
        raise ConfigError(f"{var}={raw!r} is {exc.problem}: {exc.accepted}") from None


def _parse_float(text: str, accepted: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _Rejected("not a number", accepted) from None


def _json_object(text: str) -> object:
    import json

    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise _Rejected(
                f"a file that cannot be read ({str(path)!r}: {exc.strerror or exc})",
                f"{_EMBODIED}, given as a JSON object or as @path/to/file.json",
            ) from None
        except UnicodeDecodeError as exc:
            raise _Rejected(f"a file that is not UTF-8 text ({str(path)!r}: {exc})", _EMBODIED) from None
        where = f"{str(path)!r} is not valid JSON"
    else:
        where = "not valid JSON"
    try:
        data: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Rejected(
            f"{where} (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            f"{_EMBODIED}, as a JSON object or @path/to/file.json",
        ) from None
    if not isinstance(data, dict):
        raise _Rejected(f"JSON but not an object (got {type(data).__name__})", _EMBODIED)
    return data


def _truthy(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise _Rejected("not a boolean", "quiet must be 1, true, yes or on (quiet), or 0, false, no or off (not quiet)")


# -- the run-log folder --------------------------------------------------------------------------


def check_log_dir(path: Path, given_by: str) -> None:
    """Check that carbonkit can write its run log in ``path``, before the run starts.

    The folder itself when it exists, else its nearest existing parent (the run-log writer
    creates the missing folders), must be a directory that accepts a new file. The check asks
    ``os.access`` (write and search), then creates and removes a temporary file there, because
    ``os.access`` says yes to root on a read-only mount.

    :param path: The folder the user set.
    :param given_by: Who set it: the variable's name (``CARBONKIT_LOG_DIR``), or the argument's
        (``log_dir``; ``"argument"`` is read as ``log_dir``).
    :raises ConfigError: naming the path and ``given_by`` when the path exists and is not a
        folder, when a parent on the way is a file, or when no file can be created there.
    """
    label = f"{'log_dir' if given_by == ARGUMENT else given_by}={str(path)!r}"
    wanted = "log_dir must be a folder carbonkit can create files in (it is created if missing)"
    try:
        problem, existing = _nearest_folder(path)
    except (OSError, ValueError) as exc:  # e.g. a name too long for the file system
        problem, existing = str(exc), path
    if problem:
        raise ConfigError(f"{label} is not usable: {problem}; {wanted}")
    where = "it" if existing == path else f"its nearest existing parent {str(existing)!r}"
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{label} is not usable: {where} is not writable by this user; {wanted}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".carbonkit-check-", dir=existing)
    except OSError as exc:
        raise ConfigError(
            f"{label} is not usable: a file cannot be created in {where} ({exc.strerror or exc}); {wanted}"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):  # created but not removable: leave it, the folder works
        os.unlink(probe)


def _nearest_folder(path: Path) -> tuple[str, Path]:
    """Return why ``path`` cannot become a folder ("" when it can) and its nearest existing part."""
    existing = path
    while not existing.exists():
        if existing.parent == existing:  # a root that does not exist (a missing drive)
            return "no part of it exists", existing
        existing = existing.parent
    if existing.is_dir():
        return "", existing
    if existing == path:
        return "it exists and is not a folder", existing
    return f"{str(existing)!r} on its way is a file, not a folder", existing


# -- unknown variables ---------------------------------------------------------------------------

#: Arguments that have no variable: a ``CARBONKIT_<NAME>`` for one of them is a likely mistake.
_ARGUMENT_ONLY = (
    "epochs",
    "predict_after",
    "intensity_refresh_s",
    "intensity_resolution_s",
    "tags",
    "functional_unit",
    "options",
    "pid",
    "predictor",
    "on_over_budget",
    "progress",
)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Return one warning per ``CARBONKIT_*`` variable that looks like a mistake.

    A name warns when it is not in :data:`KNOWN_VARIABLES`, does not end in one of
    :data:`PLUGIN_SUFFIXES`, and either is close to a known name (``difflib``, compared without
    the ``CARBONKIT_`` prefix, or it starts with a known name: ``CARBONKIT_LOG_DIRECTORY``),
    or names an argument that has no variable (``CARBONKIT_EPOCHS``), or is a known name in
    the wrong case (``carbonkit_location``). Any other unknown name is taken to be a plugin's
    and passes silently. Warnings name variables, never their values.

    :param environ: The environment to read (default ``os.environ``).
    :returns: The warnings, one per name, sorted by name.
    """
    env = os.environ if environ is None else environ
    known = {name[len(_PREFIX) :]: name for name in KNOWN_VARIABLES}
    arguments_only = {a.upper(): a for a in _ARGUMENT_ONLY}
    arguments_only.update({a.upper()[: -len("_S")]: a for a in _ARGUMENT_ONLY if a.endswith("_s")})
    warnings = []
    for name in sorted(env):
        if not name.upper().startswith(_PREFIX) or name in KNOWN_VARIABLES:
            continue
        if name != name.upper() and name.upper() in KNOWN_VARIABLES:
            warnings.append(
                f"{name} is not read: environment variable names are case-sensitive; did you mean {name.upper()}?"
            )
            continue
        if name != name.upper() or name.endswith(PLUGIN_SUFFIXES):
            continue
        rest = name[len(_PREFIX) :]
        if rest in arguments_only:
            argument = arguments_only[rest]
            warnings.append(
                f"{name} is not read by carbonkit: {argument} has no environment variable; "
                f"pass {argument}= to carbonkit.Tracker"
            )
            continue
        close = difflib.get_close_matches(rest, list(known), n=1, cutoff=0.8)
        if not close:
            close = [k for k in sorted(known, key=len, reverse=True) if len(k) >= 5 and rest.startswith(k)][:1]
        if close:
            warnings.append(f"{name} is not a carbonkit variable; did you mean {known[close[0]]}?")
    return warnings
