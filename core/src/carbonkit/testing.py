"""Helpers for testing carbonkit plugins, including out-of-tree ones, in a few lines.

::

    from carbonkit.testing import FakeIntensity, RecordingReporter, assert_plugin_valid, tracker_for
    import my_carbonkit_plugin

    def test_plugin_is_valid():
        assert_plugin_valid(my_carbonkit_plugin)

    def test_tracker_uses_my_source():
        reporter = RecordingReporter()
        with tracker_for(my_carbonkit_plugin, reporters=[reporter], interval_s=0.01) as t:
            ...
        assert t.report.components["gpu"].sources == ("my_plugin:gpu",)

Nothing here touches the network: :func:`mock_http_client` answers every request with a
handler you give (default: 404).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from attrs import define, field

from .config import Config
from .protocols import ReporterBase, RunStart
from .records import BudgetExceeded, BudgetReport, EpochRecord, IntensitySample, Prediction, Report, Snapshot

__all__ = [
    "FakeIntensity",
    "FakePowerSource",
    "RecordingReporter",
    "assert_plugin_valid",
    "mock_http_client",
    "plugin_manager_for_tests",
    "epoch_trace",
    "step",
    "synthetic_trace",
    "tracker_for",
]

#: The kinds of :func:`synthetic_trace`.
TRACE_KINDS = ("steady", "warmup", "noisy", "drifting", "step")


@define
class FakePowerSource:
    """A power source with given values; counts reads and can fail on demand.

    :param watts: Watts per device (``kind="power"``), or a callable returning the values to
        report (cumulative joules for ``kind="energy"``).
    :param fail_after: Raise ``RuntimeError`` from the read after this many reads.
    """

    watts: Sequence[float] | Callable[[], Sequence[float]] = (100.0,)
    name: str = "fake:power"
    component: str = "cpu"
    method: str = "measured"
    kind: str = "power"
    labels: Sequence[str] | None = None
    fail_after: int | None = None
    reads: int = 0
    closed: bool = False

    def devices(self) -> Sequence[str]:
        if self.labels is not None:
            return list(self.labels)
        return [f"{self.component}{i}" for i in range(len(self._values()))]

    def _values(self) -> list[float]:
        values = self.watts() if callable(self.watts) else self.watts
        return [float(v) for v in values]

    def read(self) -> Sequence[float]:
        if self.fail_after is not None and self.reads >= self.fail_after:
            raise RuntimeError(f"{self.name}: device lost (simulated failure)")
        self.reads += 1
        return self._values()

    def close(self) -> None:
        self.closed = True


@define
class FakeIntensity:
    """An intensity provider with a constant, a function of time, or a failure.

    :param g_per_kwh: A number, or a callable ``(datetime) -> float``.
    :param fail: An exception to raise from ``current`` (and ``forecast``).
    :param forecast_step_s: Spacing of forecast samples (0: no forecast).
    :param signal: ``"average"`` or ``"marginal"``: the provider's ``signal`` and its samples'.
    :param max_lag_s: The provider's declared publication lag (None: not declared).
    """

    g_per_kwh: float | Callable[[datetime], float] = 100.0
    name: str = "fake:intensity"
    zones: frozenset[str] = field(default=frozenset({"*"}), converter=frozenset)
    priority: int = 50
    kind: str = "live"
    period_s: float | None = None
    fail: BaseException | None = None
    forecast_step_s: float = 0.0
    forecast_horizon_s: float = 3600.0
    history: list[tuple[str, str]] = field(factory=list)
    signal: str = "average"
    max_lag_s: float | None = None

    def _value(self, when: datetime) -> float:
        return float(self.g_per_kwh(when) if callable(self.g_per_kwh) else self.g_per_kwh)

    def current(self, zone: str) -> IntensitySample | None:
        self.history.append(("current", zone))
        if self.fail is not None:
            raise self.fail
        now = datetime.now(timezone.utc)
        return IntensitySample(
            time=now, g_per_kwh=self._value(now), zone=zone, source=f"{self.name} (test)",
            kind=self.kind, period_s=self.period_s, signal=self.signal,
        )

    def forecast(self, zone: str, start: datetime, end: datetime) -> Sequence[IntensitySample]:
        self.history.append(("forecast", zone))
        if self.fail is not None:
            raise self.fail
        if self.forecast_step_s <= 0:
            return []
        out = []
        t = start.timestamp()
        stop = min(end.timestamp(), t + self.forecast_horizon_s)
        while t < stop:
            when = datetime.fromtimestamp(t, tz=timezone.utc)
            out.append(
                IntensitySample(
                    time=when, g_per_kwh=self._value(when), zone=zone, source=f"{self.name} forecast (test)",
                    kind="forecast", period_s=self.forecast_step_s, signal=self.signal,
                )
            )
            t += self.forecast_step_s
        return out


class RecordingReporter(ReporterBase):
    """Record every event as ``(event name, argument)`` in ``history``."""

    name = "recording"

    def __init__(self) -> None:
        self.history: list[tuple[str, Any]] = []

    def events(self, name: str) -> list[Any]:
        """Return the arguments of every event called ``name`` (e.g. ``"on_epoch"``)."""
        return [arg for event, arg in self.history if event == name]

    def on_start(self, run: RunStart) -> None:
        self.history.append(("on_start", run))

    def on_sample(self, t_s: float, readings: Mapping[str, Sequence[float]]) -> None:
        self.history.append(("on_sample", (t_s, dict(readings))))

    def on_intensity(self, sample: IntensitySample) -> None:
        self.history.append(("on_intensity", sample))

    def on_epoch(self, epoch: EpochRecord) -> None:
        self.history.append(("on_epoch", epoch))

    def on_prediction(self, prediction: Prediction) -> None:
        self.history.append(("on_prediction", prediction))

    def on_warning(self, message: str) -> None:
        self.history.append(("on_warning", message))

    def on_prediction_update(self, prediction: Prediction) -> None:
        self.history.append(("on_prediction_update", prediction))

    def on_budget_exceeded(self, event: BudgetExceeded) -> None:
        self.history.append(("on_budget_exceeded", event))

    def on_budget_stop(self, epoch: int) -> None:
        self.history.append(("on_budget_stop", epoch))

    def on_progress(self, snapshot: Snapshot, budget: BudgetReport | None) -> None:
        self.history.append(("on_progress", snapshot))

    def on_report(self, report: Report) -> None:
        self.history.append(("on_report", report))

    def close(self) -> None:
        self.history.append(("close", None))


def mock_http_client(handler: Callable[[Any], Any] | None = None) -> Any:
    """Return an ``httpx.Client`` whose requests go to ``handler`` (default: every URL is 404)."""
    import httpx

    from ._http import default_http_client

    return default_http_client(
        transport=httpx.MockTransport(handler or (lambda request: httpx.Response(404, text="no network in tests")))
    )


def plugin_manager_for_tests(*plugins: object, defaults: bool = True) -> Any:
    """Return a plugin manager with the built-in defaults and ``plugins``, and no entry points."""
    from .plugins import make_plugin_manager

    return make_plugin_manager(plugins=plugins, entrypoints=False, defaults=defaults)


def tracker_for(*plugins: object, http_client: Any = None, **kwargs: Any) -> Any:
    """Build a :class:`~carbonkit.Tracker` from ``plugins`` only (plus the built-in defaults).

    ``kwargs`` go to the tracker (``quiet=True`` unless given). The HTTP client defaults to
    :func:`mock_http_client`, so no request leaves the process.
    """
    from .tracker import Tracker

    kwargs.setdefault("quiet", True)
    return Tracker(
        plugin_manager=plugin_manager_for_tests(*plugins),
        http_client=http_client or mock_http_client(),
        **kwargs,
    )


def assert_plugin_valid(
    plugin: ModuleType | object, config: Config | None = None, http_client: Any = None
) -> dict[str, Any]:
    """Register ``plugin`` alone, check its hooks against the specs, call every collector.

    :returns: What each collector returned, by hook name, after the contract checks.
    :raises PluginContractError: when an object is off-contract (names the plugin and hook).
    :raises AssertionError: when a hook raised.
    """
    from .plugins import (
        collect_intensity_providers,
        collect_power_sources,
        collect_predictors,
        collect_reporters,
        make_plugin_manager,
    )

    pm = make_plugin_manager(plugins=[plugin], entrypoints=False, defaults=False, strict=True)
    config = config or Config(location="WORLD")
    client = http_client or mock_http_client()
    offers = {
        "register_power_sources": collect_power_sources(pm, config, strict=True),
        "register_intensity_providers": collect_intensity_providers(pm, config, client, strict=True),
        "register_predictors": collect_predictors(pm, config, strict=True),
        "register_reporters": collect_reporters(pm, config, strict=True),
    }
    for hook, offer in offers.items():
        assert not offer.errors, f"{hook} raised: {offer.errors}"
    for source in offers["register_power_sources"].objects:
        source.close()
    return {hook: list(offer.objects) + list(offer.notes) for hook, offer in offers.items()}


def step(at: datetime, before: float, after: float) -> Callable[[datetime], float]:
    """Return an intensity function that is ``before`` until ``at`` and ``after`` from then on."""
    return lambda when: before if when < at else after



def epoch_trace(durations_s: Sequence[float], powers_w: Sequence[float]) -> list[EpochRecord]:
    """Epoch records for epochs of the given durations at the given mean IT power (PUE 1).

    For driving a predictor without a tracker: ``predictor.predict(epochs=N,
    completed=trace[:k])``.
    """
    out = []
    t = 0.0
    for i, (d, p) in enumerate(zip(durations_s, powers_w, strict=True)):
        kwh = d * p / 3.6e6
        out.append(EpochRecord(index=i, start_s=t, end_s=t + d, duration_s=d, it_energy_kwh=kwh,
                               energy_kwh=kwh, co2eq_g=0.0))
        t += d
    return out


def synthetic_trace(
    kind: str,
    epochs: int,
    *,
    duration_s: float = 60.0,
    power_w: float = 300.0,
    seed: int = 0,
    warmup: float = 0.6,
    noise: float = 0.05,
    drift: float = 0.02,
    step_at: int = 3,
    step_factor: float = 2.0,
) -> list[EpochRecord]:
    """A simulated training run's epochs, for testing and benchmarking predictors.

    ``"steady"``: every epoch alike. ``"warmup"``: the first epoch runs at ``warmup`` times the
    steady duration and power, the rest steady. ``"noisy"``: duration and power vary from epoch to
    epoch (independent, normal, relative spread ``noise``, seeded). ``"drifting"``: each epoch
    takes ``drift`` (relative) longer than the one before at the same power, as on a machine
    getting busier. ``"step"``: from epoch ``step_at`` on, epochs take ``step_factor`` times as
    long (another job arrived).
    """
    import random

    rng = random.Random(seed)
    durations = [duration_s] * epochs
    powers = [power_w] * epochs
    if kind == "warmup":
        durations[0] *= warmup
        powers[0] *= warmup
    elif kind == "noisy":
        durations = [duration_s * max(rng.gauss(1.0, noise), 0.05) for _ in range(epochs)]
        powers = [power_w * max(rng.gauss(1.0, noise), 0.05) for _ in range(epochs)]
    elif kind == "drifting":
        durations = [duration_s * (1.0 + drift * i) for i in range(epochs)]
    elif kind == "step":
        durations = [duration_s * (step_factor if i >= step_at else 1.0) for i in range(epochs)]
    elif kind != "steady":
        raise ValueError(f"kind must be one of {', '.join(TRACE_KINDS)}, got {kind!r}")
    return epoch_trace(durations, powers)
