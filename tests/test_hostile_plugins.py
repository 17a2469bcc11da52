"""Hostile plugins installed as real distributions: none can hang, crash or exit the tracked process.

Each plugin is installed the way an installer leaves it: a module and a ``<name>.dist-info``
folder with ``METADATA`` and ``entry_points.txt`` (group ``carbonkit``) in a site directory on
``PYTHONPATH``, found by ``importlib.metadata`` like any other. The tracked program runs in its own
process, so a plugin that blocks forever cannot affect the test run itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.entrypoints]

HOSTILE = {
    # name: module source
    "import_hangs": "import time\ntime.sleep(3600)\n",
    "import_exits": "import sys\nsys.exit(7)\n",
    "import_fails": "import no_such_module_anywhere\n",
    "hook_hangs": textwrap.dedent(
        """
        import time
        from carbonkit import hookimpl

        @hookimpl
        def register_power_sources(config):
            time.sleep(3600)
        """
    ),
    "hook_exits": textwrap.dedent(
        """
        import sys
        from carbonkit import hookimpl

        @hookimpl
        def register_reporters(config):
            sys.exit(9)
        """
    ),
    "misspelled": textwrap.dedent(
        """
        from carbonkit import hookimpl

        @hookimpl
        def register_power_source(config):
            return []
        """
    ),
    "nan_source": textwrap.dedent(
        """
        from carbonkit import hookimpl

        class NanBoard:
            name = "nan_source:gpu"
            component = "gpu"
            method = "measured"
            kind = "power"

            def devices(self):
                return ["gpu0"]

            def read(self):
                return [float("nan")]

            def close(self):
                pass

        @hookimpl
        def register_power_sources(config):
            return [NanBoard()]
        """
    ),
    "good": textwrap.dedent(
        """
        from carbonkit import hookimpl
        from carbonkit.sources import SimulatedSource

        @hookimpl
        def register_power_sources(config):
            return [SimulatedSource(watts=[42.0], component="board", name="good:board")]
        """
    ),
}


def install(site: Path, name: str, source: str) -> None:
    """Lay out ``carbonkit-<name>`` as an installed distribution in ``site``."""
    (site / f"ck_{name}.py").write_text(source)
    info = site / f"carbonkit_{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: carbonkit-{name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[carbonkit]\n{name} = ck_{name}\n")


PROGRAM = textwrap.dedent(
    """
    import json, time, carbonkit
    a = time.monotonic()
    t = carbonkit.Tracker(location="SE-SE3", interval_s=0.05, quiet=True)
    built = time.monotonic() - a
    time.sleep(0.3)
    r = t.stop()
    print(json.dumps({"built_s": built, "report": r.to_dict()}, allow_nan=False))
    """
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    for name, source in HOSTILE.items():
        install(site, name, source)
    return site


def test_every_hostile_plugin_is_dropped_and_named_and_the_run_goes_on(site):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env["PYTHONPATH"] = str(site)
    a = time.monotonic()
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - a
    assert out.returncode == 0, out.stderr  # no plugin exited the process
    data = json.loads(out.stdout.splitlines()[-1])
    report = data["report"]
    # Imports and hooks each have a deadline of a few seconds: two blockers cost two deadlines.
    assert data["built_s"] < 30 and took < 90
    warnings = "\n".join(report["warnings"])
    assert "'import_hangs' was dropped: blocked for more than" in warnings
    assert "'import_exits' was dropped: called sys.exit(7) while being imported" in warnings
    assert "'import_fails' was dropped: raised ModuleNotFoundError" in warnings
    assert "'hook_hangs' was dropped: blocked for more than" in warnings and "register_power_sources" in warnings
    assert "'hook_exits' was dropped: called sys.exit(9) in register_reporters" in warnings
    assert "'misspelled' was dropped" in warnings and "did you mean 'register_power_sources'" in warnings
    assert "nan_source:gpu: a reading was rejected: read() returned nan" in warnings
    assert report["components"]["gpu"]["it_energy_kwh"] == 0.0  # every reading was rejected
    board = report["components"]["board"]
    assert board["sources"] == ["good:board"]
    assert board["it_energy_kwh"] * 3.6e6 == pytest.approx(42.0 * report["duration_s"], rel=1e-6)


def test_carbonkit_run_with_hostile_plugins_runs_the_command(site):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env.update(PYTHONPATH=str(site), CARBONKIT_LOCATION="SE-SE3", CARBONKIT_QUIET="1")
    out = subprocess.run(
        [sys.executable, "-m", "carbonkit", "run", "--json", "--", sys.executable, "-c", "print('the command ran')"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "the command ran" in out.stdout
    assert json.loads(out.stdout.splitlines()[-1])["exit_code"] == 0
