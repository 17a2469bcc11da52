"""Text from a log cannot drive a terminal, inject HTML or Markdown, run in a spreadsheet, or leak a
secret, in any output of carbonkit report and carbonkit statement."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from reports.logfiles import header, intensity, samples, source, steady_log, write

from carbonkit._text import printable
from carbonkit.cli import main
from carbonkit.reports.tables import csv_cell

ESC_TITLE = "\x1b]0;owned\x07"
HOSTILE_HOST = f"node{ESC_TITLE}-1\r\x1b[2K"
HOSTILE_TAG = "\x1b[2J<script>alert(1)</script>|**bold**"
SECRET = "s3cr3t-value-42"
PASSWORD = "hunter2"
#: Control characters a terminal acts on: C0 but tab and newline, DEL, C1.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    tags = {"project": HOSTILE_TAG, "api_token": SECRET, "rank": "0"}
    records = [
        header(host=HOSTILE_HOST, tags=tags, sources=[source(name="evil\x9b31m:cpu\u202e")]),
        intensity(100.0),
        {"type": "warning", "message": f"provider failed: https://user:{PASSWORD}@grid.example/v1?token={SECRET}"},
        *samples([100.0], 600.0, name="evil\x9b31m:cpu\u202e"),
    ]
    write(tmp_path / "hostile.jsonl", records)
    steady_log(tmp_path / "formula.jsonl", host="=1+2", tags={"project": "@SUM(A1:A9)"}, stopped=True)
    return tmp_path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_printable_removes_sequences_and_controls_and_keeps_text():
    """ESC sequences go whole; C0 (but tab and newline), DEL, C1 and bidi overrides go; any script stays."""
    assert printable("a\x1b[31mred\x1b[0m") == "ared"
    assert printable(f"title{ESC_TITLE}x") == "titlex"
    assert printable("link\x1b]8;;http://e.example\x1b\\text\x1b]8;;\x1b\\") == "linktext"
    assert printable("over\rwrite\b\x07\x00\x7f") == "overwrite"
    assert printable("c1\x9b2Jx\x85") == "c1x"
    assert printable("bidi\u202eabc\u2066") == "bidiabc"
    assert printable("tab\tnewline\n") == "tab\tnewline\n"
    assert printable("tab\tnewline\n", single_line=True) == "tab newline "
    assert printable("København 東京 😀 naïve") == "København 東京 😀 naïve"
    assert printable("unterminated \x1b]0;title\nnext line") == "unterminated \nnext line"
    assert printable(42) == "42"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "' =1"),
        ("\r=1", "'=1"),
        ("-0.5", "-0.5"),
        ("+5", "+5"),
        ("1e-05", "1e-05"),
        ("-1.5e+300", "-1.5e+300"),
        ("node-1", "node-1"),
        ("", ""),
    ],
)
def test_csv_cells_that_a_spreadsheet_would_run_get_a_quote(value, cell):
    """The OWASP rule: a leading = + - @ tab or CR is neutralised with ', plain numbers stay numbers."""
    assert csv_cell(value) == cell


def test_text_report_has_no_control_characters(folder, capsys):
    """The table and notes carry the host name without its escape sequences, aligned."""
    out = run_cli(capsys, "report", str(folder), "--group-by", "tag:project", "--group-by", "host")
    assert not CONTROL.search(out.replace("\n", ""))
    assert "node-1" in out and "owned" not in out
    lines = out.splitlines()
    row = next(line for line in lines if "hostile.jsonl" in line)
    assert row.index("node-1") == lines[0].index("host")  # the columns stay aligned


def test_group_by_a_secret_tag_shows_no_secret(folder, capsys):
    """Grouping by a tag whose name looks like a credential shows *** instead of its value."""
    out = run_cli(capsys, "report", str(folder), "--group-by", "tag:api_token")
    assert SECRET not in out and "tag:api_token=***" in out


def test_markdown_escapes_html_and_markdown(folder, capsys):
    """--markdown: HTML is escaped, table pipes and emphasis are backslash-escaped, no raw tag."""
    out = run_cli(capsys, "report", str(folder), "--markdown", "--group-by", "tag:project")
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert r"\|\*\*bold\*\*" in out
    assert not CONTROL.search(out.replace("\n", ""))
    for line in out.splitlines():
        if line.startswith("| "):  # every row keeps the header's number of cells
            assert len(re.findall(r"(?<!\\)\|", line)) == 14


def test_csv_neutralises_formulas_and_keeps_numbers(folder, capsys):
    """--csv: a host '=1+2' becomes text; figures stay plain numbers; tags are redacted."""
    out = run_cli(capsys, "report", str(folder), "--csv", "--group-by", "tag:project")
    rows = list(csv.DictReader(io.StringIO(out)))
    formula = next(r for r in rows if r["kind"] == "run" and r["file"].endswith("formula.jsonl"))
    assert formula["host"] == "'=1+2"
    assert float(formula["co2eq_g"]) > 0
    group = next(r for r in rows if r["kind"] == "group" and "SUM" in r["group"])
    assert group["group"] == "tag:project=@SUM(A1:A9)"  # starts with 't': nothing to neutralise
    hostile = next(r for r in rows if r["kind"] == "run" and r["file"].endswith("hostile.jsonl"))
    assert "api_token=***" in hostile["tags"] and SECRET not in out
    assert not CONTROL.search(out.replace("\n", ""))
    for row in rows:
        for value in row.values():
            assert not value or value[0] not in "=+-@\t\r" or re.fullmatch(r"[+-]?[0-9.eE+-]+", value)


def test_json_redacts_secret_tags_and_passwords_in_warnings(folder, capsys):
    """--json: the secret tag and the URL's password and token are *** ; other values are kept."""
    out = run_cli(capsys, "report", str(folder), "--json")
    assert SECRET not in out and PASSWORD not in out
    data = json.loads(out.strip().splitlines()[-1])
    hostile = next(r for r in data["runs"] if r["file"].endswith("hostile.jsonl"))
    assert hostile["tags"]["api_token"] == "***" and hostile["tags"]["project"] == HOSTILE_TAG
    assert any("user:***@grid.example" in w for w in hostile["warnings"])


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex"])
def test_statement_has_no_control_characters_in_any_format(folder, capsys, fmt):
    """The source name's C1 sequence and bidi override are gone in every format."""
    out = run_cli(capsys, "statement", str(folder), "--format", fmt)
    assert not CONTROL.search(out.replace("\n", "")) and "\u202e" not in out
    assert "evil" in out and "31m" not in out


def test_html_page_escapes_and_redacts(folder, tmp_path):
    """--html: no raw tag, no control character, no secret (tags, warnings)."""
    page_path = tmp_path / "page.html"
    assert main(["report", str(folder), "--html", str(page_path), "--json"]) == 0
    page = page_path.read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert SECRET not in page and PASSWORD not in page
    assert not CONTROL.search(page.replace("\n", "").replace("\t", ""))
