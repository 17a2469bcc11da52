"""The carbon budget: validated at construction, checked on the sampler, recorded everywhere."""

from __future__ import annotations

import json
import threading

import pytest

import carbonkit
from carbonkit.runlog import RunLogWriter
from carbonkit.testing import FakeIntensity, FakePowerSource, RecordingReporter


def make(**kwargs):
    kwargs.setdefault("sources", [FakePowerSource(watts=[100.0])])
    kwargs.setdefault("provider", FakeIntensity(g_per_kwh=200.0))
    kwargs.setdefault("reporters", [])
    kwargs.setdefault("location", "XX")
    kwargs.setdefault("interval_s", 0.01)
    kwargs.setdefault("pue", 1.0)
    return carbonkit.Tracker(**kwargs)


def one_epoch(t: carbonkit.Tracker) -> carbonkit.Snapshot:
    """One epoch spanning at least one sampler tick; return the figures of the tick that handles
    its end (no sleeps: snapshot() waits for a tick taken after it was called)."""
    t.epoch_start()
    t.snapshot(timeout_s=60)
    t.epoch_end()
    return t.snapshot(timeout_s=60)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"budget_g": 0}, ["budget_g=0", "grams CO2eq > 0"]),
        ({"budget_g": -5.0}, ["budget_g=-5.0", "> 0"]),
        ({"budget_g": float("nan")}, ["budget_g=nan", "finite"]),
        ({"budget_g": True}, ["budget_g=True", "not a number"]),
        ({"budget_g": "10"}, ["budget_g='10'", "not a number"]),
        ({"budget_kwh": 0.0}, ["budget_kwh=0.0", "kWh > 0"]),
        ({"on_over_budget": "halt"}, ["on_over_budget='halt'", "'warn', 'stop' or a function"]),
        ({"on_over_budget": None}, ["on_over_budget=None", "'warn', 'stop'"]),
        ({"progress": 1}, ["progress=1", "True or False"]),
    ],
)
def test_bad_budget_arguments_are_clear_errors_at_construction(kwargs, words):
    with pytest.raises(carbonkit.ConfigError) as info:
        make(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_budget_variables_are_read_checked_and_named(monkeypatch):
    monkeypatch.setenv("CARBONKIT_BUDGET_G", "abc")
    with pytest.raises(carbonkit.ConfigError, match=r"CARBONKIT_BUDGET_G='abc' is not a number"):
        make()
    monkeypatch.setenv("CARBONKIT_BUDGET_G", "-1")
    with pytest.raises(carbonkit.ConfigError, match=r"CARBONKIT_BUDGET_G='-1'.*> 0"):
        make()
    monkeypatch.setenv("CARBONKIT_BUDGET_G", "250")
    monkeypatch.setenv("CARBONKIT_BUDGET_KWH", "1.5")
    t = make()
    assert t.config.budget_g == 250.0 and t.config.describe_source("budget_g") == "CARBONKIT_BUDGET_G"
    assert t.config.budget_kwh == 1.5
    r = t.stop()
    assert r.budget == carbonkit.BudgetReport(co2eq_g=250.0, energy_kwh=1.5, action="warn")
    assert make(budget_g=5.0).stop().budget.co2eq_g == 5.0  # an argument wins over the variable


def test_no_budget_means_no_budget_record():
    t = make()
    assert t.over_budget is False and t.should_stop is False
    assert t.stop().budget is None


def test_actual_over_budget_with_stop_flips_flags_and_records_the_stop(tmp_path):
    rec = RecordingReporter()
    t = make(budget_g=1e-9, on_over_budget="stop", epochs=10, reporters=[rec, RunLogWriter(tmp_path)])
    snap = one_epoch(t)
    assert t.over_budget and t.should_stop and snap.over_budget
    t.stopped_by_budget()
    t.stopped_by_budget()  # idempotent
    r = t.stop()
    b = r.budget
    assert b is not None and b.action == "stop" and b.stopped and b.stopped_at_epoch == 1
    ex = b.exceeded
    assert ex is not None and ex.budget == "co2eq_g" and ex.limit == 1e-9
    assert ex.value > ex.limit and ex.over_by == pytest.approx(ex.value - 1e-9)
    assert ex.basis in ("actual", "predicted")
    assert [w for w in r.warnings if w.startswith("over budget")] and "should stop" in r.warnings[0]
    assert rec.events("on_budget_exceeded") == [ex]
    assert rec.events("on_budget_stop") == [1]
    # The run log records the budget, the moment it was exceeded and the stop.
    (log,) = tmp_path.glob("*.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[0]["budget"] == {"co2eq_g": 1e-9, "energy_kwh": None, "action": "stop"}
    assert [r["type"] for r in records].count("budget_exceeded") == 1
    assert {"type": "budget_stop", "epoch": 1} in records
    assert carbonkit.load_run(log).budget == b


def test_the_prediction_alone_can_exceed_the_budget_and_warn_goes_on():
    # 100 W for a fraction of a second is far below 1 Wh, but a million such epochs are not.
    t = make(budget_kwh=1e-3, epochs=1_000_000)
    one_epoch(t)
    assert t.over_budget and not t.should_stop
    one_epoch(t)  # training goes on; one warning only
    r = t.stop()
    ex = r.budget.exceeded
    assert ex.basis == "predicted" and ex.budget == "energy_kwh" and ex.epoch == 1
    assert ex.value == pytest.approx(r.predictions[0].energy_kwh)
    assert not r.budget.stopped
    assert sum(w.startswith("over budget") for w in r.warnings) == 1
    assert "the predicted energy of the run" in r.warnings[0] and "training goes on" in r.warnings[0]


def test_a_callable_is_called_once_off_the_training_thread():
    seen: list[tuple[carbonkit.BudgetExceeded, str]] = []
    called = threading.Event()

    def on_over(event):
        seen.append((event, threading.current_thread().name))
        called.set()

    t = make(budget_g=1e-9, on_over_budget=on_over, epochs=3)
    one_epoch(t)
    one_epoch(t)
    assert called.wait(60)
    r = t.stop()
    assert len(seen) == 1
    event, thread = seen[0]
    assert event == r.budget.exceeded and event.action == "callable"
    assert thread != threading.current_thread().name and "on_over_budget" in thread
    assert not [w for w in r.warnings if "over budget" in w]  # the function handles it


def test_a_callable_that_raises_is_disabled_with_one_warning():
    def on_over(event):
        raise RuntimeError("boom")

    t = make(budget_g=1e-9, on_over_budget=on_over, epochs=3)
    one_epoch(t)
    r = t.stop()
    assert r.budget.exceeded is not None
    failed = [w for w in r.warnings if "on_over_budget" in w]
    assert len(failed) == 1 and "boom" in failed[0]


def test_a_callable_that_blocks_does_not_hold_up_stop(monkeypatch):
    import carbonkit._dispatch as dispatch

    monkeypatch.setattr(dispatch, "REPORTER_DEADLINE_S", 0.05)
    entered = threading.Event()
    release = threading.Event()

    def on_over(event):
        entered.set()
        release.wait(120)

    t = make(budget_g=1e-9, on_over_budget=on_over, epochs=3)
    one_epoch(t)
    assert entered.wait(60)
    try:
        r = t.stop(timeout_s=30)
    finally:
        release.set()
    assert [w for w in r.warnings if "on_over_budget" in w and "blocked" in w]
    assert r.budget.exceeded is not None


def test_predictions_are_updated_after_every_epoch_with_an_interval(tmp_path):
    rec = RecordingReporter()
    t = make(epochs=4, reporters=[rec, RunLogWriter(tmp_path)])
    for _ in range(4):
        one_epoch(t)
    r = t.stop()
    assert [p.epoch for p in r.predictions] == [1, 2, 3, 4]
    assert r.prediction == r.predictions[0] and rec.events("on_prediction") == [r.prediction]
    assert rec.events("on_prediction_update") == list(r.predictions[1:])
    for p in r.predictions:
        assert p.predictor == "adaptive" and p.interval
        assert p.low <= p.co2eq_g <= p.high
        assert p.energy_low_kwh <= p.energy_kwh <= p.energy_high_kwh
    last = r.predictions[-1]  # after the last planned epoch the prediction is what the epochs took
    assert last.it_energy_kwh == pytest.approx(sum(e.it_energy_kwh for e in r.epochs))
    assert last.low == pytest.approx(last.co2eq_g) and last.high == pytest.approx(last.co2eq_g)
    (log,) = tmp_path.glob("*.jsonl")
    types = [json.loads(line)["type"] for line in log.read_text().splitlines()]
    assert types.count("prediction") == 1 and types.count("prediction_update") == 3


def test_the_linear_predictor_is_available_by_name():
    t = make(epochs=2, predictor="linear")
    one_epoch(t)
    r = t.stop()
    assert r.prediction.predictor == "linear" and r.prediction.interval
    with pytest.raises(carbonkit.ConfigError, match="predictor 'nope' is not installed"):
        make(predictor="nope", plugin_manager=carbonkit.make_plugin_manager(entrypoints=False))


def test_snapshot_gives_figures_so_far_without_stopping():
    t = make(epochs=3)
    first = one_epoch(t)
    second = one_epoch(t)
    assert first.epochs == 1 and second.epochs == 2 and second.epochs_planned == 3
    assert 0 < first.energy_kwh <= second.energy_kwh and second.duration_s >= first.duration_s
    assert second.co2eq_g == pytest.approx(second.energy_kwh * 200.0)
    assert second.prediction is not None and second.prediction.epoch == 2
    r = t.stop()
    after = t.snapshot()
    assert after.energy_kwh == r.energy_kwh and after.epochs == len(r.epochs)
    with pytest.raises(carbonkit.ConfigError, match="timeout_s"):
        t.snapshot(timeout_s=-1)


def test_budget_and_predictions_survive_to_dict_and_a_killed_run(tmp_path):
    t = make(budget_g=1e-9, on_over_budget="stop", epochs=5, reporters=[RunLogWriter(tmp_path)])
    one_epoch(t)
    one_epoch(t)
    t.stopped_by_budget()
    r = t.stop()
    again = carbonkit.Report.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again.budget == r.budget and again.predictions == r.predictions and again.prediction == r.prediction
    # A run killed before its report: the log alone gives back the budget and every prediction.
    (log,) = tmp_path.glob("*.jsonl")
    lines = log.read_text().splitlines()
    assert json.loads(lines[-1])["type"] == "report"
    log.write_text("\n".join(lines[:-1]) + "\n")
    recovered = carbonkit.load_run(log)
    assert not recovered.completed
    assert recovered.budget == r.budget
    assert recovered.prediction == r.prediction and recovered.predictions == r.predictions


def test_the_predictors_are_public_names():
    assert carbonkit.AdaptivePredictor().name == "adaptive" and carbonkit.LinearPredictor().name == "linear"
    assert carbonkit.Config().predictor == "adaptive"


def test_a_long_run_spaces_its_prediction_updates():
    """Every epoch up to 999, then every (epochs // 500)-th: the updates do not grow with the run's square."""
    t = make(epochs=1200)
    for _ in range(1200):
        t.epoch_start()
        t.epoch_end()
    r = t.stop()
    assert len(r.epochs) == 1200
    counts = [p.epoch for p in r.predictions]
    assert counts[:999] == list(range(1, 1000))
    assert counts[999:] == list(range(1000, 1201, 2))
