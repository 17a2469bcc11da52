"""Readings are checked where they enter: nothing a power source returns reaches the accounting
unless it is one finite, non-negative, physically plausible number per device.

A reading is rejected (the interval is a gap for that source, bridged by its next good reading)
when it:

- is not a sequence of one real number per device (a string, None, a wrong length, a bool);
- holds NaN, infinity or a negative number;
- for a power source (watts): exceeds the source's ceiling;
- for an energy counter (joules): advances faster than the ceiling allows over the time since
  its last accepted reading (plus :data:`COUNTER_SLACK_S` for the time a read itself takes).

The ceiling is the source's own ``max_power_w`` (per device) when it declares one, else a default
per component (:data:`DEFAULT_MAX_POWER_W`): well above anything such a device draws, far below
what a broken driver or a unit error produces.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

__all__ = ["COUNTER_SLACK_S", "DEFAULT_MAX_POWER_W", "FALLBACK_MAX_POWER_W", "ceiling_w", "check_counter",
           "check_values"]

#: Default ceiling per device, watts, by component. A CPU package draws at most ~500 W today (AMD
#: EPYC 9965: 500 W TDP), DRAM per socket well under 100 W, the largest GPU module ~1,200 W (NVIDIA
#: B300) and a superchip board ~2,700 W (GB200): the defaults leave headroom above each.
DEFAULT_MAX_POWER_W = {"cpu": 1_000.0, "dram": 500.0, "gpu": 3_000.0}
#: Ceiling per device for any other component (boards, whole nodes, accelerators).
FALLBACK_MAX_POWER_W = 5_000.0
#: Time allowed on top of the interval between two counter reads (the reads themselves take time).
COUNTER_SLACK_S = 0.25


def ceiling_w(component: str, declared: float | None) -> float:
    """The power ceiling per device: the source's own ``max_power_w``, else the default."""
    if declared is not None:
        return float(declared)
    return DEFAULT_MAX_POWER_W.get(component, FALLBACK_MAX_POWER_W)


def check_values(raw: Any, n_devices: int, kind: str, ceiling: float) -> tuple[list[float] | None, str | None]:
    """Return ``(values, None)`` for an acceptable reading, else ``(None, what is wrong)``."""
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) and not hasattr(raw, "__len__"):
        return None, f"read() returned {_short(raw)}, not a sequence of {n_devices} number(s)"
    try:
        items = list(raw)
    except Exception:
        return None, f"read() returned {_short(raw)}, not a sequence of {n_devices} number(s)"
    if len(items) != n_devices:
        return None, f"read() returned {len(items)} value(s) for {n_devices} device(s)"
    values = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return None, f"read() returned {_short(v)}, not a number"
        f = float(v)
        if not math.isfinite(f):
            return None, f"read() returned {f!r}"
        if f < 0:
            return None, f"read() returned a negative value ({f:g})"
        if kind == "power" and f > ceiling:
            return None, f"read() returned {f:g} W, above the ceiling of {ceiling:g} W per device"
        values.append(f)
    return values, None


def check_counter(values: Sequence[float], last: Sequence[float] | None, dt: float, ceiling: float) -> str | None:
    """For an energy counter: is any device's advance since ``last`` faster than ``ceiling`` allows?"""
    if last is None or dt < 0:
        return None
    limit = ceiling * (dt + COUNTER_SLACK_S)
    for v, before in zip(values, last):
        if v - before > limit:
            return (f"its energy counter advanced {v - before:.4g} J in {dt:.3g} s, more than "
                    f"{ceiling:g} W allows")
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
