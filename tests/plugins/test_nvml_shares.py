"""The nvml plugin's split of a shared GPU among processes (``process_shares``).

Against the stand-in NVML (``fake_pynvml.py``), whose ``nvmlDeviceGetProcessUtilization`` follows
nvml.h and nvidia-ml-py 12/13: ``nvmlDeviceGetProcessUtilization(handle, timeStamp)`` returns a
list of ``c_nvmlProcessUtilizationSample_t`` (``pid``, ``timeStamp`` in microseconds, ``smUtil``,
``memUtil``, ``encUtil``, ``decUtil`` in percent) newer than ``timeStamp`` (nvml.h's
``lastSeenTimeStamp``); it raises ``NVMLError_NotFound`` when there is no such sample and
``NVMLError_NotSupported`` where the device cannot give them (before Maxwell, and in MIG mode).
``nvmlDeviceGetComputeRunningProcesses`` entries carry ``usedGpuMemory`` in bytes, or None where
NVML cannot give it (the nvidia-ml-py comment: "On Windows with the WDDM driver, usedGpuMemory is
reported as None").
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import carbonkit
from carbonkit.testing import FakeIntensity
from carbonkit_nvml import NvmlSource


def _load_fake() -> ModuleType:
    name = "carbonkit_tests_fake_pynvml"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fake_pynvml.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fp = _load_fake()
FakeGpu = fp.FakeGpu
FakePynvml = fp.FakePynvml

ME, CHILD, OTHER = 1000, 1001, 2000
GIB = 1 << 30


def source(fake: object, attribution: str = "process") -> NvmlSource:
    config = carbonkit.Config(attribution="machine", options={"nvml.process_gpus": False})
    (src,) = NvmlSource.discover(config, nvml=fake, environ={})  # type: ignore[arg-type]
    assert isinstance(src, NvmlSource)
    src.attribution = attribution
    return src


def test_fake_sample_matches_the_real_structure() -> None:
    """The stand-in's sample has the fields of nvidia-ml-py's c_nvmlProcessUtilizationSample_t."""
    import pynvml

    real = [name for name, _ in pynvml.c_nvmlProcessUtilizationSample_t._fields_]
    assert real == ["pid", "timeStamp", "smUtil", "memUtil", "encUtil", "decUtil"]
    assert list(fp.FakeProcessUtilizationSample.__dataclass_fields__) == real


def test_fake_raises_not_found_without_new_samples() -> None:
    fake = FakePynvml([FakeGpu(process_util={ME: (50, 10, 0, 0)})])
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(fake.NVMLError_NotFound):
        fake.nvmlDeviceGetProcessUtilization(handle, 0)
    fake.advance(1.0)
    samples = fake.nvmlDeviceGetProcessUtilization(handle, 0)
    assert len(samples) == 6 and {s.pid for s in samples} == {ME}
    with pytest.raises(fake.NVMLError_NotFound):
        fake.nvmlDeviceGetProcessUtilization(handle, max(s.timeStamp for s in samples))


def test_two_processes_on_one_gpu_split_by_sm_utilisation() -> None:
    """The tree (ME and CHILD) at 45 % + 15 % SM, another job at 20 %: the tree takes 60/80."""
    gpu = FakeGpu(process_util={ME: (45, 30, 0, 0), CHILD: (15, 5, 0, 0), OTHER: (20, 40, 0, 0)},
                  compute_pids=[ME, CHILD, OTHER])
    fake = FakePynvml([gpu])
    src = source(fake)
    src.read()
    # No sample yet (NOT_FOUND): three processes holding 1 GiB each, two of them the tree's.
    assert src.process_shares({ME, CHILD}) == [pytest.approx(2 / 3)]
    fake.advance(1.0)
    src.read()
    assert src.process_shares({ME, CHILD}) == [pytest.approx(0.75)]
    assert src.info["process share"].startswith("nvmlDeviceGetProcessUtilization")


def test_each_sample_counts_once() -> None:
    """lastSeenTimeStamp moves to the newest sample: the next interval sees only its own."""
    gpu = FakeGpu(process_util={ME: (90, 0, 0, 0), OTHER: (10, 0, 0, 0)}, compute_pids=[ME, OTHER])
    fake = FakePynvml([gpu])
    src = source(fake)
    fake.advance(1.0)
    assert src.process_shares({ME}) == [pytest.approx(0.9)]
    gpu.process_util = {ME: (10, 0, 0, 0), OTHER: (30, 0, 0, 0)}
    fake.advance(1.0)
    assert src.process_shares({ME}) == [pytest.approx(0.25)]


def test_encoder_work_counts_when_no_process_uses_the_sms() -> None:
    gpu = FakeGpu(process_util={ME: (0, 0, 30, 0), OTHER: (0, 0, 0, 10)}, compute_pids=[ME, OTHER])
    fake = FakePynvml([gpu])
    src = source(fake)
    fake.advance(1.0)
    assert src.process_shares({ME}) == [pytest.approx(0.75)]


def test_no_samples_in_the_interval_falls_back_to_running_processes_memory() -> None:
    """NOT_FOUND (nobody computed): the GPU's idle draw goes by memory held."""
    gpu = FakeGpu(compute_pids=[ME, OTHER], used_memory={ME: 3 * GIB, OTHER: GIB})
    fake = FakePynvml([gpu])
    src = source(fake)
    fake.advance(1.0)
    assert src.process_shares({ME}) == [pytest.approx(0.75)]


def test_without_utilisation_support_memory_then_equal_split() -> None:
    gpu = FakeGpu(util_supported=False, compute_pids=[ME, OTHER], graphics_pids=[ME],
                  process_util={ME: (99, 0, 0, 0)}, used_memory={ME: GIB, OTHER: 3 * GIB})
    fake = FakePynvml([gpu])
    src = source(fake)
    fake.advance(1.0)
    assert src.process_shares({ME}) == [pytest.approx(0.25)]  # ME counted once though in both lists
    gpu.used_memory = {ME: None, OTHER: None}
    gpu.compute_pids = [ME, OTHER, 3000]
    assert src.process_shares({ME}) == [pytest.approx(1 / 3)]
    assert fake.calls["nvmlDeviceGetProcessUtilization"] == 1  # not asked again once unsupported


def test_no_process_on_the_gpu_is_share_zero_and_no_answer_is_none() -> None:
    idle = FakeGpu()
    mute = FakeGpu(util_supported=False, processes_supported=False)
    fake = FakePynvml([idle, mute])
    src = source(fake)
    fake.advance(1.0)
    assert src.process_shares({ME}) == [0.0, None]


def test_mig_gpu_is_split_by_its_processes() -> None:
    """Process utilisation is not supported in MIG mode: the slices' processes' memory splits it."""
    gpu = FakeGpu(mig_capable=True, mig_enabled=True, mig_uuids=("MIG-a", "MIG-b"),
                  mig_pids={"MIG-a": [ME], "MIG-b": [OTHER]})
    fake = FakePynvml([gpu])
    src = source(fake)
    fake.advance(1.0)
    assert src.process_shares({ME}) == [pytest.approx(0.5)]


def test_tracker_charges_the_tree_its_share_and_keeps_the_machine_figure() -> None:
    """End to end: a Tracker with attribution='process' over the NVML source."""
    import os

    me = os.getpid()
    gpu = FakeGpu(power_w=200.0, energy_counter=False, process_util={me: (60, 0, 0, 0), OTHER: (20, 0, 0, 0)},
                  compute_pids=[me, OTHER])
    fake = FakePynvml([gpu])
    src = source(fake)

    class Stepping:
        """Advances the fake GPU by one second at each read (its samples), read as power (W)."""

        name, component, method, kind = src.name, src.component, src.method, src.kind
        max_power_w = src.max_power_w
        info = src.info

        def devices(self) -> list[str]:
            return src.devices()

        def read(self) -> list[float]:
            fake.advance(1.0)
            return src.read()

        def process_shares(self, pids: object) -> list[float | None]:
            return src.process_shares(pids)  # type: ignore[arg-type]

        def close(self) -> None:
            src.close()

    t = carbonkit.Tracker(sources=[Stepping()], provider=FakeIntensity(g_per_kwh=100.0),
                          reporters=[], location="XX", pue=1.0, interval_s=300, attribution="process")
    r = t.stop()
    component = r.components["gpu"]
    assert component.machine_it_energy_kwh * 3.6e6 == pytest.approx(200.0 * r.duration_s, rel=1e-6)
    assert component.it_energy_kwh == pytest.approx(component.machine_it_energy_kwh * 0.75, rel=1e-9)
    assert any("process share" in d for d in component.details)


# -- the GPUs of a Slurm allocation -----------------------------------------------------------


def _selected(fake: object, environ: dict[str, str]) -> list[int]:
    config = carbonkit.Config(options={"nvml.process_gpus": False})
    sources = NvmlSource.discover(config, nvml=fake, environ=environ)  # type: ignore[arg-type]
    return [g.index for s in sources if isinstance(s, NvmlSource) for g in s.gpus]


def test_slurm_job_gpus_choose_when_cuda_visible_devices_is_unset() -> None:
    """SLURM_JOB_GPUS: "The global GPU IDs of the GPUs allocated to this job" (sbatch(1))."""
    fake = FakePynvml([FakeGpu() for _ in range(4)])
    assert _selected(fake, {"SLURM_JOB_ID": "7", "SLURM_JOB_GPUS": "1,3"}) == [1, 3]
    # CUDA_VISIBLE_DEVICES, when set, wins (Slurm sets it for the job's steps):
    assert _selected(fake, {"SLURM_JOB_GPUS": "1,3", "CUDA_VISIBLE_DEVICES": "0"}) == [0]


def test_slurm_with_constrained_devices_measures_what_nvml_sees() -> None:
    """ConstrainDevices=yes: the job's cgroup hides the other GPUs, NVML numbers the rest from 0."""
    fake = FakePynvml([FakeGpu(), FakeGpu()])
    assert _selected(fake, {"SLURM_JOB_ID": "7", "SLURM_JOB_GPUS": "5,6"}) == [0, 1]


def test_process_attribution_splits_rather_than_filters() -> None:
    """attribution='process' no longer drops the GPUs the tree does not use: it charges them 0
    through the split, and the machine figure keeps their energy."""
    fake = FakePynvml([FakeGpu(compute_pids=[OTHER]), FakeGpu(compute_pids=[ME])])
    (src,) = NvmlSource.discover(carbonkit.Config(attribution="process"), nvml=fake, environ={})
    assert isinstance(src, NvmlSource)
    assert src.processes is None and src.attribution == "process"
    src.read()
    fake.advance(1.0)
    assert src.read() == [pytest.approx(100.0), pytest.approx(100.0)]  # both GPUs' energy, machine level
    assert src.process_shares({ME}) == [0.0, 1.0]
