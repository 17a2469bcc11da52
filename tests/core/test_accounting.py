"""The accounting engine: integration, interpolation at boundaries, minutes, intensity in force."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from carbonkit._accounting import Accountant, IntensityTimeline, carbon
from carbonkit.records import IntensitySample

T0 = 1_800_000_000.0  # a whole minute (divisible by 60)


def acc_for(*kinds: str, devices: int = 1, start: float = T0) -> Accountant:
    return Accountant.for_sources(
        [
            {"name": f"s{i}", "component": "cpu", "kind": k, "method": "measured", "devices": [f"d{j}" for j in range(devices)]}
            for i, k in enumerate(kinds)
        ],
        start_wall=start,
    )


def test_power_is_integrated_with_the_trapezoid_rule():
    """Watts rising linearly from 0 to 100 W over 10 s integrate to exactly 500 J."""
    acc = acc_for("power")
    for t in range(11):
        acc.add(float(t), [[10.0 * t]])
    assert acc.e_attr_j == pytest.approx(500.0)
    assert acc.sources[0].cum_j == [pytest.approx(500.0)]


def test_devices_of_a_component_are_summed():
    """Two devices at 100 W and 200 W give 300 W worth of energy."""
    acc = acc_for("power", devices=2)
    for t in range(5):
        acc.add(float(t), [[100.0, 200.0]])
    assert acc.component_j["cpu"] == pytest.approx(300.0 * 4)


def test_energy_counters_take_differences_and_skip_resets():
    """Counters give differences; a decrease (a reset) counts nothing for that interval."""
    acc = acc_for("energy")
    for t, j in [(0, 1000.0), (1, 1050.0), (2, 1100.0), (3, 5.0), (4, 55.0)]:
        acc.add(float(t), [[j]])
    assert acc.e_attr_j == pytest.approx(150.0)
    assert acc.sources[0].resets == 1


def test_mark_inside_an_interval_is_interpolated_exactly_for_power():
    """A boundary 0.5 s into a 0 -> 100 W ramp sits where the trapezoid integral puts it."""
    acc = acc_for("power")
    acc.add(0.0, [[0.0]])
    acc.mark(0.5)
    acc.add(1.0, [[100.0]])
    # power is 100 t W, so energy to 0.5 s is 50 * 0.25 = 12.5 J
    assert acc.mark_j == [pytest.approx(12.5)]


def test_mark_inside_an_interval_is_linear_for_counters():
    """For energy counters a boundary splits the interval's joules in proportion to time."""
    acc = acc_for("energy")
    acc.add(0.0, [[0.0]])
    acc.add(1.0, [[10.0]])
    acc.mark(1.25)
    acc.add(2.0, [[50.0]])
    assert acc.mark_j == [pytest.approx(20.0)]


def test_mark_exactly_on_a_sample():
    """A boundary at a sample time gets the cumulative energy at that sample."""
    acc = acc_for("power")
    acc.add(0.0, [[100.0]])
    acc.mark(2.0)
    acc.add(1.0, [[100.0]])
    acc.add(2.0, [[100.0]])
    assert acc.mark_j == [pytest.approx(200.0)]


def test_minutes_split_energy_at_wall_clock_boundaries():
    """A constant 60 W across a minute boundary puts each side's joules in its own minute."""
    acc = acc_for("power", start=T0 + 50)
    for t in range(0, 21, 5):
        acc.add(float(t), [[60.0]])
    buckets = dict(acc.buckets())
    k = int(T0 // 60)
    assert buckets[k] == pytest.approx(600.0)
    assert buckets[k + 1] == pytest.approx(600.0)
    assert sum(buckets.values()) == pytest.approx(acc.e_attr_j)


def test_attribution_shares_scale_the_attributed_figures_only():
    """A 25% CPU share charges a quarter of the energy; the machine figure stays whole."""
    acc = acc_for("power")
    for t in range(3):
        acc.add(float(t), [[100.0]], {"cpu": 0.25})
    assert acc.component_j["cpu"] == pytest.approx(200.0)
    assert acc.component_attr_j["cpu"] == pytest.approx(50.0)
    assert acc.e_attr_j == pytest.approx(50.0)


def sample(ts: float, g: float, kind: str = "live", period: float | None = 300.0) -> IntensitySample:
    return IntensitySample(
        time=datetime.fromtimestamp(ts, tz=timezone.utc), g_per_kwh=g, zone="XX", source=kind, kind=kind, period_s=period
    )


def test_live_values_replace_forecasts_where_they_cover():
    """A live value covering a minute wins over the forecast for it; elsewhere the forecast stands."""
    tl = IntensityTimeline()
    tl.add(sample(T0, 100.0, "forecast"), "p")
    tl.add(sample(T0 + 300, 200.0, "forecast"), "p")
    tl.add(sample(T0, 50.0, "live"), "p")
    assert tl.at(T0 + 30)[0].g_per_kwh == 50.0
    assert tl.at(T0 + 330)[0].g_per_kwh == 200.0


def test_averages_are_used_only_when_nothing_better_exists():
    """A yearly average yields to a recent live value, and serves where none is known."""
    tl = IntensityTimeline()
    tl.add(sample(T0, 400.0, "average", None), "static")
    assert tl.at(T0 + 10)[0].g_per_kwh == 400.0
    tl.add(sample(T0 + 60, 80.0, "live", None), "api")
    assert tl.at(T0 + 100)[0].g_per_kwh == 80.0
    assert tl.at(T0 + 100 + 2 * 3600)[0].g_per_kwh == 400.0  # live value too old by then


def test_carbon_prices_each_minute_at_its_own_intensity():
    """CO2eq is the sum over minutes of energy times that minute's intensity (with PUE)."""
    tl = IntensityTimeline()
    tl.add(sample(T0, 100.0, "live", 60.0), "p")
    tl.add(sample(T0 + 60, 300.0, "live", 60.0), "p")
    k = int(T0 // 60)
    grams, kwh, uses = carbon([(k, 3.6e6), (k + 1, 3.6e6)], tl, 60.0, pue=1.5)
    assert kwh == pytest.approx(3.0)
    assert grams == pytest.approx(1.5 * 100 + 1.5 * 300)
    assert len(uses) == 1
