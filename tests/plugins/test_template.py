"""The plugin template (plugins/_template) works as shipped: a stranger can copy it and start.

It is excluded from the workspace, so it is not installed: these tests import it from its
source directory, check it with ``carbonkit.testing.assert_plugin_valid`` against a fake sysfs
tree, check its packaging against the other plugins', and run the template's own tests.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import carbonkit
from carbonkit import Unavailable
from carbonkit.testing import assert_plugin_valid

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "plugins" / "_template"
SOURCE = TEMPLATE / "src" / "carbonkit_template"


def load_template() -> ModuleType:
    """Import carbonkit_template from plugins/_template/src without installing it."""
    name = "carbonkit_template"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, SOURCE / "__init__.py", submodule_search_locations=[str(SOURCE)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    module = sys.modules[name]
    assert Path(module.__file__ or "").resolve() == (SOURCE / "__init__.py").resolve()
    return module


template = load_template()


def fake_sysfs(base: Path, microjoules: tuple[int, ...] = (7_000_000, 0)) -> list[Path]:
    """<base>/class/template/template<i>/energy_uj, the layout the template's docstring gives."""
    counters = []
    for i, value in enumerate(microjoules):
        counter = base / "class" / "template" / f"template{i}" / "energy_uj"
        counter.parent.mkdir(parents=True)
        counter.write_text(f"{value}\n")
        counters.append(counter)
    return counters


def project() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((TEMPLATE / "pyproject.toml").read_text())


def test_template_is_a_valid_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """assert_plugin_valid accepts it and it offers one measured energy source with a ceiling."""
    fake_sysfs(tmp_path)
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(tmp_path))
    offers = assert_plugin_valid(template)
    (source,) = offers["register_power_sources"]
    assert isinstance(source, carbonkit.PowerSource)
    assert (source.name, source.method, source.kind) == ("template:energy", "measured", "energy")
    assert source.max_power_w == template.MAX_POWER_W > 0
    assert source.max_interval_s > 0
    assert "energy_uj" in source.info["counter"]
    assert offers["register_intensity_providers"] == []


def test_template_reads_the_fake_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through its hook, the template reads joules per device since creation from CARBONKIT_SYSFS_ROOT."""
    counters = fake_sysfs(tmp_path)
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(tmp_path))
    (source,) = template.register_power_sources()
    assert source.devices() == ["template0", "template1"]
    assert source.read() == [0.0, 0.0]
    counters[0].write_text("9500000\n")
    counters[1].write_text("250000\n")
    assert source.read() == [2.5, 0.25]
    source.close()


def test_template_without_the_tree_returns_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No counters under CARBONKIT_SYSFS_ROOT: an Unavailable note naming the directory, no exception."""
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(tmp_path))
    offers = assert_plugin_valid(template)
    (note,) = offers["register_power_sources"]
    assert isinstance(note, Unavailable)
    assert note.plugin == "template"
    assert str(tmp_path / "class" / "template") in note.reason


def test_template_packaging_matches_the_other_plugins() -> None:
    """pyproject: carbonkit-<name>, lockstep version, exact carbonkit pin, one entry point in the
    group carbonkit, the same build backend as plugins/rapl; py.typed ships."""
    meta = project()["project"]
    rapl = tomllib.loads((ROOT / "plugins" / "rapl" / "pyproject.toml").read_text())
    version = carbonkit.__version__
    assert meta["name"] == "carbonkit-template"
    assert meta["version"] == version
    assert f"carbonkit=={version}" in meta["dependencies"]
    assert meta["entry-points"] == {"carbonkit": {"template": "carbonkit_template"}}
    assert project()["build-system"] == rapl["build-system"]
    assert meta["requires-python"] == rapl["project"]["requires-python"]
    assert (SOURCE / "py.typed").exists()


def test_template_stays_out_of_the_workspace() -> None:
    """The root pyproject excludes plugins/_template, and nothing depends on it."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "plugins/_template" in root["tool"]["uv"]["workspace"]["exclude"]
    assert "carbonkit-template" not in root["project"]["dependencies"]
    assert "carbonkit-template" not in root["tool"]["uv"]["sources"]


def test_template_readme_explains_every_attribute_and_the_renames() -> None:
    """The README names each PowerSource attribute, what to rename, and how to test."""
    readme = (TEMPLATE / "README.md").read_text()
    for attribute in (
        "`name`", "`component`", "`method`", "`kind`", "`devices()`", "`read()`", "`close()`",
        "`max_interval_s`", "`max_power_w`", "`info`",
    ):  # fmt: skip
        assert f"| {attribute} |" in readme, attribute
    for needle in (
        "carbonkit_template",
        "carbonkit-template",
        "PLUGIN",
        "assert_plugin_valid",
        "CARBONKIT_SYSFS_ROOT",
        "python -m pytest",
    ):
        assert needle in readme, needle


@pytest.mark.slow
def test_template_own_tests_pass() -> None:
    """The tests a copier runs (plugins/_template/tests) pass, from the template's source."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CARBONKIT_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=TEMPLATE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout
