"""Importing carbonkit never imports a framework; a callback without its framework says what to
install. These run in every environment (with or without the frameworks)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from carbonkit.integrations._training_run import local_rank_from_env, planned_epochs

FRAMEWORKS = ("torch", "lightning", "pytorch_lightning", "transformers", "keras", "tensorflow", "jax")


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_carbonkit_and_its_integrations_package_imports_no_framework():
    code = (
        "import sys, carbonkit, carbonkit.integrations, carbonkit.integrations._training_run\n"
        "carbonkit.Tracker; carbonkit.Report\n"
        f"loaded = sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)\n"
        "print(loaded)\n"
    )
    out = run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "blocked", "install"),
    [
        ("lightning", ("lightning", "pytorch_lightning"), "pip install lightning"),
        ("pytorch_lightning", ("pytorch_lightning",), "pip install pytorch-lightning"),
        ("huggingface", ("transformers",), "pip install transformers"),
        ("keras", ("keras",), "pip install keras"),
    ],
)
def test_a_callback_without_its_framework_says_what_to_install(module, blocked, install):
    # A None entry in sys.modules makes an import fail as if the package were not installed.
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "try:\n"
        f"    import carbonkit.integrations.{module}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    out = run(code)
    assert out.returncode == 0, out.stderr
    assert f"carbonkit.integrations.{module} needs" in out.stdout
    assert install in out.stdout


def test_local_rank_comes_from_the_launchers_variables():
    assert local_rank_from_env({}) == 0
    assert local_rank_from_env({"LOCAL_RANK": "3"}) == 3
    assert local_rank_from_env({"SLURM_LOCALID": "1"}) == 1
    assert local_rank_from_env({"LOCAL_RANK": "0", "SLURM_LOCALID": "2"}) == 0  # torchrun's first
    assert local_rank_from_env({"OMPI_COMM_WORLD_LOCAL_RANK": " 2 "}) == 2
    assert local_rank_from_env({"LOCAL_RANK": "x"}) == 0


def test_planned_epochs_take_only_what_a_tracker_accepts():
    assert planned_epochs(3) == 3
    assert planned_epochs(3.0) == 3
    assert planned_epochs(0) is None  # nothing left to train
    assert planned_epochs(-1) is None  # unlimited
    assert planned_epochs(sys.maxsize) is None  # "as many as the steps need"
    assert planned_epochs(None) is None
    assert planned_epochs(True) is None
    assert planned_epochs(float("nan")) is None
