"""The carbonkit command: run (exit codes, --json) and plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SIM = """
from carbonkit import hookimpl
from carbonkit.sources import SimulatedSource

@hookimpl
def register_power_sources():
    return [SimulatedSource(watts=[40.0], component="cpu", name="clitest:cpu")]
"""


@pytest.fixture
def sim_env(tmp_path):
    """Environment for a carbonkit subprocess with one simulated source as a plugin."""
    (tmp_path / "clitest_plugin.py").write_text(SIM)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(tmp_path),
        CARBONKIT_PLUGINS="",  # no installed plugins: only the one given in-process below
        CARBONKIT_LOCATION="XX",
        CARBONKIT_INTERVAL="0.05",
    )
    return env


def carbonkit_cli(*args, env, **kwargs):
    code = (
        "import sys, clitest_plugin, carbonkit.plugins as p\n"
        "orig = p.make_plugin_manager\n"
        "p.make_plugin_manager = lambda **k: orig(plugins=[clitest_plugin], **{x: v for x, v in k.items() if x != 'plugins'})\n"
        "from carbonkit.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60, **kwargs)


def test_run_exits_with_the_command_exit_code(sim_env):
    """carbonkit run -- CMD exits with CMD's own exit code and leaves its output alone."""
    proc = carbonkit_cli("run", "--", sys.executable, "-c", "print('hello'); raise SystemExit(7)", env=sim_env)
    assert proc.returncode == 7
    assert proc.stdout == "hello\n"
    assert "Actual consumption" in proc.stderr and "simulated" in proc.stderr


def test_run_json_is_the_last_line_of_stdout(sim_env):
    """With --json the last stdout line is the report as one JSON object."""
    proc = carbonkit_cli(
        "run", "--json", "--pue", "1.0", "--tag", "team=ml", "--", sys.executable, "-c",
        "import time; print('out'); time.sleep(0.3)", env=sim_env,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "out"
    data = json.loads(lines[-1])
    assert data["exit_code"] == 0 and data["tags"] == {"team": "ml"}
    assert data["components"]["cpu"]["method"] == "simulated"
    assert data["energy_kwh"] == data["it_energy_kwh"]
    assert data["it_energy_kwh"] * 3.6e6 == pytest.approx(40.0 * data["duration_s"], rel=1e-6)


def test_run_reports_a_missing_command(sim_env):
    """A command that cannot be found exits 127 with a clear message."""
    proc = carbonkit_cli("run", "--", "no-such-command-xyz", env=sim_env)
    assert proc.returncode == 127 and "cannot run 'no-such-command-xyz'" in proc.stderr


def test_run_rejects_bad_input_before_running(sim_env):
    """An invalid --pue is an error (exit 2) and the command never runs."""
    proc = carbonkit_cli("run", "--pue", "0.5", "--", sys.executable, "-c", "print('ran')", env=sim_env)
    assert proc.returncode == 2 and "pue must be" in proc.stderr and "ran" not in proc.stdout


def test_run_signal_exit_code(sim_env):
    """A command killed by a signal exits 128 + the signal number, as a shell reports it."""
    proc = carbonkit_cli("run", "--", sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)", env=sim_env)
    assert proc.returncode == 128 + 15


def test_plugins_json_lists_offers(sim_env):
    """carbonkit plugins --json lists each plugin with what it offers."""
    proc = carbonkit_cli("plugins", "--json", env=sim_env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.splitlines()[-1])
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["clitest_plugin"]["power_sources"][0]["method"] == "simulated"
    assert by_name["carbonkit.default_plugins.constant_intensity"]["intensity_providers"][0]["zones"] == ["*"]
