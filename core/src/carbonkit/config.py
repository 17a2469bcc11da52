"""Tracker configuration: one frozen record, built from arguments and ``CARBONKIT_*`` variables.

Environment variables (an argument always wins over its variable):

==============================  ==========================================================
``CARBONKIT_LOCATION``          zone code, e.g. ``DK-DK2``, ``GB``, ``SE-SE3``
``CARBONKIT_PUE``               power usage effectiveness, a number >= 1
``CARBONKIT_LOG_DIR``           folder for run logs (``*.jsonl``)
``CARBONKIT_INTERVAL``          seconds between samples
``CARBONKIT_ATTRIBUTION``       ``machine`` (default) or ``process``
``CARBONKIT_POSTCODE``          outward postcode for regional GB intensity
``CARBONKIT_INTENSITY_PROVIDER`` name of the intensity provider to use
``CARBONKIT_QUIET``             ``1`` silences the console reporter
``CARBONKIT_EMBODIED``          embodied emissions per component, JSON or ``@file.json``
``CARBONKIT_DISABLE_PLUGINS``   comma-separated plugin names not to load
``CARBONKIT_PLUGINS``           comma-separated allow-list of external plugins (``""``: none)
==============================  ==========================================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from .errors import ConfigError

__all__ = ["DEFAULT_PUE", "DEFAULT_PUE_SOURCE", "Config"]

#: The default PUE: the industry-average power usage effectiveness of data centres.
DEFAULT_PUE = 1.58
DEFAULT_PUE_SOURCE = "default: global data-centre average, Uptime Institute Global Data Center Survey 2023"

ATTRIBUTIONS = ("machine", "process")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{attribute.name} must be a number > 0 (seconds), got {value!r}")


def _check_pue(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 1.0 <= value <= 5.0):
        raise ConfigError(
            f"pue must be a number between 1.0 and 5.0 (total facility power / IT power), got {value!r}"
        )


def _check_epochs(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"epochs must be a whole number >= 1, or None for no prediction; got {value!r}")


def _check_predict_after(instance: Config, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"predict_after must be a whole number >= 1 (epochs), got {value!r}")
    if instance.epochs is not None and value > instance.epochs:
        raise ConfigError(
            f"predict_after={value} is more than epochs={instance.epochs}; "
            "it must be between 1 and epochs"
        )


def _check_location(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip() or " " in value.strip():
        raise ConfigError(
            f"location must be a zone code such as 'DK-DK2', 'GB', 'SE-SE3' or 'WORLD', got {value!r}"
        )


def _check_attribution(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ATTRIBUTIONS:
        raise ConfigError(f"attribution must be 'machine' or 'process', got {value!r}")


def _zone(value: str | None) -> str | None:
    return value.strip().upper() if isinstance(value, str) else value


def _path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value in (None, "") else Path(value)  # type: ignore[arg-type]


@frozen(kw_only=True)
class Config:
    """Everything a tracker and its plugins are configured with.

    Build it with :meth:`from_env` to apply ``CARBONKIT_*`` variables. Plugins read it in every
    hook; a third-party plugin reads its own settings from ``options``.

    :param location: Zone code, or None when not given (the tracker then resolves it).
    :param pue: Power usage effectiveness applied to IT energy (>= 1).
    :param pue_source: Where the PUE came from, shown in reports.
    :param interval_s: Seconds between two samples of every power source.
    :param epochs: Planned epochs, or None for no prediction.
    :param predict_after: Epochs to monitor before predicting.
    :param log_dir: Folder for the run log, or None for none.
    :param intensity_provider: Name of the intensity provider to use, or None to choose.
    :param intensity_refresh_s: Seconds between two intensity fetches.
    :param intensity_resolution_s: CO2eq is accounted per interval of this many seconds of wall
        clock time (aligned to UTC), each at the intensity in force for it.
    :param predictor: Name of the predictor.
    :param quiet: Silence the console reporter.
    :param attribution: ``"machine"`` (whole machine) or ``"process"`` (the tracked process
        tree's share).
    :param postcode: Outward postcode, for regional providers that use one.
    :param pid: Root of the tracked process tree.
    :param tags: Free labels recorded in the run log and report.
    :param functional_unit: What the run produces, for Software Carbon Intensity
        (``"sample"``, ``"token"``...); None for no SCI.
    :param embodied: Embodied emissions per component, for SCI:
        ``{"gpu": {"kgco2e": 150, "lifetime_years": 4, "source": "..."}}``.
    :param options: Settings for third-party plugins, by key.
    """

    location: str | None = field(default=None, converter=_zone, validator=_check_location)
    pue: float = field(default=DEFAULT_PUE, validator=_check_pue)
    pue_source: str = DEFAULT_PUE_SOURCE
    interval_s: float = field(default=1.0, validator=_positive)
    epochs: int | None = field(default=None, validator=_check_epochs)
    predict_after: int = field(default=1, validator=_check_predict_after)
    log_dir: Path | None = field(default=None, converter=_path)
    intensity_provider: str | None = None
    intensity_refresh_s: float = field(default=900.0, validator=_positive)
    intensity_resolution_s: float = field(default=60.0, validator=_positive)
    predictor: str = "linear"
    quiet: bool = False
    attribution: str = field(default="machine", validator=_check_attribution)
    postcode: str | None = None
    pid: int = field(factory=os.getpid)
    tags: Mapping[str, str] = field(factory=dict, converter=dict)
    functional_unit: str | None = None
    embodied: Mapping[str, Any] = field(factory=dict, converter=dict)
    options: Mapping[str, Any] = field(factory=dict, converter=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **arguments: Any) -> Config:
        """Build a config from explicit ``arguments``, filling unset ones (None) from the environment.

        :param environ: The environment to read (default ``os.environ``).
        :raises ConfigError: naming the variable or argument and what is accepted.
        """
        env = os.environ if environ is None else environ
        values = {k: v for k, v in arguments.items() if v is not None}

        def take(key: str, var: str, parse: Any = str) -> None:
            raw = env.get(var)
            if key in values or raw is None or raw.strip() == "":
                return
            try:
                values[key] = parse(raw.strip())
            except ValueError:
                raise ConfigError(f"{var}={raw!r} is not valid: expected {parse.__name__}") from None

        take("location", "CARBONKIT_LOCATION")
        take("pue", "CARBONKIT_PUE", float)
        take("log_dir", "CARBONKIT_LOG_DIR")
        take("interval_s", "CARBONKIT_INTERVAL", float)
        take("attribution", "CARBONKIT_ATTRIBUTION", str.lower)
        take("postcode", "CARBONKIT_POSTCODE")
        take("intensity_provider", "CARBONKIT_INTENSITY_PROVIDER")
        take("quiet", "CARBONKIT_QUIET", _truthy)
        take("embodied", "CARBONKIT_EMBODIED", _json_object)
        if "pue" in values and "pue_source" not in values:
            given_by = "pue argument" if arguments.get("pue") is not None else "CARBONKIT_PUE"
            values["pue_source"] = f"user-supplied ({given_by})"
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None


def _json_object(value: str) -> dict[str, Any]:
    import json

    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(value)
    return data


_json_object.__name__ = "a JSON object, or @file.json"


def _truthy(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


_truthy.__name__ = "a boolean (1/0, true/false)"
