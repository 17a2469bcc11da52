"""Real discovery: the workspace's plugins, and an out-of-tree plugin built and installed as a wheel."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from carbonkit.testing import assert_plugin_valid

pytestmark = pytest.mark.entrypoints

WORKSPACE_PLUGINS = {
    "amd_energy",
    "amdsmi",
    "cpu_estimate",
    "intel_gpu",
    "intensity_dk",
    "intensity_eia",
    "intensity_electricitymaps",
    "intensity_entsoe",
    "intensity_gb",
    "intensity_static",
    "intensity_watttime",
    "jetson",
    "location",
    "mlflow",
    "nvml",
    "opentelemetry",
    "powermetrics",
    "prometheus",
    "rapl",
    "wandb",
}


def test_workspace_plugins_are_discovered_and_valid():
    """Every workspace plugin is installed under the group carbonkit and passes the contract."""
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="carbonkit")}
    assert WORKSPACE_PLUGINS <= set(eps)
    for name in sorted(WORKSPACE_PLUGINS):
        assert_plugin_valid(eps[name].load())


PLUGIN_SOURCE = '''
"""An out-of-tree plugin used by carbonkit's tests: one simulated board at 42 W."""
from carbonkit import hookimpl
from carbonkit.sources import SimulatedSource


@hookimpl
def register_power_sources(config):
    return [SimulatedSource(watts=[42.0], component="board", name="extboard:board")]
'''

PYPROJECT = '''
[project]
name = "carbonkit-extboard"
version = "1.2.3"
requires-python = ">=3.10"
dependencies = []

[project.entry-points.carbonkit]
extboard = "carbonkit_extboard"

[build-system]
requires = ["uv_build>=0.9,<0.14"]
build-backend = "uv_build"
'''


def _uv() -> list[str]:
    exe = shutil.which("uv")
    return [exe] if exe else [sys.executable, "-m", "uv"]


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """Build the plugin as a wheel with a real build backend and install it into a target dir."""
    root = tmp_path_factory.mktemp("extboard")
    (root / "src" / "carbonkit_extboard").mkdir(parents=True)
    (root / "src" / "carbonkit_extboard" / "__init__.py").write_text(PLUGIN_SOURCE)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "README.md").write_text("test plugin\n")
    dist = root / "dist"
    subprocess.run([*_uv(), "build", "--wheel", "--out-dir", str(dist), str(root)], check=True, capture_output=True)
    (wheel,) = dist.glob("*.whl")
    target = root / "site"
    subprocess.run(
        [*_uv(), "pip", "install", "--no-deps", "--target", str(target), "--python", sys.executable, str(wheel)],
        check=True, capture_output=True,
    )
    env = dict(os.environ, PYTHONPATH=str(target), CARBONKIT_LOCATION="SE-SE3", CARBONKIT_INTERVAL="0.05")
    env.pop("CARBONKIT_PLUGINS", None)
    return env


def test_wheel_plugin_is_used_by_tracker(installed_plugin):
    """Tracker() discovers the installed wheel's entry point and measures with its source."""
    code = textwrap.dedent(
        """
        import json, time, carbonkit
        t = carbonkit.Tracker(quiet=True, pue=1.0, location="SE-SE3")
        time.sleep(0.2)
        r = t.stop()
        print(json.dumps({"sources": r.components["board"].sources, "kwh": r.components["board"].it_energy_kwh, "d": r.duration_s}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], env=installed_plugin, capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.splitlines()[-1])
    assert data["sources"] == ["extboard:board"]
    assert data["kwh"] * 3.6e6 == pytest.approx(42.0 * data["d"], rel=1e-6)


def test_wheel_plugin_is_used_by_carbonkit_run_and_listed(installed_plugin):
    """`carbonkit run` measures with the wheel's source; `carbonkit plugins` names its dist."""
    cli = [sys.executable, "-m", "carbonkit"]
    run = subprocess.run(
        [*cli, "run", "--json", "--", sys.executable, "-c", "import time; time.sleep(0.2)"],
        env=installed_plugin, capture_output=True, text=True, check=True,
    )
    report = json.loads(run.stdout.splitlines()[-1])
    assert report["components"]["board"]["sources"] == ["extboard:board"]
    assert report["components"]["board"]["method"] == "simulated"
    listing = subprocess.run([*cli, "plugins", "--json"], env=installed_plugin, capture_output=True, text=True, check=True)
    plugins = {p["name"]: p for p in json.loads(listing.stdout.splitlines()[-1])["plugins"]}
    assert plugins["extboard"]["distribution"] == "carbonkit-extboard"
    assert plugins["extboard"]["version"] == "1.2.3"
