"""carbonkit report: reading run logs, counting each device once per job and host, totals, groups, formats."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import carbonkit
from carbonkit.cli import main
from carbonkit.records import ComponentReport, IntensityProvenance, IntensityUse, Report
from carbonkit.reports.aggregate import RunLog, aggregate, count_once, load_runs, read_run

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = FIXTURES / "project"
RANK0 = PROJECT / "train-vision-rank0.jsonl"
RANK1 = PROJECT / "train-vision-rank1.jsonl"
KILLED = PROJECT / "finetune-nlp-killed.jsonl"
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def report(components, *, duration=3600.0, co2=None, start=T0, attribution="machine", pue=1.0, tags=None):
    """A report whose components are {name: (devices, it_kwh)}; CO2eq defaults to 100 g/kWh."""
    comps = {
        name: ComponentReport(energy_kwh=kwh * pue, it_energy_kwh=kwh, devices=devices, method="measured", sources=[f"x:{name}"])
        for name, (devices, kwh) in components.items()
    }
    it = sum(kwh for _, kwh in components.values())
    return Report(
        carbonkit_version="0.1.0", start_time=start, end_time=start + timedelta(seconds=duration), duration_s=duration,
        it_energy_kwh=it, energy_kwh=it * pue, co2eq_g=it * pue * 100.0 if co2 is None else co2, pue=pue,
        pue_source="test", intensity_g_per_kwh=100.0, location="XX",
        intensity=IntensityProvenance(zone="XX", provider="p", used=[IntensityUse(provider="p", source="s", kind="live", zone="XX", energy_share=1.0, mean_g_per_kwh=100.0)]),
        components=comps, tags=tags or {}, attribution=attribution,
    )


def run(name, rep, *, host="h1", job=None, rank=None):
    return RunLog(file=name, report=rep, host=host, job=job, rank=rank)


def by_file(runs):
    contributions, notes = count_once(runs)
    return {c.file: c for c in contributions}, notes


# -- reading ----------------------------------------------------------------------------------


def test_fixture_project_reads_three_runs_in_start_order():
    """A folder gives every *.jsonl under it, read and sorted by start time."""
    runs, notes = load_runs([PROJECT])
    assert [r.name for r in runs] == ["train-vision-rank0.jsonl", "train-vision-rank1.jsonl", "finetune-nlp-killed.jsonl"]
    assert notes == []
    r0 = runs[0]
    assert (r0.host, r0.job, r0.rank, r0.pid) == ("gpu-node-1", "4242", 0, 31001)
    assert r0.tags["project"] == "vision"


def test_final_report_read_from_the_tail_equals_load_run():
    """The fast path (last line) gives exactly what carbonkit.load_run gives."""
    assert read_run(RANK0).report == carbonkit.load_run(RANK0)


def test_killed_run_counts_what_it_logged_and_is_marked():
    """A log without a report record (torn last line) is recomputed and marked completed=False."""
    killed = read_run(KILLED)
    assert killed.report.completed is False
    assert killed.report.duration_s == pytest.approx(1200.0)
    # 76 W and 80 W alternating every 10 s: trapezoids average 78 W over 1200 s.
    assert killed.report.it_energy_kwh == pytest.approx(78.0 * 1200 / 3.6e6)
    assert killed.report.co2eq_g == pytest.approx(killed.report.energy_kwh * 210.5)


def test_header_job_and_rank_win_over_tags(tmp_path):
    """The header's own job and rank keys are read first; tags are the fallback."""
    lines = RANK1.read_text().splitlines()
    head = json.loads(lines[0])
    head.update(job="slurm-77", rank=3)
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    r = read_run(path)
    assert (r.job, r.rank) == ("slurm-77", 3)


def test_foreign_jsonl_in_a_folder_is_skipped_with_a_note(tmp_path):
    """Other JSON Lines files in a folder are skipped and named; an explicit one is an error."""
    shutil.copy(RANK0, tmp_path / "a.jsonl")
    (tmp_path / "other.jsonl").write_text('{"hello": 1}\n')
    runs, notes = load_runs([tmp_path])
    assert [r.name for r in runs] == ["a.jsonl"]
    assert len(notes) == 1 and "other.jsonl" in notes[0]
    with pytest.raises(carbonkit.RunLogError, match="not a carbonkit run log"):
        load_runs([tmp_path / "other.jsonl"])


def test_missing_path_and_empty_folder_are_config_errors(tmp_path):
    """A path that does not exist, or a folder without logs, says what is expected."""
    with pytest.raises(carbonkit.ConfigError, match="does not exist"):
        load_runs([tmp_path / "nope"])
    with pytest.raises(carbonkit.ConfigError, match="no run logs"):
        load_runs([tmp_path])


def test_same_file_given_twice_is_read_once():
    """A file named on its own and inside a folder given too counts once."""
    runs, _ = load_runs([RANK0, PROJECT])
    assert len(runs) == 3


# -- counting each device once ------------------------------------------------------------------


def test_fixture_rank1_is_a_duplicate_of_rank0():
    """Two ranks of job 4242 on one host measured the same devices: the totals hold one of them."""
    runs, _ = load_runs([PROJECT])
    agg = aggregate(runs)
    counted = {r.name: c.counted for r, c in zip(agg.runs, agg.contributions)}
    assert counted == {"train-vision-rank0.jsonl": "all", "train-vision-rank1.jsonl": "none", "finetune-nlp-killed.jsonl": "all"}
    r0, r1, killed = agg.runs
    assert agg.total.co2eq_g == pytest.approx(r0.report.co2eq_g + killed.report.co2eq_g)
    assert agg.total.energy_kwh == pytest.approx(r0.report.energy_kwh + killed.report.energy_kwh)
    assert agg.total.it_energy_kwh == pytest.approx(r0.report.it_energy_kwh + killed.report.it_energy_kwh)
    assert agg.total.duration_s == pytest.approx(r0.report.duration_s + killed.report.duration_s)
    assert (agg.total.runs, agg.total.runs_counted, agg.total.incomplete, agg.total.hosts) == (3, 2, 1, 2)
    # device-hours: 2 GPUs x 1900 s; CPU: 1 package x 1900 s + 1 estimated CPU x 1200 s.
    assert agg.total.device_hours == pytest.approx({"gpu": 2 * 1900 / 3600, "cpu": (1900 + 1200) / 3600})
    assert any("job 4242 on gpu-node-1" in n for n in agg.notes)


def test_longest_log_is_kept_then_lowest_rank():
    """Of logs that measured the same devices, the one covering the longest time wins; ties go to the lowest rank."""
    same = {"gpu": (["g0", "g1"], 1.0), "cpu": (["package-0"], 0.2)}
    runs = [
        run("r0", report(same, duration=100.0), job="j", rank=0),
        run("r1", report(same, duration=120.0), job="j", rank=1),
        run("r2", report(same, duration=120.0), job="j", rank=2),
    ]
    c, _ = by_file(runs)
    assert (c["r0"].counted, c["r1"].counted, c["r2"].counted) == ("none", "all", "none")
    assert c["r0"].duplicate_of == ("r1",)
    assert "duplicate" in c["r0"].excluded["gpu"]


def test_ranks_with_their_own_gpu_all_count_it_but_the_shared_cpu_once():
    """CUDA_VISIBLE_DEVICES per rank: each rank's GPU counts; the machine's CPU package counts once."""
    runs = [
        run("r0", report({"gpu": (["g0"], 1.0), "cpu": (["package-0"], 0.5)}), job="j", rank=0),
        run("r1", report({"gpu": (["g1"], 1.2), "cpu": (["package-0"], 0.5)}), job="j", rank=1),
    ]
    agg = aggregate(runs)
    c = {x.file: x for x in agg.contributions}
    assert c["r0"].counted == "all"
    assert c["r1"].counted == "part" and c["r1"].components == ("gpu",) and "cpu" in c["r1"].excluded
    assert agg.total.it_energy_kwh == pytest.approx(1.0 + 0.5 + 1.2)
    # r1 keeps the share of its CO2eq its GPU energy makes up: 1.2 / 1.7 of 170 g.
    assert c["r1"].co2eq_g == pytest.approx(170.0 * 1.2 / 1.7)
    assert agg.total.device_hours == pytest.approx({"gpu": 2.0, "cpu": 1.0})


def test_a_requeued_job_counts_each_attempt():
    """The same job id on the same devices at different times (a requeue) measured different joules: both count."""
    same = {"gpu": (["g0"], 1.0)}
    runs = [
        run("first", report(same, start=T0, duration=600.0), job="j", rank=0),
        run("second", report(same, start=T0 + timedelta(hours=2), duration=600.0), job="j", rank=0),
    ]
    c, _ = by_file(runs)
    assert c["first"].counted == c["second"].counted == "all"


def test_process_attribution_shares_are_never_duplicates():
    """With attribution='process' each rank's CPU and DRAM figures are its own share: all add up."""
    comps = {"cpu": (["package-0"], 0.3), "dram": (["dram-0"], 0.1), "gpu": (["g0", "g1"], 2.0)}
    runs = [
        run("r0", report(comps, attribution="process"), job="j", rank=0),
        run("r1", report(comps, attribution="process"), job="j", rank=1),
    ]
    c, _ = by_file(runs)
    assert c["r0"].counted == "all"
    assert c["r1"].counted == "part" and set(c["r1"].components) == {"cpu", "dram"}


def test_process_split_gpus_are_never_duplicates():
    """Two ranks sharing one GPU, each charged its own share of it by NVML's split: both count."""
    import attrs

    comps = {"cpu": (["package-0"], 0.3), "gpu": (["g0"], 0.5)}
    split = "nvml:energy: process share nvmlDeviceGetProcessUtilization SM samples"
    reports = []
    for _ in range(2):
        rep = report(comps, attribution="process")
        gpu = attrs.evolve(rep.components["gpu"], details=[split])
        reports.append(attrs.evolve(rep, components={**rep.components, "gpu": gpu}))
    c, _ = by_file([run("r0", reports[0], job="j", rank=0), run("r1", reports[1], job="j", rank=1)])
    assert c["r0"].counted == c["r1"].counted == "all"


def test_cgroup_runs_of_different_jobs_are_no_overlap():
    """Two containers on one host, each charged its own cgroup: no 'whole machine' note."""
    comps = {"cpu": (["package-0"], 0.3)}
    runs = [run("a", report(comps, attribution="cgroup")), run("b", report(comps, attribution="cgroup"))]
    c, notes = by_file(runs)
    assert c["a"].counted == c["b"].counted == "all"
    assert not any("at the same time" in n for n in notes)
    _, machine_notes = by_file([run("a", report(comps)), run("b", report(comps))])
    assert any("at the same time" in n for n in machine_notes)  # machine-level runs do get the note


def test_one_job_on_several_hosts_counts_each_host():
    """The same job id on two hosts: different machines, both counted."""
    comps = {"gpu": (["g0"], 1.0)}
    runs = [run("a", report(comps), host="n1", job="j", rank=0), run("b", report(comps), host="n2", job="j", rank=1)]
    c, _ = by_file(runs)
    assert c["a"].counted == c["b"].counted == "all"


def test_partial_overlap_is_left_out_and_said():
    """A log whose devices overlap another's only partly cannot be split: left out, with a note naming the missing device."""
    runs = [
        run("r0", report({"gpu": (["g0", "g1"], 2.0)}, duration=200.0), job="j", rank=0),
        run("r1", report({"gpu": (["g1", "g2"], 2.0)}, duration=100.0), job="j", rank=1),
    ]
    c, notes = by_file(runs)
    assert c["r1"].counted == "none"
    assert "g2" in c["r1"].excluded["gpu"]
    assert any("overlap only partly" in n and "g2" in n for n in notes)


def test_runs_without_a_job_are_never_merged_but_overlaps_are_noted():
    """Two unrelated runs at once on one host both count, with a note that the machine energy is in both."""
    comps = {"cpu": (["package-0"], 1.0)}
    runs = [
        run("a", report(comps, start=T0)),
        run("b", report(comps, start=T0 + timedelta(minutes=30))),
        run("c", report(comps, start=T0 + timedelta(hours=5))),
    ]
    agg = aggregate(runs)
    assert [x.counted for x in agg.contributions] == ["all", "all", "all"]
    overlap = [n for n in agg.notes if "at the same time" in n]
    assert len(overlap) == 1 and "a and b" in overlap[0] and "1800 s" in overlap[0]


# -- groups and formats ---------------------------------------------------------------------------


def test_group_by_tag_host_and_job():
    """--group-by tag:KEY, host and job total the runs of each value; runs without the key group as None."""
    runs, _ = load_runs([PROJECT])
    agg = aggregate(runs, group_by=["tag:project", "host", "job"])
    groups = {(g.key, g.value): g.total for g in agg.groups}
    assert set(groups) == {
        ("tag:project", "nlp"), ("tag:project", "vision"), ("host", "gpu-node-1"), ("host", "gpu-node-2"), ("job", "4242"), ("job", None),
    }
    assert groups[("tag:project", "vision")].co2eq_g == pytest.approx(runs[0].report.co2eq_g)
    assert groups[("tag:project", "vision")].runs == 2
    assert groups[("job", None)].co2eq_g == pytest.approx(runs[2].report.co2eq_g)


def test_bad_group_key_is_a_config_error():
    """Only host, job and tag:KEY are accepted."""
    runs, _ = load_runs([RANK0])
    with pytest.raises(carbonkit.ConfigError, match="'host', 'job' or 'tag:KEY'"):
        aggregate(runs, group_by=["project"])


def test_cli_json_last_line_has_runs_and_total(capsys):
    """--json: the last stdout line is one object; each run is Report.to_dict() plus file and tags."""
    assert main(["report", str(PROJECT), "--json", "--group-by", "tag:project"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(data) >= {"runs", "total", "groups", "notes"}
    first = data["runs"][0]
    assert set(Report.from_dict(first).to_dict()) <= set(first)
    assert first["file"].endswith("train-vision-rank0.jsonl") and first["tags"]["project"] == "vision"
    assert first["counted"]["counted"] == "all" and data["runs"][1]["counted"]["counted"] == "none"
    assert data["runs"][2]["completed"] is False
    for key in ("energy_kwh", "it_energy_kwh", "co2eq_g", "duration_s"):
        assert isinstance(data["total"][key], float)
    assert data["total"]["co2eq_g"] == pytest.approx(first["co2eq_g"] + data["runs"][2]["co2eq_g"])


def test_cli_table_marks_duplicates_and_incomplete_runs(capsys):
    """The default table has a row per run, the total, and says which runs are duplicates or incomplete."""
    assert main(["report", str(PROJECT)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["#", "run", "host"]
    assert "duplicate of #1" in out and "incomplete" in out
    total = next(line for line in lines if "TOTAL" in line)
    assert "77.01" in total and "2 of 3 logs counted" in total


def test_cli_csv_rows_for_runs_groups_and_total(capsys):
    """--csv: kind=run rows, kind=group rows and one kind=total row, full precision."""
    assert main(["report", str(PROJECT), "--csv", "--group-by", "host"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    kinds = [r["kind"] for r in rows]
    assert kinds == ["run", "run", "run", "group", "group", "total"]
    runs = [r for r in rows if r["kind"] == "run"]
    total = rows[-1]
    assert float(total["co2eq_g"]) == pytest.approx(sum(float(r["counted_co2eq_g"]) for r in runs))
    assert runs[1]["counted"] == "none" and float(runs[1]["counted_co2eq_g"]) == 0.0
    assert float(total["device_hours_gpu"]) == pytest.approx(2 * 1900 / 3600)


def test_cli_markdown_has_a_pipe_table_with_the_total(capsys):
    """--markdown: a Markdown table whose last row is the total in bold."""
    assert main(["report", str(PROJECT), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| # | run | host |")
    assert "| **TOTAL** |" in out


def test_cli_errors_exit_2_with_the_value(capsys, tmp_path):
    """A missing path or a bad group key: exit 2 and a message naming the value."""
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["report", str(PROJECT), "--group-by", "colour"]) == 2
    assert "'colour'" in capsys.readouterr().err
