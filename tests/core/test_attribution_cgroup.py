"""Containers, Slurm jobs and shared GPUs: ``attribution="cgroup"`` and per-device shares.

The cgroup v2 tree is built as the kernel lays it out (Documentation/admin-guide/cgroup-v2.rst):
``/proc/self/cgroup`` holds one ``0::<path>`` line on a unified hierarchy; under the mount
(``/sys/fs/cgroup``) each cgroup is a folder with ``cgroup.procs`` (one pid per line),
``cpu.stat`` (``usage_usec``, ``user_usec``, ``system_usec``), ``cpu.max`` (``$MAX $PERIOD``
or ``max $PERIOD``), ``cpuset.cpus.effective`` (a CPU list), ``memory.current`` (bytes) and
``memory.stat`` (``anon``, ``file``... in bytes). ``/proc/stat``'s ``cpu`` line is user, nice,
system, idle, iowait, irq, softirq, steal, guest, guest_nice in USER_HZ (proc(5)); Slurm's
cgroup/v2 plugin nests ``job_<id>/step_<id>/user/task_<n>`` (slurm.schedmd.com/cgroup_v2.html).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

import pytest

import carbonkit
from carbonkit import ConfigError
from carbonkit._accounting import Accountant
from carbonkit.cgroups import CgroupShare, cpu_list, detect
from carbonkit.testing import FakeIntensity, FakePowerSource

HOST_STAT = "cpu  {user} 0 {system} 900000 1000 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\n"
MEMINFO = "MemTotal:       65536000 kB\nMemFree:        1000000 kB\nMemAvailable:   32768000 kB\n"


class CgroupTree:
    """A /proc and a cgroup v2 mount in a folder."""

    def __init__(self, root: Path, path: str, *, pids: Sequence[int] = (), host_busy_ticks: int = 0) -> None:
        self.proc = root / "proc"
        self.sys = root / "sys"
        (self.proc / "self").mkdir(parents=True)
        (self.proc / "self" / "cgroup").write_text(f"0::{path}\n")
        self.mount = self.sys / "fs" / "cgroup"
        self.mount.mkdir(parents=True)
        (self.mount / "cpu.stat").write_text("usage_usec 999999999\n")  # the root cgroup
        self.set_host(host_busy_ticks)
        (self.proc / "meminfo").write_text(MEMINFO)
        self.dir = self.mount / path.lstrip("/")
        self.make(path, pids=pids)

    def make(self, path: str, *, pids: Sequence[int] = (), usage_usec: int = 0) -> Path:
        d = self.mount / path.lstrip("/")
        d.mkdir(parents=True, exist_ok=True)
        for parent in d.relative_to(self.mount).parents:  # every cgroup has its cpu.stat
            if not (self.mount / parent / "cpu.stat").exists():
                (self.mount / parent / "cpu.stat").write_text("usage_usec 0\nuser_usec 0\nsystem_usec 0\n")
        (d / "cgroup.procs").write_text("".join(f"{p}\n" for p in pids))
        (d / "cpu.stat").write_text(f"usage_usec {usage_usec}\nuser_usec {usage_usec}\nsystem_usec 0\n")
        (d / "cpu.max").write_text("max 100000\n")
        (d / "cpuset.cpus.effective").write_text("0-63\n")
        (d / "memory.current").write_text("0\n")
        (d / "memory.stat").write_text("anon 0\nfile 0\n")
        return d

    def set_host(self, busy_ticks: int) -> None:
        (self.proc / "stat").write_text(HOST_STAT.format(user=busy_ticks // 2, system=busy_ticks - busy_ticks // 2))

    def env(self, **extra: str) -> dict[str, str]:
        return {"CARBONKIT_PROC_ROOT": str(self.proc), "CARBONKIT_SYSFS_ROOT": str(self.sys), **extra}


def test_cpu_list_parses_kernel_lists() -> None:
    assert cpu_list("0-3,8,10-11\n") == (0, 1, 2, 3, 8, 10, 11)
    assert cpu_list("") == ()


def test_detect_reads_the_cgroup_and_its_limits(tmp_path: Path) -> None:
    tree = CgroupTree(tmp_path, "/system.slice/docker-1f2e3d.scope", pids=[4321])
    (tree.dir / "cpu.max").write_text("200000 100000\n")
    (tree.dir / "cpuset.cpus.effective").write_text("0-3,8\n")
    allocation = detect(tree.env())
    assert allocation is not None
    assert allocation.kind == "cgroup"
    assert allocation.cgroup == "/system.slice/docker-1f2e3d.scope"
    assert allocation.cpus == (0, 1, 2, 3, 8)
    assert allocation.cpu_limit == 2.0
    assert allocation.describe() == "cgroup /system.slice/docker-1f2e3d.scope: 5 CPUs (0-3,8), cpu.max 2 CPUs"


def test_detect_a_namespaced_container_at_its_own_root(tmp_path: Path) -> None:
    """With a private cgroup namespace (Docker's default on cgroup v2) the path is '/'."""
    tree = CgroupTree(tmp_path, "/")
    allocation = detect(tree.env())
    assert allocation is not None and allocation.directory == tree.mount


def test_slurm_charges_the_whole_job(tmp_path: Path) -> None:
    path = "/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0"
    tree = CgroupTree(tmp_path, path, pids=[1001])
    tree.make("/system.slice/slurmstepd.scope/job_4242/step_batch/user/task_0", pids=[1000])
    env = tree.env(SLURM_JOB_ID="4242", SLURM_CPUS_ON_NODE="8", SLURM_JOB_GPUS="2,3")
    allocation = detect(env)
    assert allocation is not None
    assert allocation.kind == "slurm"
    assert allocation.cgroup == "/system.slice/slurmstepd.scope/job_4242"
    assert allocation.slurm_cpus == 8 and allocation.gpus == ("2", "3")
    assert "Slurm job 4242, cgroup /system.slice/slurmstepd.scope/job_4242" in allocation.describe()
    share = CgroupShare(allocation, proc_root=tree.proc, clock_ticks=100)
    assert share.pids() == {1000, 1001}  # every step of the job


def test_cgroup_v1_only_is_no_allocation(tmp_path: Path) -> None:
    tree = CgroupTree(tmp_path, "/x")
    (tree.proc / "self" / "cgroup").write_text("12:cpu,cpuacct:/x\n11:memory:/x\n")
    assert detect(tree.env()) is None
    with pytest.raises(ConfigError, match="attribution='cgroup' needs a cgroup v2 hierarchy"):
        CgroupShare.from_env(tree.env())


def test_cpu_share_is_the_cgroups_usage_over_the_hosts_busy_time(tmp_path: Path) -> None:
    tree = CgroupTree(tmp_path, "/kubepods.slice/pod1", host_busy_ticks=10_000)
    share = CgroupShare.from_env(tree.env())
    share.clock_ticks = 100
    assert share.sample()["cpu"] == 0.0  # the first call only sets the baseline
    # 4 s of the host's busy time (400 ticks at USER_HZ 100), 1 s of it the cgroup's:
    tree.set_host(10_400)
    (tree.dir / "cpu.stat").write_text("usage_usec 1000000\nuser_usec 900000\nsystem_usec 100000\n")
    (tree.dir / "memory.current").write_text(str(4 * 2**30) + "\n")
    (tree.dir / "memory.stat").write_text(f"anon {3 * 2**30}\nfile {2**30}\n")
    got = share.sample()
    assert got["cpu"] == pytest.approx(0.25)
    # 3 GiB without page cache over MemTotal - MemAvailable = 32768000 kB:
    assert got["dram"] == pytest.approx(3 * 2**30 / (32_768_000 * 1024))


def test_device_shares_scale_one_device_each() -> None:
    acc = Accountant.for_sources(
        [{"name": "g:energy", "component": "gpu", "kind": "energy", "devices": ["a", "b"], "method": "measured"}],
        start_wall=0.0,
    )
    acc.add(0.0, [[0.0, 0.0]])
    acc.add(1.0, [[100.0, 200.0]], {"cpu": 0.5, "g:energy#0": 0.25, "g:energy#1": 1.0})
    assert acc.component_j["gpu"] == 300.0
    assert acc.component_attr_j["gpu"] == pytest.approx(225.0)


class SharedGpus(FakePowerSource):
    """Two GPUs at 100 W and 200 W, the tracked processes taking 25 % of the first."""

    def __init__(self, answer: object = (0.25, 1.0)) -> None:
        super().__init__(watts=[100.0, 200.0], name="shared:gpu", component="gpu")
        self.answer = answer
        self.seen: list[frozenset[int]] = []

    def process_shares(self, pids: Collection[int]) -> object:
        self.seen.append(frozenset(pids))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def run(source: SharedGpus, reporters: Sequence[object] = (), **kwargs: object) -> carbonkit.Report:
    t = carbonkit.Tracker(sources=[source], provider=FakeIntensity(g_per_kwh=100.0), reporters=list(reporters),
                          location="XX",
                          pue=1.0, interval_s=0.01, **kwargs)  # type: ignore[arg-type]
    return t.stop()


def test_process_attribution_splits_a_shared_gpu_and_keeps_the_machine_figure() -> None:
    source = SharedGpus()
    r = run(source, attribution="process")
    gpu = r.components["gpu"]
    assert gpu.machine_it_energy_kwh * 3.6e6 == pytest.approx(300.0 * r.duration_s, rel=1e-9)
    assert gpu.it_energy_kwh == pytest.approx(gpu.machine_it_energy_kwh * 225.0 / 300.0, rel=1e-9)
    assert all(os.getpid() in pids for pids in source.seen)
    assert any("process attribution: charged by the process tree of pid" in d for d in gpu.details)


@pytest.mark.parametrize("answer", [RuntimeError("NVML gone"), (0.5,), (2.0, 0.5), "ab", None, (float("nan"), 1.0)])
def test_a_source_that_cannot_split_is_charged_whole(answer: object) -> None:
    r = run(SharedGpus(answer), attribution="process")
    gpu = r.components["gpu"]
    assert gpu.it_energy_kwh == pytest.approx(gpu.machine_it_energy_kwh, rel=1e-9)


def test_machine_attribution_never_asks_for_shares() -> None:
    source = SharedGpus()
    r = run(source)
    assert source.seen == []
    assert r.components["gpu"].it_energy_kwh == r.components["gpu"].machine_it_energy_kwh


def test_cgroup_attribution_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = CgroupTree(tmp_path, "/system.slice/slurmstepd.scope/job_77/step_0/user/task_0", pids=[5150, 5151])
    for key, value in tree.env(SLURM_JOB_ID="77", SLURM_JOB_GPUS="0").items():
        monkeypatch.setenv(key, value)
    source = SharedGpus()
    r = run(source, attribution="cgroup")
    assert r.attribution == "cgroup"
    assert source.seen and all(pids == {5150, 5151} for pids in source.seen)
    details = " ".join(r.components["gpu"].details)
    assert "cgroup attribution: charged by Slurm job 77, cgroup /system.slice/slurmstepd.scope/job_77" in details
    assert "GPUs 0" in details
    assert r.components["gpu"].it_energy_kwh == pytest.approx(r.components["gpu"].machine_it_energy_kwh * 0.75)


def test_cgroup_attribution_outside_cgroup_v2_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONKIT_PROC_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="needs a cgroup v2 hierarchy"):
        run(SharedGpus(), attribution="cgroup")


def test_cgroup_attribution_is_replayed_from_the_run_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = CgroupTree(tmp_path, "/user.slice/job", pids=[42])
    for key, value in tree.env().items():
        monkeypatch.setenv(key, value)
    logs = tmp_path / "logs"
    logs.mkdir()
    r = run(SharedGpus(), attribution="cgroup", reporters=[carbonkit.runlog.RunLogWriter(logs)])
    (log,) = [p for p in logs.iterdir() if p.is_file()]
    import json

    from carbonkit import load_run

    lines = [line for line in log.read_text().splitlines() if json.loads(line).get("type") != "report"]
    killed = tmp_path / "killed.jsonl"  # as if the run had been killed: recomputed from its records
    killed.write_text("\n".join(lines) + "\n")
    again = load_run(killed)
    assert again.completed is False
    gpu = again.components["gpu"]  # the per-device shares were logged: the split is replayed exactly
    assert gpu.it_energy_kwh == pytest.approx(gpu.machine_it_energy_kwh * 0.75, rel=1e-9)
    assert gpu.it_energy_kwh == pytest.approx(r.components["gpu"].it_energy_kwh, rel=1e-3)  # times logged to 1 us
    assert again.components["gpu"].details == r.components["gpu"].details


def test_a_cgroup_pinned_to_one_package_is_charged_that_package_only(tmp_path: Path) -> None:
    """Two packages of 4 CPUs (topology/physical_package_id); the cgroup's cpuset is package 1's."""
    tree = CgroupTree(tmp_path, "/slurm/job_9")
    (tree.dir / "cpuset.cpus.effective").write_text("4-7\n")
    for cpu in range(8):
        topo = tree.sys / "devices" / "system" / "cpu" / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{cpu // 4}\n")
    (tree.sys / "devices" / "system" / "cpu" / "cpufreq").mkdir()  # not a CPU

    def host(per_cpu_ticks: list[int]) -> None:
        lines = [f"cpu  {sum(per_cpu_ticks)} 0 0 100000 0 0 0 0 0 0"]
        lines += [f"cpu{i} {t} 0 0 10000 0 0 0 0 0 0" for i, t in enumerate(per_cpu_ticks)]
        (tree.proc / "stat").write_text("\n".join(lines) + "\n")

    host([0] * 8)
    share = CgroupShare.from_env(tree.env())
    share.clock_ticks = 100
    share.sample()
    # Package 0 busy for 4 s, package 1 for 2 s; the cgroup used 1 s (all on package 1):
    host([100, 100, 100, 100, 50, 50, 50, 50])
    (tree.dir / "cpu.stat").write_text("usage_usec 1000000\n")
    got = share.sample()
    assert got["cpu"] == pytest.approx(1 / 6)  # against the whole host
    assert share.package_shares == {0: 0.0, 1: pytest.approx(0.5)}  # against the packages it may use
    assert share.device_shares("cpu", ["package-0", "package-1"]) == [0.0, pytest.approx(0.5)]
    assert share.device_shares("cpu", ["package-0-die-0", "package-1 (intel-rapl-tpmi:1)"]) == [0.0, pytest.approx(0.5)]
    assert share.device_shares("cpu", ["socket0"]) is None  # not packages: the component share applies
    assert share.device_shares("dram", ["dram-0"]) is None
    (tree.dir / "cpuset.cpus.effective").write_text("0-7\n")
    whole = CgroupShare.from_env(tree.env())
    whole.sample()
    whole.sample()
    assert whole.package_shares is None  # every package: the machine-wide share


def test_tracker_applies_package_shares_to_a_package_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = CgroupTree(tmp_path, "/pinned")
    (tree.dir / "cpuset.cpus.effective").write_text("1\n")
    for cpu in range(2):
        topo = tree.sys / "devices" / "system" / "cpu" / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{cpu}\n")
    for key, value in tree.env().items():
        monkeypatch.setenv(key, value)
    logs = tmp_path / "logs"
    logs.mkdir()
    source = FakePowerSource(watts=[100.0, 100.0], name="rapl:cpu", component="cpu", labels=["package-0", "package-1"])
    t = carbonkit.Tracker(sources=[source], provider=FakeIntensity(g_per_kwh=100.0), location="XX", pue=1.0,
                          interval_s=0.01, attribution="cgroup", reporters=[carbonkit.runlog.RunLogWriter(logs)])
    r = t.stop()
    import json

    (log,) = [p for p in logs.iterdir() if p.is_file()]
    shares = [json.loads(line)["s"] for line in log.read_text().splitlines() if '"type": "shares"' in line
              or '"type":"shares"' in line]
    assert shares and all(s["rapl:cpu#0"] == 0.0 for s in shares)  # package 0 is not the cgroup's
    assert r.components["cpu"].it_energy_kwh == 0.0  # and package 1 was idle (no busy time at all)
