"""On a machine without counters, `carbonkit run` reports an estimated CPU figure that scales with the TDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.entrypoints


def run_json(**env_extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env.update(
        CARBONKIT_DISABLE_PLUGINS="rapl,nvml",  # whatever the machine has: the estimate alone
        CARBONKIT_LOCATION="FR",
        CARBONKIT_INTERVAL="0.05",
        **env_extra,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "carbonkit", "run", "--json", "--", sys.executable, "-c", "import time; time.sleep(0.4)"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[estimated]" in proc.stderr and "cpu estimated" in proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def mean_cpu_watts(report: dict) -> float:
    return report["components"]["cpu"]["it_energy_kwh"] * 3.6e6 / report["duration_s"]


def test_estimate_is_marked_and_scales_with_the_tdp():
    """With the idle share at 100 %, power is the TDP itself: 40 W and 80 W give exactly 1:2."""
    low = run_json(CARBONKIT_CPU_TDP_W="40", CARBONKIT_CPU_ESTIMATE_IDLE_FRACTION="1")
    high = run_json(CARBONKIT_CPU_TDP_W="80", CARBONKIT_CPU_ESTIMATE_IDLE_FRACTION="1")
    for report, tdp in ((low, 40.0), (high, 80.0)):
        cpu = report["components"]["cpu"]
        assert cpu["method"] == "estimated" and cpu["sources"] == ["cpu_estimate:cpu"]
        assert any("CARBONKIT_CPU_TDP_W" in d for d in cpu["details"])
        assert mean_cpu_watts(report) == pytest.approx(tdp, rel=1e-6)


def test_estimate_follows_utilisation_between_idle_and_tdp():
    """With the default model, mean power lies between the idle floor (25 % of TDP) and the TDP."""
    report = run_json(CARBONKIT_CPU_TDP_W="100")
    assert 25.0 - 1e-6 <= mean_cpu_watts(report) <= 100.0 + 1e-6


def test_statement_of_an_estimated_run_calls_it_estimated(tmp_path):
    """The log of a run the CPU estimate measured gives a statement that never calls it measured."""
    run_json(CARBONKIT_CPU_TDP_W="40", CARBONKIT_LOG_DIR=str(tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    proc = subprocess.run(
        [sys.executable, "-m", "carbonkit", "statement", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert ", estimated by carbonkit over 1 run" in text
    assert "None of these figures is a measurement: the CPU energy was estimated" in text
    assert "Estimated with carbonkit " in text
    assert "measured by" not in text and "Measured with" not in text
