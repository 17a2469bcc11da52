"""Figures and checks shared by the framework callback tests."""

from __future__ import annotations

import pytest

#: Constant power of the fake source, watts: the energy of a run is this times its duration.
WATTS = 100.0
#: Constant intensity of the fake provider, g/kWh.
G_PER_KWH = 200.0


def check_report(report, epochs: int) -> None:
    """The report covers ``epochs`` epochs and its figures follow from the fake source."""
    assert report is not None
    assert len(report.epochs) == epochs
    assert report.it_energy_kwh == pytest.approx(WATTS * report.duration_s / 3.6e6, rel=1e-6)
    assert report.energy_kwh == pytest.approx(report.it_energy_kwh * 1.5, rel=1e-9)
    assert report.methods == {"cpu": "measured"}


class PowerSwitch:
    """Power for a fake source that draws nothing until :meth:`turn_on`: a budget then cannot
    be exceeded before the test says so, whatever the machine's load."""

    def __init__(self) -> None:
        self.watts = 0.0

    def __call__(self) -> list[float]:
        return [self.watts]

    def turn_on(self, tracker, watts: float = WATTS) -> None:
        """Draw ``watts`` from now on, and wait for two sampler ticks so that the tracker has
        accounted energy at that power and checked the budget."""
        self.watts = watts
        tracker.snapshot(timeout_s=30)
        tracker.snapshot(timeout_s=30)
        assert tracker.snapshot(timeout_s=0).energy_kwh > 0


def switched_kwargs(tracker_kwargs, switch: PowerSwitch) -> dict:
    """``tracker_kwargs`` with the fake source drawing what ``switch`` says."""
    from carbonkit.testing import FakePowerSource

    return {**tracker_kwargs, "sources": [FakePowerSource(watts=switch)]}


def check_stopped_by_budget(report, epochs: int) -> None:
    """The run went over a tiny energy budget during its last epoch and was stopped after it."""
    assert len(report.epochs) == epochs
    budget = report.budget
    assert budget.energy_kwh == 1e-9 and budget.action == "stop"
    assert budget.exceeded is not None and budget.exceeded.budget == "energy_kwh"
    assert budget.exceeded.basis == "actual" and budget.exceeded.value > 1e-9
    assert budget.exceeded.epoch == epochs - 1  # exceeded during the last epoch
    assert budget.stopped and budget.stopped_at_epoch == epochs
