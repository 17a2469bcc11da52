"""The OpenTelemetry exporter against the real OpenTelemetry SDK, read with its InMemoryMetricReader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import carbonkit_opentelemetry
from carbonkit.exporting import JOULES_PER_KWH
from carbonkit.testing import FakeIntensity, FakePowerSource, assert_plugin_valid, tracker_for


def collect(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, str], float, str]]]:
    """Return {metric name: [(attributes, value, unit)]} from one collection."""
    out: dict[str, list[tuple[dict[str, str], float, str]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "carbonkit"
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    out.setdefault(metric.name, []).append((dict(point.attributes), point.value, metric.unit))
    return out


def one(points, **attributes):
    found = [(v, unit) for a, v, unit in points if all(a.get(k) == x for k, x in attributes.items())]
    assert len(found) == 1, (attributes, points)
    return found[0]


def test_silent_without_a_provider(monkeypatch):
    assert_plugin_valid(carbonkit_opentelemetry)
    # The test process imported the SDK but set no global provider: auto mode offers nothing, with why.
    [note] = carbonkit_opentelemetry.register_reporters()
    assert "meter provider" in note.reason and not note.warn
    monkeypatch.setenv("CARBONKIT_OPENTELEMETRY", "0")
    assert carbonkit_opentelemetry.register_reporters() == []
    monkeypatch.setenv("CARBONKIT_OPENTELEMETRY", "1")
    [exporter] = carbonkit_opentelemetry.register_reporters()
    assert isinstance(exporter, carbonkit_opentelemetry.OpenTelemetryExporter)
    monkeypatch.setenv("CARBONKIT_OPENTELEMETRY", "maybe")
    [note] = carbonkit_opentelemetry.register_reporters()
    assert note.warn and "CARBONKIT_OPENTELEMETRY='maybe'" in note.reason


def test_metrics_on_the_applications_provider_match_the_report(monkeypatch):
    monkeypatch.setenv("CARBONKIT_HOST", "otel-node")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    exporter = carbonkit_opentelemetry.OpenTelemetryExporter(meter_provider=provider)
    t = tracker_for(sources=[FakePowerSource(watts=[40.0, 60.0], component="gpu", name="fake:gpu")],
                    provider=FakeIntensity(g_per_kwh=300.0), location="DK-DK2", epochs=2, interval_s=0.02,
                    tags={"job": "otel-job"}, reporters=[exporter])
    for _ in range(2):
        t.epoch_start()
        t.epoch_end()
    report = t.stop()
    m = collect(reader)
    run = {"host": "otel-node", "job": "otel-job", "zone": "DK-DK2"}
    assert one(m["carbonkit.run.energy"], **run) == (pytest.approx(report.energy_kwh * JOULES_PER_KWH, rel=1e-12), "J")
    assert one(m["carbonkit.run.it_energy"], **run)[0] == pytest.approx(report.it_energy_kwh * JOULES_PER_KWH, rel=1e-12)
    assert one(m["carbonkit.run.co2eq"], **run) == (pytest.approx(report.co2eq_g, rel=1e-12), "g")
    assert one(m["carbonkit.run.epochs"], **run)[0] == 2
    assert one(m["carbonkit.run.active"], **run)[0] == 0
    gpu = report.components["gpu"]
    assert one(m["carbonkit.component.energy"], component="gpu", method="measured", **run)[0] == pytest.approx(
        gpu.energy_kwh * JOULES_PER_KWH, rel=1e-12)
    devices = [v for a, v, _ in m["carbonkit.device.energy"] if a.get("job") == "otel-job"]
    assert sum(devices) == pytest.approx(gpu.it_energy_kwh * JOULES_PER_KWH, rel=1e-9)
    assert one(m["carbonkit.device.power"], device="gpu1", **run) == (pytest.approx(60.0), "W")
    assert one(m["carbonkit.grid.intensity"], kind="live", **run) == (300.0, "g/kW.h")
    provider.shutdown()


def test_the_global_provider_of_an_application_is_found_through_the_entry_point(tmp_path):
    """A real program: it sets the SDK's provider globally, then a Tracker() from installed plugins."""
    script = textwrap.dedent(
        """
        import json
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        import carbonkit

        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        t = carbonkit.Tracker(location="DK-DK2", quiet=True, interval_s=0.05, tags={"job": "global-job"},
                              sources=[carbonkit.SimulatedSource(watts=[25.0], component="gpu", name="sim:gpu")])
        report = t.stop()
        points = {}
        for rm in reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for p in metric.data.data_points:
                        if p.attributes.get("job") == "global-job":
                            points[metric.name] = p.value
        print(json.dumps({"points": points, "energy_j": report.energy_kwh * 3.6e6}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env["CARBONKIT_PLUGINS"] = "opentelemetry,intensity_static"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["points"]["carbonkit.run.energy"] == pytest.approx(out["energy_j"], rel=1e-12)
    assert out["points"]["carbonkit.run.active"] == 0
