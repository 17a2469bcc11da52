"""carbonkit plugin ``opentelemetry``: a run's energy and CO2eq as OpenTelemetry metrics.

The metrics are made through the OpenTelemetry **API** on the meter provider the application
configured (``opentelemetry.metrics.get_meter_provider()``): carbonkit configures no SDK, no
exporter and no reader; the application's own pipeline (OTLP, Prometheus, a collector) carries
them wherever its other metrics go.

When it is used (``CARBONKIT_OPENTELEMETRY``):

- unset or ``auto``: when the application has set a real meter provider before the tracker
  starts (not the API's default no-op/proxy provider). If OpenTelemetry was never imported,
  nothing is imported and nothing offered.
- ``1`` (``true``, ``yes``, ``on``): always; instruments made before the application sets its
  provider are bound to it when it does (the API's proxy provider).
- ``0`` (``false``, ``no``, ``off``): never.

Instruments are asynchronous (observable): the SDK reads the current figures when it collects,
so nothing is sent from the training loop or from carbonkit's threads. Names, units (UCUM) and
attributes are in the README; the attributes are those of the Prometheus exporter: ``host``,
``job``, ``zone``, and ``component``, ``device``, ``method`` where they apply.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from carbonkit import ReporterBase, Unavailable
from carbonkit.exporting import Board, RunFigures, identify

from . import ENABLE_ENV

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

    from carbonkit import EpochRecord, IntensitySample, Prediction, Report, RunStart

__all__ = ["ENABLE_ENV", "METRICS", "OpenTelemetryExporter", "offer"]

PLUGIN = "opentelemetry"
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")
_AUTO = ("", "auto")

#: name -> (instrument kind, unit, description). Kinds: counter (monotonic sum), updown
#: (a sum that may go down), gauge.
METRICS: Mapping[str, tuple[str, str, str]] = {
    "carbonkit.run.energy": ("counter", "J", "Energy of the run including PUE (finished epochs while it runs, "
                             "the report's total at the end)"),
    "carbonkit.run.it_energy": ("counter", "J", "Energy of the devices before PUE (finished epochs while it runs, "
                                "the report's total at the end)"),
    "carbonkit.run.co2eq": ("updown", "g", "CO2eq emitted by the run so far (finished epochs, priced when they "
                            "ended, while it runs; the report's total, re-priced, at the end)"),
    "carbonkit.run.epochs": ("counter", "{epoch}", "Finished epochs"),
    "carbonkit.run.pue": ("gauge", "1", "Power usage effectiveness applied to the run"),
    "carbonkit.run.active": ("gauge", "1", "1 while a run with these attributes is measuring, else 0"),
    "carbonkit.component.energy": ("counter", "J", "Energy of each component including PUE, from the report"),
    "carbonkit.component.it_energy": ("counter", "J", "Energy of each component before PUE, from the report"),
    "carbonkit.device.energy": ("counter", "J", "Machine-wide energy of each device before PUE and attribution, "
                                "integrated from the samples"),
    "carbonkit.device.power": ("gauge", "W", "Latest power of each device"),
    "carbonkit.grid.intensity": ("gauge", "g/kW.h", "Carbon intensity of electricity in force, grams CO2eq per kWh"),
    "carbonkit.prediction.energy": ("gauge", "J", "Predicted energy of the whole run including PUE"),
    "carbonkit.prediction.co2eq": ("gauge", "g", "Predicted CO2eq of the whole run"),
    "carbonkit.prediction.duration": ("gauge", "s", "Predicted duration of the whole run"),
}

_PREDICTIONS = ("carbonkit.prediction.energy", "carbonkit.prediction.co2eq", "carbonkit.prediction.duration")
_BOARD = Board()
_LOCK = threading.Lock()
_INSTRUMENTED: list[Any] = []  # meter providers that already have carbonkit's instruments


def _observations(name: str) -> list[tuple[float, dict[str, str]]]:
    out: list[tuple[float, dict[str, str]]] = []
    for ident, fig, active in _BOARD.runs():
        run = ident.labels()
        if name == "carbonkit.run.energy":
            out.append((fig["energy_j"], run))
        elif name == "carbonkit.run.it_energy":
            out.append((fig["it_energy_j"], run))
        elif name == "carbonkit.run.co2eq":
            out.append((fig["co2eq_g"], run))
        elif name == "carbonkit.run.epochs":
            out.append((fig["epochs"], run))
        elif name == "carbonkit.run.pue":
            out.append((fig["pue"], run))
        elif name == "carbonkit.run.active":
            out.append((1 if active else 0, run))
        elif name in ("carbonkit.component.energy", "carbonkit.component.it_energy"):
            i = 0 if name == "carbonkit.component.energy" else 1
            for (component, method), values in sorted(fig["components"].items()):
                out.append((values[i], {"component": component, "method": method, **run}))
        elif name in ("carbonkit.device.energy", "carbonkit.device.power"):
            figures = fig["devices"] if name == "carbonkit.device.energy" else fig["power_w"]
            for (component, device, method), value in sorted(figures.items()):
                out.append((value, {"component": component, "device": device, "method": method, **run}))
        elif name == "carbonkit.grid.intensity" and fig["intensity"] is not None:
            out.append((fig["intensity"][0], {**run, "kind": fig["intensity"][1]}))
        elif name.startswith("carbonkit.prediction.") and fig["prediction"] is not None:
            i = _PREDICTIONS.index(name)
            out.append((fig["prediction"][i], run))
    return out


def _callback(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        return [Observation(value, attributes) for value, attributes in _observations(name)]

    return observe


def _instrument(provider: MeterProvider) -> None:
    """Create carbonkit's instruments on ``provider`` once per process."""
    import carbonkit

    with _LOCK:
        if any(p is provider for p in _INSTRUMENTED):
            return
        meter = provider.get_meter("carbonkit", carbonkit.__version__)
        for name, (kind, unit, description) in METRICS.items():
            create = {
                "counter": meter.create_observable_counter,
                "updown": meter.create_observable_up_down_counter,
                "gauge": meter.create_observable_gauge,
            }[kind]
            create(name, callbacks=[_callback(name)], unit=unit, description=description)
        _INSTRUMENTED.append(provider)


class OpenTelemetryExporter(ReporterBase):
    """Feeds one run's figures to carbonkit's observable instruments on ``meter_provider``.

    :param meter_provider: The provider to instrument; None: the global one when the run starts.
    :param environ: The environment the run's identity is read from (tests pass their own).
    """

    name = PLUGIN

    def __init__(self, meter_provider: MeterProvider | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.meter_provider = meter_provider
        self.environ = environ
        self._figures: RunFigures | None = None

    def on_start(self, run: RunStart) -> None:
        from opentelemetry import metrics

        _instrument(self.meter_provider or metrics.get_meter_provider())
        self._figures = RunFigures(identify(run, self.environ), run)
        _BOARD.add(self._figures)

    def on_sample(self, t_s: float, readings: Mapping[str, Sequence[float]]) -> None:
        if self._figures is not None:
            self._figures.add_sample(t_s, readings)

    def on_intensity(self, sample: IntensitySample) -> None:
        if self._figures is not None:
            self._figures.set_intensity(sample)

    def on_epoch(self, epoch: EpochRecord) -> None:
        if self._figures is not None:
            self._figures.add_epoch(epoch)

    def on_prediction(self, prediction: Prediction) -> None:
        if self._figures is not None:
            self._figures.set_prediction(prediction)

    def on_report(self, report: Report) -> None:
        if self._figures is not None:
            self._figures.set_report(report)

    def close(self) -> None:
        if self._figures is not None:
            _BOARD.retire(self._figures)


def _configured(provider: object) -> bool:
    """True when ``provider`` is one the application set (not the API's no-op or proxy default)."""
    from opentelemetry.metrics import NoOpMeterProvider

    return not isinstance(provider, NoOpMeterProvider) and type(provider).__name__ != "_ProxyMeterProvider"


def offer() -> list[OpenTelemetryExporter | Unavailable]:
    """Offer the exporter when the application configured a meter provider, or when enabled."""
    value = (os.environ.get(ENABLE_ENV) or "").strip().lower()
    if value in _OFF:
        return []
    if value not in _ON and value not in _AUTO:
        return [Unavailable(plugin=PLUGIN, warn=True, reason=f"{ENABLE_ENV}={os.environ.get(ENABLE_ENV)!r} is not "
                            "accepted: use 1 (always), 0 (never) or auto (when the application set a meter provider)")]
    if value in _AUTO and "opentelemetry.metrics" not in sys.modules:
        return []  # the application never imported OpenTelemetry: it configured no provider
    try:
        from opentelemetry import metrics
    except ImportError:
        if value in _ON:
            return [Unavailable(plugin=PLUGIN, reason="opentelemetry-api is not installed",
                                hint="pip install carbonkit-opentelemetry", warn=True)]
        return []
    if value in _AUTO and not _configured(metrics.get_meter_provider()):
        return [Unavailable(plugin=PLUGIN, reason="the application has not set an OpenTelemetry meter provider",
                            hint=f"set one before the tracker starts, or {ENABLE_ENV}=1")]
    return [OpenTelemetryExporter()]
