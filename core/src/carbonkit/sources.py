"""Power sources that ship with the core: a simulated source for demos, docs and tests."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from attrs import define, field

__all__ = ["SimulatedSource"]


def _watts(value: Sequence[float] | float) -> tuple[float, ...]:
    values = (float(value),) if isinstance(value, (int, float)) else tuple(float(v) for v in value)
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"watts must be one or more finite numbers >= 0, got {value!r}")
    return values


@define
class SimulatedSource:
    """A power source that reports given watts: labelled ``simulated`` everywhere it is shown.

    :param watts: Watts per device (one number for one device), or a callable returning them.
    :param component: The component label (``"cpu"``, ``"gpu"``...).
    :param name: Unique name, default ``"simulated:<component>"``.
    """

    watts: Sequence[float] | float | Callable[[], Sequence[float]] = 100.0
    component: str = "cpu"
    name: str = ""
    method: str = "simulated"
    kind: str = "power"
    device_labels: tuple[str, ...] = field(default=())
    reads: int = 0

    def __attrs_post_init__(self) -> None:
        if not self.name:
            self.name = f"simulated:{self.component}"
        n = len(self._current())
        if not self.device_labels:
            self.device_labels = tuple(f"{self.component}{i} (simulated)" for i in range(n))

    def _current(self) -> tuple[float, ...]:
        value = self.watts() if callable(self.watts) else self.watts
        return _watts(value)

    def devices(self) -> Sequence[str]:
        return self.device_labels

    def read(self) -> Sequence[float]:
        self.reads += 1
        return self._current()

    def close(self) -> None:
        pass
