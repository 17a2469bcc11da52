"""Tests of the amdsmi plugin against a stand-in ``amdsmi`` module (tests/plugins/fake_amdsmi.py).

The stand-in follows the real bindings (ROCm/amdsmi ``py-interface``, the ``amdsmi`` 7.0.2
release on PyPI, and ``include/amd_smi/amdsmi.h``): names, return shapes, units (accumulator
counts x ``counter_resolution`` uJ; power in W; power caps in uW), "N/A" strings and exceptions.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import carbonkit
import carbonkit_amdsmi
from carbonkit import MeasurementError, Unavailable
from carbonkit.testing import assert_plugin_valid
from carbonkit_amdsmi import AmdSmiSource, discover


def _load_fake() -> ModuleType:
    name = "carbonkit_tests_fake_amdsmi"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fake_amdsmi.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fa = _load_fake()
FakeGpu = fa.FakeGpu
FakeAmdSmi = fa.FakeAmdSmi


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    found: list[Any] = []
    yield found
    for item in found:
        if isinstance(item, AmdSmiSource):
            item.close()


def run(fake: Any, opened: list[Any], environ: dict[str, str] | None = None) -> list[Any]:
    result = discover(carbonkit.Config(), amdsmi=fake, environ=environ or {})
    opened.extend(result)
    return result


def by_kind(found: list[Any]) -> dict[str, AmdSmiSource]:
    return {s.kind: s for s in found if isinstance(s, AmdSmiSource)}


def two_mi300x(**kwargs: Any) -> Any:
    return FakeAmdSmi(
        [
            FakeGpu(bus=0x0C, serial=0x1111222233334444, power_w=400.0),
            FakeGpu(bus=0x22, serial=0x5555666677778888, power_w=250.0),
        ],
        **kwargs,
    )


@pytest.mark.parametrize("version", ["6.2", "6.3", "7.0"])
def test_energy_is_accumulator_times_resolution_in_every_binding_version(version: str, opened: list[Any]) -> None:
    """6.2 names the accumulator 'power', 6.3 both, 7.0 'energy_accumulator': the joules are the same."""
    fake = two_mi300x(version=version)
    energy = by_kind(run(fake, opened))["energy"]
    assert energy.devices() == ["gpu0 AMD Instinct MI300X (0000:0c:00)", "gpu1 AMD Instinct MI300X (0000:22:00)"]
    start = [g.accumulator for g in fake.gpus]
    for _ in range(10):
        fake.advance(0.5)
        joules = energy.read()
    # 400 W and 250 W for 5 s, quantised to the 15.259 uJ counts the fake accumulated.
    assert joules == pytest.approx([2000.0, 1250.0], abs=1e-4)
    counts = [g.accumulator - s for g, s in zip(fake.gpus, start)]
    assert joules[0] == pytest.approx(counts[0] * 15.259 / 1e6, rel=1e-7)


def test_counter_resolution_is_applied(opened: list[Any]) -> None:
    fake = FakeAmdSmi([FakeGpu(bus=3, power_w=100.0, resolution_uj=1.0)], version="7.0")
    energy = by_kind(run(fake, opened))["energy"]
    fake.advance(2.0)
    assert energy.read() == pytest.approx([200.0])


def test_power_is_read_where_there_is_no_accumulator(opened: list[Any]) -> None:
    """A VM guest (no accumulator): power in W; on an MI200-like GPU current_socket_power is N/A."""
    fake = FakeAmdSmi(
        [
            FakeGpu(bus=1, serial=1, power_w=310.0, energy=False),
            FakeGpu(bus=2, serial=2, power_w=180.0, energy=False, current_power=False),
            FakeGpu(bus=3, serial=3, power_w=200.0),
        ]
    )
    kinds = by_kind(run(fake, opened))
    assert kinds["energy"].devices() == ["gpu2 AMD Instinct MI300X (0000:03:00)"]
    power = kinds["power"]
    assert power.kind == "power" and power.method == "measured" and power.component == "gpu"
    assert power.read() == [310.0, 180.0]
    assert "current_socket_power" in power.info["reads"] and "average_socket_power" in power.info["reads"]


def test_a_field_turning_na_reads_zero_with_one_warning(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeAmdSmi([FakeGpu(bus=1, power_w=310.0, energy=False)])
    power = by_kind(run(fake, opened))["power"]
    fake.gpus[0].current_power = False
    with caplog.at_level(logging.WARNING):
        assert power.read() == [0.0]
        assert power.read() == [0.0]
    assert len([r for r in caplog.records if "N/A" in r.getMessage()]) == 1


def test_partitions_of_one_gpu_are_counted_once(opened: list[Any]) -> None:
    """MI300X in CPX/NPS4: 8 handles, one physical GPU, one accumulator read once."""
    fake = FakeAmdSmi(
        [
            FakeGpu(bus=0x0C, partitions=8, compute_partition="CPX", memory_partition="NPS4", power_w=600.0),
            FakeGpu(bus=0x22, serial=0x99, partitions=2, compute_partition="DPX", power_w=300.0,
                    energy_on_all_partitions=True),
        ]
    )
    energy = by_kind(run(fake, opened))["energy"]
    assert energy.devices() == ["gpu0 AMD Instinct MI300X (0000:0c:00 CPX)", "gpu8 AMD Instinct MI300X (0000:22:00 DPX)"]
    assert "CPX/NPS4" in energy.info["partitions"]
    fake.calls.clear()
    fake.advance(1.0)
    assert energy.read() == pytest.approx([600.0, 300.0], abs=1e-4)
    assert fake.calls.count("amdsmi_get_energy_count") == 2


def test_rocr_visible_devices_by_index_and_uuid(opened: list[Any]) -> None:
    fake = two_mi300x()
    assert by_kind(run(fake, opened, {"ROCR_VISIBLE_DEVICES": "1"}))["energy"].devices()[0].startswith("gpu1 ")
    by_serial = run(fake, opened, {"ROCR_VISIBLE_DEVICES": "GPU-5555666677778888"})
    assert by_kind(by_serial)["energy"].devices()[0].startswith("gpu1 ")
    by_uuid = run(fake, opened, {"ROCR_VISIBLE_DEVICES": fake.gpus[0].uuid().upper()})
    assert by_kind(by_uuid)["energy"].devices()[0].startswith("gpu0 ")


def test_hip_visible_devices_counts_within_rocr(opened: list[Any]) -> None:
    fake = FakeAmdSmi([FakeGpu(bus=b, serial=b) for b in (1, 2, 3)])
    found = run(fake, opened, {"ROCR_VISIBLE_DEVICES": "2,1", "HIP_VISIBLE_DEVICES": "1"})
    assert by_kind(found)["energy"].devices() == ["gpu1 AMD Instinct MI300X (0000:02:00)"]


def test_hip_ids_name_devices_in_amdsmi_7(opened: list[Any]) -> None:
    fake = FakeAmdSmi([FakeGpu(bus=b, serial=b) for b in (1, 2)], version="7.0")
    found = run(fake, opened, {"ROCR_VISIBLE_DEVICES": "GPU-0000000000000002"})  # the hip_uuid
    assert by_kind(found)["energy"].devices() == ["gpu1 AMD Instinct MI300X (0000:02:00)"]


def test_a_selected_partition_measures_its_whole_gpu_once(opened: list[Any]) -> None:
    fake = FakeAmdSmi([FakeGpu(bus=0x0C, partitions=4, compute_partition="QPX", power_w=500.0), FakeGpu(bus=0x22, serial=7)])
    energy = by_kind(run(fake, opened, {"ROCR_VISIBLE_DEVICES": "3,2"}))["energy"]
    assert energy.devices() == ["gpu0 AMD Instinct MI300X (0000:0c:00 QPX)"]
    fake.advance(1.0)
    assert energy.read() == pytest.approx([500.0], abs=1e-4)


def test_visibility_edge_cases(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    fake = two_mi300x()
    (note,) = run(fake, opened, {"ROCR_VISIBLE_DEVICES": ""})
    assert isinstance(note, Unavailable) and "no AMD GPU is visible" in note.reason
    assert "ROCR_VISIBLE_DEVICES=''" in note.reason
    with caplog.at_level(logging.WARNING):
        found = run(fake, opened, {"ROCR_VISIBLE_DEVICES": "7,0,GPU-nope"})
    assert by_kind(found)["energy"].devices()[0].startswith("gpu0 ")
    messages = [r.getMessage() for r in caplog.records]
    assert any("'7' names no AMD GPU" in m and "ROCR_VISIBLE_DEVICES" in m for m in messages)
    assert any("'GPU-nope' names no AMD GPU" in m for m in messages)


def test_ceiling_from_the_power_cap(opened: list[Any]) -> None:
    fake = FakeAmdSmi([FakeGpu(bus=1), FakeGpu(bus=2, serial=2, max_power_cap_uw=None)])
    energy = by_kind(run(fake, opened))["energy"]
    assert energy.gpu_max_power_w == (1125.0, carbonkit_amdsmi.DEFAULT_MAX_POWER_W)
    assert energy.max_power_w == carbonkit_amdsmi.DEFAULT_MAX_POWER_W
    single = by_kind(run(FakeAmdSmi([FakeGpu(bus=1)]), opened))["energy"]
    assert single.max_power_w == pytest.approx(1.5 * 750.0)


def test_accumulator_going_back_counts_nothing(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeAmdSmi([FakeGpu(bus=1, power_w=100.0)])
    energy = by_kind(run(fake, opened))["energy"]
    fake.advance(1.0)
    assert energy.read() == pytest.approx([100.0], abs=1e-4)
    fake.gpus[0].accumulator = 0  # GPU reset
    with caplog.at_level(logging.WARNING):
        assert energy.read() == pytest.approx([100.0], abs=1e-4)
    fake.advance(1.0)
    assert energy.read() == pytest.approx([200.0], abs=1e-4)
    assert any("went back" in r.getMessage() for r in caplog.records)


def test_lost_gpus(opened: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    fake = two_mi300x()
    energy = by_kind(run(fake, opened))["energy"]
    fake.advance(1.0)
    fake.gpus[1].lost = True
    with caplog.at_level(logging.WARNING):
        assert energy.read() == pytest.approx([400.0, 0.0], abs=1e-4)
    assert any("no longer answers for gpu1" in r.getMessage() for r in caplog.records)
    fake.advance(1.0)
    assert energy.read() == pytest.approx([800.0, 0.0], abs=1e-4)
    fake.gpus[0].lost = True
    with pytest.raises(MeasurementError, match="no longer answers"):
        energy.read()


def test_busy_gpu_skips_one_sample(opened: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeAmdSmi([FakeGpu(bus=1, power_w=100.0)])
    energy = by_kind(run(fake, opened))["energy"]
    real = fake.amdsmi_get_energy_count

    def busy(handle: Any) -> Any:
        raise fa.AmdSmiRetryException()

    monkeypatch.setattr(fake, "amdsmi_get_energy_count", busy)
    fake.advance(1.0)
    assert energy.read() == [0.0]
    monkeypatch.setattr(fake, "amdsmi_get_energy_count", real)
    assert energy.read() == pytest.approx([100.0], abs=1e-4)


def test_library_is_initialised_once_and_shut_down_with_the_last_source(opened: list[Any]) -> None:
    fake = FakeAmdSmi([FakeGpu(bus=1), FakeGpu(bus=2, serial=2, energy=False)])
    sources = run(fake, opened)
    assert len(sources) == 2 and fake.inits == 1
    sources[0].close()
    assert fake.inits == 1
    sources[1].close()
    sources[1].close()
    assert fake.inits == 0
    with pytest.raises(MeasurementError, match="closed"):
        sources[1].read()


@pytest.mark.parametrize(
    ("code", "reason", "warn"),
    [
        (34, "amdgpu driver is not loaded", False),
        (10, "no permission", True),
        (4, "libamd_smi.so", False),
        (18, "amdsmi_init failed", True),
    ],
)
def test_init_failures_are_notes(code: int, reason: str, warn: bool, opened: list[Any]) -> None:
    fake = FakeAmdSmi([FakeGpu(bus=1)], init_error=code)
    (note,) = run(fake, opened)
    assert isinstance(note, Unavailable) and reason in note.reason and note.warn is warn


def test_no_gpu_and_no_measurement(opened: list[Any]) -> None:
    (note,) = run(FakeAmdSmi([]), opened)
    assert isinstance(note, Unavailable) and "finds no AMD GPU" in note.reason
    fake = FakeAmdSmi([FakeGpu(bus=1, energy=False, current_power=False, average_power=False)])
    (note,) = run(fake, opened)
    assert isinstance(note, Unavailable) and "energy or its power" in note.reason and note.warn
    assert fake.inits == 0


def test_hook_without_driver_or_bindings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    monkeypatch.setattr(carbonkit_amdsmi, "DRIVER_PATHS", (str(tmp_path / "kfd"),))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not (Path(p) / "amdsmi").exists()])
    (note,) = discover(environ={"CARBONKIT_SYSFS_ROOT": str(tmp_path)})
    assert isinstance(note, Unavailable) and "not installed" in note.reason and "no AMD GPU driver" in note.reason
    assert not note.warn
    (tmp_path / "module" / "amdgpu").mkdir(parents=True)
    (note,) = discover(environ={"CARBONKIT_SYSFS_ROOT": str(tmp_path)})
    assert isinstance(note, Unavailable) and "not installed" in note.reason and note.warn
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # import amdsmi raises ImportError
    (note,) = discover(environ={"CARBONKIT_SYSFS_ROOT": str(tmp_path)})
    assert isinstance(note, Unavailable) and "cannot be imported" in note.reason and note.warn
    assert "/opt/rocm/share/amd_smi" in note.hint


def test_a_stand_in_module_first_on_sys_path_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The bindings are found the normal way (import amdsmi), even where no driver is visible."""
    (tmp_path / "amdsmi.py").write_text(
        "import sys\n"
        "from carbonkit_tests_fake_amdsmi import FakeAmdSmi, FakeGpu\n"
        "sys.modules[__name__] = FakeAmdSmi([FakeGpu(bus=1, power_w=123.0)])\n"
    )
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    monkeypatch.setattr(carbonkit_amdsmi, "DRIVER_PATHS", (str(tmp_path / "kfd"),))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        (source,) = discover(environ={"CARBONKIT_SYSFS_ROOT": str(tmp_path)})
        assert isinstance(source, AmdSmiSource) and source.kind == "energy"
        fake = sys.modules["amdsmi"]
        fake.advance(2.0)
        assert source.read() == pytest.approx([246.0], abs=1e-4)
        source.close()
        assert fake.inits == 0
    finally:
        sys.modules.pop("amdsmi", None)


def test_plugin_is_valid_through_pluggy(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = two_mi300x()
    monkeypatch.setitem(sys.modules, "amdsmi", fake)
    offers = assert_plugin_valid(carbonkit_amdsmi)
    (source,) = offers["register_power_sources"]
    assert source.name == "amdsmi:energy"
    assert fake.inits == 0  # assert_plugin_valid closed it


def test_fake_has_the_real_status_codes() -> None:
    """Status codes as amdsmi_wrapper.py defines them (ROCm/amdsmi, amdsmi 7.0.2)."""
    assert (fa.AMDSMI_STATUS_NOT_SUPPORTED, fa.AMDSMI_STATUS_NO_PERM, fa.AMDSMI_STATUS_DRIVER_NOT_LOADED) == (2, 10, 34)
    assert carbonkit_amdsmi.STATUS_NOT_SUPPORTED == fa.AMDSMI_STATUS_NOT_SUPPORTED
    assert carbonkit_amdsmi.STATUS_DRIVER_NOT_LOADED == fa.AMDSMI_STATUS_DRIVER_NOT_LOADED
    err = fa.AmdSmiLibraryException(-2)
    assert err.err_code == 2 and "Feature not supported" in str(err)
    assert issubclass(fa.AmdSmiRetryException, fa.AmdSmiLibraryException)


def test_bindings_with_only_the_energy_calls(opened: list[Any]) -> None:
    """Older or reduced bindings (no BDF, ASIC, KFD or partition calls): each handle is one GPU."""
    full = two_mi300x(version="6.2")
    minimal = ModuleType("amdsmi")
    for name in ("amdsmi_init", "amdsmi_shut_down", "amdsmi_get_processor_handles", "amdsmi_get_energy_count"):
        setattr(minimal, name, getattr(full, name))
    minimal.AmdSmiException = fa.AmdSmiException  # type: ignore[attr-defined]
    energy = by_kind(run(minimal, opened))["energy"]
    assert energy.devices() == ["gpu0 AMD GPU (position 0)", "gpu1 AMD GPU (position 1)"]
    full.advance(1.0)
    assert energy.read() == pytest.approx([400.0, 250.0], abs=1e-4)
    assert energy.max_power_w == carbonkit_amdsmi.DEFAULT_MAX_POWER_W


def test_partitions_with_their_own_bdf_are_grouped_by_uuid(opened: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Where partitions show different buses, the UUID (from the real ASIC serial) still makes them one GPU;
    GPUs whose serial reads 0 share a UUID and are not merged."""
    fake = FakeAmdSmi([FakeGpu(bus=0x0C, partitions=4, compute_partition="QPX", power_w=500.0),
                       FakeGpu(bus=0x40, serial=0, power_w=100.0), FakeGpu(bus=0x50, serial=0, power_w=100.0)])
    real_bdf = fake.amdsmi_get_gpu_device_bdf

    def bdf_per_partition(handle: Any) -> str:
        text = real_bdf(handle)
        return text if handle.partition == 0 else f"0000:{0x0C + 0x10 * handle.partition:02x}:00.0"

    monkeypatch.setattr(fake, "amdsmi_get_gpu_device_bdf", bdf_per_partition)
    energy = by_kind(run(fake, opened))["energy"]
    assert energy.devices() == ["gpu0 AMD Instinct MI300X (0000:0c:00 QPX)", "gpu4 AMD Instinct MI300X (0000:40:00)",
                                "gpu5 AMD Instinct MI300X (0000:50:00)"]
    fake.advance(1.0)
    assert energy.read() == pytest.approx([500.0, 100.0, 100.0], abs=1e-4)
