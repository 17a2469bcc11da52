"""The MLflow exporter against the real MLflow client and a local file tracking store."""

from __future__ import annotations

import json
import socket

import pytest

mlflow = pytest.importorskip("mlflow")

import carbonkit_mlflow  # noqa: E402
from carbonkit.testing import (  # noqa: E402
    FakeIntensity,
    FakePowerSource,
    RecordingReporter,
    assert_plugin_valid,
    tracker_for,
)


@pytest.fixture
def store(tmp_path, monkeypatch):
    # mlflow-skinny has no SQL store; its file store needs this opt-in since MLflow 3.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()


def make(*plugins, **kwargs):
    return tracker_for(*plugins, sources=[FakePowerSource(watts=[80.0], component="gpu", name="fake:gpu")],
                       provider=FakeIntensity(g_per_kwh=150.0), location="DK-DK2", interval_s=0.02, **kwargs)


def test_silent_without_an_active_run(store):
    assert_plugin_valid(carbonkit_mlflow)
    [note] = carbonkit_mlflow.register_reporters()
    assert note.reason == "no active MLflow run" and not note.warn


def test_epochs_report_and_provenance_reach_the_active_run(store, monkeypatch):
    monkeypatch.setenv("CARBONKIT_HOST", "ml-node")
    with mlflow.start_run() as active:
        mlflow.log_metric("loss", 1.0, step=0)  # the user's own metrics are left alone
        [exporter] = carbonkit_mlflow.register_reporters()
        recorder = RecordingReporter()
        t = make(epochs=3, tags={"job": "train?token=hunter2"}, reporters=[exporter, recorder])
        for _ in range(3):
            t.epoch_start()
            t.epoch_end()
        report = t.stop()
    client = mlflow.MlflowClient(tracking_uri=store)
    run = client.get_run(active.info.run_id)
    history = client.get_metric_history(run.info.run_id, "carbonkit.epoch.co2eq_g")
    assert [m.step for m in history] == [0, 1, 2]
    # As the tracker emitted each epoch (priced with the intensity known when it ended).
    assert [m.value for m in history] == pytest.approx([e.co2eq_g for e in recorder.events("on_epoch")], rel=1e-12)
    energy = client.get_metric_history(run.info.run_id, "carbonkit.epoch.energy_kwh")
    assert [m.value for m in energy] == pytest.approx([e.energy_kwh for e in report.epochs], rel=1e-12)
    assert run.data.metrics["carbonkit.co2eq_g"] == pytest.approx(report.co2eq_g, rel=1e-12)
    assert run.data.metrics["carbonkit.energy_kwh"] == pytest.approx(report.energy_kwh, rel=1e-12)
    assert run.data.metrics["loss"] == 1.0
    tags = run.data.tags
    assert tags["carbonkit.host"] == "ml-node"
    assert tags["carbonkit.location"] == "DK-DK2"
    assert tags["carbonkit.methods"] == "gpu=measured"
    assert "hunter2" not in json.dumps(tags) and tags["carbonkit.job"] == "train?token=***"
    path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="carbonkit/report.json",
                                               tracking_uri=store)
    with open(path, encoding="utf-8") as f:
        stored = json.load(f)
    assert stored["co2eq_g"] == pytest.approx(report.co2eq_g, rel=1e-12)
    assert len(stored["epochs"]) == 3
    assert not report.warnings or not any("MLflow" in w for w in report.warnings)


def test_a_tracking_server_that_is_down_costs_one_warning(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens: every call is refused
    exporter = carbonkit_mlflow.MlflowExporter("0123abcd", tracking_uri=f"http://127.0.0.1:{port}")
    t = make(epochs=3, reporters=[exporter])
    for _ in range(3):
        t.epoch_start()
        t.epoch_end()
    report = t.stop()
    mine = [w for w in report.warnings if "MLflow" in w]
    assert len(mine) == 1 and "failed" in mine[0]
    assert report.energy_kwh > 0 and not report.cut_short


def test_off_switch_and_explicit_run(store, monkeypatch):
    with mlflow.start_run():
        monkeypatch.setenv("CARBONKIT_MLFLOW", "0")
        assert carbonkit_mlflow.register_reporters() == []
        monkeypatch.delenv("CARBONKIT_MLFLOW")
        monkeypatch.setenv("CARBONKIT_MLFLOW_RUN_ID", "feedbeef")
        [exporter] = carbonkit_mlflow.register_reporters()
        assert exporter.run_id == "feedbeef" and exporter.tracking_uri == store


def test_the_active_run_of_the_program_is_found_from_the_trackers_threads(store):
    """MLflow's active run is per thread and hooks run on a worker thread: it is found all the same."""
    import threading

    with mlflow.start_run() as active:
        found = []
        worker = threading.Thread(target=lambda: found.extend(carbonkit_mlflow.register_reporters()))
        worker.start()
        worker.join(60)
        assert mlflow.active_run() is not None
    [exporter] = found
    assert exporter.run_id == active.info.run_id


def test_through_plugin_discovery_with_an_active_run(store):
    with mlflow.start_run() as active:
        t = make(carbonkit_mlflow, epochs=1)
        t.epoch_start()
        t.epoch_end()
        report = t.stop()
    run = mlflow.MlflowClient(tracking_uri=store).get_run(active.info.run_id)
    assert run.data.metrics["carbonkit.co2eq_g"] == pytest.approx(report.co2eq_g, rel=1e-12)
