"""Real torchrun jobs on the gloo back end: one measurer per host and the job's total on rank 0.

Each rank of a job runs ``rank_job.py``: it creates a tracker from the installed plugins over
its host's simulated GPUs (a fake NVML shared by the host's processes) and a powercap tree.
Ranks synchronise on the process group (barriers), never on sleeps. Needs torch (CPU build):
``make test-distributed``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

import carbonkit  # noqa: E402

RANK_JOB = Path(__file__).with_name("rank_job.py")
#: Upper bound for one job; a job that hangs fails the test instead of the suite.
JOB_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def powercap(root: Path, joules: int = 1) -> Path:
    """A powercap tree with one package zone (its counter stands still: 0 W)."""
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text(f"{joules * 1_000_000}\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    (zone / "enabled").write_text("1\n")
    return root


def base_env(tmp: Path, out: Path, scenario: str, host: str, location: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARBONKIT_", "CUDA_", "SLURM_", "OMPI_", "PMI"))}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                 "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    env.update(
        CK_TEST_OUT=str(out),
        CK_TEST_SCENARIO=scenario,
        CK_TEST_GPUS="2",
        CARBONKIT_HOST=host,
        CARBONKIT_LOCATION=location,
        CARBONKIT_LOCK_DIR=str(tmp / "locks"),
        CARBONKIT_RAPL_ROOT=str(powercap(tmp / f"sys-{host}")),
        CARBONKIT_DISABLE_PLUGINS="cpu_estimate",
        OMP_NUM_THREADS="1",
    )
    return env


def torchrun(nproc: int, env: Mapping[str, str], *, nnodes: int = 1, node_rank: int = 0,
             port: int | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes == 1 and port is None:
        args.append("--standalone")
    else:
        args += [f"--nnodes={nnodes}", f"--node-rank={node_rank}", "--master-addr=127.0.0.1",
                 f"--master-port={port}"]
    args.append(str(RANK_JOB))
    return subprocess.Popen(args, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(*jobs: subprocess.Popen[str]) -> None:
    outputs = []
    for job in jobs:
        try:
            output, _ = job.communicate(timeout=JOB_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            job.kill()
            output, _ = job.communicate()
        outputs.append(output)
    for job, output in zip(jobs, outputs):
        assert job.returncode == 0, output


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def gpus_of(report: carbonkit.Report) -> list[str]:
    comp = report.components.get("gpu")
    return list(comp.devices) if comp is not None else []


def test_one_host_counts_its_gpus_once(tmp_path: Path) -> None:
    """Four ranks on one host: one measures the host's 2 GPUs and its CPU package, three observe;
    rank 0's report is the host's, with the GPUs once (not four times)."""
    out = tmp_path / "out"
    out.mkdir()
    finish(torchrun(4, base_env(tmp_path, out, "normal", "node1", "FR")))
    roles = [load(out / f"role-{r}.json")["role"] for r in range(4)]
    assert sorted(roles) == ["measurer", "observer", "observer", "observer"]
    job = carbonkit.Report.from_dict(load(out / "job.json"))
    locals_ = [carbonkit.Report.from_dict(load(out / f"local-{r}.json")) for r in range(4)]
    measurer = locals_[roles.index("measurer")]
    assert job.job_total == "process group"
    assert len(gpus_of(measurer)) == 2 and len(gpus_of(job)) == 2
    assert [h.host for h in job.hosts] == ["node1"] and job.hosts[0].ranks == (0, 1, 2, 3)
    assert job.hosts[0].rank == roles.index("measurer")
    for observer in (r for r, role in zip(locals_, roles) if role == "observer"):
        assert observer.components == {} and observer.energy_kwh == 0.0 and len(observer.epochs) == 2
    assert job.it_energy_kwh == pytest.approx(measurer.it_energy_kwh) and job.it_energy_kwh > 0
    assert job.co2eq_g == pytest.approx(measurer.co2eq_g)
    assert job.components["gpu"].it_energy_kwh == pytest.approx(measurer.components["gpu"].it_energy_kwh)
    assert len(job.epochs) == 2
    assert [e.start_s for e in job.epochs] == [e.start_s for e in locals_[0].epochs]  # rank 0's epochs
    assert job.units == 40 and job.sci is not None  # every rank's 10 samples
    assert job.sci.operational_g == pytest.approx(job.co2eq_g)


def test_local_rank_zero_starting_last_is_still_counted_once(tmp_path: Path) -> None:
    """The measurer is whichever process takes the host lock first, whatever its rank: when local
    rank 0 creates its tracker last, another rank measures and rank 0 observes."""
    out = tmp_path / "out"
    out.mkdir()
    finish(torchrun(3, base_env(tmp_path, out, "late-local-zero", "node1", "FR")))
    roles = {r: load(out / f"role-{r}.json")["role"] for r in range(3)}
    assert roles[0] == "observer" and sorted(roles.values()) == ["measurer", "observer", "observer"]
    job = carbonkit.Report.from_dict(load(out / "job.json"))
    local0 = carbonkit.Report.from_dict(load(out / "local-0.json"))
    assert local0.role == "observer" and local0.energy_kwh == 0.0
    assert len(gpus_of(job)) == 2 and job.hosts[0].rank != 0 and job.it_energy_kwh > 0


def test_two_hosts_give_one_job_report(tmp_path: Path) -> None:
    """Two torchrun node groups standing for hosts a (FR) and b (PL), two ranks each: rank 0's
    report has both hosts, each priced with its own zone, and equals the sum of the hosts."""
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    jobs = [
        torchrun(2, base_env(tmp_path, out, "normal", host, zone), nnodes=2, node_rank=i, port=port)
        for i, (host, zone) in enumerate((("a", "FR"), ("b", "PL")))
    ]
    finish(*jobs)
    job = carbonkit.Report.from_dict(load(out / "job.json"))
    roles = [load(out / f"role-{r}.json") for r in range(4)]
    for host in ("a", "b"):
        assert sorted(r["role"] for r in roles if r["host"] == host) == ["measurer", "observer"]
    assert job.job_total == "process group" and job.job == f"127.0.0.1:{port}"
    assert [h.host for h in job.hosts] == ["a", "b"]
    a, b = job.hosts
    assert (a.location, b.location) == ("FR", "PL") and job.location == "FR,PL"
    assert a.intensity_g_per_kwh != b.intensity_g_per_kwh
    for h in job.hosts:
        assert h.co2eq_g == pytest.approx(h.energy_kwh * h.intensity_g_per_kwh)
        assert sorted(h.components) == ["cpu", "gpu"]
    assert job.energy_kwh == pytest.approx(a.energy_kwh + b.energy_kwh)
    assert job.it_energy_kwh == pytest.approx(a.it_energy_kwh + b.it_energy_kwh)
    assert job.co2eq_g == pytest.approx(a.co2eq_g + b.co2eq_g)
    assert len(gpus_of(job)) == 4 and {d.split("/")[0] for d in gpus_of(job)} == {"a", "b"}
    assert len(job.components["cpu"].devices) == 2
    # Each host's figures are its measurer's own report.
    measurers = {r["host"]: r["rank"] for r in roles if r["role"] == "measurer"}
    for h in job.hosts:
        own = carbonkit.Report.from_dict(load(out / f"local-{measurers[h.host]}.json"))
        assert h.rank == measurers[h.host]
        assert h.energy_kwh == pytest.approx(own.energy_kwh) and h.co2eq_g == pytest.approx(own.co2eq_g)
    # Epochs: rank 0's, with every host's energy.
    assert len(job.epochs) == 2
    assert sum(e.it_energy_kwh for e in job.epochs) <= job.it_energy_kwh * (1 + 1e-9)


def test_a_rank_that_never_stops_leaves_rank_zero_its_own_host(tmp_path: Path) -> None:
    """Rank 1 (on the other host) dies without stop(): rank 0's stop() returns within its timeout
    with its own host's report and a warning naming the missing rank."""
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    envs = [base_env(tmp_path, out, "missing", host, "FR") for host in ("a", "b")]
    for env in envs:
        env["CK_TEST_STOP_TIMEOUT"] = "2"
    jobs = [torchrun(1, env, nnodes=2, node_rank=i, port=port) for i, env in enumerate(envs)]
    finish(*jobs)
    job = carbonkit.Report.from_dict(load(out / "job.json"))
    assert job.job_total == "this host only"
    assert [h.host for h in job.hosts] == ["a"]
    assert any("1 of the 1 other process(es) running a tracker did not send" in w for w in job.warnings)
    assert len(gpus_of(job)) == 2


def test_carbonkit_never_imports_torch(tmp_path: Path) -> None:
    """A rank of a job that never imported torch: building, running and stopping a tracker leaves
    torch unimported (carbonkit only looks in sys.modules)."""
    code = (
        "import sys, carbonkit\n"
        "t = carbonkit.Tracker(sources=[carbonkit.SimulatedSource(watts=10.0)], quiet=True, location='WORLD')\n"
        "r = t.stop()\n"
        "print(t.role, r.job_total, 'torch' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env.update(RANK="1", WORLD_SIZE="2", TORCHELASTIC_RUN_ID="no-torch", CARBONKIT_LOCK_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["measurer", "None", "False"]


def test_a_dead_rank_is_counted_from_the_run_logs(tmp_path: Path) -> None:
    """The same dead rank with a shared log folder: rank 0 makes the job total from the run logs,
    with the dead rank's host recovered from its log as far as it went."""
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    envs = [base_env(tmp_path, out, "missing", host, zone) for host, zone in (("a", "FR"), ("b", "PL"))]
    for env in envs:
        env["CK_TEST_STOP_TIMEOUT"] = "2"
        env["CARBONKIT_LOG_DIR"] = str(tmp_path / "logs")
    finish(*[torchrun(1, env, nnodes=2, node_rank=i, port=port) for i, env in enumerate(envs)])
    job = carbonkit.Report.from_dict(load(out / "job.json"))
    assert job.job_total == "run logs"
    assert [h.host for h in job.hosts] == ["a", "b"]
    a, b = job.hosts
    assert a.completed and not b.completed and not job.completed  # b's measurer never stopped
    assert any("1 of the 1 other process(es) running a tracker did not send" in w for w in job.warnings)
    assert any("had no final report" in w for w in job.warnings)
    assert job.energy_kwh == pytest.approx(a.energy_kwh + b.energy_kwh)
    assert job.co2eq_g == pytest.approx(a.co2eq_g + b.co2eq_g)
    assert len(gpus_of(job)) == 4


def test_a_job_tracked_on_rank_zero_alone_does_not_wait(tmp_path: Path) -> None:
    """Only rank 0 creates a tracker: no other process registered one, so rank 0 waits for nobody
    (its stop() timeout is longer than the test's own limit on the job) and says what it covers."""
    out = tmp_path / "out"
    out.mkdir()
    env = base_env(tmp_path, out, "rank0-only", "node1", "FR")
    env["CK_TEST_STOP_TIMEOUT"] = str(JOB_TIMEOUT_S * 5)
    finish(torchrun(2, env))
    job = carbonkit.Report.from_dict(load(out / "job.json"))
    assert job.job_total == "process group" and [h.host for h in job.hosts] == ["node1"]
    assert any("1 of the job's 2 processes run no tracker" in w for w in job.warnings)
    assert not any("did not send" in w for w in job.warnings)
    assert len(gpus_of(job)) == 2


def test_the_documented_torchrun_recipe_runs(tmp_path: Path) -> None:
    """examples/ddp_train.py under torchrun, as docs/distributed.md shows it: rank 0 prints the
    job's total made from the process group, with the host's measurer named."""
    out = tmp_path / "out"
    out.mkdir()
    env = base_env(tmp_path, out, "normal", "node1", "FR")
    env.update(DEMO_EPOCHS="2", DEMO_STEPS="5")
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
            str(Path(__file__).parents[2] / "examples" / "ddp_train.py")]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "made from the process group" in done.stdout.splitlines()[-1]
    assert "carbonkit: Job " in done.stderr and "total, 1 host(s), made from the process group" in done.stderr
    assert "host node1 (measured by rank " in done.stderr and "ranks 0,1)" in done.stderr
