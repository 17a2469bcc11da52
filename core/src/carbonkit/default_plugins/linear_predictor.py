"""The paper's predictor: total = planned epochs x mean of the monitored epochs.

Made again after every epoch (the mean of all epochs so far), with the same kind of 90 %
interval as the adaptive predictor (:func:`~carbonkit.default_plugins.adaptive_predictor.estimate_remaining`
with equal weights and no trend): planned x mean is exactly the completed epochs plus the
remaining ones at the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from ..hookspecs import hookimpl
from ..records import EpochRecord, Prediction
from .adaptive_predictor import estimate_remaining


@frozen
class LinearPredictor:
    """Predict duration and energy of ``epochs`` epochs from the mean of those completed."""

    name: str = "linear"

    def predict(self, *, epochs: int, completed: Sequence[EpochRecord]) -> Prediction:
        if not completed:
            raise ValueError("the linear predictor needs at least one completed epoch")
        n = len(completed)
        durations = [e.duration_s for e in completed]
        energies = [e.it_energy_kwh for e in completed]
        duration = sum(durations) / n * epochs
        energy = sum(energies) / n * epochs
        remaining = max(epochs - n, 0)
        d = estimate_remaining(durations, 0, remaining, half_life=None, trend=False)
        e = estimate_remaining(energies, 0, remaining, half_life=None, trend=False)
        done_d, done_e = sum(durations), sum(energies)
        return Prediction(
            epochs=epochs,
            based_on=n,
            duration_s=duration,
            it_energy_kwh=energy,
            predictor=self.name,
            duration_low_s=min(done_d + d.low, duration),
            duration_high_s=max(done_d + d.high, duration),
            it_energy_low_kwh=min(done_e + e.low, energy),
            it_energy_high_kwh=max(done_e + e.high, energy),
            interval=(e.method if e.method == d.method else f"energy: {e.method}; duration: {d.method}")
            if remaining else "no epochs left: actual",
        )


@hookimpl(trylast=True)
def register_predictors() -> list[LinearPredictor]:
    return [LinearPredictor()]
