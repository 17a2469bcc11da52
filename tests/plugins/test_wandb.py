"""The W&B exporter against the real wandb client in offline mode.

What the run recorded is read back from the offline run's transaction log (``run-<id>.wandb``,
the records wandb syncs later: LevelDB log framing around its own protobuf ``Record``s), so the
test sees exactly what W&B would receive.
"""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path

import pytest

wandb = pytest.importorskip("wandb")

import carbonkit_wandb  # noqa: E402
from carbonkit.testing import (  # noqa: E402
    FakeIntensity,
    FakePowerSource,
    RecordingReporter,
    assert_plugin_valid,
    tracker_for,
)


def records(path: Path):
    """Yield the protobuf records of an offline run file."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, parts = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # full, or the last part
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts + chunk if kind == 4 else chunk)
            parts = b""
            yield record
        else:  # first or middle part
            parts += chunk


def read_run(directory: Path) -> dict:
    [path] = directory.glob("wandb/offline-run-*/run-*.wandb")
    out: dict = {"history": [], "summary": {}, "config": {}, "artifacts": [], "metrics": []}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "config":
            out["config"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "artifact":
            out["artifacts"].append(rec.artifact)
        elif kind == "metric":
            out["metrics"].append(rec.metric)
    return out


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    yield tmp_path
    if wandb.run is not None:
        wandb.run.finish()
    wandb.teardown()


def make(*plugins, **kwargs):
    return tracker_for(*plugins, sources=[FakePowerSource(watts=[120.0], component="gpu", name="fake:gpu")],
                       provider=FakeIntensity(g_per_kwh=250.0), location="DK-DK2", interval_s=0.02, **kwargs)


def test_silent_without_a_run(offline):
    assert_plugin_valid(carbonkit_wandb)
    [note] = carbonkit_wandb.register_reporters()
    assert note.reason == "no active W&B run"


def test_offline_run_gets_epochs_summary_config_and_artifact(offline, monkeypatch):
    monkeypatch.setenv("CARBONKIT_HOST", "wb-node")
    run = wandb.init(project="carbonkit-test")
    # Instrument the real run's log() to know when carbonkit's epoch values reached it: an epoch
    # of a real training lasts long enough for that; a test loop has to wait for it.
    reached = [threading.Event() for _ in range(3)]
    real_log = run.log

    def log(data, *args, **kwargs):
        real_log(data, *args, **kwargs)
        if "carbonkit/epoch" in data:
            reached[data["carbonkit/epoch"]].set()

    monkeypatch.setattr(run, "log", log)
    run.log({"loss": 2.0}, step=5)  # the user's own explicit steps
    [exporter] = carbonkit_wandb.register_reporters()
    recorder = RecordingReporter()
    t = make(epochs=3, tags={"job": "wb-job"}, reporters=[exporter, recorder])
    for i in range(3):
        t.epoch_start()
        t.epoch_end()
        assert reached[i].wait(60)
        run.log({"loss": 1.0 / (i + 1)}, step=6 + i)
    report = t.stop()
    run.finish()
    wandb.teardown()  # the offline run file is complete once the service has ended
    got = read_run(offline)
    # carbonkit never moved the user's step: the rows are the user's steps, in order.
    assert [row["_step"] for row in got["history"]] == [5, 6, 7, 8]
    assert [row["loss"] for row in got["history"]] == [2.0, 1.0, 0.5, pytest.approx(1 / 3)]
    # Each epoch is in the row the program committed after it, plotted against carbonkit/epoch, as
    # the tracker emitted it (priced with the intensity known when it ended).
    live = recorder.events("on_epoch")
    epochs = [(row["carbonkit/epoch"], row["carbonkit/epoch_co2eq_g"]) for row in got["history"]
              if "carbonkit/epoch" in row]
    assert [i for i, _ in epochs] == [0, 1, 2]
    for index, co2 in epochs:
        assert co2 == pytest.approx(live[index].co2eq_g, rel=1e-12)
    assert any(m.glob_name == "carbonkit/epoch_*" and m.step_metric == "carbonkit/epoch" for m in got["metrics"])
    summary = got["summary"]
    assert summary["carbonkit/co2eq_g"] == pytest.approx(report.co2eq_g, rel=1e-12)
    assert summary["carbonkit/energy_kwh"] == pytest.approx(report.energy_kwh, rel=1e-12)
    config = got["config"]["carbonkit"]
    assert config["host"] == "wb-node" and config["job"] == "wb-job" and config["location"] == "DK-DK2"
    assert config["methods"] == "gpu=measured"
    [artifact] = got["artifacts"]
    assert artifact.type == "carbonkit-report" and artifact.name == f"carbonkit-report-{run.id}"
    assert [e.path for e in artifact.manifest.contents] == ["report.json"]
    assert not [w for w in report.warnings if "Weights" in w]


def test_a_finished_run_costs_one_warning_not_the_training(offline):
    run = wandb.init(project="carbonkit-test")
    exporter = carbonkit_wandb.WandbExporter(run)
    run.finish()  # the program ended its W&B run before the tracker: every call fails
    t = make(epochs=2, reporters=[exporter])
    for _ in range(2):
        t.epoch_start()
        t.epoch_end()
    report = t.stop()
    mine = [w for w in report.warnings if "Weights & Biases" in w]
    assert len(mine) == 1 and "failed" in mine[0]
    assert report.energy_kwh > 0 and not report.cut_short
