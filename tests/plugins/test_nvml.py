"""Tests of the nvml plugin against a simulated NVML module (tests/plugins/fake_pynvml.py)."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import math
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import pytest

import carbonkit
import carbonkit.hookspecs
import carbonkit_nvml
from carbonkit import ConfigError, MeasurementError, Unavailable
from carbonkit_nvml import NvmlSource


def _load_fake() -> ModuleType:
    name = "carbonkit_tests_fake_pynvml"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fake_pynvml.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
        spec.loader.exec_module(module)
    return sys.modules[name]


fp = _load_fake()
FakeGpu = fp.FakeGpu
FakePynvml = fp.FakePynvml

UUID_0 = "GPU-3f2a8c41-6d0e-4b7a-9c2f-0e1d2c3b4a50"
UUID_1 = "GPU-3f2a9d07-1b2c-4d3e-8f40-5a6b7c8d9e01"  # shares the prefix GPU-3f2a with gpu0
UUID_2 = "GPU-b7e01c55-2a3b-4c5d-9e6f-708192a3b4c5"
MIG_1A = "MIG-5c1f0e2d-8a7b-5c6d-9e0f-1a2b3c4d5e6f"  # slices of gpu1
MIG_1B = "MIG-9d3e4f50-6a7b-5c8d-8e9f-0a1b2c3d4e5f"
H100 = "NVIDIA H100 80GB HBM3"
P100 = "Tesla P100-PCIE-16GB"
PCI_ORDER = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def ramp_w(t: float) -> float:
    """A busy GPU: 250 W swinging by 100 W."""
    return 250.0 + 100.0 * math.sin(t / 20.0)


def old_gpu_w(t: float) -> float:
    """A pre-Volta GPU under a varying load."""
    return 120.0 + 60.0 * math.sin(t / 15.0)


def machine(**kwargs: Any) -> Any:
    """Two H100 with energy counters (gpu1 in MIG mode) and one P100 with power only."""
    return FakePynvml(
        [
            FakeGpu(name=H100, uuid=UUID_0, power_w=300.0, mig_capable=True),
            FakeGpu(name=H100, uuid=UUID_1, power_w=ramp_w, mig_capable=True, mig_enabled=True,
                    mig_uuids=(MIG_1A, MIG_1B)),
            FakeGpu(name=P100, uuid=UUID_2, power_w=old_gpu_w, energy_counter=False, compute_capability=(6, 0),
                    power_limits_mw=(125_000, 250_000)),
        ],
        **kwargs,
    )


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    """Collect what discover() returns and close the sources after the test."""
    found: list[Any] = []
    yield found
    for item in found:
        if isinstance(item, NvmlSource):
            item.close()


def discover(
    fake: Any, opened: list[Any], environ: Mapping[str, str] | None = None, config: Any = None
) -> list[Any]:
    result = NvmlSource.discover(
        config or carbonkit.Config(),
        nvml=fake,
        environ=PCI_ORDER if environ is None else environ,
        clock=lambda: fake.time_s,
    )
    opened.extend(result)
    return result


def by_kind(sources: list[Any]) -> dict[str, Any]:
    return {s.kind: s for s in sources if isinstance(s, NvmlSource)}


def indices(sources: list[Any]) -> tuple[list[int], list[int]]:
    """NVML indices of the energy source's and of the power source's devices, in order."""
    kinds = by_kind(sources)
    return tuple(  # type: ignore[return-value]
        [int(label.split()[0][3:]) for label in kinds[k].devices()] if k in kinds else [] for k in ("energy", "power")
    )


def plugin_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("carbonkit_nvml")
    ]


# -- the stand-in module ------------------------------------------------------------------


def test_fake_module_matches_real_pynvml() -> None:
    """The stand-in has pynvml's error codes, error classes, error texts and argument names."""
    import pynvml

    fake = FakePynvml([])
    real_codes = {n: getattr(pynvml, n) for n in dir(pynvml) if n.startswith("NVML_ERROR_")}
    assert {n: getattr(fake, n) for n in real_codes} == real_codes
    for code in real_codes.values():
        real, mine = pynvml.NVMLError(code), fake.NVMLError(code)
        assert type(mine).__name__ == type(real).__name__
        assert isinstance(mine, fake.NVMLError) and mine.value == real.value == code
        if code in pynvml.NVMLError._errcode_to_string:  # the others need the C library for a text
            assert str(mine) == str(real)
        assert isinstance(getattr(fake, type(real).__name__)(), fake.NVMLError)
    assert fake.NVML_DEVICE_MIG_ENABLE == pynvml.NVML_DEVICE_MIG_ENABLE
    assert not issubclass(fake.NVMLLibraryMismatchError, fake.NVMLError)
    assert not issubclass(pynvml.NVMLLibraryMismatchError, pynvml.NVMLError)
    used = [
        "nvmlInit", "nvmlShutdown", "nvmlSystemGetDriverVersion", "nvmlDeviceGetCount",
        "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetHandleByUUID", "nvmlDeviceGetUUID", "nvmlDeviceGetName",
        "nvmlDeviceGetIndex", "nvmlDeviceGetCudaComputeCapability", "nvmlDeviceGetMigMode",
        "nvmlDeviceGetDeviceHandleFromMigDeviceHandle", "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetPowerUsage", "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses",
        "nvmlDeviceGetPowerManagementLimitConstraints", "nvmlDeviceGetProcessUtilization",
    ]  # fmt: skip
    for name in used:
        real_params = list(inspect.signature(getattr(pynvml, name)).parameters)
        assert list(inspect.signature(getattr(fake, name)).parameters) == real_params, name


def test_fake_module_types_and_units() -> None:
    """The stand-in returns str names, int millijoules and int milliwatts, and refuses calls outside init."""
    fake = FakePynvml([FakeGpu(name=H100, uuid=UUID_0, power_w=300.0, energy_mj=1000.0)])
    with pytest.raises(fake.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    assert fake.nvmlDeviceGetName(handle) == H100 and fake.nvmlDeviceGetUUID(handle) == UUID_0
    fake.advance(2.0)
    assert fake.nvmlDeviceGetTotalEnergyConsumption(handle) == 601_000
    assert fake.nvmlDeviceGetPowerUsage(handle) == 300_000
    with pytest.raises(fake.NVMLError_NotSupported):
        fake.nvmlDeviceGetMigMode(handle)
    # nvidia-ml-py returns [minLimit, maxLimit] in milliwatts (a list of two ints).
    limits = fake.nvmlDeviceGetPowerManagementLimitConstraints(handle)
    assert limits == [200_000, 700_000] and all(type(v) is int for v in limits)
    fake.gpus[0].power_limits_mw = None
    with pytest.raises(fake.NVMLError_NotSupported):
        fake.nvmlDeviceGetPowerManagementLimitConstraints(handle)
    fake.nvmlShutdown()
    with pytest.raises(fake.NVMLError_Uninitialized):
        fake.nvmlShutdown()


# -- measurement --------------------------------------------------------------------------


def test_sources_satisfy_the_contract(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    """Counter GPUs make nvml:energy, the power-only GPU nvml:power; both measured gpu, labelled."""
    sources = discover(machine(), opened, environ={})
    assert [s.name for s in sources] == ["nvml:energy", "nvml:power"]
    for source in sources:
        assert isinstance(source, carbonkit.PowerSource)
        assert (source.component, source.method) == ("gpu", "measured")
    energy, power = sources
    assert (energy.kind, power.kind) == ("energy", "power")
    assert energy.devices() == [f"gpu0 {H100} (GPU-3f2a8c41)", f"gpu1 {H100} (GPU-3f2a9d07)"]
    assert power.devices() == [f"gpu2 {P100} (GPU-b7e01c55)"]
    assert plugin_warnings(caplog) == []


def test_summed_energy_matches_the_simulated_gpus_within_1_percent(opened: list[Any]) -> None:
    """Counters give joules since creation and power readings integrate to the true energy (< 1 %)."""
    fake = machine()
    energy, power = discover(fake, opened)
    times, watts = [0.0], [power.read()]
    first = energy.read()
    assert first == [0.0, 0.0]  # cumulative since the source was created
    for _ in range(120):
        fake.advance(1.0)
        times.append(fake.time_s)
        watts.append(power.read())
        joules = energy.read()
    gpu0, gpu1, gpu2 = fake.gpus
    expected = [fake.true_energy_j(g, 0.0, 120.0) for g in (gpu0, gpu1)]
    assert joules == pytest.approx(expected, rel=0.01)
    samples = [w[0] for w in watts]  # the trapezoid rule, as the tracker integrates power
    integrated = sum((t1 - t0) * (a + b) / 2.0 for t0, t1, a, b in zip(times, times[1:], samples, samples[1:]))
    assert integrated == pytest.approx(fake.true_energy_j(gpu2, 0.0, 120.0), rel=0.01)
    total = sum(joules) + integrated
    assert total == pytest.approx(sum(fake.true_energy_j(g, 0.0, 120.0) for g in fake.gpus), rel=0.01)
    assert joules[0] == pytest.approx(300.0 * 120.0, abs=0.002)  # constant 300 W: exact to the mJ


def test_each_source_exposes_a_sensible_max_power_w(opened: list[Any]) -> None:
    """max_power_w is 1.5 x the largest power limit NVML allows, per GPU, the largest over the source's GPUs."""
    fake = machine()
    fake.gpus[1].power_limits_mw = (200_000, 600_000)
    energy, power = discover(fake, opened)
    assert energy.gpu_max_power_w == pytest.approx((1.5 * 700.0, 1.5 * 600.0))
    assert energy.max_power_w == pytest.approx(1050.0)  # H100 SXM5: up to 700 W
    assert power.max_power_w == pytest.approx(375.0)  # P100 PCIe: up to 250 W
    for source, gpu in ((energy, fake.gpus[0]), (power, fake.gpus[2])):
        # Above anything the board can draw (its own limit), and a finite watts figure.
        assert gpu.power_limits_mw[1] / 1000.0 < source.max_power_w < 10_000.0


def test_gpu_without_power_limits_gets_the_default_ceiling(opened: list[Any]) -> None:
    """Where NVML answers Not Supported for the power limits (or reports 0), the ceiling is 3000 W."""
    fake = machine()
    fake.gpus[0].power_limits_mw = None
    fake.gpus[1].power_limits_mw = (0, 0)
    energy = by_kind(discover(fake, opened))["energy"]
    assert energy.gpu_max_power_w == (carbonkit_nvml.DEFAULT_MAX_POWER_W,) * 2 == (3000.0, 3000.0)
    assert energy.max_power_w == 3000.0


def test_read_makes_one_nvml_call_per_gpu(opened: list[Any]) -> None:
    """A read costs one NVML call per GPU and nothing else."""
    fake = machine()
    energy, power = discover(fake, opened)
    fake.calls.clear()
    energy.read()
    power.read()
    assert fake.calls == {"nvmlDeviceGetTotalEnergyConsumption": 2, "nvmlDeviceGetPowerUsage": 1}


def test_legacy_bytes_names_are_decoded(opened: list[Any]) -> None:
    """Older bindings return bytes names and UUIDs; labels are still text."""
    sources = discover(machine(legacy_bytes=True), opened)
    assert by_kind(sources)["energy"].devices()[0] == f"gpu0 {H100} (GPU-3f2a8c41)"


# -- which GPUs ---------------------------------------------------------------------------

SELECTIONS = [
    pytest.param(None, ([0, 1], [2]), "", id="unset: all"),
    pytest.param("0,2", ([0], [2]), "", id="0,2"),
    pytest.param("2,0", ([0], [2]), "", id="2,0"),
    pytest.param("1,0", ([1, 0], []), "", id="1,0 keeps the order"),
    pytest.param(" 1 , 0 ", ([1, 0], []), "", id="spaces"),
    pytest.param("1gpu", ([1], []), "", id="index read like strtoul"),
    pytest.param(UUID_2, ([], [2]), "", id="full GPU UUID"),
    pytest.param(f"{UUID_1},{UUID_0}", ([1, 0], []), "", id="two full UUIDs in order"),
    pytest.param("GPU-3f2a8", ([0], []), "", id="unique UUID prefix"),
    pytest.param("GPU-b7e0,GPU-3f2a,GPU-3f2a8", ([], [2]), "is a prefix of 2 GPUs", id="ambiguous prefix stops"),
    pytest.param("GPU-b7e0,GPU-0000", ([], [2]), "matches no GPU", id="unknown UUID stops"),
    pytest.param("0,x,2", ([0], []), "'x' is not a GPU index", id="invalid entry stops"),
    pytest.param("0,7,2", ([0], []), "this machine has 3 GPU(s)", id="out-of-range index stops"),
    pytest.param(f"0,{UUID_2}", ([0], []), "is not a GPU index", id="UUID in an index list stops"),
    pytest.param("1,-1,2", ([1], []), "", id="-1 stops quietly"),
    pytest.param(MIG_1A, ([1], []), "shared by every MIG slice", id="MIG UUID: parent GPU"),
    pytest.param(f"{MIG_1A},{MIG_1B}", ([1], []), "shared by every MIG slice", id="two slices: parent once"),
    pytest.param(f"MIG-{UUID_1}/1/0", ([1], []), "shared by every MIG slice", id="pre-R470 MIG format"),
]


@pytest.mark.parametrize(("visible", "expected", "warning"), SELECTIONS)
def test_cuda_visible_devices_selects_the_gpus_cuda_uses(
    visible: str | None,
    expected: tuple[list[int], list[int]],
    warning: str,
    opened: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each CUDA_VISIBLE_DEVICES form selects exactly CUDA's GPUs, warning where entries are ignored."""
    environ = dict(PCI_ORDER) if visible is None else {**PCI_ORDER, "CUDA_VISIBLE_DEVICES": visible}
    sources = discover(machine(), opened, environ=environ)
    assert indices(sources) == expected
    warnings = plugin_warnings(caplog)
    if warning:
        assert len(warnings) == 1 and warning in warnings[0]
    else:
        assert warnings == []


NO_GPU = [
    pytest.param("", "set but empty", False, id="empty"),
    pytest.param("  ", "set but empty", False, id="blank"),
    pytest.param("-1", "hides every GPU", False, id="-1 hides every GPU"),
    pytest.param("x,0", "'x' is neither a GPU index nor", True, id="first entry invalid"),
    pytest.param("GPU-ffff", "matches no GPU", True, id="unknown UUID"),
    pytest.param("GPU-3f2a", "is a prefix of 2 GPUs", True, id="ambiguous prefix"),
    pytest.param("MIG-00000000-0000-0000-0000-000000000000", "not a MIG device NVML knows", True, id="unknown MIG"),
    pytest.param("0,1,0", "lists GPU 0 twice", True, id="repeated index"),
    pytest.param(f"{UUID_0},GPU-3f2a8", "twice", True, id="repeated UUID"),
]


@pytest.mark.parametrize(("visible", "reason", "warn"), NO_GPU)
def test_cuda_visible_devices_selecting_nothing_gives_a_note(
    visible: str, reason: str, warn: bool, opened: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A value that leaves CUDA no GPU gives one Unavailable note and leaves NVML shut down."""
    fake = machine()
    (note,) = discover(fake, opened, environ={"CUDA_VISIBLE_DEVICES": visible})
    assert isinstance(note, Unavailable)
    assert note.plugin == "nvml" and reason in note.reason and note.hint and note.warn is warn
    assert fake.init_count == 0
    assert plugin_warnings(caplog) == []  # the note carries the message; the tracker logs it once


def test_indices_on_mixed_models_warn_about_cuda_device_order(
    opened: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Indices selecting some GPUs of mixed models warn unless CUDA_DEVICE_ORDER=PCI_BUS_ID."""
    sources = discover(machine(), opened, environ={"CUDA_VISIBLE_DEVICES": "0"})
    assert indices(sources) == ([0], [])  # read as NVML indices
    (warning,) = plugin_warnings(caplog)
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in warning and H100 in warning and P100 in warning
    caplog.clear()
    discover(machine(), opened, environ={"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    discover(machine(), opened, environ={"CUDA_VISIBLE_DEVICES": "2,1,0"})  # every GPU: the set is right
    same_model = FakePynvml([FakeGpu(name=H100), FakeGpu(name=H100)])
    discover(same_model, opened, environ={"CUDA_VISIBLE_DEVICES": "1"})
    assert plugin_warnings(caplog) == []


# -- what cannot be measured --------------------------------------------------------------

INIT_FAILURES = [
    pytest.param({"library": False}, "libnvidia-ml.so.1", False, id="no driver installed"),
    pytest.param({"init_error": 9}, "not loaded", False, id="driver not loaded"),
    pytest.param({"init_error": 4}, "no permission", True, id="no permission"),
    pytest.param({"init_error": 18}, "different versions", True, id="library/driver mismatch"),
    pytest.param({"init_error": 999}, "nvmlInit failed (NVML: Unknown Error)", True, id="other"),
]


@pytest.mark.parametrize(("kwargs", "reason", "warn"), INIT_FAILURES)
def test_nvml_init_failure_gives_a_note(
    kwargs: dict[str, Any], reason: str, warn: bool, opened: list[Any]
) -> None:
    """When nvmlInit fails there is no source, only a note saying why, with a hint."""
    fake = machine(**kwargs)
    (note,) = discover(fake, opened)
    assert isinstance(note, Unavailable)
    assert note.plugin == "nvml" and reason in note.reason and note.hint and note.warn is warn
    assert fake.init_count == 0 and fake.calls["nvmlShutdown"] == 0


def test_real_pynvml_without_a_driver_gives_a_note(opened: list[Any]) -> None:
    """With the real bindings, a machine whose nvmlInit fails gets a note; one with a GPU gets sources."""
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        (note,) = discover(pynvml, opened, environ={})
        assert isinstance(note, Unavailable) and note.plugin == "nvml" and note.reason
        if err.value == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND:
            assert "libnvidia-ml.so.1" in note.reason and note.warn is False
    else:
        pynvml.nvmlShutdown()
        sources = discover(pynvml, opened, environ={})
        assert all(isinstance(s, (NvmlSource, Unavailable)) for s in sources) and sources
        for source in sources:
            if isinstance(source, NvmlSource):  # a real GPU: a ceiling above its own power limit
                assert len(source.gpu_max_power_w) == len(source.gpus)
                assert 50.0 < source.max_power_w <= carbonkit_nvml.DEFAULT_MAX_POWER_W


def test_no_gpu_gives_a_note(opened: list[Any]) -> None:
    """A driver with no GPU gives a note and a balanced init/shutdown."""
    fake = FakePynvml([])
    (note,) = discover(fake, opened)
    assert isinstance(note, Unavailable) and "finds no NVIDIA GPU" in note.reason and not note.warn
    assert fake.init_count == 0


def test_gpu_without_energy_counter_falls_back_to_power(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    """A GPU whose energy counter is Not Supported is read through its power, in watts."""
    caplog.set_level(logging.INFO, logger="carbonkit_nvml")
    fake = FakePynvml([FakeGpu(name=P100, power_w=87.5, energy_counter=False)])
    (power,) = discover(fake, opened)
    assert (power.name, power.kind) == ("nvml:power", "power")
    assert power.read() == [87.5]
    assert any("has no energy counter" in r.getMessage() for r in caplog.records)
    assert plugin_warnings(caplog) == []


def test_unmeasurable_gpus_are_left_out_with_one_warning(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    """A GPU with neither counter nor power sensor is left out (one warning); if all are, a note."""
    mute = FakeGpu(name="NVIDIA GeForce GT 710", uuid=UUID_2, energy_counter=False, power_sensor=False)
    (energy,) = discover(FakePynvml([FakeGpu(name=H100, uuid=UUID_0), mute]), opened)
    assert energy.devices() == [f"gpu0 {H100} (GPU-3f2a8c41)"]
    (warning,) = plugin_warnings(caplog)
    assert "gpu1 NVIDIA GeForce GT 710" in warning and "Not Supported" in warning
    fake = FakePynvml([mute])
    (note,) = discover(fake, opened)
    assert isinstance(note, Unavailable) and note.warn and "energy or its power" in note.reason
    assert fake.init_count == 0


# -- failures during a run ----------------------------------------------------------------


def test_lost_gpu_keeps_its_energy_and_the_others_go_on(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    """A GPU lost mid-run keeps its last energy with one warning; losing the last one raises."""
    fake = FakePynvml([FakeGpu(power_w=100.0), FakeGpu(power_w=200.0), FakeGpu(power_w=300.0)])
    (energy,) = discover(fake, opened)
    fake.advance(10.0)
    assert energy.read() == pytest.approx([1000.0, 2000.0, 3000.0])
    fake.gpus[1].lost = True
    fake.advance(10.0)
    assert energy.read() == pytest.approx([2000.0, 2000.0, 6000.0])
    fake.advance(10.0)
    assert energy.read() == pytest.approx([3000.0, 2000.0, 9000.0])
    (warning,) = plugin_warnings(caplog)
    assert "gpu1" in warning and "GPU is lost" in warning
    fake.gpus[0].lost = fake.gpus[2].lost = True
    with pytest.raises(MeasurementError, match="no longer answers"):
        energy.read()
    assert len(plugin_warnings(caplog)) == 2  # gpu0's warning; the last loss is the exception


def test_lost_power_gpu_reads_zero_watts(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    """A power-only GPU lost mid-run reads 0 W from then on, with one warning."""
    fake = FakePynvml([FakeGpu(power_w=50.0, energy_counter=False), FakeGpu(power_w=70.0, energy_counter=False)])
    (power,) = discover(fake, opened)
    assert power.read() == [50.0, 70.0]
    fake.gpus[0].lost = True
    assert power.read() == [0.0, 70.0]
    assert power.read() == [0.0, 70.0]
    assert len(plugin_warnings(caplog)) == 1
    fake.gpus[1].lost = True
    with pytest.raises(MeasurementError):
        power.read()


def test_counter_reset_resumes_from_the_new_value(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    """An energy counter going back is a reset: one warning, no negative energy, counting resumes."""
    fake = FakePynvml([FakeGpu(power_w=100.0), FakeGpu(power_w=100.0)])
    (energy,) = discover(fake, opened)
    fake.advance(5.0)
    assert energy.read() == pytest.approx([500.0, 500.0])
    fake.gpus[0].energy_mj = 12_000.0  # the driver was reloaded
    fake.advance(5.0)
    assert energy.read() == pytest.approx([500.0, 1000.0])  # the interval of the reset counts 0
    fake.advance(5.0)
    assert energy.read() == pytest.approx([1000.0, 1500.0])
    fake.gpus[0].energy_mj = 0.0
    fake.advance(1.0)
    energy.read()
    (warning,) = plugin_warnings(caplog)  # the second reset is logged at debug level
    assert "went back" in warning and "gpu0" in warning


def test_close_balances_nvml_init(opened: list[Any]) -> None:
    """Each source holds one nvmlInit; closing both shuts NVML down; close twice is harmless."""
    fake = machine()
    energy, power = discover(fake, opened)
    assert fake.init_count == 2
    energy.close()
    energy.close()
    assert fake.init_count == 1
    power.close()
    assert fake.init_count == 0
    with pytest.raises(MeasurementError, match="closed"):
        energy.read()


# -- process filter -----------------------------------------------------------------------


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A child process of the test process, standing in for a training worker."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield proc
    proc.kill()
    proc.wait()


def test_process_filter_counts_the_gpus_the_tree_runs_on(
    opened: list[Any], child: subprocess.Popen[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """With nvml.process_gpus, a GPU counts from the check that sees the process tree on it."""
    fake = machine()
    fake.gpus[0].graphics_pids.append(os.getpid())  # already on gpu0 when the tracker starts
    config = carbonkit.Config(pid=os.getpid(), options={"nvml.process_gpus": True})
    energy, power = discover(fake, opened, config=config)
    assert energy.devices() == [f"gpu0 {H100} (GPU-3f2a8c41)", f"gpu1 {H100} (GPU-3f2a9d07)"]  # candidates
    fake.advance(1.0)
    assert energy.read() == pytest.approx([300.0, 0.0])
    assert power.read() == [0.0]
    fake.gpus[2].compute_pids.append(child.pid)  # a child starts on gpu2
    fake.advance(1.0)
    assert power.read() == [0.0]  # not re-checked yet
    fake.advance(4.0)
    assert power.read() == [pytest.approx(old_gpu_w(6.0), abs=0.001)]
    assert energy.read() == pytest.approx([1800.0, 0.0])
    assert plugin_warnings(caplog) == []


def test_process_filter_sees_mig_slices_and_stops_checking(
    opened: list[Any], child: subprocess.Popen[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """A process on a MIG slice makes its parent GPU count; once every GPU counts, no more checks."""
    fake = machine()
    fake.gpus[1].mig_pids[MIG_1A] = [child.pid]
    config = carbonkit.Config(pid=os.getpid(), options={"nvml.process_gpus": "yes"})
    (energy,) = discover(fake, opened, environ={"CUDA_VISIBLE_DEVICES": MIG_1A}, config=config)
    fake.advance(10.0)
    fake.calls.clear()
    assert energy.read() == pytest.approx([fake.true_energy_j(fake.gpus[1], 0.0, 10.0)], rel=1e-4)
    assert fake.calls == {"nvmlDeviceGetTotalEnergyConsumption": 1}
    (warning,) = plugin_warnings(caplog)
    assert "shared by every MIG slice" in warning


def test_process_filter_from_the_environment(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    """CARBONKIT_NVML_PROCESS_GPUS=1 turns the filter on; config.options wins over it."""
    fake = machine()
    environ = {**PCI_ORDER, "CARBONKIT_NVML_PROCESS_GPUS": "1"}
    energy, _ = discover(fake, opened, environ=environ, config=carbonkit.Config(pid=os.getpid()))
    fake.advance(1.0)
    assert energy.read() == [0.0, 0.0]  # the test process runs on no GPU
    off = carbonkit.Config(pid=os.getpid(), options={"nvml.process_gpus": False})
    energy, _ = discover(fake, opened, environ=environ, config=off)
    fake.advance(1.0)
    assert energy.read() == pytest.approx([300.0, ramp_w(1.5)], rel=1e-3)


def test_process_filter_warns_once_when_the_tree_never_shows_up(
    opened: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Without the tree on any GPU after 60 s, one warning; closing does not repeat it."""
    fake = machine()
    config = carbonkit.Config(pid=os.getpid(), options={"nvml.process_gpus": 1})
    energy, power = discover(fake, opened, config=config)
    for _ in range(59):
        fake.advance(1.0)
        energy.read()
        power.read()
    assert plugin_warnings(caplog) == []
    for _ in range(5):
        fake.advance(1.0)
        energy.read()
        power.read()
    energy.close()
    power.close()
    (warning,) = plugin_warnings(caplog)
    assert "not seen on any selected GPU after 60 s" in warning and "--pid=host" in warning


def test_process_filter_short_run_warns_at_close(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    """A run that ends before the tree was ever seen on a GPU says so once, at close."""
    config = carbonkit.Config(pid=os.getpid(), options={"nvml.process_gpus": True})
    energy, power = discover(machine(), opened, config=config)
    energy.read()
    energy.close()
    power.close()
    (warning,) = plugin_warnings(caplog)
    assert "during the run" in warning and "was counted as 0" in warning


def test_process_filter_without_process_lists_counts_every_gpu(
    opened: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Where NVML cannot list processes on any GPU, the filter warns and counts every selected GPU."""
    fake = FakePynvml([FakeGpu(power_w=100.0, processes_supported=False)])
    config = carbonkit.Config(pid=os.getpid(), options={"nvml.process_gpus": True})
    (energy,) = discover(fake, opened, config=config)
    fake.advance(2.0)
    assert energy.read() == pytest.approx([200.0])
    (warning,) = plugin_warnings(caplog)
    assert "cannot list the processes" in warning


@pytest.mark.parametrize("value", ["maybe", 2, 0.5])
def test_process_filter_bad_value_is_a_config_error(value: object) -> None:
    """A value that is not a boolean is refused at construction, naming it, before NVML is touched."""
    fake = machine()
    config = carbonkit.Config(options={"nvml.process_gpus": value})
    with pytest.raises(ConfigError, match=r"nvml\.process_gpus.*expected a boolean"):
        NvmlSource.discover(config, nvml=fake, environ={})
    with pytest.raises(ConfigError, match="CARBONKIT_NVML_PROCESS_GPUS='maybe'"):
        NvmlSource.discover(carbonkit.Config(), nvml=fake, environ={"CARBONKIT_NVML_PROCESS_GPUS": "maybe"})
    assert fake.calls["nvmlInit"] == 0


def test_process_filter_needs_a_running_pid() -> None:
    """nvml.process_gpus with a pid that is not running is refused, and NVML is left shut down."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    fake = machine()
    config = carbonkit.Config(pid=done.pid, options={"nvml.process_gpus": True})
    with pytest.raises(ConfigError, match=f"config.pid={done.pid}"):
        NvmlSource.discover(config, nvml=fake, environ={})
    assert fake.init_count == 0


# -- plugin wiring ------------------------------------------------------------------------


def _manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("carbonkit")
    pm.add_hookspecs(carbonkit.hookspecs)
    pm.register(carbonkit_nvml, name="nvml")
    pm.check_pending()
    return pm


def test_hook_register_power_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registered hook imports pynvml when called and returns its sources."""
    fake = machine()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    for variable in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "CARBONKIT_NVML_PROCESS_GPUS"):
        monkeypatch.delenv(variable, raising=False)
    (found,) = _manager().hook.register_power_sources(config=carbonkit.Config())
    try:
        assert [s.name for s in found] == ["nvml:energy", "nvml:power"]
        assert fake.init_count == 2
    finally:
        for source in found:
            source.close()
    assert fake.init_count == 0


def test_hook_on_this_machine_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the real bindings, the hook gives sources or a note, whatever the machine has."""
    monkeypatch.delenv("CARBONKIT_NVML_PROCESS_GPUS", raising=False)
    (found,) = _manager().hook.register_power_sources(config=carbonkit.Config())
    try:
        assert found and all(isinstance(s, (NvmlSource, Unavailable)) for s in found)
    finally:
        for source in found:
            if isinstance(source, NvmlSource):
                source.close()


def test_importing_the_plugin_does_not_import_pynvml() -> None:
    """Importing carbonkit_nvml leaves pynvml unimported (it is imported inside the hook)."""
    code = "import sys, carbonkit_nvml; print('pynvml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_a_driver_the_bindings_are_not_imported(tmp_path: Path) -> None:
    """On Linux with no trace of the NVIDIA driver, the hook says so without importing pynvml
    (about 80 ms of every run's start)."""
    missing = [str(tmp_path / name) for name in ("nvidiactl", "nvidia", "dxg")]
    code = (
        "import sys, carbonkit, carbonkit_nvml\n"
        f"carbonkit_nvml.DRIVER_PATHS = {tuple(missing)!r}\n"
        "(note,) = carbonkit_nvml.register_power_sources(config=carbonkit.Config())\n"
        "print('pynvml' in sys.modules, note.reason)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, reason = out.stdout.strip().split(" ", 1)
    if sys.platform.startswith("linux"):
        assert imported == "False"
        assert reason.startswith("no NVIDIA driver on this machine") and missing[0] in reason


def test_the_job_gpus_replace_a_per_task_cuda_visible_devices() -> None:
    """In a Slurm step of several tasks each task's CUDA_VISIBLE_DEVICES names its own GPU: the
    process that measures the host counts the step's GPUs on the node instead; an explicit
    nvml.gpus wins; process attribution keeps each task's own GPUs."""
    from carbonkit_nvml import job_gpus

    def chosen(environ: dict[str, str], **config: Any) -> list[int]:
        fake = FakePynvml([FakeGpu(name=H100, uuid=f"GPU-{i}aaaaaaa-0000-0000-0000-00000000000{i}") for i in range(4)])
        found = NvmlSource.discover(carbonkit.Config(**config), nvml=fake, environ=environ)
        gpus = [g.index for s in found if isinstance(s, NvmlSource) for g in s.gpus]
        for s in found:
            if isinstance(s, NvmlSource):
                s.close()
        return gpus

    task = {"CUDA_VISIBLE_DEVICES": "3", "SLURM_NTASKS": "2", "SLURM_STEP_GPUS": "2,3"}
    assert chosen(task) == [2, 3]
    assert chosen({**task, "SLURM_STEP_GPUS": "", "SLURM_JOB_GPUS": "1,3"}) == [1, 3]
    assert chosen({**task, "SLURM_STEP_GPUS": "4,5,6,7"}) == [0, 1, 2, 3]  # cgroups: NVML sees the step's 4
    assert chosen({**task, "SLURM_NTASKS": "1"}) == [3]
    assert chosen(task, attribution="process") == [3]
    assert chosen({**task, "CARBONKIT_NVML_GPUS": "all"}) == [0, 1, 2, 3]
    assert chosen({"CUDA_VISIBLE_DEVICES": "0"}, options={"nvml.gpus": "1,2"}) == [1, 2]
    with pytest.raises(carbonkit.ConfigError, match="CARBONKIT_NVML_GPUS=' ' is not valid"):
        job_gpus(carbonkit.Config(), {"CARBONKIT_NVML_GPUS": " "}, 4)
