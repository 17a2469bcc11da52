"""carbonkit.reports builds on public modules only; carbonkit.accounting is the public name of the
accounting the reports redo (the HTML page's cumulative energy and CO2eq)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import carbonkit
import carbonkit.accounting as accounting
import carbonkit.reports
from carbonkit import _accounting
from carbonkit.reports.aggregate import read_run
from carbonkit.reports.series import run_series

REPORTS = Path(carbonkit.reports.__file__).parent
RANK0 = Path(__file__).parent / "fixtures" / "project" / "train-vision-rank0.jsonl"
#: Private core modules the reports may use: the shared text helpers, which own no concept of
#: their own (the sanitiser for terminals and the redaction of secrets).
SHARED_HELPERS = {"_text", "_redact"}


def core_imports(path: Path) -> set[str]:
    """The modules of the core (``carbonkit.X``) that ``path`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 2 and node.module:  # from ..X import
                found.add(node.module.split(".")[0])
            elif node.level == 2:  # from .. import X
                found.update(a.name for a in node.names)
            elif node.level == 0 and node.module and node.module.startswith("carbonkit."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("carbonkit."))
    return found


@pytest.mark.parametrize("module", sorted(p.name for p in REPORTS.glob("*.py")))
def test_reports_import_no_private_core_module(module):
    """No module of carbonkit.reports reaches into a private module of the core (``_accounting``,
    ``_engine``, ``_http``...)."""
    private = {m for m in core_imports(REPORTS / module) if m[:1] == "_" and m[:2] != "__" and m not in SHARED_HELPERS}
    assert private == set(), f"carbonkit/reports/{module} imports {sorted(private)}"


def test_accounting_names_the_engine_objects():
    """The public names are the engine's own objects, not copies."""
    assert accounting.Accountant is _accounting.Accountant
    assert accounting.IntensityTimeline is _accounting.IntensityTimeline
    assert accounting.carbon is _accounting.carbon
    assert accounting.J_PER_KWH == 3.6e6
    assert sorted(accounting.__all__) == sorted(set(accounting.__all__))
    for name in accounting.__all__:
        assert getattr(accounting, name) is getattr(_accounting, name)


def test_the_html_series_redone_with_the_public_seam_ends_at_the_report():
    """The cumulative CO2eq the page plots, redone through carbonkit.accounting, ends at the report's."""
    run = read_run(RANK0)
    series = run_series(run)
    assert series.co2eq_g[-1][1] == pytest.approx(run.report.co2eq_g, rel=1e-9)
    assert series.energy_kwh[-1][1] == pytest.approx(run.report.energy_kwh, rel=1e-9)
