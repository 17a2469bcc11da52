"""The project keeps its promises: hooks documented and tested, versions in step, public surface."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest

import carbonkit
import carbonkit.hookspecs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(
    name for name, obj in vars(carbonkit.hookspecs).items()
    if callable(obj) and hasattr(obj, "carbonkit_spec")
)
MEMBERS = [ROOT / "core", *sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists() and not p.name.startswith("_"))]


def signature(name: str) -> str:
    return name + str(inspect.signature(getattr(carbonkit.hookspecs, name))).replace("'", "")


def test_there_are_six_hooks():
    """The hook set is the documented one."""
    assert HOOKS == [
        "register_equivalents", "register_intensity_providers", "register_power_sources", "register_predictors",
        "register_reporters", "resolve_location",
    ]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_under_its_exact_signature(hook):
    """docs/hooks.md has a heading with the spec's exact signature."""
    text = (ROOT / "docs" / "hooks.md").read_text()
    assert f"### `{signature(hook)}`" in text


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    """Some test module defines test_hook_<name>."""
    pattern = re.compile(rf"^def test_hook_{hook}\b", re.M)
    assert any(pattern.search(p.read_text()) for p in (ROOT / "tests").rglob("test_*.py"))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_spec_has_a_full_docstring(hook):
    """Each spec documents its parameters and return value (pytest's hookspec standard)."""
    doc = inspect.getdoc(getattr(carbonkit.hookspecs, hook))
    params = inspect.signature(getattr(carbonkit.hookspecs, hook)).parameters
    assert all(f":param {p}:" in doc for p in params) and ":returns:" in doc


def test_member_versions_are_in_step():
    """Core and every plugin share one version; plugins pin exactly that core version."""
    version = carbonkit.__version__
    for member in MEMBERS:
        project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
        assert project["version"] == version, member.name
        if member.name != "core":
            assert f"carbonkit=={version}" in project["dependencies"], member.name


def test_every_plugin_has_one_entry_point_named_after_its_folder_and_a_readme():
    """plugins/<name> declares exactly `<name> = "carbonkit_<name>"` in the group carbonkit."""
    for member in MEMBERS[1:]:
        project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
        assert project["name"] == "carbonkit-" + member.name.replace("_", "-")
        assert project["entry-points"]["carbonkit"] == {member.name: f"carbonkit_{member.name}"}
        assert (member / "src" / f"carbonkit_{member.name}" / "__init__.py").exists()
        assert (member / "src" / f"carbonkit_{member.name}" / "py.typed").exists()
        assert len((member / "README.md").read_text().splitlines()) > 10, f"{member.name} README is a stub"


def test_workspace_root_lists_every_member():
    """The root pyproject depends on every member, so one `uv sync` installs them all."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = {tomllib.loads((m / "pyproject.toml").read_text())["project"]["name"] for m in MEMBERS}
    assert set(root["project"]["dependencies"]) == names


def test_public_surface_is_sorted_and_importable():
    """carbonkit.__all__ is sorted, and every name in it resolves."""
    assert carbonkit.__all__ == sorted(carbonkit.__all__)
    for name in carbonkit.__all__:
        assert getattr(carbonkit, name) is not None


def test_import_is_light():
    """`import carbonkit` pulls in neither numpy nor httpx (they load when first needed)."""
    import subprocess

    code = "import sys, carbonkit; print(sorted(m for m in ('numpy', 'httpx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_machine_paths_in_docs():
    """The docs and README speak of the project alone: no path of the machine they were written on."""
    import tempfile

    # The checkout's own folder, and the folder it sits in unless that is a system folder whose
    # name the docs may rightly use (a clone in /tmp: the docs name /tmp as a default).
    here = [str(ROOT) + "/"]
    if str(ROOT.parent) not in ("/", "/tmp", "/var/tmp", tempfile.gettempdir()):
        here.append(str(ROOT.parent) + "/")
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "plugins").glob("*/README.md")]:
        text = path.read_text()
        for prefix in here:
            assert prefix not in text, (path, prefix)
