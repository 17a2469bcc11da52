"""The Prometheus exporter scraped by a real Prometheus server (Debian's ``prometheus`` package):
what the server stores, queried through its HTTP API, equals the report.

The test waits on a condition (the query answers), never on time passing: Prometheus scrapes
every second, and the test asks until the series is there, up to a generous bound."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

import carbonkit_prometheus
from carbonkit.exporting import JOULES_PER_KWH
from carbonkit.testing import FakeIntensity, FakePowerSource, tracker_for

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus (Debian's prometheus package) is not installed: tests/install_test_tools.sh",
)

#: Upper bound on the wait for the first scrape to be queryable; it takes about two seconds.
WAIT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def query(base: str, promql: str) -> list[dict]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def wait_for(base: str, promql: str, server: subprocess.Popen, log: Path) -> list[dict]:
    """The query's result once it is not empty (the server has scraped the endpoint)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prometheus exited: {log.read_text()[-2000:]}"
        try:
            result = query(base, promql)
        except httpx.TransportError:  # the server is still starting
            result = []
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"Prometheus never answered {promql!r} within {WAIT_S:.0f} s")


def test_a_real_prometheus_server_stores_the_report_figures(monkeypatch, tmp_path):
    monkeypatch.setenv("CARBONKIT_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("CARBONKIT_PROMETHEUS_ADDRESS", "127.0.0.1")
    monkeypatch.setenv("CARBONKIT_HOST", "node-a")
    t = tracker_for(
        carbonkit_prometheus,
        sources=[FakePowerSource(watts=[50.0, 70.0], component="gpu", name="fake:gpu"),
                 FakePowerSource(watts=[30.0], component="cpu", name="fake:cpu")],
        provider=FakeIntensity(g_per_kwh=200.0),
        location="DK-DK2", epochs=3, interval_s=0.02, tags={"job": "job-real-server"},
    )
    for _ in range(3):
        t.epoch_start()
        t.epoch_end()
    report = t.stop()
    # Other tests of this process may serve endpoints too: take the one serving this run.
    [url] = {u for u in carbonkit_prometheus.endpoints() if 'job="job-real-server"' in httpx.get(u, timeout=10).text}
    target = url.split("//", 1)[1].split("/", 1)[0]

    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: carbonkit\n"
        "    honor_labels: true\n"  # keep carbonkit's own job label (docs/monitoring.md)
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    web = f"127.0.0.1:{free_port()}"
    log = tmp_path / "prometheus.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address={web}"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://{web}"
        selector = '{job="job-real-server"}'
        [energy] = wait_for(base, f"sum by (job, host) (carbonkit_energy_joules_total{selector})", server, log)
        assert energy["metric"] == {"job": "job-real-server", "host": "node-a"}
        assert float(energy["value"][1]) == pytest.approx(report.energy_kwh * JOULES_PER_KWH, rel=1e-9)
        [co2] = wait_for(base, f"sum(carbonkit_co2eq_grams{selector})", server, log)
        assert float(co2["value"][1]) == pytest.approx(report.co2eq_g, rel=1e-9)
        by_component = {
            r["metric"]["component"]: float(r["value"][1])
            for r in wait_for(base, f"sum by (component) (carbonkit_component_energy_joules_total{selector})", server, log)
        }
        assert by_component == pytest.approx(
            {name: c.energy_kwh * JOULES_PER_KWH for name, c in report.components.items()}, rel=1e-9
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
