"""Durations and windows: parsing ``"90m"``, ``"1h30m"``, ``"50%"`` and formatting seconds back."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from ..errors import ConfigError

__all__ = ["DurationLike", "format_duration", "parse_duration", "parse_window"]

DurationLike = float | int | timedelta | str

_DURATION_RE = re.compile(
    r"^(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)
_DURATION_HELP = "a duration such as 90m, 3h, 1h30m, 2d, 45s or a plain number of seconds"


def parse_duration(value: DurationLike, *, what: str = "duration") -> float:
    """Return ``value`` in seconds: ``"90m"``, ``"3h"``, ``"1h30m"``, ``"2d"``, ``"45s"``,
    ``"5400"``, a number of seconds or a :class:`~datetime.timedelta`.

    :raises ConfigError: for anything else, or a negative or non-finite value.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ConfigError(f"{what} must be {_DURATION_HELP}; got {value!r}")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION_RE.match(text)
            if not text or match is None or not any(match.groupdict().values()):
                raise ConfigError(f"{what} must be {_DURATION_HELP}; got {value!r}") from None
            parts = {k: float(v) for k, v in match.groupdict().items() if v}
            seconds = (
                parts.get("d", 0.0) * 86400
                + parts.get("h", 0.0) * 3600
                + parts.get("m", 0.0) * 60
                + parts.get("s", 0.0)
            )
    else:
        raise ConfigError(f"{what} must be {_DURATION_HELP}; got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{what} must be a finite duration >= 0, got {value!r}")
    return seconds


def parse_window(value: DurationLike, duration_s: float) -> float:
    """Return the window in seconds: a duration (see :func:`parse_duration`), or a percentage of
    the job's duration (``"50%"``: the job may finish up to 50 % later than if run at once).

    :raises ConfigError: for anything else.
    """
    if isinstance(value, str) and value.strip().endswith("%"):
        text = value.strip()[:-1]
        try:
            percent = float(text)
        except ValueError:
            raise ConfigError(
                "window must be a duration such as 12h or a percentage of the job's duration such as 50%; "
                f"got {value!r}"
            ) from None
        if not math.isfinite(percent) or percent < 0:
            raise ConfigError(f"window must be a percentage >= 0, got {value!r}")
        return duration_s * percent / 100.0
    return parse_duration(value, what="window")


def format_duration(seconds: float) -> str:
    """Format seconds compactly: ``5400`` -> ``"1h30m"``, ``86400`` -> ``"1d"``, ``1080`` -> ``"18m"``."""
    seconds = float(seconds)
    if seconds <= 0:
        return "0s"
    whole = round(seconds)
    if abs(seconds - whole) > 1e-6:
        return f"{seconds:g}s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def _window_label(value: DurationLike) -> str:
    parse_window(value, 1.0)  # validates
    if isinstance(value, str):
        return value.strip()
    return format_duration(parse_duration(value, what="window"))
