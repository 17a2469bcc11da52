"""carbonkit.exporting: the run identity every exporter labels with, the figures, the sender."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from carbonkit import EpochRecord, RunStart
from carbonkit.exporting import Board, BoundedSender, RunFigures, host_name, identify, job_id, provenance
from carbonkit.testing import FakeIntensity, FakePowerSource, tracker_for

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def run_start(header=None, tags=None, sources=()):
    return RunStart(start_time=START, location="FR", pue=1.2, pue_source="test", epochs=None, sources=sources,
                    header=header or {"pid": 77}, tags=tags or {})


def test_host_is_carbonkit_host_else_the_host_name():
    import socket

    assert host_name({"CARBONKIT_HOST": " pod-7 "}) == "pod-7"
    assert host_name({"CARBONKIT_HOST": "  "}) == socket.gethostname()
    assert host_name({"CARBONKIT_HOST": "node\x1b[31m-1"}) == "node-1"  # no terminal control reaches a label


def test_job_from_header_tag_launcher_else_the_run():
    assert job_id(run_start(header={"job": "4242", "pid": 1}), {}) == "4242"
    assert job_id(run_start(tags={"job": "exp-a"}), {}) == "exp-a"
    assert job_id(run_start(), {"TORCHELASTIC_RUN_ID": "none", "PBS_JOBID": "99.pbs"}) == "99.pbs"
    assert job_id(run_start(), {"TORCHELASTIC_RUN_ID": "none"}) == "run-20260301T120000Z-77"
    assert job_id(run_start(tags={"job": "x?api_key=abc123"}), {}) == "x?api_key=***"
    ident = identify(run_start(tags={"job": "j"}), {"CARBONKIT_HOST": "h"})
    assert ident.labels() == {"host": "h", "job": "j", "zone": "FR"}


def test_figures_integrate_samples_and_restart_after_a_gap():
    sources = [{"name": "e:gpu", "component": "gpu", "method": "measured", "kind": "energy", "devices": ["g0"]},
               {"name": "p:cpu", "component": "cpu", "method": "estimated", "kind": "power", "devices": ["c0"]}]
    fig = RunFigures(identify(run_start(sources=sources), {}), run_start(sources=sources))
    fig.add_sample(0.0, {"e:gpu": [5.0], "p:cpu": [10.0]})
    fig.add_sample(2.0, {"e:gpu": [105.0], "p:cpu": [30.0]})
    fig.add_sample(3.0, {"p:cpu": [30.0]})  # the energy counter's reading was rejected
    fig.add_sample(4.0, {"e:gpu": [10_000.0], "p:cpu": [30.0]})  # after the gap: a new start, not a jump
    fig.add_sample(5.0, {"e:gpu": [10_050.0], "p:cpu": [30.0]})
    snap = fig.snapshot()
    assert snap["devices"][("gpu", "g0", "measured")] == pytest.approx(150.0)
    assert snap["devices"][("cpu", "c0", "estimated")] == pytest.approx(40.0 + 30.0 * 3)
    assert snap["power_w"][("gpu", "g0", "measured")] == pytest.approx(50.0)


def test_board_adds_runs_of_one_identity_so_counters_never_go_back():
    board = Board()
    start = run_start(tags={"job": "same"})
    first = RunFigures(identify(start, {"CARBONKIT_HOST": "h"}), start)
    board.add(first)
    first.add_epoch(EpochRecord(index=0, start_s=0, end_s=1, duration_s=1, it_energy_kwh=1e-3, energy_kwh=2e-3,
                                co2eq_g=1.0))
    board.retire(first)
    second = RunFigures(identify(start, {"CARBONKIT_HOST": "h"}), start)
    board.add(second)
    second.add_epoch(EpochRecord(index=0, start_s=0, end_s=1, duration_s=1, it_energy_kwh=1e-3, energy_kwh=2e-3,
                                 co2eq_g=1.0))
    [(ident, fig, active)] = board.runs()
    assert active and ident.job == "same"
    assert fig["energy_j"] == pytest.approx(2 * 2e-3 * 3.6e6)
    assert fig["epochs"] == 2 and fig["co2eq_g"] == pytest.approx(2.0)


def test_sender_never_blocks_and_warns_once():
    warnings: list[str] = []
    release, started = threading.Event(), threading.Event()
    sender = BoundedSender("the test back end", warnings.append, max_pending=2)
    sender.submit("blocked", lambda: (started.set(), release.wait(30)))
    assert started.wait(30)
    for i in range(5):  # the worker is stuck: these queue (and the oldest drop) without waiting
        sender.submit(f"call {i}", lambda: 1 / 0)
    release.set()
    assert sender.flush(30)
    assert sender.dropped == 3 and sender.failures == 2
    assert len([w for w in warnings if "failed" in w]) == 1
    assert len([w for w in warnings if "not keeping up" in w]) == 1
    assert sender.close(5)


def test_sender_close_gives_up_at_its_deadline():
    warnings: list[str] = []
    release = threading.Event()
    sender = BoundedSender("the slow back end", warnings.append)
    sender.submit("a push", lambda: release.wait(30))
    assert not sender.close(0.05)
    release.set()
    assert warnings == ["the slow back end did not finish within 0.05 s; 1 update(s) were not sent"]


def test_provenance_is_flat_redacted_and_says_how():
    t = tracker_for(sources=[FakePowerSource(watts=[10.0])], provider=FakeIntensity(), location="DK-DK2",
                    interval_s=0.02, pue=1.1)
    report = t.stop()
    tags = provenance(report)
    assert tags["carbonkit.pue"] == "1.1" and tags["carbonkit.location"] == "DK-DK2"
    assert tags["carbonkit.methods"] == "cpu=measured"
    assert all(k.startswith("carbonkit.") and isinstance(v, str) and len(v) <= 250 for k, v in tags.items())
