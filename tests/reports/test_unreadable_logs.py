"""carbonkit report and statement over a folder with unreadable logs: each is named, the rest is
added up, and the exit status says some were skipped (0 all read, 3 some skipped, 2 none read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reports.logfiles import header, kwh, samples, steady_log, write

import carbonkit
from carbonkit.cli import main
from carbonkit.reports.aggregate import read_runs

PROJECT = Path(__file__).parent / "fixtures" / "project"

#: Each kind of file a folder of logs may hold that is not a readable run log, and a word of the reason.
UNREADABLE: dict[str, tuple[bytes, str]] = {
    "empty.jsonl": (b"", "holds no records"),
    "other-tool.jsonl": (b'{"event": "epoch", "loss": 0.3}\n', "not a header record"),
    "latin1.jsonl": ('{"type":"header","host":"k\xf8benhavn"}\n'.encode("latin-1"), "not UTF-8"),
    "newer.jsonl": (json.dumps(header(schema=9)).encode() + b"\n", "schema 9"),
    "bad-schema.jsonl": (json.dumps(header(schema="one")).encode() + b"\n", '"schema" must be a whole number'),
    "nan.jsonl": (json.dumps(header()).replace('"pue": 1.0', '"pue": NaN').encode() + b"\n", "NaN"),
    "torn-header.jsonl": (json.dumps(header()).encode()[:200], "cut off at the end of the file"),
    "no-sources.jsonl": (json.dumps({**header(), "sources": None}).encode() + b"\n", '"sources"'),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two readable logs (one stopped, one killed with a broken line) and every kind of unreadable one."""
    steady_log(tmp_path / "good-stopped.jsonl", watts=100.0, seconds=600.0, stopped=True)
    killed = [header(host="node-2"), *samples([50.0], 1200.0)]
    killed.insert(40, "not json at all\n")  # damaged inside: read anyway, and said in its report
    write(tmp_path / "good-killed.jsonl", killed)
    for name, (content, _) in UNREADABLE.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


def test_read_runs_names_each_unreadable_file_and_reads_the_rest(folder):
    """read_runs keeps the two run logs and one SkippedLog per unreadable file, with its reason."""
    found = read_runs([folder])
    assert sorted(r.name for r in found.runs) == ["good-killed.jsonl", "good-stopped.jsonl"]
    reasons = {Path(s.file).name: s.reason for s in found.skipped}
    assert set(reasons) == set(UNREADABLE)
    for name, (_, word) in UNREADABLE.items():
        assert word in reasons[name], (name, reasons[name])
    killed = next(r for r in found.runs if r.name == "good-killed.jsonl")
    assert any("line 41 of the log skipped: not JSON" in w for w in killed.report.warnings)


def test_cli_report_names_skipped_logs_on_stderr_and_exits_3(folder, capsys):
    """The table covers the readable logs; stderr names each skipped file; exit status 3."""
    assert main(["report", str(folder)]) == 3
    captured = capsys.readouterr()
    for name, (_, word) in UNREADABLE.items():
        line = next(line for line in captured.err.splitlines() if name in line)
        assert line.startswith("carbonkit: skipped ") and word in line
    total = next(line for line in captured.out.splitlines() if "TOTAL" in line)
    assert "2 of 2 logs counted" in total


def test_cli_report_json_lists_skipped_files_with_reasons(folder, capsys):
    """--json: 'skipped' lists each file and reason; the totals are those of the readable logs alone."""
    assert main(["report", str(folder), "--json"]) == 3
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {Path(s["file"]).name for s in data["skipped"]} == set(UNREADABLE)
    assert all(s["reason"] for s in data["skipped"])
    assert data["total"]["runs"] == 2
    assert data["total"]["it_energy_kwh"] == pytest.approx(kwh(100.0, 600.0) + kwh(50.0, 1200.0))


def test_cli_statement_skips_the_same_files_and_exits_3(folder, capsys):
    """statement: the paragraph covers the two readable runs; --json carries 'skipped'."""
    assert main(["statement", str(folder)]) == 3
    captured = capsys.readouterr()
    assert "over 2 runs on 2 machines" in captured.out
    assert sum(line.startswith("carbonkit: skipped ") for line in captured.err.splitlines()) == len(UNREADABLE)
    assert main(["statement", str(folder), "--json"]) == 3
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(data["skipped"]) == len(UNREADABLE)


def test_all_logs_read_exits_0_with_nothing_skipped(capsys):
    """The fixture project reads whole: exit 0, an empty 'skipped' list, nothing on stderr."""
    assert main(["report", str(PROJECT), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["skipped"] == []
    assert captured.err == ""


def test_a_shell_glob_of_files_is_treated_like_a_folder(folder, capsys):
    """Files named one by one (as `logs/*.jsonl` expands) are skipped by name too, not fatal."""
    files = sorted(str(p) for p in folder.glob("*.jsonl"))
    assert main(["report", *files]) == 3
    assert "TOTAL" in capsys.readouterr().out


def test_no_readable_log_at_all_exits_2_naming_each(tmp_path, capsys):
    """When nothing can be read there is no report: exit 2, each file named in the error."""
    for name in ("empty.jsonl", "other-tool.jsonl"):
        (tmp_path / name).write_bytes(UNREADABLE[name][0])
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no carbonkit run log could be read (2 files)" in err
    assert "empty.jsonl" in err and "other-tool.jsonl" in err
    with pytest.raises(carbonkit.RunLogError, match="other-tool.jsonl"):
        read_runs([tmp_path / "other-tool.jsonl"])


def test_strict_reading_stops_at_the_first_unreadable_file(folder):
    """read_runs(strict=True) raises the first file's own error."""
    with pytest.raises(carbonkit.RunLogError):
        read_runs([folder], strict=True)
