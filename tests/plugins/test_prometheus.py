"""The Prometheus exporter against the real prometheus_client: scrape /metrics, parse it with the
client's own exposition-format parser, and compare with the report; push to a local stand-in
Pushgateway (a 127.0.0.1 server that records what it receives)."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from datetime import datetime, timezone

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import carbonkit_prometheus
from carbonkit import EpochRecord, Report, RunStart
from carbonkit.exporting import JOULES_PER_KWH, host_name
from carbonkit.testing import FakeIntensity, FakePowerSource, assert_plugin_valid, tracker_for


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Return {sample name: {sorted labels: value}} from a real scrape."""
    text = httpx.get(url, timeout=10).text
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def only(samples: dict[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    found = [v for k, v in samples.items() if all((name, value) in k for name, value in labels.items())]
    assert len(found) == 1, (labels, samples)
    return found[0]


@pytest.fixture
def endpoint(monkeypatch):
    monkeypatch.setenv("CARBONKIT_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("CARBONKIT_PROMETHEUS_ADDRESS", "127.0.0.1")


def run_tracker(job: str, epochs: int = 3, **kwargs):
    t = tracker_for(
        carbonkit_prometheus,
        sources=[FakePowerSource(watts=[50.0, 70.0], component="gpu", name="fake:gpu"),
                 FakePowerSource(watts=[30.0], component="cpu", name="fake:cpu")],
        provider=FakeIntensity(g_per_kwh=200.0),
        location="DK-DK2", epochs=epochs, interval_s=0.02, tags={"job": job}, **kwargs,
    )
    for _ in range(epochs):
        t.epoch_start()
        t.epoch_end()
    return t, t.stop()


def test_silent_without_configuration():
    assert_plugin_valid(carbonkit_prometheus)
    assert carbonkit_prometheus.register_reporters() == []


def test_bad_port_is_named(monkeypatch):
    monkeypatch.setenv("CARBONKIT_PROMETHEUS_PORT", "http")
    [note] = carbonkit_prometheus.register_reporters()
    assert note.warn and "CARBONKIT_PROMETHEUS_PORT='http'" in note.reason and "65535" in note.reason
    monkeypatch.setenv("CARBONKIT_PROMETHEUS_PORT", "70000")
    [note] = carbonkit_prometheus.register_reporters()
    assert "70000" in note.reason


def test_scraped_counters_match_the_report(endpoint, monkeypatch):
    monkeypatch.setenv("CARBONKIT_HOST", "node-a")
    t, report = run_tracker("job-match")
    [url] = carbonkit_prometheus.endpoints()[-1:]
    m = scrape(url)
    run = {"host": "node-a", "job": "job-match", "zone": "DK-DK2"}
    assert only(m["carbonkit_energy_joules_total"], **run) == pytest.approx(report.energy_kwh * JOULES_PER_KWH, rel=1e-12)
    assert only(m["carbonkit_it_energy_joules_total"], **run) == pytest.approx(report.it_energy_kwh * JOULES_PER_KWH, rel=1e-12)
    assert only(m["carbonkit_co2eq_grams"], **run) == pytest.approx(report.co2eq_g, rel=1e-12)
    assert only(m["carbonkit_epochs_total"], **run) == 3
    assert only(m["carbonkit_pue_ratio"], **run) == report.pue
    assert only(m["carbonkit_run_active"], **run) == 0
    for name, comp in report.components.items():
        got = only(m["carbonkit_component_energy_joules_total"], component=name, method=comp.method, **run)
        assert got == pytest.approx(comp.energy_kwh * JOULES_PER_KWH, rel=1e-12)
    # The devices' live integration adds up to the report's machine-wide IT energy per component.
    for name, comp in report.components.items():
        devices = [v for k, v in m["carbonkit_device_energy_joules_total"].items()
                   if ("component", name) in k and ("job", "job-match") in k]
        assert len(devices) == len(comp.devices)
        machine = comp.machine_it_energy_kwh if comp.machine_it_energy_kwh is not None else comp.it_energy_kwh
        assert sum(devices) == pytest.approx(machine * JOULES_PER_KWH, rel=1e-9)
    assert only(m["carbonkit_grid_intensity_grams_per_kilowatt_hour"], kind="live", **run) == 200.0
    assert only(m["carbonkit_device_power_watts"], device="gpu1", **run) == pytest.approx(70.0)


def test_a_second_tracker_reuses_the_endpoint_and_counters_only_grow(endpoint, monkeypatch):
    monkeypatch.setenv("CARBONKIT_HOST", "node-b")
    _, first = run_tracker("job-twice", epochs=2)
    url = carbonkit_prometheus.endpoints()[-1]
    before = only(scrape(url)["carbonkit_energy_joules_total"], job="job-twice")
    _, second = run_tracker("job-twice", epochs=2)  # same process, same port: no "address in use"
    assert carbonkit_prometheus.endpoints()[-1] == url
    m = scrape(url)
    after = only(m["carbonkit_energy_joules_total"], job="job-twice")
    assert before == pytest.approx(first.energy_kwh * JOULES_PER_KWH, rel=1e-12)
    assert after == pytest.approx((first.energy_kwh + second.energy_kwh) * JOULES_PER_KWH, rel=1e-12)
    assert only(m["carbonkit_epochs_total"], job="job-twice") == 4


def test_live_values_follow_epochs_before_the_report(endpoint, monkeypatch):
    """Driven event by event, as the reporter thread does, with a scrape between events."""
    monkeypatch.setenv("CARBONKIT_HOST", "node-live")
    [exporter] = carbonkit_prometheus.register_reporters()
    url = exporter.endpoint_url
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    exporter.on_start(RunStart(start_time=start, location="GB", pue=1.5, pue_source="test", epochs=2,
                               sources=[{"name": "x:gpu", "component": "gpu", "method": "measured", "kind": "energy",
                                         "devices": ["gpu0"]}], header={"pid": 4242}))
    exporter.on_sample(0.0, {"x:gpu": [10.0]})
    exporter.on_sample(1.0, {"x:gpu": [110.0]})
    exporter.on_epoch(EpochRecord(index=0, start_s=0, end_s=1, duration_s=1, it_energy_kwh=100 / 3.6e6,
                                  energy_kwh=150 / 3.6e6, co2eq_g=0.01))
    m = scrape(url)
    job = "run-20260101T000000Z-4242"  # no launcher, no job tag: the run is its own job
    run = {"host": "node-live", "job": job, "zone": "GB"}
    assert only(m["carbonkit_energy_joules_total"], **run) == pytest.approx(150.0)
    assert only(m["carbonkit_device_energy_joules_total"], device="gpu0", **run) == pytest.approx(100.0)
    assert only(m["carbonkit_device_power_watts"], device="gpu0", **run) == pytest.approx(100.0)
    assert only(m["carbonkit_run_active"], **run) == 1
    assert "carbonkit_component_energy_joules_total" not in m or not any(("job", job) in k for k in m["carbonkit_component_energy_joules_total"])
    exporter.close()


def test_port_taken_by_another_process_warns_once(monkeypatch):
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        monkeypatch.setenv("CARBONKIT_PROMETHEUS_PORT", str(busy.getsockname()[1]))
        monkeypatch.setenv("CARBONKIT_PROMETHEUS_ADDRESS", "127.0.0.1")
        [note] = carbonkit_prometheus.register_reporters()
        assert note.warn and "cannot serve /metrics" in note.reason
        monkeypatch.setenv("LOCAL_RANK", "3")
        [note] = carbonkit_prometheus.register_reporters()
        assert not note.warn and "local rank 3" in note.reason
    finally:
        busy.close()


class _Gateway(http.server.BaseHTTPRequestHandler):
    pushes: list[tuple[str, str]] = []
    auth: list[str | None] = []

    def do_PUT(self):  # noqa: N802 - the http.server API
        type(self).auth.append(self.headers.get("Authorization"))
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        type(self).pushes.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT

    def log_message(self, *args):
        pass


def test_pushes_to_a_gateway_with_job_and_host(monkeypatch):
    _Gateway.pushes = []
    _Gateway.auth = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("CARBONKIT_PROMETHEUS_PUSHGATEWAY", f"http://pusher:s3cret@127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("CARBONKIT_HOST", "node-push")
        _, report = run_tracker("job-push", epochs=2)
    finally:
        server.shutdown()
        server.server_close()
    paths = {p for p, _ in _Gateway.pushes}
    assert paths == {"/metrics/job/job-push/host/node-push"}
    assert set(_Gateway.auth) == {"Basic cHVzaGVyOnMzY3JldA=="}  # pusher:s3cret, sent as basic auth
    assert "s3cret" not in " ".join(report.warnings)
    last = {s.name: s.value for f in text_string_to_metric_families(_Gateway.pushes[-1][1]) for s in f.samples
            if s.labels.get("job") == "job-push"}
    assert last["carbonkit_energy_joules_total"] == pytest.approx(report.energy_kwh * JOULES_PER_KWH, rel=1e-12)
    assert last["carbonkit_co2eq_grams"] == pytest.approx(report.co2eq_g, rel=1e-12)


def test_a_gateway_that_is_down_costs_one_warning_not_the_run(monkeypatch):
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: every push is refused
    monkeypatch.setenv("CARBONKIT_PROMETHEUS_PUSHGATEWAY", f"http://user:hunter2@127.0.0.1:{port}")
    _, report = run_tracker("job-down", epochs=3)
    mine = [w for w in report.warnings if "push gateway" in w]
    assert len(mine) == 1 and "failed" in mine[0]
    assert "hunter2" not in " ".join(report.warnings)
    assert not report.cut_short
    assert isinstance(report, Report) and report.energy_kwh > 0


def test_job_label_comes_from_the_launcher(endpoint, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "778899")
    monkeypatch.delenv("CARBONKIT_HOST", raising=False)
    t = tracker_for(carbonkit_prometheus, sources=[FakePowerSource(watts=[10.0])], provider=FakeIntensity(),
                    location="DK-DK2", interval_s=0.02)
    report = t.stop()
    m = scrape(carbonkit_prometheus.endpoints()[-1])
    assert only(m["carbonkit_energy_joules_total"], job="778899", host=host_name()) == pytest.approx(
        report.energy_kwh * JOULES_PER_KWH, rel=1e-12)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) is not installed")
def test_promtool_finds_nothing_to_lint(endpoint, monkeypatch):
    """Prometheus's own linter checks the names, units and types of a real scrape."""
    monkeypatch.setenv("CARBONKIT_HOST", "node-lint")
    run_tracker("job-lint", epochs=1)
    text = httpx.get(carbonkit_prometheus.endpoints()[-1], timeout=10).text
    assert "carbonkit_energy_joules_total" in text
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def test_two_endpoints_of_one_process_never_show_a_run_twice(monkeypatch):
    """A run is served by the endpoint it was configured with only: a fleet sum counts it once."""
    import socket

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    monkeypatch.setenv("CARBONKIT_PROMETHEUS_ADDRESS", "127.0.0.1")
    monkeypatch.setenv("CARBONKIT_HOST", "node-ports")
    port_a, port_b = free_port(), free_port()
    monkeypatch.setenv("CARBONKIT_PROMETHEUS_PORT", str(port_a))
    run_tracker("job-port-a", epochs=1)
    monkeypatch.setenv("CARBONKIT_PROMETHEUS_PORT", str(port_b))
    run_tracker("job-port-b", epochs=1)
    jobs_a = {dict(k)["job"] for k in scrape(f"http://127.0.0.1:{port_a}/metrics")["carbonkit_energy_joules_total"]}
    jobs_b = {dict(k)["job"] for k in scrape(f"http://127.0.0.1:{port_b}/metrics")["carbonkit_energy_joules_total"]}
    assert jobs_a == {"job-port-a"} and jobs_b == {"job-port-b"}


def test_a_gateway_that_hangs_never_holds_the_loop_or_stop(monkeypatch):
    """A gateway that accepts and never answers: each push gives up at its timeout, stop() at the
    exporter's close deadline, and the report says so once."""
    from carbonkit_prometheus import exporter

    release = threading.Event()

    class Hanging(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):  # noqa: N802 - the http.server API
            release.wait(60)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(exporter, "PUSH_TIMEOUT_S", 0.2)
    monkeypatch.setattr(exporter, "CLOSE_TIMEOUT_S", 0.5)
    monkeypatch.setenv("CARBONKIT_PROMETHEUS_PUSHGATEWAY", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        _, report = run_tracker("job-hang", epochs=3)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    mine = [w for w in report.warnings if "push gateway" in w]
    assert mine and all("timed out" in w or "did not finish" in w or "failed" in w for w in mine)
    assert len([w for w in mine if "failed" in w]) <= 1 and len([w for w in mine if "did not finish" in w]) <= 1
    assert not report.cut_short and report.energy_kwh > 0
