"""Carbon-aware scheduling: Flexible Start, Pause and Resume, evaluation, waiting, pause policy."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonkit import ConfigError, IntensitySample
from carbonkit.scheduling import (
    EvaluationTable,
    IntensitySeries,
    NoForecastError,
    PauseDecision,
    PausePolicy,
    SchedulePlan,
    _pr_batch,
    _sliding_min,
    evaluate,
    flexible_start,
    format_duration,
    parse_duration,
    parse_window,
    pause_and_resume,
    plan_from_providers,
    plan_start_within,
    wait_for_best_start,
)
from carbonkit.testing import FakeIntensity

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
T0S = T0.timestamp()


def regular(values, step_s=300.0, start=T0S):
    """A regular series from ``values`` every ``step_s`` seconds."""
    values = np.asarray(values, dtype=float)
    return IntensitySeries.from_arrays(start + np.arange(values.size) * step_s, values)


def diurnal(days, step_s=300.0, seed=0, noise=15.0):
    """A synthetic diurnal series: 300 +- 120 g/kWh a day, a weekly swing, some noise."""
    rng = np.random.default_rng(seed)
    n = int(days * 86400 / step_s)
    h = np.arange(n) * step_s / 3600
    v = 300 + 120 * np.sin(2 * np.pi * (h - 9) / 24) + 40 * np.sin(2 * np.pi * h / 168) + rng.normal(0, noise, n)
    return regular(np.clip(v, 0, None), step_s)


def run_time(plan):
    """Seconds the plan runs the job."""
    return sum((b - a).total_seconds() for a, b in plan.intervals)


# -- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90m", 5400), ("3h", 10800), ("1h30m", 5400), ("2d", 172800), ("45s", 45), ("5400", 5400), ("1.5h", 5400),
     (timedelta(minutes=2), 120), (600, 600)],
)
def test_parse_duration_accepts_the_documented_forms(text, seconds):
    """90m, 3h, 1h30m, 2d, 45s, plain seconds, decimals and timedelta all parse to seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["3x", "", "h", "-3h", "1h-30m", "abc", "-5", True, None])
def test_parse_duration_rejects_anything_else_naming_it(text):
    """A bad duration is a ConfigError naming the value and the accepted forms."""
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(text)


def test_parse_window_takes_a_percentage_of_the_duration():
    """'50%' of a 6 h job is 3 h; a plain duration is itself."""
    assert parse_window("50%", 21600) == 10800
    assert parse_window("12h", 21600) == 43200
    with pytest.raises(ConfigError, match="percentage"):
        parse_window("x%", 100)


def test_format_duration_is_compact():
    """Seconds are written back as 1h30m, 1d, 18m, 0s."""
    assert [format_duration(s) for s in (5400, 86400, 1080, 0, 1.5)] == ["1h30m", "1d", "18m", "0s", "1.5s"]


# -- series validation ------------------------------------------------------------------------


def test_series_validation_names_the_problem():
    """Empty, naive, negative, repeated, mismatched or one value without end: clear errors."""
    with pytest.raises(ConfigError, match="empty"):
        flexible_start([], "1h", "1h")
    with pytest.raises(ConfigError, match="naive"):
        IntensitySeries.from_arrays([datetime(2024, 1, 1), datetime(2024, 1, 2)], [1, 2])
    with pytest.raises(ConfigError, match=r"values\[1\]"):
        IntensitySeries.from_arrays([0, 300], [1, -2])
    with pytest.raises(ConfigError, match="appears twice"):
        IntensitySeries.from_arrays([0, 0, 300], [1, 2, 3])
    with pytest.raises(ConfigError, match="same length"):
        IntensitySeries.from_arrays([0, 300], [1])
    with pytest.raises(ConfigError, match="end="):
        IntensitySeries.from_arrays([0], [1])
    with pytest.raises(ConfigError, match="duration must be > 0"):
        flexible_start(regular([1, 2, 3]), 0, "1h")
    with pytest.raises(ConfigError, match="naive"):
        flexible_start(regular([1, 2, 3]), "5m", "5m", now=datetime(2024, 5, 1))


def test_series_from_samples_uses_the_last_period_and_datetime64_is_utc():
    """Samples give the series' end through period_s; datetime64 times are read as UTC."""
    samples = [
        IntensitySample(time=T0 + timedelta(minutes=30 * i), g_per_kwh=100 + i, zone="GB", source="t", kind="forecast", period_s=1800)
        for i in range(3)
    ]
    s = IntensitySeries.from_samples(samples)
    assert s.end == T0S + 5400
    d64 = IntensitySeries.from_arrays(np.array(["2024-05-01T00:00", "2024-05-01T00:30"], dtype="datetime64[m]"), [1, 2])
    assert d64.start == T0S


def test_series_is_a_step_function_with_exact_integrals():
    """Each value holds until the next time: the integral over [0, 1h) is the sum of steps."""
    s = IntensitySeries.from_arrays([0, 600, 2400], [100, 400, 200], end=3600)
    expected = (100 * 600 + 400 * 1800 + 200 * 1200) / 3600
    assert s.integral([3600])[0] == pytest.approx(expected)
    assert s.mean(0, 3600) == pytest.approx(expected)
    assert list(s.value_at([0, 599, 600, 3000, 9999])) == [100, 400 - 300, 400, 200, 200]


def test_now_outside_the_series_is_an_error_or_a_backfill():
    """now after the series ends, or long before it starts, is an error; a little before is backfilled."""
    s = regular([100] * 12)
    with pytest.raises(ConfigError, match="at or before now"):
        flexible_start(s, "5m", "5m", now=T0S + 7200)
    with pytest.raises(ConfigError, match="starts at"):
        flexible_start(s, "5m", "5m", now=T0S - 7200)
    plan = flexible_start(s, "5m", "5m", now=T0S - 600)
    assert any("first value is assumed" in w for w in plan.warnings)


# -- Flexible Start ---------------------------------------------------------------------------


def trough_series():
    """Two days at 5 min: 400 g/kWh, with a one-hour trough of 50 starting at 17:35 on day 1."""
    v = np.full(576, 400.0)
    v[211:223] = 50.0
    return regular(v)


def test_flexible_start_finds_the_trough_to_the_interval():
    """A 1 h job within 24 h starts exactly when the known one-hour trough starts."""
    plan = flexible_start(trough_series(), "1h", "24h")
    assert plan.start == T0 + timedelta(minutes=5 * 211)
    assert plan.g_per_kwh == pytest.approx(50.0)
    assert plan.now_g_per_kwh == pytest.approx(400.0)
    assert plan.saving == pytest.approx(1 - 50 / 400)
    assert plan.intervals == ((plan.start, plan.start + timedelta(hours=1)),)
    assert plan.pauses == 0 and plan.algorithm == "flexible_start"


def test_flexible_start_exact_between_irregular_times():
    """On an irregular series the best start may fall between sample times; it is found exactly."""
    # 300 until 00:50, then 100 until 01:07, then 300: a 30 min job is best run 00:50-01:20 or
    # 00:37-01:07 (both 17 min at 100); the earliest, 00:37, is chosen.
    s = IntensitySeries.from_arrays([0, 3000, 4020], [300, 100, 300], end=14400)
    plan = flexible_start(s, "30m", "2h", now=0)
    assert plan.start.timestamp() == pytest.approx(4020 - 1800)
    assert plan.g_per_kwh == pytest.approx((17 * 100 + 13 * 300) / 30)


def test_flat_series_every_saving_is_zero():
    """On a flat series both algorithms start now and save nothing."""
    s = regular([250.0] * 300)
    for plan in (
        flexible_start(s, "3h", "12h"),
        pause_and_resume(s, "3h", "12h"),
        pause_and_resume(s, "3h", "12h", min_run="1h"),
        flexible_start(s, "3h", "12h", profile=[1, 2, 3]),
    ):
        assert plan.saving == 0.0
        assert plan.start == T0 and plan.pauses == 0
        assert plan.g_per_kwh == pytest.approx(250.0)


def test_zero_window_means_start_now():
    """With a window of 0 the plan is: start now, run straight through."""
    s = trough_series()
    now = T0 + timedelta(hours=2)
    for plan in (flexible_start(s, "1h", 0, now), pause_and_resume(s, "1h", "0h", now),
                 pause_and_resume(s, "1h", "0m", now, min_run="30m")):
        assert plan.start == now and plan.pauses == 0 and plan.saving == 0.0
        assert plan.intervals == ((now, now + timedelta(hours=1)),)


def test_short_forecast_is_planned_within_what_is_known():
    """A forecast shorter than window + duration: planned within it, flagged truncated, said in warnings."""
    s = regular([400.0] * 24 + [100.0] * 12)  # 3 hours known
    plan = flexible_start(s, "1h", "12h")
    assert plan.truncated and plan.window_s == pytest.approx(7200)
    assert plan.requested_window_s == 43200
    assert plan.start == T0 + timedelta(hours=2)
    assert any("planned within" in w for w in plan.warnings)
    short = pause_and_resume(s, "5h", "12h")
    assert short.start == T0 and short.pauses == 0
    assert any("before a 5h job" in w for w in short.warnings)


def test_energy_scales_grams_not_the_saving():
    """emissions_g is energy x mean intensity; the saving does not depend on the energy."""
    a = flexible_start(trough_series(), "1h", "24h")
    b = flexible_start(trough_series(), "1h", "24h", energy_kwh=10.0)
    assert b.emissions_g == pytest.approx(10 * a.emissions_g)
    assert b.saving == pytest.approx(a.saving)
    with pytest.raises(ConfigError, match="energy_kwh"):
        flexible_start(trough_series(), "1h", "24h", energy_kwh=-1)


def test_a_power_profile_moves_the_start_to_put_the_heavy_part_in_the_trough():
    """With all the energy in the second half of a 2 h job, that half is placed on the trough."""
    plan = flexible_start(trough_series(), "2h", "24h", profile=[0.0, 1.0])
    assert plan.start == T0 + timedelta(minutes=5 * 211) - timedelta(hours=1)
    assert plan.g_per_kwh == pytest.approx(50.0)
    assert plan.energy_kwh == 1.0
    with pytest.raises(ConfigError, match="differs"):
        flexible_start(trough_series(), "2h", "24h", profile=[0.0, 1.0], energy_kwh=3.0)


# -- Pause and Resume -------------------------------------------------------------------------


def test_pause_and_resume_runs_in_the_cleanest_slots():
    """Two separate troughs: the job runs in both, with one pause between."""
    v = np.full(288, 400.0)
    v[24:30] = 100.0  # 02:00-02:30
    v[60:66] = 100.0  # 05:00-05:30
    plan = pause_and_resume(regular(v), "1h", "12h")
    assert plan.intervals == (
        (T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=30)),
        (T0 + timedelta(hours=5), T0 + timedelta(hours=5, minutes=30)),
    )
    assert plan.pauses == 1 and plan.g_per_kwh == pytest.approx(100.0)
    assert plan.finish == T0 + timedelta(hours=5, minutes=30)


def test_partial_piece_is_placed_next_to_the_run_it_continues():
    """The partly used piece runs at the end of itself when the run after it is chosen."""
    s = IntensitySeries.from_arrays([0, 3600, 7200], [200, 150, 100], end=10800)
    plan = pause_and_resume(s, "90m", "90m", now=0)
    assert [(a.timestamp(), b.timestamp()) for a, b in plan.intervals] == [(5400, 10800)]


def test_min_run_keeps_every_run_long_enough():
    """Alternating clean and dirty 5-minute slots: with min_run=30m each run lasts >= 30 min."""
    v = np.tile([100.0, 500.0], 200)
    s = regular(v)
    free = pause_and_resume(s, "1h", "6h")
    assert free.pauses == 11
    constrained = pause_and_resume(s, "1h", "6h", min_run="30m")
    lengths = [(b - a).total_seconds() for a, b in constrained.intervals]
    assert all(length >= 1800 - 1e-6 for length in lengths)
    assert run_time(constrained) == pytest.approx(3600)
    fs = flexible_start(s, "1h", "6h")
    assert fs.saving - 1e-12 <= constrained.saving <= free.saving + 1e-12
    assert constrained.min_run_s == 1800


def test_dynamic_programme_matches_the_greedy_without_min_run():
    """On slot-aligned data, the dynamic programme (min_run of one slot) finds the greedy's cost."""
    s = diurnal(3, seed=3)
    greedy = pause_and_resume(s, "4h", "10h")
    dp = pause_and_resume(s, "4h", "10h", min_run="5m")
    assert dp.emissions_g == pytest.approx(greedy.emissions_g, rel=1e-9)
    assert run_time(dp) == pytest.approx(4 * 3600)


def test_dynamic_programme_prices_each_slot_with_the_profile():
    """With a profile, Pause and Resume puts the energy-heavy part of the job in the trough."""
    plan = pause_and_resume(trough_series(), "2h", "24h", profile=[0.0, 1.0])
    assert plan.g_per_kwh == pytest.approx(50.0)
    assert run_time(plan) == pytest.approx(7200)


def test_dynamic_programme_refuses_problems_too_large():
    """A min_run plan over a huge grid is refused with advice to raise the step."""
    s = regular(np.full(50_000, 100.0), step_s=60)
    with pytest.raises(ConfigError, match="larger step"):
        pause_and_resume(s, "10d", "20d", min_run="1h", step="1m")


def test_plan_round_trips_through_plain_json():
    """SchedulePlan.to_dict() is plain JSON and from_dict() reads it back."""
    plan = pause_and_resume(trough_series(), "2h", "24h", min_run="30m")
    data = json.loads(json.dumps(plan.to_dict(), allow_nan=False))
    assert isinstance(data["intervals"][0], list) and data["start"].endswith("Z")
    assert SchedulePlan.from_dict(data) == plan


series_values = st.lists(st.integers(0, 20).map(lambda v: v * 25.0), min_size=1, max_size=40)


@st.composite
def planning_case(draw):
    """A random step-function series (regular or irregular), job, window and now."""
    values = draw(series_values)
    if draw(st.booleans()):
        gaps = [draw(st.sampled_from([300.0, 900.0, 1800.0]))] * len(values)
    else:
        gaps = draw(st.lists(st.floats(60, 7200), min_size=len(values), max_size=len(values)))
    times = T0S + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    series = IntensitySeries.from_arrays(times, values, end=times[-1] + gaps[-1])
    now = T0S + draw(st.floats(0, 0.5)) * (series.end - T0S)
    duration = draw(st.floats(60, 30000))
    window = draw(st.floats(0, 40000))
    return series, now, duration, window


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planning_case())
def test_pause_and_resume_never_saves_less_than_flexible_start(case):
    """0 <= FS saving <= P&R saving, and P&R runs for exactly the duration, inside its horizon."""
    series, now, duration, window = case
    fs = flexible_start(series, duration, window, now)
    pr = pause_and_resume(series, duration, window, now)
    assert 0.0 <= fs.saving <= pr.saving + 1e-9
    assert run_time(pr) == pytest.approx(duration, abs=1e-3)
    assert run_time(fs) == pytest.approx(duration, abs=1e-3)
    ends = [b.timestamp() for _, b in pr.intervals]
    starts = [a.timestamp() for a, _ in pr.intervals]
    assert starts[0] >= now - 1e-3 and ends[-1] <= now + window + duration + 1e-3
    assert all(b <= a + 1e-3 for a, b in zip(starts[1:], ends[:-1]))  # in order, no overlap
    assert pr.pauses == len(pr.intervals) - 1
    assert pr.emissions_g <= pr.now_emissions_g * (1 + 1e-9) + 1e-9


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planning_case(), st.sampled_from([300.0, 900.0, 3600.0]))
def test_min_run_plans_are_valid_and_no_worse_than_flexible_start(case, min_run):
    """With min_run: exact run time, runs of at least min_run (or one run), saving >= FS."""
    series, now, duration, window = case
    fs = flexible_start(series, duration, window, now)
    pr = pause_and_resume(series, duration, window, now, min_run=min_run, step=300)
    assert pr.saving >= fs.saving - 1e-9
    assert run_time(pr) == pytest.approx(duration, abs=1e-3)
    if pr.pauses:
        lengths = [(b - a).total_seconds() for a, b in pr.intervals]
        assert all(length >= min_run - 300 for length in lengths[:-1])  # the last may end on a partial slot


def brute_force(values, profile, min_slots):
    """The least emissions over every choice of slots (runs of >= min_slots, or one run)."""
    from itertools import combinations

    best = np.inf
    n = len(profile)
    for slots in combinations(range(len(values)), n):
        runs, length = [], 1
        for a, b in zip(slots, slots[1:]):
            if b == a + 1:
                length += 1
            else:
                runs.append(length)
                length = 1
        runs.append(length)
        if len(runs) > 1 and min(runs) < min_slots:
            continue
        best = min(best, sum(p * values[i] for p, i in zip(profile, slots)))
    return best


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 9).map(float), min_size=2, max_size=9),
    st.lists(st.integers(1, 5).map(float), min_size=1, max_size=4),
    st.integers(1, 3),
)
def test_dynamic_programme_is_optimal_on_small_instances(values, profile, min_slots):
    """Pause and Resume with a profile and min_run equals the brute-force optimum over slot choices."""
    if len(profile) > len(values):
        profile = profile[: len(values)]
    s = regular(values + [0.0])  # the extra slot lies outside the horizon
    n = len(profile)
    window = (len(values) - n) * 300
    plan = pause_and_resume(s, n * 300, window, T0S, min_run=min_slots * 300, step=300, profile=profile)
    assert plan.emissions_g == pytest.approx(brute_force(values, profile, min_slots), abs=1e-9)


# -- evaluation -------------------------------------------------------------------------------


def test_sliding_min_matches_the_naive_one():
    """The O(n) sliding minimum equals min over each window."""
    a = np.random.default_rng(1).normal(size=257)
    for w in (1, 2, 5, 64, 257):
        naive = np.array([a[i : i + w].min() for i in range(a.size - w + 1)])
        assert np.array_equal(_sliding_min(a, w), naive)


def test_evaluation_reproduces_the_papers_qualitative_findings():
    """Diurnal series: FS saving falls as jobs grow (24 h window); P&R saving grows with the extension."""
    s = diurnal(40, seed=0)
    fixed = evaluate(s, ["1h", "6h", "24h", "72h"], ["24h"], starts=60)
    fs = [fixed.cell(d, "24h").flexible_start_saving for d in fixed.durations_s]
    assert fs == sorted(fs, reverse=True) and fs[0] > 0.2 > 0.05 > fs[-1]
    rel = evaluate(s, ["48h"], ["25%", "50%", "100%"], starts=60)
    pr = [rel.cell(48 * 3600, w).pause_and_resume_saving for w in ("25%", "50%", "100%")]
    assert pr == sorted(pr) and pr[0] > 0
    for c in fixed.cells + rel.cells:
        assert 0 <= c.flexible_start_saving <= c.pause_and_resume_saving + 1e-12
        assert c.pauses_per_hour >= 0 and c.starts == 60


def test_evaluation_agrees_with_the_planner_start_by_start():
    """Each start's P&R cost and pauses in the evaluation are those of pause_and_resume()."""
    s = diurnal(4, seed=5, noise=40)
    grid = s.start + np.arange(400) * 300.0
    x = s.slot_means(np.append(grid, grid[-1] + 300))
    idx = np.arange(0, 100, 9)
    cost, pauses = _pr_batch(x, idx, int(8 * 12), 0.0, 300.0, 3 * 3600)
    for i, c, p in zip(idx, cost, pauses):
        plan = pause_and_resume(s, "3h", "5h", grid[i])
        assert plan.pauses == p
        assert plan.g_per_kwh == pytest.approx(c / (3 * 3600), rel=1e-9)


def test_evaluation_table_renders_like_the_papers_tables_and_round_trips():
    """Markdown has FS, P&R and Pauses / hr rows per window; to_dict() is JSON and reads back."""
    table = evaluate(diurnal(5), ["1h", "6h"], ["6h", "100%"], starts=10, labels=["small", "big"])
    md = table.to_markdown()
    assert md.count("| FS |") == 2 and md.count("| P&R |") == 2 and md.count("| Pauses / hr |") == 2
    assert "| Job | small | big |" in md and "Window 100%" in md
    data = json.loads(json.dumps(table.to_dict(), allow_nan=False))
    assert len(data["cells"]) == 4 and data["starts"] == 10
    assert EvaluationTable.from_dict(data) == table


def test_evaluation_of_a_year_of_5_minute_data_is_fast():
    """Flexible Start for every start time of a year at 5 minutes takes well under a second."""
    s = diurnal(365, seed=2)
    evaluate(s, ["6h"], ["24h"], starts=100, algorithms=("flexible_start",))  # warm up
    began = time.perf_counter()
    table = evaluate(s, ["6h"], ["24h"], starts="all", algorithms=("flexible_start",))
    elapsed = time.perf_counter() - began
    assert table.starts > 100_000 and elapsed < 1.0
    assert table.cells[0].pause_and_resume_saving is None


def test_evaluation_errors_are_clear():
    """A history too short, an unknown algorithm or a bad starts value are ConfigErrors."""
    s = diurnal(1)
    with pytest.raises(ConfigError, match="less than the longest"):
        evaluate(s, ["20h"], ["10h"])
    with pytest.raises(ConfigError, match="algorithms"):
        evaluate(s, ["1h"], ["1h"], algorithms=("magic",))
    with pytest.raises(ConfigError, match="starts"):
        evaluate(s, ["1h"], ["1h"], starts="some")


# -- providers --------------------------------------------------------------------------------


def dip(when):
    """400 g/kWh, except 100 from 03:00 to 04:00 UTC."""
    return 100.0 if 3 <= when.hour < 4 else 400.0


class YearlyAverage:
    """A provider whose 'forecast' is one yearly-average sample, as the static table gives."""

    name = "flat"
    zones = frozenset({"*"})
    priority = 10

    def current(self, zone):
        return None

    def forecast(self, zone, start, end):
        return [IntensitySample(time=start, g_per_kwh=300, zone=zone, source="avg 2024", kind="average",
                                period_s=(end - start).total_seconds())]


def test_plan_from_providers_uses_the_first_forecast_that_varies():
    """A failing provider and a flat-average one are skipped (noted); the varying forecast is used."""
    broken = FakeIntensity(name="broken", fail=RuntimeError("down"), priority=90)
    flat = YearlyAverage()
    good = FakeIntensity(name="good", g_per_kwh=dip, forecast_step_s=1800, forecast_horizon_s=86400)
    plan = plan_from_providers("ZZ", "1h", "12h", now=T0, providers=[broken, flat, good])
    assert plan.provider == "good" and plan.zone == "ZZ"
    assert plan.start == T0 + timedelta(hours=3) and plan.saving == pytest.approx(0.75)
    assert any("broken" in w for w in plan.warnings) and any("yearly average" in w for w in plan.warnings)
    within = plan_start_within("12h", "1h", "ZZ", now=T0, providers=[good])
    assert within.start == plan.start and within.algorithm == "flexible_start"


def test_no_forecast_is_an_error_not_a_flat_plan():
    """When no provider has a forecast, NoForecastError says so (no zero-saving plan)."""
    with pytest.raises(NoForecastError, match="no intensity forecast for zone 'ZZ'"):
        plan_from_providers("ZZ", "1h", "12h", now=T0, providers=[FakeIntensity(name="none")])


# -- waiting ----------------------------------------------------------------------------------


class FakeClock:
    """A clock that advances only when slept on."""

    def __init__(self, now):
        self.now = now
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_wait_for_best_start_sleeps_until_the_start_in_chunks():
    """It sleeps in chunks of at most chunk_s until the plan's start, then reports started."""
    clock = FakeClock(T0)
    result = wait_for_best_start(T0 + timedelta(seconds=150), clock=clock, sleep=clock.sleep, chunk_s=60)
    assert clock.slept == [60, 60, 30]
    assert result.started and not result.cancelled and result.waited_s == 150
    past = wait_for_best_start(T0 - timedelta(hours=1), clock=clock, sleep=clock.sleep)
    assert past.started and past.waited_s == 0


def test_wait_for_best_start_is_cancelled_cleanly_by_ctrl_c():
    """KeyboardInterrupt while waiting returns cancelled=True, started=False, with the time waited."""
    clock = FakeClock(T0)

    def sleep(seconds):
        clock.sleep(seconds)
        if len(clock.slept) == 2:
            raise KeyboardInterrupt

    plan = flexible_start(trough_series(), "1h", "24h")
    result = wait_for_best_start(plan, clock=clock, sleep=sleep, chunk_s=60)
    assert result.cancelled and not result.started and result.waited_s == 120
    assert result.start == plan.start


def test_wait_for_best_start_stops_when_cancel_says_so():
    """cancel() is asked before every look at the clock: true after the second sleep ends the wait
    there, with no exception; a cancel that stays false changes nothing."""
    clock = FakeClock(T0)
    asked: list[int] = []

    def cancel() -> bool:
        asked.append(len(clock.slept))
        return len(clock.slept) >= 2

    result = wait_for_best_start(T0 + timedelta(hours=1), clock=clock, sleep=clock.sleep, chunk_s=60, cancel=cancel)
    assert result.cancelled and not result.started and result.waited_s == 120
    assert clock.slept == [60, 60] and asked == [0, 1, 2]
    clock = FakeClock(T0)
    done = wait_for_best_start(T0 + timedelta(seconds=90), clock=clock, sleep=clock.sleep, cancel=lambda: False)
    assert done.started and not done.cancelled and clock.slept == [60, 30]
    clock = FakeClock(T0)
    at_once = wait_for_best_start(T0 + timedelta(hours=1), clock=clock, sleep=clock.sleep, cancel=lambda: True)
    assert at_once.cancelled and clock.slept == [] and at_once.waited_s == 0


# -- the pause policy -------------------------------------------------------------------------


def forecast_samples(values, step_s=1800, start=T0):
    """Forecast samples every ``step_s`` seconds."""
    return [
        IntensitySample(time=start + timedelta(seconds=i * step_s), g_per_kwh=v, zone="ZZ", source="t", kind="forecast", period_s=step_s)
        for i, v in enumerate(values)
    ]


def test_policy_pauses_until_the_forecast_drops_below_an_absolute_threshold():
    """High now, forecast low from 01:30: sleep 90 min (under max_sleep), resume_at given."""
    policy = PausePolicy(threshold=200, deadline=T0 + timedelta(hours=12), max_sleep_s=7200)
    d = policy.decide(now=T0, current_g_per_kwh=400, remaining_s=3600, forecast=forecast_samples([400, 400, 400, 150, 150]))
    assert d.pause and d.sleep_s == 5400 and d.resume_at == T0 + timedelta(minutes=90)
    assert d.threshold_g_per_kwh == 200 and "drops" in d.reason


def test_policy_sleep_is_capped_by_max_sleep_and_the_slack():
    """A far drop is waited for max_sleep_s at a time, and never past what the deadline allows."""
    fc = forecast_samples([400] * 10 + [100] * 4)
    policy = PausePolicy(threshold=200, deadline=T0 + timedelta(hours=8))
    assert policy.decide(now=T0, current_g_per_kwh=400, remaining_s=3600, forecast=fc).sleep_s == 900
    tight = PausePolicy(threshold=200, deadline=T0 + timedelta(hours=2), max_sleep_s=1e6)
    assert tight.decide(now=T0, current_g_per_kwh=400, remaining_s=3600, forecast=fc).sleep_s == 3600


def test_policy_runs_when_low_when_no_slack_or_when_no_drop_is_forecast():
    """Run: intensity at or below threshold; no slack before the deadline; no drop in the forecast."""
    policy = PausePolicy(threshold=200, deadline=T0 + timedelta(hours=4))
    fc = forecast_samples([400] * 8 + [100])
    assert not policy.decide(now=T0, current_g_per_kwh=150, remaining_s=60, forecast=fc).pause
    late = policy.decide(now=T0, current_g_per_kwh=400, remaining_s=4 * 3600, forecast=fc)
    assert not late.pause and "no slack" in late.reason
    flat = policy.decide(now=T0, current_g_per_kwh=400, remaining_s=60, forecast=forecast_samples([400] * 4))
    assert not flat.pause and "no drop" in flat.reason
    unknown = policy.decide(now=T0, current_g_per_kwh=None, remaining_s=60, forecast=fc)
    assert not unknown.pause


def test_policy_percentile_threshold_and_no_forecast():
    """'p25' is the time-weighted 25th percentile of the forecast; without forecast it runs."""
    policy = PausePolicy(threshold="p25", deadline=T0 + timedelta(hours=4))
    fc = forecast_samples([400, 300, 200, 100, 400, 300, 200, 100])
    assert policy.threshold_for(T0, fc) == 100
    d = policy.decide(now=T0, current_g_per_kwh=400, remaining_s=600, forecast=fc)
    assert d.pause and d.sleep_s == 900 and d.threshold_g_per_kwh == 100
    none = policy.decide(now=T0, current_g_per_kwh=400, remaining_s=600, forecast=None)
    assert not none.pause and "no forecast" in none.reason
    absolute = PausePolicy(threshold=200, deadline=T0 + timedelta(hours=4), recheck_s=120)
    blind = absolute.decide(now=T0, current_g_per_kwh=400, remaining_s=600, forecast=None)
    assert blind.pause and blind.sleep_s == 120


def test_policy_plan_threshold_follows_pause_and_resume():
    """'plan' pauses until the Pause and Resume plan of the remaining work starts."""
    policy = PausePolicy(threshold="plan", deadline=T0 + timedelta(hours=6), max_sleep_s=1e6)
    fc = forecast_samples([400, 400, 400, 100, 100, 400, 400, 400, 400, 400, 400, 400])
    d = policy.decide(now=T0, current_g_per_kwh=400, remaining_s=3600, forecast=fc)
    assert d.pause and d.sleep_s == 5400


def test_policy_wait_loops_with_an_injected_clock_and_sleep():
    """wait() sleeps until the forecast drop, deciding again after each sleep, and reports the time."""
    clock = FakeClock(T0)
    fc = forecast_samples([400] * 3 + [100] * 4)
    policy = PausePolicy(threshold=200, deadline=T0 + timedelta(hours=12))

    def read(now):
        return (100.0 if now >= T0 + timedelta(minutes=90) else 400.0), fc

    outcome = policy.wait(read, remaining_s=3600, clock=clock, sleep=clock.sleep)
    assert clock.slept == [900] * 6
    assert outcome.paused_s == 5400 and outcome.sleeps == 6 and not outcome.cancelled
    assert isinstance(outcome.decisions[-1], PauseDecision) and not outcome.decisions[-1].pause
    assert json.loads(json.dumps(outcome.to_dict()))["paused_s"] == 5400


def test_policy_wait_is_cancelled_by_ctrl_c():
    """KeyboardInterrupt while paused returns cancelled=True with the time paused so far."""
    clock = FakeClock(T0)

    def sleep(seconds):
        clock.sleep(seconds)
        raise KeyboardInterrupt

    policy = PausePolicy(threshold=200, deadline=T0 + timedelta(hours=12))
    outcome = policy.wait(lambda now: (400.0, None), remaining_s=60, clock=clock, sleep=sleep)
    assert outcome.cancelled and outcome.paused_s == 300


def test_policy_rejects_bad_thresholds():
    """A threshold that is not g/kWh, 'pNN' or 'plan' is a ConfigError naming it."""
    for bad in ("p250", "high", -1, float("nan")):
        with pytest.raises(ConfigError, match="threshold"):
            PausePolicy(threshold=bad, deadline=T0)
    with pytest.raises(ConfigError, match="remaining_s"):
        PausePolicy(threshold=1, deadline=T0).decide(now=T0, current_g_per_kwh=1, remaining_s=-1)
