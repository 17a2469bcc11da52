"""Reading run logs that are huge, damaged or not run logs at all: linear time, bounded memory,
clear errors, and never a NaN in a report.

Logs are written line by line in the documented schema (docs/run-log.md) by tests/reports/logfiles.py.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reports.logfiles import header, intensity, kwh, samples, steady_log, write

import carbonkit
from carbonkit.runlog import MAX_LINE_BYTES, RunLogReader, iter_records, load_run, read_final_report, read_header

GIB = 1 << 30


def killed_log(path: Path, watts: float = 100.0, seconds: float = 600.0) -> Path:
    """A run that never stopped: no report record, recomputed by load_run."""
    return steady_log(path, watts=watts, seconds=seconds)


def finite_figures(report: carbonkit.Report) -> bool:
    values = [report.duration_s, report.it_energy_kwh, report.energy_kwh, report.co2eq_g, report.intensity_g_per_kwh]
    values += [c.energy_kwh for c in report.components.values()]
    return all(isinstance(v, float) and math.isfinite(v) for v in values)


# -- size and speed ---------------------------------------------------------------------------


def test_a_sparse_gibibyte_of_nul_bytes_after_the_log_is_skipped_in_seconds(tmp_path):
    """A crash can leave the file extended with NUL bytes: 1 GiB of them costs seconds, not a line
    of 1 GiB, and the figures are those of the log without them."""
    path = killed_log(tmp_path / "run.jsonl")
    expected = load_run(path)
    with open(path, "r+b") as f:
        f.seek(0, os.SEEK_END)
        f.truncate(f.tell() + GIB)  # a hole: no disk used
    assert path.stat().st_size > GIB
    t0 = time.perf_counter()
    report = load_run(path)
    elapsed = time.perf_counter() - t0
    print(f"load_run over a 1 GiB sparse NUL tail: {elapsed:.3f} s")
    assert elapsed < 60.0
    assert report.it_energy_kwh == pytest.approx(expected.it_energy_kwh)
    assert report.co2eq_g == pytest.approx(expected.co2eq_g)
    assert any(f"{GIB} NUL bytes" in w for w in report.warnings)


def test_nul_bytes_written_inside_the_log_cut_one_line_and_keep_the_rest(tmp_path):
    """NUL bytes on disk (not a hole) in the middle of a line end that line; what follows is read."""
    records = [header(), intensity(100.0), *samples([100.0], 600.0)]
    lines = [json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records]
    torn = lines[30][:20] + b"\x00" * 300_000 + lines[30][20:]  # line 31: cut by the NUL run
    path = write(tmp_path / "run.jsonl", [*lines[:30], torn, *lines[31:], b"\x00" * (3 << 20)])
    report = load_run(path)
    assert report.completed is False
    assert report.duration_s == pytest.approx(600.0)
    # The sample at line 31 (t = 280 s) is lost: its neighbours are joined by one trapezoid of 100 W.
    assert report.it_energy_kwh == pytest.approx(kwh(100.0, 600.0))
    warnings = " ".join(report.warnings)
    assert "line 31 of the log skipped: cut short by NUL bytes" in warnings
    assert f"{300_000 + (3 << 20)} NUL bytes" in warnings


def test_a_million_records_load_in_bounded_memory(tmp_path):
    """One streaming pass per reading: the peak of Python memory stays far below the file's size."""
    path = tmp_path / "million.jsonl"
    n = 1_000_000
    with open(path, "w") as f:
        f.write(json.dumps(header(sources=[{"name": "test:gpu", "component": "gpu", "method": "measured",
                                            "kind": "energy", "devices": ["gpu0", "gpu1"], "info": {}}])) + "\n")
        f.write(json.dumps(intensity(100.0)) + "\n")
        for start in range(0, n, 50_000):  # 250 W and 200 W energy counters, one sample a second
            f.write("".join(
                f'{{"type":"sample","t":{k}.0,"r":{{"test:gpu":[{250 * k}.0,{200 * k}.0]}}}}\n'
                for k in range(start, start + 50_000)
            ))
    size = path.stat().st_size
    # Peak resident memory of a fresh process, before and after load_run (tracemalloc would slow
    # the reading down five times): holding the records would cost hundreds of MB.
    code = (
        "import json, resource, sys, time, carbonkit\n"
        "from carbonkit.runlog import load_run\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t0 = time.perf_counter(); r = load_run(sys.argv[1]); elapsed = time.perf_counter() - t0\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'grown_kb': after - before, 'elapsed': elapsed, 'kwh': r.it_energy_kwh,"
        " 'co2': r.co2eq_g, 'energy': r.energy_kwh}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.splitlines()[-1])
    grown = data["grown_kb"] * 1024  # ru_maxrss is in KiB on Linux
    print(f"load_run of {n} records ({size / 1e6:.0f} MB): {data['elapsed']:.1f} s, peak memory grew {grown / 1e6:.1f} MB")
    assert grown < size / 4
    assert data["kwh"] == pytest.approx(kwh(450.0, n - 1.0))
    assert data["co2"] == pytest.approx(data["energy"] * 100.0)


def test_lines_are_the_same_whatever_the_chunk_size(tmp_path):
    """Chunk boundaries never change what is read: lines, numbers, NUL runs and a line too long."""
    rng = random.Random(7)
    items: list[bytes] = []
    for i in range(300):
        line = json.dumps({"type": "x", "i": i, "pad": "y" * rng.randrange(0, 60)}).encode() + b"\n"
        if rng.random() < 0.1:
            line = b"\x00" * rng.randrange(1, 50) + line
        items.append(line)
    items[100] = b'{"type":"x","i":100,"pad":"' + b"z" * 5000 + b'"}\n'
    path = write(tmp_path / "lines.jsonl", items)
    reference = RunLogReader(path, max_line_bytes=4096)
    expected = list(reference)
    assert [r["i"] for _, r in expected] == [i for i in range(300) if i != 100]
    assert [s.line for s in reference.skipped] == [101] and "longer than 4096 bytes" in reference.skipped[0].reason
    for chunk in (1, 7, 64, 4095, 4096, 100_000):
        reader = RunLogReader(path, max_line_bytes=4096, chunk_bytes=chunk)
        assert list(reader) == expected, chunk
        assert reader.skipped == reference.skipped and reader.nul_bytes == reference.nul_bytes


def test_a_line_longer_than_the_cap_is_skipped_and_named(tmp_path):
    """A line over MAX_LINE_BYTES is not held in memory: it is skipped, and the log read on."""
    records = [header(), intensity(), *samples([100.0], 600.0)]
    lines: list[object] = list(records)
    lines.insert(5, b"[" + b"1," * (MAX_LINE_BYTES // 2 + 10) + b"1]\n")
    path = write(tmp_path / "long.jsonl", lines)
    report = load_run(path)
    assert report.it_energy_kwh == pytest.approx(kwh(100.0, 600.0))
    assert any(f"line 6 of the log skipped: longer than {MAX_LINE_BYTES} bytes" in w for w in report.warnings)


# -- damaged lines inside a readable log --------------------------------------------------------


def test_broken_lines_in_the_middle_are_skipped_counted_and_named(tmp_path):
    """Torn or foreign lines are not fatal: the report names them by line number."""
    records: list[object] = [header(), intensity(), *samples([100.0], 600.0)]
    records[10] = '{"type":"sample","t":80.0,"r":{"test:cpu":[10\n'  # torn by a crash, then written on
    records[20] = b'{"type":"sample","t":180.0,"r":{"test:cpu":[\xff\xfe]}}\n'  # not UTF-8
    records[30] = '{"type":"sample","t":280.0,"r":{"test:cpu":[NaN]}}\n'
    records[40] = '{"type":"sample","t":380.0,"r":{"test:cpu":[1e999]}}\n'
    records[50] = "[1, 2, 3]\n"
    records.append('{"type":"sample","t":610.0,"r":{"test:c')  # the torn last line of a killed run
    path = write(tmp_path / "run.jsonl", records)
    report = load_run(path)
    assert finite_figures(report)
    assert report.duration_s == pytest.approx(600.0)
    assert report.it_energy_kwh == pytest.approx(kwh(100.0, 600.0))
    skipped = {w.split(" of the log")[0]: w for w in report.warnings if " of the log skipped" in w}
    assert set(skipped) == {"line 11", "line 21", "line 31", "line 41", "line 51", "line 64"}
    assert "not JSON" in skipped["line 11"]
    assert "not UTF-8" in skipped["line 21"]
    assert "NaN is not a finite number" in skipped["line 31"]
    assert "out of range" in skipped["line 41"]
    assert "not a JSON object" in skipped["line 51"]
    assert "cut off at the end of the file" in skipped["line 64"]


def test_records_that_break_the_schema_are_skipped_not_fatal(tmp_path):
    """A record of a known type with the wrong shape is skipped like a broken line."""
    records: list[object] = [header(), intensity(), *samples([100.0], 600.0)]
    records[5] = {"type": "sample", "t": "soon", "r": {"test:cpu": [100.0]}}
    records[6] = {"type": "sample", "t": 50.0, "r": {"test:cpu": [100.0, 5.0]}}  # two values, one device
    records[7] = {"type": "sample", "t": 60.0, "r": {"test:cpu": [True]}}
    records[8] = {"type": "sample", "t": 1e12, "r": {"test:cpu": [100.0]}}  # would need 16 billion intervals
    records.insert(9, {"type": "shares", "t": 70.0, "s": {"cpu": 7.0}})
    records.insert(9, {"type": "intensity", "provider": "x", "time": "now", "g_per_kwh": 5.0, "zone": "SE-SE3",
                       "source": "s", "kind": "live"})
    records.insert(9, {"type": "epoch", "index": 0, "start_s": 100.0, "end_s": 50.0})
    records.insert(9, {"type": "warning", "message": ["not", "text"]})
    path = write(tmp_path / "run.jsonl", records)
    report = load_run(path)
    assert finite_figures(report)
    assert report.it_energy_kwh == pytest.approx(kwh(100.0, 600.0))
    assert report.co2eq_g == pytest.approx(report.energy_kwh * 100.0)
    assert report.epochs == ()
    named = [w for w in report.warnings if "does not match the schema" in w]
    assert len(named) == 8, report.warnings


def test_more_than_ten_skipped_lines_are_counted(tmp_path):
    """The first ten are named; the others are counted in one warning."""
    records: list[object] = [header(), intensity(), *samples([100.0], 600.0)]
    for i in range(10, 35):
        records[i] = "garbage\n"
    report = load_run(write(tmp_path / "run.jsonl", records))
    assert sum(w.startswith("line ") and " of the log skipped" in w for w in report.warnings) == 10
    assert "15 more lines of the log skipped as unreadable" in report.warnings


def test_a_final_report_that_is_not_usable_is_recomputed(tmp_path):
    """A report record with a figure that is not a number does not reach anyone: the raw readings do."""
    path = steady_log(tmp_path / "run.jsonl", stopped=True)
    lines = path.read_text().splitlines()
    last = json.loads(lines[-1])
    last["report"]["co2eq_g"] = "lots"
    path.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    assert read_final_report(path) is None
    report = load_run(path)
    assert report.completed is False and report.co2eq_g == pytest.approx(kwh(100.0, 600.0) * 100.0)
    assert any("does not match the schema" in w for w in report.warnings)


def test_iter_records_skips_what_is_not_a_record(tmp_path):
    """iter_records yields the JSON objects and passes over the rest; RunLogReader counts it."""
    path = write(tmp_path / "x.jsonl", [{"type": "a"}, "oops\n", "\n", {"type": "b"}, b"\x00\x00", '{"type":"c"'])
    assert [r["type"] for r in iter_records(path)] == ["a", "b"]
    reader = RunLogReader(path)
    assert [n for n, _ in reader] == [1, 4]
    assert [s.line for s in reader.skipped] == [2, 5] and reader.skipped_count == 2 and reader.nul_bytes == 2


# -- logs that cannot be read at all: one clear error each --------------------------------------


def test_a_stopped_log_returns_its_report_and_stays_cheap(tmp_path):
    """The final report is read from the end of the file, equal to what load_run returns."""
    path = steady_log(tmp_path / "run.jsonl", stopped=True)
    assert read_final_report(path) == load_run(path)
    assert load_run(path).completed is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no records"),
        (b"\n\n", "holds no records"),
        (b'{"hello": 1}\n{"hello": 2}\n', "not a carbonkit run log (its first line is not a header record"),
        (b'{"type":"sample","t":0}\n', '"type" is \'sample\''),
        (b'\xff\xfe{"type":"header"}\n', "line 1 is not UTF-8 text"),
        (b'{"type":"header","schema":1,\n', "line 1 is not JSON"),
        (b"PK\x03\x04 binary", "line 1 is cut off at the end of the file"),
        (b'{"type":"header","schema":NaN}\n', "NaN is not a finite number"),
    ],
    ids=["empty", "blank", "foreign", "no-header", "not-utf8", "torn-header", "binary", "nan-header"],
)
def test_unreadable_logs_raise_a_run_log_error_naming_the_file(tmp_path, content, message):
    """Each kind of unreadable file gives RunLogError with the file's name and what is wrong."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(carbonkit.RunLogError, match="bad.jsonl") as info:
        load_run(path)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "1"}, "\"schema\" must be a whole number >= 1"),
        ({"schema": 1.5}, "\"schema\" must be a whole number >= 1"),
        ({"schema": True}, "\"schema\" must be a whole number >= 1"),
        ({"schema": 0}, "\"schema\" must be a whole number >= 1"),
        ({"schema": None}, "got None"),
        ({"schema": 2}, "has run-log schema 2; this carbonkit"),
        ({"pue": "abc"}, "'pue' must be a finite number, got 'abc'"),
        ({"pue": 0}, "\"pue\" must be > 0"),
        ({"bucket_s": 0}, "\"bucket_s\" must be a number of seconds > 0"),
        ({"start_unix": 1e300}, "\"start_unix\" must be a unix time"),
        ({"sources": "cpu"}, "\"sources\" must be a list"),
        ({"sources": [{"name": "a", "component": "cpu", "method": "measured", "kind": "volts", "devices": []}]},
         "sources[0].kind must be 'energy' or 'power', got 'volts'"),
        ({"location": 7}, "'location' must be text, got 7"),
    ],
)
def test_a_header_a_report_cannot_be_built_from_is_named(tmp_path, change, message):
    """Bad schema values and header fields are RunLogErrors that name the field and the value."""
    path = tmp_path / "run.jsonl"
    head = header()
    head.update(change)
    if change.get("schema", 1) is None:
        del head["schema"]
    write(path, [head, *samples([100.0], 60.0)])
    with pytest.raises(carbonkit.RunLogError, match="run.jsonl") as info:
        read_header(path)
    assert message in str(info.value)
    with pytest.raises(carbonkit.RunLogError):
        load_run(path)


def test_a_path_that_cannot_be_opened_is_a_run_log_error(tmp_path):
    """A folder or a missing file: RunLogError naming it and why."""
    with pytest.raises(carbonkit.RunLogError, match="cannot read .*missing.jsonl"):
        load_run(tmp_path / "missing.jsonl")
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(carbonkit.RunLogError, match="cannot read .*dir.jsonl"):
        load_run(tmp_path / "dir.jsonl")
