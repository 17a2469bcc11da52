"""Which AMD GPUs to measure: the devices ROCm shows this process, grouped into physical GPUs.

ROCm's device selection, as the ROCm documentation describes it ("GPU isolation",
https://rocm.docs.amd.com/en/latest/conceptual/gpu-isolation.html, and the HIP environment
variables reference):

- ``ROCR_VISIBLE_DEVICES``: a comma-separated list of device indices or UUIDs
  (``0,GPU-4b2c1a9f...``), applied first, by the ROCr runtime;
- ``HIP_VISIBLE_DEVICES``: a list of indices (or UUIDs) into the devices left by
  ``ROCR_VISIBLE_DEVICES``, applied by HIP.

Unset, a variable selects every device; set but empty, none. An index is a device's HIP id with
every device visible (``amdsmi_get_gpu_enumeration_info``'s ``hip_id``, amdsmi 7.0 and later),
else its position in ``amdsmi_get_processor_handles()``, which lists devices in the same KFD
order. A UUID (``GPU-`` followed by hex digits) names a device when it equals, ignoring case and
dashes, the device's ``hip_uuid``, its ASIC serial or its amdsmi UUID. An entry that names no
device is skipped with a warning.

With compute partitions (MI300: DPX, QPX, CPX) each partition is a device of its own, but the
energy accumulator and the power sensor belong to the whole physical GPU: the devices are
grouped by PCI domain, bus and device (partitions differ only in the function digit) and by
amdsmi UUID (generated from the ASIC serial and the device id, so the same for every partition;
used only where the serial is a real one, since GPUs whose serial reads 0 would all share a
UUID), and each physical GPU is measured once, whole, whichever of its partitions are selected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from attrs import frozen

_logger = logging.getLogger(__name__)

VISIBILITY_VARIABLES = ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")

_INDEX = re.compile(r"\s*\d+\s*")
_BDF = re.compile(r"^([0-9a-fA-F]+):([0-9a-fA-F]+):([0-9a-fA-F]+)\.([0-7])$")


@frozen(kw_only=True)
class Device:
    """One device (a whole GPU, or one compute partition of it) as amdsmi lists it."""

    position: int
    handle: Any
    bdf: str
    uuid: str
    serial: str
    name: str
    hip_id: int | None = None
    hip_uuid: str = ""
    partition_id: int | None = None

    @property
    def physical_bdf(self) -> str:
        """The PCI domain, bus and device, without the function digit (shared by partitions)."""
        match = _BDF.match(self.bdf)
        return f"{match.group(1)}:{match.group(2)}:{match.group(3)}".lower() if match else self.bdf.lower()

    @property
    def index(self) -> int:
        """The index ``ROCR_VISIBLE_DEVICES`` uses for this device."""
        return self.hip_id if self.hip_id is not None else self.position

    def names(self) -> set[str]:
        """Every normalised identifier a UUID entry can name this device by."""
        ids = {self.uuid, self.hip_uuid, self.serial}
        return {_normalise(i) for i in ids if i and i != "N/A"}


@frozen(kw_only=True)
class PhysicalGpu:
    """One physical GPU: its devices (partitions), the one read, and its label."""

    devices: tuple[Device, ...]
    compute_partition: str = ""
    memory_partition: str = ""

    @property
    def primary(self) -> Device:
        return self.devices[0]

    @property
    def label(self) -> str:
        d = self.primary
        mode = f" {self.compute_partition}" if self.compute_partition and self.compute_partition != "SPX" else ""
        return f"gpu{d.index} {d.name} ({d.physical_bdf or f'position {d.position}'}{mode})"


def errors(amdsmi: ModuleType) -> type[Exception]:
    """The bindings' base exception, ``AmdSmiException`` (any ``Exception`` if the module has none)."""
    base = getattr(amdsmi, "AmdSmiException", None)
    return base if isinstance(base, type) and issubclass(base, Exception) else Exception


def _normalise(value: str) -> str:
    text = value.strip().lower()
    if text.startswith("gpu-"):
        text = text[4:]
    if text.startswith("0x"):
        text = text[2:]
    return text.replace("-", "")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def list_devices(amdsmi: ModuleType) -> list[Device]:
    """Return every device amdsmi lists, in its order, with the identifiers selection needs.

    :raises amdsmi.AmdSmiException: when the handles cannot be listed.
    """
    devices = []
    for position, handle in enumerate(amdsmi.amdsmi_get_processor_handles()):
        bdf = _optional(amdsmi, "amdsmi_get_gpu_device_bdf", handle, "")
        uuid = _optional(amdsmi, "amdsmi_get_gpu_device_uuid", handle, "")
        asic = _optional(amdsmi, "amdsmi_get_gpu_asic_info", handle, {})
        kfd = _optional(amdsmi, "amdsmi_get_gpu_kfd_info", handle, {})
        enum = _optional(amdsmi, "amdsmi_get_gpu_enumeration_info", handle, {})
        hip_id = enum.get("hip_id") if isinstance(enum, dict) else None
        partition = kfd.get("current_partition_id") if isinstance(kfd, dict) else None
        name = _text(asic.get("market_name", "")) if isinstance(asic, dict) else ""
        devices.append(
            Device(
                position=position,
                handle=handle,
                bdf=_text(bdf),
                uuid=_text(uuid),
                serial=_text(asic.get("asic_serial", "")) if isinstance(asic, dict) else "",
                name=name if name and name != "N/A" else "AMD GPU",
                hip_id=hip_id if isinstance(hip_id, int) else None,
                hip_uuid=_text(enum.get("hip_uuid", "")) if isinstance(enum, dict) else "",
                partition_id=partition if isinstance(partition, int) else None,
            )
        )
    return devices


def _optional(amdsmi: ModuleType, function: str, handle: Any, default: Any) -> Any:
    call = getattr(amdsmi, function, None)
    if call is None:
        return default
    try:
        return call(handle)
    except errors(amdsmi) as exc:
        _logger.debug("amdsmi: %s failed: %s", function, exc)
        return default


def visible(devices: Sequence[Device], environ: Mapping[str, str]) -> tuple[list[Device], list[str]]:
    """Apply ``ROCR_VISIBLE_DEVICES`` then ``HIP_VISIBLE_DEVICES``; return the devices and warnings."""
    chosen = list(devices)
    warnings: list[str] = []
    for variable in VISIBILITY_VARIABLES:
        value = environ.get(variable)
        if value is None:
            continue
        entries = [e.strip() for e in value.split(",")] if value.strip() else []
        picked: list[Device] = []
        for entry in entries:
            device = _match(entry, chosen, by_index=variable == "ROCR_VISIBLE_DEVICES")
            if device is None:
                warnings.append(
                    f"{variable}={value!r}: the entry {entry!r} names no AMD GPU "
                    f"(expected an index from 0 to {len(chosen) - 1} or a GPU- UUID); it is skipped"
                )
            elif device not in picked:
                picked.append(device)
        chosen = picked
    return chosen, warnings


def _match(entry: str, candidates: Sequence[Device], *, by_index: bool) -> Device | None:
    if _INDEX.fullmatch(entry):
        number = int(entry)
        if by_index:
            for device in candidates:
                if device.index == number:
                    return device
            return None
        # HIP_VISIBLE_DEVICES counts the devices ROCR_VISIBLE_DEVICES left, in their order.
        return candidates[number] if number < len(candidates) else None
    wanted = _normalise(entry)
    if not wanted:
        return None
    for device in candidates:
        if wanted in device.names():
            return device
    return None


def _serial_is_real(serial: str) -> bool:
    digits = _normalise(serial)
    return bool(digits) and digits != "n/a" and set(digits) != {"0"} and set(digits) != {"f"}


def _physical_keys(everything: Sequence[Device]) -> dict[int, str]:
    """Each device's physical GPU (by position): devices sharing a PCI domain:bus:device, or an
    amdsmi UUID backed by a real ASIC serial, are one GPU."""
    parent = {d.position: d.position for d in everything}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for device in everything:
        keys = [f"bdf {device.physical_bdf}"] if device.physical_bdf else []
        if device.uuid and _serial_is_real(device.serial):
            keys.append(f"uuid {_normalise(device.uuid)}")
        for key in keys:
            if key in first:
                parent[find(device.position)] = find(first[key])
            else:
                first[key] = device.position
    by_position = {d.position: d for d in everything}
    return {
        d.position: by_position[find(d.position)].physical_bdf or f"position {find(d.position)}" for d in everything
    }


def group(devices: Sequence[Device], everything: Sequence[Device], amdsmi: ModuleType) -> list[PhysicalGpu]:
    """Group the selected devices into physical GPUs, in the order of their first device.

    ``everything`` is every device amdsmi lists: a physical GPU is read through its first
    partition that answers, even where that partition is not selected.
    """
    physical = _physical_keys(everything)

    wanted: list[str] = []
    for device in devices:
        if physical[device.position] not in wanted:
            wanted.append(physical[device.position])
    gpus = []
    for name in wanted:
        members = sorted(
            (d for d in everything if physical[d.position] == name),
            key=lambda d: (d.partition_id if d.partition_id is not None else d.position, d.position),
        )
        compute = _optional(amdsmi, "amdsmi_get_gpu_compute_partition", members[0].handle, "")
        memory = _optional(amdsmi, "amdsmi_get_gpu_memory_partition", members[0].handle, "")
        gpus.append(
            PhysicalGpu(devices=tuple(members), compute_partition=_text(compute), memory_partition=_text(memory))
        )
    return gpus
