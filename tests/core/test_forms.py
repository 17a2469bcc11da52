"""The forms users expect: @track, snapshot(), str(report), the notebook table, progress lines."""

from __future__ import annotations

import asyncio
import io

import pytest

import carbonkit
from carbonkit.default_plugins.console_reporter import ConsoleReporter
from carbonkit.testing import FakeIntensity, FakePowerSource

COMMON = {"location": "XX", "interval_s": 0.01, "pue": 1.0, "reporters": []}


def fakes():
    return {"sources": [FakePowerSource(watts=[100.0])], "provider": FakeIntensity(g_per_kwh=200.0)}


def epoch(t):
    t.epoch_start()
    t.snapshot(timeout_s=60)
    t.epoch_end()
    t.snapshot(timeout_s=60)


def test_track_returns_the_value_and_keeps_the_report():
    @carbonkit.track(epochs=2, tracker_arg="tracker", **COMMON, **fakes())
    def train(x, *, tracker):
        epoch(tracker)
        epoch(tracker)
        return x * 2

    assert train.last_report is None and train.__name__ == "train"
    assert train(21) == 42
    r = train.last_report
    assert isinstance(r, carbonkit.Report) and len(r.epochs) == 2 and r.energy_kwh > 0
    assert train.tracker.report is r
    assert train(1) == 2 and train.last_report is not r  # a tracker per call


def test_track_bare_and_fn_tracker_from_inside():
    @carbonkit.track
    def nothing():
        return nothing.tracker

    # Without arguments the plugins' sources are used: here, whatever this machine offers or
    # the simulated fallback; only the mechanics are checked.
    try:
        tracker = nothing()
    except carbonkit.NoPowerSourceError:
        pytest.skip("no power source on this machine")
    assert tracker.report is nothing.last_report is not None


def test_track_stops_the_tracker_and_reraises():
    class Boom(Exception):
        pass

    @carbonkit.track(**COMMON, **fakes())
    def fails():
        raise Boom("in training")

    with pytest.raises(Boom, match="in training"):
        fails()
    assert fails.last_report is not None and fails.tracker.report is fails.last_report


def test_track_an_async_function():
    @carbonkit.track(**COMMON, **fakes())
    async def work():
        await asyncio.sleep(0)
        return "done"

    assert asyncio.run(work()) == "done"
    assert work.last_report is not None


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"pue": 9}, ["pue=9"]),
        ({"budget_g": -1}, ["budget_g=-1"]),
        ({"on_over_budget": "explode"}, ["on_over_budget='explode'"]),
        ({"epochz": 3}, ["'epochz'", "Tracker does not take"]),
        ({"tracker_arg": "not an identifier"}, ["tracker_arg="]),
    ],
)
def test_track_checks_its_arguments_when_decorating(kwargs, words):
    with pytest.raises(carbonkit.ConfigError) as info:
        carbonkit.track(**kwargs)
    for word in words:
        assert word in str(info.value)
    with pytest.raises(carbonkit.ConfigError, match="decorates a function"):
        carbonkit.track(3)


def test_str_of_a_report_is_a_few_readable_lines():
    t = carbonkit.Tracker(epochs=3, budget_g=1e-9, **COMMON, **fakes())
    epoch(t)
    r = t.stop()
    text = str(r)
    lines = text.splitlines()
    assert 5 <= len(lines) <= 10
    assert lines[0].startswith("carbonkit report: 1 epoch(s)")
    assert "Energy:" in text and "CO2eq:" in text
    assert "200.0 gCO2eq/kWh in XX (live: fake:intensity (test) via fake:intensity" in text
    assert "cpu measured (fake:power)" in text
    assert "Predicted:" in text and "predictor 'adaptive' after 1" in text
    assert "Budget:" in text and "exceeded by the" in text and "training was not stopped" in text


def test_html_of_a_report_is_a_table_with_provenance_in_details_and_escaped():
    src = FakePowerSource(watts=[100.0], name="fake:<script>alert(1)</script>")
    t = carbonkit.Tracker(epochs=2, sources=[src], provider=FakeIntensity(g_per_kwh=200.0), **COMMON)
    epoch(t)
    page = t.stop()._repr_html_()
    assert page.count("<table>") == 1 and "<details><summary>Provenance</summary>" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Uptime Institute" not in page  # PUE given: the user's own
    assert "PUE 1: user-supplied" in page and "gCO2eq/kWh" in page


def test_progress_prints_one_line_per_epoch_from_the_console_reporter():
    out = io.StringIO()
    t = carbonkit.Tracker(epochs=2, budget_kwh=1.0, progress=True, **{**COMMON, "reporters": [
        ConsoleReporter(stream=out, progress=True)]}, **fakes())
    epoch(t)
    epoch(t)
    t.stop()
    lines = [line for line in out.getvalue().splitlines() if ": epoch " in line]
    assert [line.split(":")[1].strip() for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "CO2eq" in lines[0] and "predicted" in lines[0] and " to " in lines[0]
    assert "budget 1.000 kWh: within" in lines[0]


def test_progress_is_off_by_default():
    out = io.StringIO()
    t = carbonkit.Tracker(epochs=2, **{**COMMON, "reporters": [ConsoleReporter(stream=out)]}, **fakes())
    epoch(t)
    t.stop()
    assert ": epoch " not in out.getvalue()


def test_progress_reaches_stderr_through_the_plugins(capsys):
    from carbonkit.testing import tracker_for

    t = tracker_for(epochs=1, progress=True, quiet=False, location="XX", interval_s=0.01, **fakes())
    epoch(t)
    t.stop()
    err = capsys.readouterr().err
    assert "carbonkit: epoch 1/1:" in err
