"""The paper's predictor: total = planned epochs x mean of the monitored epochs."""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from ..hookspecs import hookimpl
from ..records import EpochRecord, Prediction


@frozen
class LinearPredictor:
    """Predict duration and energy of ``epochs`` epochs from the mean of those completed."""

    name: str = "linear"

    def predict(self, *, epochs: int, completed: Sequence[EpochRecord]) -> Prediction:
        if not completed:
            raise ValueError("the linear predictor needs at least one completed epoch")
        n = len(completed)
        duration = sum(e.duration_s for e in completed) / n * epochs
        energy = sum(e.it_energy_kwh for e in completed) / n * epochs
        return Prediction(
            epochs=epochs, based_on=n, duration_s=duration, it_energy_kwh=energy, predictor=self.name
        )


@hookimpl(trylast=True)
def register_predictors() -> list[LinearPredictor]:
    return [LinearPredictor()]
