"""The peers, each installed from the package index into its own virtual environment.

Each peer script prints one JSON object on its last line. Network access is not used by any
figure: carbontracker's IP geolocation (``geocoder.ip``) is replaced by one that fails at once,
as it would offline, and codecarbon runs as ``OfflineEmissionsTracker`` with a fixed country.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = {"carbontracker": "carbontracker==2.4.7", "codecarbon": "codecarbon==3.3.2"}
VENVS = HERE / ".peers"

_OFFLINE_CT = """
import geocoder
def _offline(*a, **k):
    raise OSError("offline benchmark: no geolocation")
geocoder.ip = _offline
"""

SCRIPTS = {
    ("carbontracker", "hot_path"): _OFFLINE_CT + """
import io, contextlib, json, sys, time
from carbontracker.tracker import CarbonTracker
n = int(sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()):
    t = CarbonTracker(epochs=n + 1, epochs_before_pred=0, monitor_epochs=n + 1, verbose=0, log_dir=None)
    time.sleep(1.5)
    samples = []
    for _ in range(n):
        a = time.perf_counter(); t.epoch_start(); t.epoch_end(); samples.append(time.perf_counter() - a)
    t.stop()
samples.sort()
print(json.dumps({"us_per_pair": samples[len(samples) // 2] * 1e6}))
""",
    ("codecarbon", "hot_path"): """
import json, logging, sys, time
from codecarbon import OfflineEmissionsTracker
n = int(sys.argv[1])
t = OfflineEmissionsTracker(country_iso_code="DNK", measure_power_secs=1, save_to_file=False, log_level="error")
t.start()
time.sleep(1.5)
samples = []
for i in range(n):
    a = time.perf_counter(); t.start_task(f"e{i}"); t.stop_task(); samples.append(time.perf_counter() - a)
t.stop()
samples.sort()
print(json.dumps({"us_per_pair": samples[len(samples) // 2] * 1e6}))
""",
    ("carbontracker", "fixed"): _OFFLINE_CT + """
import io, contextlib, json, sys, time
from carbontracker.tracker import CarbonTracker
with contextlib.redirect_stdout(io.StringIO()):
    t = CarbonTracker(epochs=1, epochs_before_pred=0, monitor_epochs=1, verbose=0, log_dir=None)
    first = time.time()
    t.epoch_start(); t.epoch_end(); t.stop()
print(json.dumps({"first_sample_unix": first}))
""",
    ("codecarbon", "fixed"): """
import json, time
from codecarbon import OfflineEmissionsTracker
t = OfflineEmissionsTracker(country_iso_code="DNK", measure_power_secs=1, save_to_file=False, log_level="error")
t.start()
first = time.time()
t.stop()
print(json.dumps({"first_sample_unix": first}))
""",
    ("carbontracker", "around"): _OFFLINE_CT + """
import io, contextlib, json, time
clock = time.perf_counter
with contextlib.redirect_stdout(io.StringIO()):
    from carbontracker.tracker import CarbonTracker
    a = clock()
    t = CarbonTracker(epochs=1, epochs_before_pred=0, monitor_epochs=1, verbose=0, log_dir=None)
    t.epoch_start()
    b = clock()
    time.sleep(0.5)
    c = clock()
    t.epoch_end(); t.stop()
    d = clock()
print(json.dumps({"beyond_run_s": (b - a) + (d - c)}))
""",
    ("codecarbon", "around"): """
import json, time
from codecarbon import OfflineEmissionsTracker
clock = time.perf_counter
a = clock()
t = OfflineEmissionsTracker(country_iso_code="DNK", measure_power_secs=1, save_to_file=False, log_level="error")
t.start()
b = clock()
time.sleep(0.5)
c = clock()
t.stop()
d = clock()
print(json.dumps({"beyond_run_s": (b - a) + (d - c)}))
""",
    ("carbontracker", "import"): "import carbontracker.tracker",
    ("codecarbon", "import"): "import codecarbon",
}


def uv_command() -> list[str]:
    """uv as `uv run` exposes it (``$UV``), else on PATH, else the system Python's module."""
    if os.environ.get("UV"):
        return [os.environ["UV"]]
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def python_of(peer: str) -> Path:
    return VENVS / peer / "bin" / "python"


def ensure_installed(log=print) -> dict[str, str]:
    """Create one venv per peer with uv (if missing) and return {peer: version}."""
    uv = uv_command()
    versions = {}
    for peer, spec in PEERS.items():
        py = python_of(peer)
        if not py.exists():
            log(f"installing {spec} into {py.parent.parent.relative_to(HERE.parent)} ...")
            subprocess.run([*uv, "venv", "--quiet", "--python", sys.executable, str(VENVS / peer)], check=True)
            subprocess.run([*uv, "pip", "install", "--quiet", "--python", str(py), spec, "setuptools<81"], check=True)
        versions[peer] = spec.split("==")[1]
    return versions


def run(peer: str, script: str, *args: str, cwd: str | None = None, timeout: float = 120) -> dict:
    """Run a peer script in the peer's venv; return the JSON its last line printed (or {})."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run(
        [str(python_of(peer)), "-c", SCRIPTS[(peer, script)], *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{peer} {script} failed: {out.stderr[-2000:]}")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}
