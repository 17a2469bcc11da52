"""The Keras callback driving real Keras 3 ``Model.fit`` runs (torch backend) on the CPU."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("these tests run Keras on the torch backend (KERAS_BACKEND=torch)", allow_module_level=True)

import numpy as np  # noqa: E402
from frameworks.checks import (  # noqa: E402
    PowerSwitch,
    check_report,
    check_stopped_by_budget,
    switched_kwargs,
)

from carbonkit.integrations.keras import CarbonkitCallback  # noqa: E402


def data(n: int = 32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


class PowerOnAtEpoch(keras.callbacks.Callback):
    def __init__(self, callback, switch: PowerSwitch, epoch: int = 1) -> None:
        super().__init__()
        self.callback, self.switch, self.epoch = callback, switch, epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.switch.turn_on(self.callback.tracker)


class FailAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._epoch == self.epoch:
            raise RuntimeError("simulated failure in a batch")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


def test_epochs_and_figures_reach_the_report_and_the_history(tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    x, y = data()
    history = tiny_model().fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb])

    report = cb.report
    check_report(report, epochs=3)
    assert len(history.epoch) == 3 and report.epochs_planned == 3
    assert cb.tracker.report is not None
    energies = history.history["carbonkit/energy_kwh"]
    assert len(energies) == 3 and len(history.history["carbonkit/co2eq_g"]) == 3
    assert energies == sorted(energies)
    assert energies[-1] <= report.energy_kwh  # the figures so far, at each epoch's end


def test_planned_epochs_leave_out_those_before_initial_epoch(tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    x, y = data()
    history = tiny_model().fit(x, y, epochs=4, initial_epoch=1, batch_size=8, verbose=0, callbacks=[cb])
    assert len(history.epoch) == 3
    assert cb.report.epochs_planned == 3
    check_report(cb.report, epochs=3)


def test_a_tiny_budget_with_stop_ends_training_at_the_end_of_the_epoch(tracker_kwargs):
    switch = PowerSwitch()
    cb = CarbonkitCallback(budget_kwh=1e-9, on_over_budget="stop", **switched_kwargs(tracker_kwargs, switch))
    x, y = data()
    history = tiny_model().fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[PowerOnAtEpoch(cb, switch), cb])
    assert len(history.epoch) == 2  # epoch 2 of 5 was the last
    check_stopped_by_budget(cb.report, epochs=2)


def test_an_exception_mid_training_still_gives_a_report_through_the_with_block(tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    x, y = data()
    with pytest.raises(RuntimeError, match="simulated failure"), cb:
        tiny_model().fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[cb, FailAtEpoch(2)])
    check_report(cb.report, epochs=2)
    assert cb.tracker.report is not None
    assert any("training ended by an exception (RuntimeError)" in w for w in cb.report.warnings)


def test_reading_the_report_after_an_exception_stops_the_tracker(tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    x, y = data()
    with pytest.raises(RuntimeError, match="simulated failure"):
        tiny_model().fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[cb, FailAtEpoch(2)])
    report = cb.report  # fit() is gone: the callback stops the tracker now
    check_report(report, epochs=2)
    assert cb.tracker.report is not None
    assert any("training ended by an exception before the Keras trainer's end" in w for w in report.warnings)


def test_a_watch_thread_stops_the_tracker_once_an_exception_left_fit(tracker_kwargs):
    cb = CarbonkitCallback(**tracker_kwargs)
    x, y = data()
    with pytest.raises(RuntimeError, match="simulated failure"):
        tiny_model().fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[cb, FailAtEpoch(1)])
    assert cb._run.finished.wait(60)  # nobody read the report: the watch thread stopped the tracker
    assert cb.tracker.report is not None
    check_report(cb.report, epochs=1)


def test_a_process_that_is_not_its_hosts_local_rank_0_does_not_measure(tracker_kwargs, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    cb = CarbonkitCallback(**tracker_kwargs)
    x, y = data()
    history = tiny_model().fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[cb])
    assert not cb.measuring and cb.tracker is None and cb.report is None
    assert "carbonkit/energy_kwh" not in history.history
    assert len(history.history["loss"]) == 2
