"""A stand-in for the ``amdsmi`` module (the ROCm AMD SMI Python bindings) that simulates AMD GPUs.

It implements the subset of the bindings that carbonkit's ``amdsmi`` plugin calls, with the real
module's function names, return shapes, units and exception classes. Sources, read for this
module (facts only, no code taken):

- ``py-interface/amdsmi_interface.py``, ``amdsmi_exception.py`` and ``amdsmi_wrapper.py`` of
  https://github.com/ROCm/amdsmi (ROCm 6.2 and 6.3 era), and the same files in the ``amdsmi``
  7.0.2 release on PyPI;
- ``include/amd_smi/amdsmi.h`` of the same repository (units, BDFID layout, partition enums);
- https://rocm.docs.amd.com/projects/amdsmi/ (Python API reference) and
  https://rocm.docs.amd.com/projects/HIP/en/latest/reference/env_variables.html.

What the real module does and this one reproduces:

- ``amdsmi_init(flag=AmdSmiInitFlags.INIT_AMD_GPUS)`` / ``amdsmi_shut_down()``; the library
  counts its initialisations. Every device call outside an initialisation raises
  ``AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)``. Shutting down invalidates the handles.
- ``amdsmi_get_processor_handles()`` returns a list of ``amdsmi_processor_handle`` objects
  (a ctypes ``c_void_p`` in the real module). Every device function first checks
  ``isinstance(handle, amdsmi_processor_handle)`` and raises ``AmdSmiParameterException``
  otherwise. With a compute partition mode other than SPX, each partition of a GPU is its own
  handle (MI300X: DPX 2, QPX 4, CPX 8 handles).
- ``amdsmi_get_gpu_device_bdf(h)`` returns ``"dddd:bb:dd.f"`` (``_format_bdf``: hex, domain
  4 digits, bus 2, device 2, function 1). Partitions of one GPU share domain, bus and device;
  the partition number appears in the function digit.
- ``amdsmi_get_gpu_device_uuid(h)`` returns a UUID string generated from the ASIC serial and
  the device id (``amdsmi_uuid_gen(serial, device_id, 0xff)`` in ``amd_smi.cc``), so every
  partition of one GPU has the same UUID.
- ``amdsmi_get_gpu_asic_info(h)`` returns a dict with ``market_name``, ``asic_serial``
  (``"0x%016X"``), ``device_id`` (hex string)...
- ``amdsmi_get_gpu_kfd_info(h)`` returns ``{"kfd_id", "node_id", "current_partition_id"}``,
  "N/A" where not applicable.
- ``amdsmi_get_gpu_enumeration_info(h)`` (7.0 and later only) returns ``{"drm_render",
  "drm_card", "hsa_id", "hip_id", "hip_uuid"}``.
- ``amdsmi_get_gpu_compute_partition(h)`` returns ``"SPX"``, ``"DPX"``, ``"TPX"``, ``"QPX"``
  or ``"CPX"``; ``amdsmi_get_gpu_memory_partition(h)`` returns ``"NPS1"``, ``"NPS2"``,
  ``"NPS4"`` or ``"NPS8"``; both raise ``AMDSMI_STATUS_NOT_SUPPORTED`` on GPUs without
  partitions.
- ``amdsmi_get_energy_count(h)`` returns the GPU's energy accumulator (``uint64``), its
  ``counter_resolution`` in microjoules per count (a ``c_float``: 15.259 on MI200 and MI300)
  and a ``timestamp`` in ns. The key of the accumulator depends on the version: ``"power"``
  until ROCm 6.2; ``"power"`` and ``"energy_accumulator"`` (the same value) in 6.3 ("power"
  marked "deprecating in 6.4"); ``"energy_accumulator"`` only from 6.4 (7.0.2 on PyPI).
  Energy in uJ = accumulator x counter_resolution. Not supported on virtual-machine guests.
- ``amdsmi_get_power_info(h)`` returns ``current_socket_power`` and ``average_socket_power`` in
  watts (integers), voltages in mV, ``power_limit``; a field reading 0xFFFF becomes the string
  ``"N/A"`` (MI300X gives ``current_socket_power``, MI200 only ``average_socket_power``).
  From 7.0 there is also ``socket_power``.
- ``amdsmi_get_power_cap_info(h)`` returns ``power_cap``, ``default_power_cap``,
  ``min_power_cap``, ``max_power_cap`` in microwatts and ``dpm_cap`` (MHz).
- Exceptions: ``AmdSmiException`` (base), ``AmdSmiLibraryException(err_code)`` with
  ``err_code`` and ``err_info`` (``"AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported"``),
  its subclasses ``AmdSmiRetryException`` and ``AmdSmiTimeoutException``, and
  ``AmdSmiParameterException``. Status codes as in ``amdsmi_wrapper.py``.

Time is simulated: :meth:`FakeAmdSmi.advance` integrates each GPU's power into its accumulator.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

AMDSMI_STATUS_SUCCESS = 0
AMDSMI_STATUS_INVAL = 1
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_FAIL_LOAD_MODULE = 4
AMDSMI_STATUS_DRM_ERROR = 6
AMDSMI_STATUS_API_FAILED = 7
AMDSMI_STATUS_TIMEOUT = 8
AMDSMI_STATUS_RETRY = 9
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_IO = 12
AMDSMI_STATUS_INIT_ERROR = 18
AMDSMI_STATUS_BUSY = 30
AMDSMI_STATUS_NOT_FOUND = 31
AMDSMI_STATUS_NOT_INIT = 32
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34

_ERR_INFO = {
    AMDSMI_STATUS_INVAL: "AMDSMI_STATUS_INVAL - Invalid parameters",
    AMDSMI_STATUS_NOT_SUPPORTED: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
    AMDSMI_STATUS_FAIL_LOAD_MODULE: "AMDSMI_STATUS_FAIL_LOAD_MODULE - Fail to load lib",
    AMDSMI_STATUS_DRM_ERROR: "AMDSMI_STATUS_DRM_ERROR - Error when called libdrm",
    AMDSMI_STATUS_API_FAILED: "AMDSMI_STATUS_API_FAILED - API call failed",
    AMDSMI_STATUS_TIMEOUT: "AMDSMI_STATUS_TIMEOUT - Timeout in API call",
    AMDSMI_STATUS_RETRY: "AMDSMI_STATUS_RETRY - Retry operation",
    AMDSMI_STATUS_NO_PERM: "AMDSMI_STATUS_NO_PERM - Permission Denied",
    AMDSMI_STATUS_IO: "AMDSMI_STATUS_IO - I/O Error",
    AMDSMI_STATUS_INIT_ERROR: "AMDSMI_STATUS_INIT_ERROR - Initialization error",
    AMDSMI_STATUS_BUSY: "AMDSMI_STATUS_BUSY - Device busy",
    AMDSMI_STATUS_NOT_FOUND: "AMDSMI_STATUS_NOT_FOUND - Device Not found",
    AMDSMI_STATUS_NOT_INIT: "AMDSMI_STATUS_NOT_INIT - Device not initialized",
    AMDSMI_STATUS_DRIVER_NOT_LOADED: "AMDSMI_STATUS_DRIVER_NOT_LOADED - Driver not loaded",
}


class AmdSmiException(Exception):
    """Base smi exception class (as in amdsmi_exception.py)."""


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        self.err_info = _ERR_INFO.get(err_code, "AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred")

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_info(self) -> str:
        return self.err_info

    def get_error_code(self) -> int:
        return self.err_code


class AmdSmiRetryException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(AMDSMI_STATUS_RETRY)


class AmdSmiTimeoutException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(AMDSMI_STATUS_TIMEOUT)


class AmdSmiParameterException(AmdSmiException):
    def __init__(self, received: object, expected: object, msg: str | None = None) -> None:
        super().__init__(msg)
        self.err_code = None
        self.err_msg = msg or f"Invalid parameter:\nActual type: {type(received)}\nExpected type: {expected}"

    def __str__(self) -> str:
        return self.err_msg


class AmdSmiInitFlags(enum.IntEnum):
    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_CPUS = 1 << 0
    INIT_AMD_GPUS = 1 << 1
    INIT_NON_AMD_CPUS = 1 << 2
    INIT_NON_AMD_GPUS = 1 << 3
    INIT_AMD_APUS = INIT_AMD_CPUS | INIT_AMD_GPUS


class amdsmi_processor_handle:  # noqa: N801 - the real module's name (a ctypes c_void_p)
    def __init__(self, generation: int, gpu: FakeGpu, partition: int) -> None:
        self.generation = generation
        self.gpu = gpu
        self.partition = partition


@dataclass
class FakeGpu:
    """One physical AMD GPU.

    :param power_w: Socket power in watts.
    :param partitions: Number of compute partitions (handles): 1 for SPX, 8 for CPX on MI300X.
    :param energy: Whether the energy accumulator is supported (not on VM guests).
    :param current_power: Whether ``current_socket_power`` is given (else "N/A", as on MI200).
    :param average_power: Whether ``average_socket_power`` is given.
    :param energy_on_all_partitions: Whether secondary partitions answer the energy call too
        (else they raise NOT_SUPPORTED).
    """

    bus: int
    market_name: str = "AMD Instinct MI300X"
    serial: int = 0x0A1B2C3D4E5F6071
    device_id: int = 0x74A1
    power_w: float = 300.0
    partitions: int = 1
    compute_partition: str | None = "SPX"
    memory_partition: str | None = "NPS1"
    energy: bool = True
    current_power: bool = True
    average_power: bool = True
    energy_on_all_partitions: bool = False
    max_power_cap_uw: int | None = 750_000_000
    resolution_uj: float = 15.259
    accumulator: int = 123_456_789
    lost: bool = False
    _residual_uj: float = field(default=0.0, repr=False)

    def uuid(self) -> str:
        # The shape amdsmi_uuid_gen prints (8-4-4-4-12 hex digits), derived from the serial and
        # the device id only: the same for every partition of the GPU.
        s = self.serial
        return f"{s >> 32:08x}-{(s >> 16) & 0xFFFF:04x}-1{self.device_id & 0xFFF:03x}-8{s & 0xFFF:03x}-{s & 0xFFFFFFFFFFFF:012x}"

    def asic_serial(self) -> str:
        return f"0x{self.serial:016X}"


class FakeAmdSmi(ModuleType):
    """The ``amdsmi`` module, for the GPUs given.

    :param version: ``"6.2"`` (energy key ``power``), ``"6.3"`` (``power`` and
        ``energy_accumulator``) or ``"7.0"`` (``energy_accumulator`` only; enumeration info).
    :param init_error: A status code ``amdsmi_init`` fails with, or None.
    """

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiRetryException = AmdSmiRetryException
    AmdSmiTimeoutException = AmdSmiTimeoutException
    AmdSmiParameterException = AmdSmiParameterException
    AmdSmiInitFlags = AmdSmiInitFlags

    def __init__(self, gpus: Sequence[FakeGpu], *, version: str = "6.3", init_error: int | None = None) -> None:
        super().__init__("amdsmi")
        self.gpus = list(gpus)
        self.version = version
        self.init_error = init_error
        self.inits = 0
        self.generation = 0
        self.calls: list[str] = []
        if version == "7.0":
            self.amdsmi_get_gpu_enumeration_info = self._enumeration_info

    # -- simulation -------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        for gpu in self.gpus:
            uj = gpu.power_w * seconds * 1e6 + gpu._residual_uj
            counts = int(uj // gpu.resolution_uj)
            gpu._residual_uj = uj - counts * gpu.resolution_uj
            gpu.accumulator += counts

    # -- the module's API -------------------------------------------------------------------

    def amdsmi_init(self, flag: AmdSmiInitFlags = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
        if not isinstance(flag, AmdSmiInitFlags):
            raise AmdSmiParameterException(flag, AmdSmiInitFlags)
        self.calls.append("amdsmi_init")
        if self.init_error is not None:
            raise AmdSmiLibraryException(self.init_error)
        if self.inits == 0:
            self.generation += 1
        self.inits += 1

    def amdsmi_shut_down(self) -> None:
        self.calls.append("amdsmi_shut_down")
        if self.inits == 0:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
        self.inits -= 1

    def amdsmi_get_processor_handles(self) -> list[amdsmi_processor_handle]:
        self._check_init()
        return [
            amdsmi_processor_handle(self.generation, gpu, p)
            for gpu in sorted(self.gpus, key=lambda g: g.bus)
            for p in range(gpu.partitions)
        ]

    def amdsmi_get_gpu_device_bdf(self, processor_handle: Any) -> str:
        gpu, part = self._gpu(processor_handle)
        return f"0000:{gpu.bus:02x}:00.{part}"

    def amdsmi_get_gpu_device_uuid(self, processor_handle: Any) -> str:
        gpu, _ = self._gpu(processor_handle)
        return gpu.uuid()

    def amdsmi_get_gpu_asic_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu, _ = self._gpu(processor_handle)
        return {
            "market_name": gpu.market_name,
            "vendor_id": "0x1002",
            "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
            "subvendor_id": "0x1002",
            "device_id": hex(gpu.device_id),
            "rev_id": "0x00",
            "asic_serial": gpu.asic_serial(),
            "oam_id": 0,
            "num_compute_units": 304 // gpu.partitions,
            "target_graphics_version": "gfx942",
        }

    def amdsmi_get_gpu_kfd_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu, part = self._gpu(processor_handle)
        index = self._handle_index(processor_handle)
        return {"kfd_id": 1000 + index, "node_id": index + 1, "current_partition_id": part}

    def _enumeration_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu, part = self._gpu(processor_handle)
        index = self._handle_index(processor_handle)
        return {
            "drm_render": 128 + index,
            "drm_card": index,
            "hsa_id": index + 1,
            "hip_id": index,
            "hip_uuid": f"GPU-{gpu.serial:016x}",
        }

    def amdsmi_get_gpu_compute_partition(self, processor_handle: Any) -> str:
        gpu, _ = self._gpu(processor_handle)
        if gpu.compute_partition is None:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        return gpu.compute_partition

    def amdsmi_get_gpu_memory_partition(self, processor_handle: Any) -> str:
        gpu, _ = self._gpu(processor_handle)
        if gpu.memory_partition is None:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        return gpu.memory_partition

    def amdsmi_get_energy_count(self, processor_handle: Any) -> dict[str, Any]:
        gpu, part = self._gpu(processor_handle)
        self.calls.append("amdsmi_get_energy_count")
        if not gpu.energy or (part > 0 and not gpu.energy_on_all_partitions):
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        # The real value is a ctypes c_float: single precision.
        import struct

        resolution = struct.unpack("f", struct.pack("f", gpu.resolution_uj))[0]
        result: dict[str, Any] = {}
        if self.version in ("6.2", "6.3"):
            result["power"] = gpu.accumulator
        if self.version in ("6.3", "7.0"):
            result["energy_accumulator"] = gpu.accumulator
        result["counter_resolution"] = resolution
        result["timestamp"] = 1_700_000_000_000_000_000
        return result

    def amdsmi_get_power_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu, _ = self._gpu(processor_handle)
        self.calls.append("amdsmi_get_power_info")
        watts = int(round(gpu.power_w))
        info: dict[str, Any] = {}
        if self.version == "7.0":
            info["socket_power"] = watts if gpu.current_power else "N/A"
        info.update(
            {
                "current_socket_power": watts if gpu.current_power else "N/A",
                "average_socket_power": watts if gpu.average_power else "N/A",
                "gfx_voltage": 800,
                "soc_voltage": 750,
                "mem_voltage": 1100,
                "power_limit": 750,
            }
        )
        return info

    def amdsmi_get_power_cap_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu, _ = self._gpu(processor_handle)
        if gpu.max_power_cap_uw is None:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        return {
            "power_cap": gpu.max_power_cap_uw,
            "default_power_cap": gpu.max_power_cap_uw,
            "dpm_cap": 2100,
            "min_power_cap": 0,
            "max_power_cap": gpu.max_power_cap_uw,
        }

    # -- internals ---------------------------------------------------------------------------

    def _check_init(self) -> None:
        if self.inits == 0:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)

    def _gpu(self, handle: Any) -> tuple[FakeGpu, int]:
        if not isinstance(handle, amdsmi_processor_handle):
            raise AmdSmiParameterException(handle, amdsmi_processor_handle)
        self._check_init()
        if handle.generation != self.generation or handle.gpu.lost:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_FOUND)
        return handle.gpu, handle.partition

    def _handle_index(self, handle: amdsmi_processor_handle) -> int:
        order = [(g.bus, p) for g in sorted(self.gpus, key=lambda g: g.bus) for p in range(g.partitions)]
        return order.index((handle.gpu.bus, handle.partition))
