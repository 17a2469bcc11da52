"""`carbonkit intensity` and `carbonkit schedule` end to end with the ENTSO-E and EIA plugins,
installed, through the core's HTTP client, against local stand-ins of both services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from standin_eia import KEY, EiaStandIn
from standin_entsoe import TOKEN, EntsoeStandIn

pytestmark = pytest.mark.entrypoints

# Hand computations (see tests/plugins/test_intensity_entsoe.py and test_intensity_eia.py):
DE_LIVE = 11_920_000 / 43_000  # gas, lignite, hard coal, wind, solar x IPCC AR5 medians
CISO = 2_469_000 / 16_200  # NG, NUC, WAT, SUN, WND, OTH x IPCC AR5 medians


@pytest.fixture
def services():
    with EntsoeStandIn() as entsoe, EiaStandIn() as eia:
        yield entsoe, eia


def env_for(entsoe: EntsoeStandIn, eia: EiaStandIn, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env.update(CARBONKIT_ENTSOE_TOKEN=TOKEN, CARBONKIT_ENTSOE_API_URL=entsoe.url,
               CARBONKIT_EIA_API_KEY=KEY, CARBONKIT_EIA_API_URL=eia.url)
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carbonkit", *args], env=env, capture_output=True, text=True, timeout=60)


def last_json(proc: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(proc.stdout.splitlines()[-1])


def test_intensity_de_json_is_the_hand_computed_entsoe_value(services):
    proc = cli("intensity", "DE", "--forecast", "3", "--json", env=env_for(*services))
    assert proc.returncode == 0, proc.stderr
    data = last_json(proc)
    cur = data["current"]
    assert data["fallback"] is False and cur["provider"] == "intensity_entsoe:transparency"
    assert cur["g_per_kwh"] == pytest.approx(DE_LIVE) and cur["kind"] == "live"
    assert cur["factors"] == "IPCC 2014 AR5 lifecycle medians" and cur["signal"] == "average"
    assert len(data["forecast"]) >= 12 and all(f["kind"] == "forecast" for f in data["forecast"])
    assert all(f["provider"] == "intensity_entsoe:transparency" for f in data["forecast"])


def test_schedule_de_plans_on_the_entsoe_forecast(services):
    entsoe, eia = services
    proc = cli("schedule", "--location", "DE", "--duration", "1h", "--window", "6h", "--json", env=env_for(entsoe, eia))
    assert proc.returncode == 0, proc.stderr
    plan = last_json(proc)
    assert plan["provider"] == "intensity_entsoe:transparency" and plan["zone"] == "DE"
    assert plan["g_per_kwh"] <= plan["now_g_per_kwh"]
    start = datetime.fromisoformat(plan["start"].replace("Z", "+00:00"))
    now = datetime.fromisoformat(plan["now"].replace("Z", "+00:00"))
    assert now <= start <= now + timedelta(hours=6)


def test_intensity_us_cal_ciso_json_is_the_hand_computed_eia_value(services):
    proc = cli("intensity", "US-CAL-CISO", "--json", env=env_for(*services))
    assert proc.returncode == 0, proc.stderr
    cur = last_json(proc)["current"]
    assert cur["provider"] == "intensity_eia:rto" and cur["g_per_kwh"] == pytest.approx(CISO)
    assert cur["period_s"] == 3600 and "one to two hours" in cur["source"]


def test_schedule_on_an_eia_zone_says_there_is_no_forecast(services):
    """EIA publishes no generation forecast: `schedule` exits 3 and says which provider had none."""
    proc = cli("schedule", "--location", "US-CAL-CISO", "--duration", "1h", "--window", "6h", env=env_for(*services))
    assert proc.returncode == 3, proc.stderr
    assert "intensity_eia:rto: no forecast" in proc.stderr


def test_a_refused_token_falls_back_and_never_prints_the_token(services):
    entsoe, eia = services
    bad = "0badc0de-1111-2222-3333-444455556666"
    proc = cli("intensity", "DE", "--json", env=env_for(entsoe, eia, CARBONKIT_ENTSOE_TOKEN=bad))
    assert proc.returncode == 0, proc.stderr
    data = last_json(proc)
    assert data["fallback"] is True and data["current"]["provider"] == "intensity_static:table"
    assert any("401" in w and "CARBONKIT_ENTSOE_TOKEN" in w for w in data["warnings"])
    assert bad not in proc.stdout + proc.stderr


def test_plugins_without_keys_say_how_to_get_them():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    proc = cli("plugins", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no CARBONKIT_ENTSOE_TOKEN set" in proc.stdout and "transparency@entsoe.eu" in proc.stdout
    assert "no CARBONKIT_EIA_API_KEY set" in proc.stdout and "https://www.eia.gov/opendata/register.php" in proc.stdout
