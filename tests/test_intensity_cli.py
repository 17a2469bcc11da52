"""`carbonkit intensity` end to end: installed plugins, the core's HTTP client, local stand-ins of the APIs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import pytest
from standins import StandIn, dk_value, gb_value

pytestmark = pytest.mark.entrypoints


@pytest.fixture
def standin():
    with StandIn() as s:
        yield s


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carbonkit", *args], env=env, capture_output=True, text=True, timeout=60)


def env_for(standin: StandIn, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env.update(CARBONKIT_DK_API_URL=f"{standin.url}/dk", CARBONKIT_GB_API_URL=f"{standin.url}/gb", **extra)
    return env


def test_dk1_current_and_six_hour_forecast(standin):
    """DK-DK1 --forecast 6 --json: the live 5-minute value and a forecast covering six hours."""
    proc = cli("intensity", "DK-DK1", "--forecast", "6", "--json", env=env_for(standin))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.splitlines()[-1])
    cur = data["current"]
    assert data["zone"] == "DK-DK1" and data["fallback"] is False
    assert cur["kind"] == "live" and cur["provider"].startswith("intensity_dk")
    when = datetime.fromisoformat(cur["time"].replace("Z", "+00:00"))
    assert cur["g_per_kwh"] == pytest.approx(dk_value("DK1", when))
    times = [datetime.fromisoformat(f["time"].replace("Z", "+00:00")) for f in data["forecast"]]
    assert all(f["kind"] == "forecast" for f in data["forecast"])
    assert times == sorted(times) and times[-1] - times[0] >= timedelta(hours=5, minutes=50)
    assert all(f["g_per_kwh"] == pytest.approx(dk_value("DK1", t)) for f, t in zip(data["forecast"], times))
    assert any("timezone=UTC" in r for r in standin.requests)


def test_gb_national_current(standin):
    """GB --json: the latest half hour, its actual value, from the national endpoint."""
    proc = cli("intensity", "GB", "--json", env=env_for(standin))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.splitlines()[-1])
    cur = data["current"]
    when = datetime.fromisoformat(cur["time"].replace("Z", "+00:00"))
    assert cur["kind"] == "live" and cur["g_per_kwh"] == gb_value(when) - 3  # the stand-in's actual
    assert data["fallback"] is False and data["forecast"] == []
    assert "/gb/intensity" in standin.requests


def test_gb_regional_forecast_by_postcode(standin):
    """With a postcode, GB uses the regional endpoints (forecast values only) and says so."""
    proc = cli("intensity", "GB", "--forecast", "3", "--json", env=env_for(standin, CARBONKIT_POSTCODE="RG10 6XX"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.splitlines()[-1])
    assert data["current"]["provider"] == "intensity_gb:regional"
    assert len(data["forecast"]) >= 6
    assert any(r.startswith("/gb/regional/postcode/RG10") for r in standin.requests)


def test_api_down_falls_back_to_the_static_average_and_exits_zero():
    """With the live API unreachable, the static yearly average answers, flagged as a fallback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env["CARBONKIT_DK_API_URL"] = "http://127.0.0.1:9/dk"  # nothing listens on the discard port
    proc = cli("intensity", "DK-DK2", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.splitlines()[-1])
    assert data["fallback"] is True
    assert data["current"]["kind"] == "average" and data["current"]["year"] == 2024
    assert any("intensity_dk" in w for w in data["warnings"])


def test_unknown_zone_is_the_only_error():
    """A zone no provider knows exits non-zero with a message naming it."""
    proc = cli("intensity", "XQ", "--json", env={k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")})
    assert proc.returncode == 2 and "'XQ' is not known" in proc.stderr


def test_timeout_bounds_the_command_against_a_slow_server():
    """--timeout 5 against a server sending one byte every 2 s (hours for the whole body): the
    command answers from the static table once the 5 s have passed, says why, exits 0.

    --timeout bounds the whole command, plugin loading included; 5 s leaves a loaded machine
    time to load the plugins and send the request, and the bound asserted (60 s) is far from the
    hours the body would take, so neither depends on how busy the machine is."""
    with StandIn(slow_byte_s=2.0) as slow:
        started = time.monotonic()
        proc = cli("intensity", "DK-DK1", "--timeout", "5", "--json", env=env_for(slow))
        elapsed = time.monotonic() - started
        assert slow.slow_done.wait(30), "the stand-in did not see the command hang up"
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 60, f"took {elapsed:.1f} s"
    data = json.loads(proc.stdout.splitlines()[-1])
    assert data["fallback"] is True and data["current"]["kind"] == "average"
    (failed,) = [w for w in data["warnings"] if w.startswith("intensity_dk:energidataservice failed")]
    assert "Energi Data Service CO2Emis: no complete answer within" in failed
    assert "(the time left of --timeout 5)" in failed
    assert any(r.startswith("/dk/dataset/CO2Emis?") for r in slow.requests)


@pytest.mark.parametrize("bad", ["0", "-3", "soon", "nan", "inf"])
def test_timeout_must_be_a_number_of_seconds(bad):
    """--timeout refuses anything but a number > 0, naming the value, exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    proc = cli("intensity", "DK-DK1", "--timeout", bad, env=env)
    assert proc.returncode == 2
    assert f"argument --timeout: expected a number of seconds > 0 (such as 30 or 2.5), got {bad!r}" in proc.stderr


def test_a_provider_ignoring_the_deadline_cannot_hold_the_command(monkeypatch, capsys):
    """If a provider does its own I/O and ignores --timeout, the command still returns
    (after the grace period), exits 1 and names what was running."""
    from carbonkit import _cli_intensity

    release = threading.Event()
    entered = threading.Event()

    def stuck_query(zone, hours, http_client=None, pm=None, timeout_s=None, step=None):
        step("thirdparty:api.current(XX)")
        entered.set()
        release.wait(60)
        return {}

    monkeypatch.setattr(_cli_intensity, "query", stuck_query)
    monkeypatch.setattr(_cli_intensity, "GRACE_S", 1.0)
    args = argparse.Namespace(zone="XX", forecast=None, timeout=0.5, json=True)
    try:
        rc = _cli_intensity.run(args)
        assert entered.wait(10)
    finally:
        release.set()
    assert rc == 1
    err = capsys.readouterr().err
    assert "no answer within --timeout 0.5 s (and 1 s of grace)" in err
    assert "still running thirdparty:api.current(XX), which does not keep to the deadline" in err
