"""Multi-process jobs without torch: launcher variables, the host lock, roles, adding hosts up,
and the job's total from the run logs (real processes on this machine standing for two hosts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import carbonkit
from carbonkit import ComponentReport, ConfigError, EpochRecord, IntensityProvenance, IntensityUse, Report
from carbonkit.distributed import HostLock, choose_role, combine, detect, host_report, lock_dir

REPO = Path(__file__).resolve().parents[2]
RANK_JOB = REPO / "tests" / "distributed" / "rank_job.py"


def test_detect_reads_each_launcher() -> None:
    torchrun = detect({}, {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
                           "TORCHELASTIC_RUN_ID": "run-7", "CARBONKIT_HOST": "box"})
    assert (torchrun.launcher, torchrun.job, torchrun.rank, torchrun.local_rank) == ("torchrun", "run-7", 3, 1)
    assert (torchrun.world_size, torchrun.local_world_size, torchrun.host) == (4, 2, "box")
    assert torchrun.host_source == "CARBONKIT_HOST" and torchrun.multi_process
    # torchrun's default run id "none" is no id: the rendezvous address names the job.
    static = detect({}, {"RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "none",
                         "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"})
    assert static.job == "10.0.0.1:29500"
    slurm = detect({}, {"SLURM_JOB_ID": "77", "SLURM_STEP_ID": "2", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
                        "SLURM_NTASKS": "8"})
    assert (slurm.launcher, slurm.job, slurm.rank, slurm.local_rank, slurm.world_size) == ("slurm", "77", 5, 1, 8)
    assert slurm.lock_key == "77.2"  # two steps of one job are two jobs on a host
    ompi = detect({}, {"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "0", "OMPI_COMM_WORLD_SIZE": "4",
                       "PMIX_NAMESPACE": "prterun-x-1@1"})
    assert (ompi.launcher, ompi.job, ompi.rank, ompi.world_size) == ("openmpi", "prterun-x-1@1", 2, 4)
    pmi = detect({}, {"PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1"})
    assert (pmi.launcher, pmi.job, pmi.rank, pmi.local_rank) == ("pmi", None, 1, 1)
    assert pmi.lock_key == f"ppid-{os.getppid()}"  # the ranks of a host share their launcher process
    assert detect({"job": "mine"}, {"SLURM_JOB_ID": "77"}).job == "mine"
    alone = detect({}, {})
    assert not alone.multi_process and alone.host_source == "host name"


def test_blank_host_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="CARBONKIT_HOST=' ' is not a host name"):
        detect({}, {"CARBONKIT_HOST": " "})


def test_lock_dir_order(tmp_path: Path) -> None:
    assert lock_dir({"CARBONKIT_LOCK_DIR": str(tmp_path / "x")}) == tmp_path / "x"
    assert lock_dir({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "carbonkit"
    assert lock_dir({"XDG_RUNTIME_DIR": str(tmp_path / "missing")}).name.startswith("carbonkit-locks-")


def test_the_first_to_take_the_lock_measures(tmp_path: Path) -> None:
    first = HostLock.try_take(tmp_path, "a", "job1")
    second = HostLock.try_take(tmp_path, "a", "job1")  # another open file: flock conflicts in one process too
    other_host = HostLock.try_take(tmp_path, "b", "job1")
    other_job = HostLock.try_take(tmp_path, "a", "job2")
    assert first.held and not second.held and other_host.held and other_job.held
    first.release()
    assert HostLock.try_take(tmp_path, "a", "job1").held
    for lock in (other_host, other_job):
        lock.release()


def test_the_kernel_releases_the_lock_of_a_killed_measurer(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from carbonkit.distributed import HostLock\n"
        f"lock = HostLock.try_take(Path({str(tmp_path)!r}), 'a', 'job')\n"
        "print(lock.held, flush=True); sys.stdin.readline()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "True"
    assert not HostLock.try_take(tmp_path, "a", "job").held
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    child.stdin.close()  # type: ignore[union-attr]
    assert HostLock.try_take(tmp_path, "a", "job").held


def test_choose_role(tmp_path: Path) -> None:
    env = {"RANK": "1", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "j", "CARBONKIT_LOCK_DIR": str(tmp_path)}
    ctx = detect({}, env)
    role, lock, why = choose_role(ctx, env)
    assert role == "measurer" and lock is not None and "first of the job's processes" in why
    assert choose_role(ctx, env)[0] == "observer"
    lock.release()
    assert choose_role(detect({}, {}), {})[:2] == (None, None)
    assert choose_role(ctx, {**env, "CARBONKIT_ROLE": "observer"})[0] == "observer"
    with pytest.raises(ConfigError, match="CARBONKIT_ROLE='boss'"):
        choose_role(ctx, {**env, "CARBONKIT_ROLE": "boss"})
    blocked = tmp_path / "file"
    blocked.write_text("")
    role, lock, why = choose_role(ctx, {**env, "CARBONKIT_LOCK_DIR": str(blocked / "sub")})
    assert role == "measurer" and lock is None and "could not be used" in why


def test_an_observer_tracker_measures_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two trackers of one job on one host: the first measures, the second records epochs only;
    when the first stops, the next tracker measures."""
    for name, value in {"RANK": "1", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "job-x",
                        "CARBONKIT_LOCK_DIR": str(tmp_path / "locks"), "CARBONKIT_HOST": "h1"}.items():
        monkeypatch.setenv(name, value)
    make = lambda: carbonkit.Tracker(  # noqa: E731
        sources=[carbonkit.SimulatedSource(watts=50.0)], quiet=True, location="WORLD", log_dir=tmp_path / "logs",
    )
    measurer = make()
    observer = make()
    assert (measurer.role, observer.role) == ("measurer", "observer")
    assert [p.name for p in observer.providers] == ["constant:world"]  # it prices nothing: no API is asked
    observer.epoch_end()
    o = observer.stop()
    m = measurer.stop()
    assert o.role == "observer" and o.components == {} and o.energy_kwh == 0.0 and len(o.epochs) == 1
    assert m.role == "measurer" and m.job == "job-x" and m.components["cpu"].it_energy_kwh > 0
    headers = [json.loads(p.read_text().splitlines()[0]) for p in sorted((tmp_path / "logs").glob("*.jsonl"))]
    assert sorted(h["role"] for h in headers) == ["measurer", "observer"]
    assert {h["host"] for h in headers} == {"h1"} and {h["host_source"] for h in headers} == {"CARBONKIT_HOST"}
    again = make()
    assert again.role == "measurer"
    again.stop()


def _report(start: datetime, seconds: float, it_kwh: float, pue: float, g: float, zone: str,
            epochs: int = 2) -> Report:
    kwh = it_kwh * pue
    return Report(
        carbonkit_version="0", start_time=start, end_time=start + timedelta(seconds=seconds), duration_s=seconds,
        it_energy_kwh=it_kwh, energy_kwh=kwh, co2eq_g=kwh * g, pue=pue, pue_source="test",
        intensity_g_per_kwh=g, location=zone,
        intensity=IntensityProvenance(zone=zone, provider="t", used=[
            IntensityUse(provider="t", source=f"{zone} table", kind="average", zone=zone, energy_share=1.0,
                         mean_g_per_kwh=g)]),
        components={"gpu": ComponentReport(energy_kwh=kwh, it_energy_kwh=it_kwh, devices=["gpu0"], method="measured",
                                           sources=["nvml:energy"])},
        epochs=[EpochRecord(index=i, start_s=i * seconds / epochs, end_s=(i + 1) * seconds / epochs,
                            duration_s=seconds / epochs, it_energy_kwh=it_kwh / epochs,
                            energy_kwh=kwh / epochs, co2eq_g=kwh * g / epochs) for i in range(epochs)],
    )


def test_combine_adds_hosts_each_at_its_own_intensity() -> None:
    """Worked by hand: host a 2 kWh IT at PUE 1.5 and 100 g/kWh = 3 kWh, 300 g; host b 1 kWh IT
    at PUE 1.2 and 500 g/kWh = 1.2 kWh, 600 g. The job: 3 kWh IT, 4.2 kWh, 900 g, 214.3 g/kWh."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    a = _report(t0, 100.0, 2.0, 1.5, 100.0, "FR")
    b = _report(t0 + timedelta(seconds=1), 100.0, 1.0, 1.2, 500.0, "PL")
    b_odd = _report(t0 + timedelta(seconds=1), 100.0, 1.0, 1.2, 500.0, "PL", epochs=3)
    job = combine(a, [(host_report(a, "a", 0, [0, 1]), a.epochs), (host_report(b, "b", 2, [2, 3]), b.epochs)],
                  made_by="process group", job="j")
    assert (job.it_energy_kwh, job.energy_kwh, job.co2eq_g) == pytest.approx((3.0, 4.2, 900.0))
    assert job.intensity_g_per_kwh == pytest.approx(900 / 4.2)
    assert job.location == "FR,PL" and job.pue == pytest.approx(4.2 / 3.0) and job.pue_source.startswith("per host")
    assert job.components["gpu"].devices == ("a/gpu0", "b/gpu0")
    assert [u.zone for u in job.intensity.used] == ["FR", "PL"]
    assert [u.energy_share for u in job.intensity.used] == pytest.approx([3 / 4.2, 1.2 / 4.2])
    assert [e.it_energy_kwh for e in job.epochs] == pytest.approx([1.5, 1.5])  # measured per epoch on each host
    assert [e.co2eq_g for e in job.epochs] == pytest.approx([450.0, 450.0])
    assert job.duration_s == pytest.approx(101.0) and job.hosts[1].ranks == (2, 3)
    # A host whose measurer marked other epochs: its energy is spread over its run (estimated, said so).
    odd = combine(a, [(host_report(a, "a", 0, [0]), a.epochs), (host_report(b_odd, "b", 1, [1]), b_odd.epochs)],
                  made_by="process group", job="j")
    assert [e.it_energy_kwh for e in odd.epochs] == pytest.approx([1.0 + 0.49, 1.0 + 0.5])
    assert any("spread evenly" in w for w in odd.warnings)
    back = Report.from_dict(json.loads(json.dumps(job.to_dict())))
    assert back.hosts == job.hosts and back.job_total == "process group"


def _rank(rank: int, host: str, zone: str, tmp: Path, out: Path, **popen: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARBONKIT_", "CUDA_", "SLURM_", "OMPI_"))}
    sysfs = tmp / f"sys-{host}" / "intel-rapl:0"
    if not sysfs.exists():
        sysfs.mkdir(parents=True)
        (sysfs / "name").write_text("package-0\n")
        (sysfs / "energy_uj").write_text("1000000\n")
        (sysfs / "max_energy_range_uj").write_text("262143328850\n")
    env.update(RANK=str(rank), WORLD_SIZE="3", TORCHELASTIC_RUN_ID="logs-job", CK_TEST_OUT=str(out),
               CK_TEST_SCENARIO="logs", CARBONKIT_HOST=host, CARBONKIT_LOCATION=zone,
               CARBONKIT_LOCK_DIR=str(tmp / "locks"), CARBONKIT_LOG_DIR=str(tmp / "logs"),
               CARBONKIT_RAPL_ROOT=str(sysfs.parent), CARBONKIT_PLUGINS="nvml,rapl,intensity_static")
    return subprocess.Popen([sys.executable, str(RANK_JOB)], env=env, text=True, **popen)  # type: ignore[call-overload,no-any-return]


def test_without_a_process_group_the_job_total_comes_from_the_run_logs(tmp_path: Path) -> None:
    """Three processes of one job, no torch.distributed: rank 0 on host a (FR), rank 1 on host b
    (PL), rank 2 on host a. Rank 0 stops after the others and adds the hosts up from the logs."""
    out = tmp_path / "out"
    out.mkdir()
    rank0 = _rank(0, "a", "FR", tmp_path, out, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert rank0.stdout is not None and rank0.stdin is not None
    assert rank0.stdout.readline().strip() == "ready"  # rank 0 holds a's lock
    for rank, host, zone in ((1, "b", "PL"), (2, "a", "FR")):
        other = _rank(rank, host, zone, tmp_path, out)
        assert other.wait() == 0
    rank0.stdin.write("stop\n")
    rank0.stdin.close()
    assert rank0.wait() == 0
    rank0.stdout.close()
    roles = {r: json.loads((out / f"role-{r}.json").read_text())["role"] for r in range(3)}
    assert roles == {0: "measurer", 1: "measurer", 2: "observer"}
    job = Report.from_dict(json.loads((out / "job.json").read_text()))
    b = Report.from_dict(json.loads((out / "local-1.json").read_text()))
    a = Report.from_dict(json.loads((out / "local-0.json").read_text()))
    assert job.job_total == "run logs" and job.job == "logs-job"
    assert [(h.host, h.rank, h.ranks) for h in job.hosts] == [("a", 0, (0, 2)), ("b", 1, (1,))]
    assert job.energy_kwh == pytest.approx(a.energy_kwh + b.energy_kwh) and job.energy_kwh > 0
    assert job.co2eq_g == pytest.approx(a.co2eq_g + b.co2eq_g)
    assert job.hosts[0].intensity_g_per_kwh != job.hosts[1].intensity_g_per_kwh
    assert len(job.components["gpu"].devices) == 4 and len(job.epochs) == 2
