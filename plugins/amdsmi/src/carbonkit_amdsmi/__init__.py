"""carbonkit plugin ``amdsmi``: the energy of AMD GPUs (Instinct, Radeon), read through AMD SMI.

Source: the AMD System Management Interface library of ROCm (``libamd_smi.so``), called
through its Python bindings, the ``amdsmi`` module (shipped with ROCm in
``/opt/rocm/share/amd_smi``, also on PyPI as ``amdsmi``; its version must match the
installed ROCm). Reference: https://rocm.docs.amd.com/projects/amdsmi/ and the bindings'
``amdsmi_interface.py`` (https://github.com/ROCm/amdsmi).

Units and terms:

- ``amdsmi_get_energy_count``: the GPU's energy accumulator, a 64-bit count, and
  ``counter_resolution``, the microjoules per count (15.259 uJ on MI200 and MI300). The
  accumulator's key is ``energy_accumulator`` from ROCm 6.3, ``power`` before (6.3 gives
  both, 6.4 drops ``power``). Source ``amdsmi:energy``, kind ``"energy"``: joules per GPU
  since the source was created.
- ``amdsmi_get_power_info``: socket power in watts (integers), ``current_socket_power``
  (instantaneous) or ``average_socket_power``, "N/A" where the GPU does not give it. Read only
  for GPUs whose accumulator answers Not Supported (virtual-machine guests, some Radeon
  cards). Source ``amdsmi:power``, kind ``"power"``: watts per GPU.

Both sources have component ``"gpu"``, method ``"measured"``, and ``max_power_w``:
:data:`MAX_POWER_MARGIN` times the GPU's largest settable power cap
(``amdsmi_get_power_cap_info``'s ``max_power_cap``, microwatts), else
:data:`DEFAULT_MAX_POWER_W`. Which GPUs are read follows ``ROCR_VISIBLE_DEVICES`` and
``HIP_VISIBLE_DEVICES``; compute partitions of one GPU are measured once (see ``_select``).
The module is injected (``amdsmi=``), so tests run against a stand-in.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from carbonkit import MeasurementError, Unavailable, hookimpl

from ._select import VISIBILITY_VARIABLES, Device, PhysicalGpu, errors, group, list_devices, visible

if TYPE_CHECKING:
    from carbonkit import Config

__all__ = [
    "DEFAULT_MAX_POWER_W",
    "MAX_INTERVAL_S",
    "MAX_POWER_MARGIN",
    "PLUGIN",
    "POWER_FIELDS",
    "AmdSmiSource",
    "Device",
    "PhysicalGpu",
    "discover",
    "register_power_sources",
]

_logger = logging.getLogger(__name__)

#: The entry-point name, used in source names and ``Unavailable`` notes.
PLUGIN = "amdsmi"
#: A GPU's ceiling is this many times its largest settable power cap (transients above the cap).
MAX_POWER_MARGIN = 1.5
#: The ceiling of a GPU whose power caps amdsmi cannot give: more than twice the power cap of
#: current Instinct GPUs (750 W MI300X, 1,000 W MI325X/MI355X).
DEFAULT_MAX_POWER_W = 3000.0
#: The accumulator is 64 bits of 15.3 uJ: it cannot wrap within a run (about 9 million years at
#: 1 kW). An hour bounds the gap between reads anyway.
MAX_INTERVAL_S = 3600.0
#: The power fields tried, in order: instantaneous first (``socket_power`` from amdsmi 7.0).
POWER_FIELDS = ("current_socket_power", "socket_power", "average_socket_power")
#: Energy keys of ``amdsmi_get_energy_count``, newest first.
ENERGY_KEYS = ("energy_accumulator", "power")

#: Status codes (``amdsmi_wrapper.AMDSMI_STATUS_*``) the plugin tells apart.
STATUS_NOT_SUPPORTED = 2
STATUS_FAIL_LOAD_MODULE = 4
STATUS_TIMEOUT = 8
STATUS_RETRY = 9
STATUS_NO_PERM = 10
STATUS_INIT_ERROR = 18
STATUS_BUSY = 30
STATUS_DRIVER_NOT_LOADED = 34
_TRANSIENT = (STATUS_TIMEOUT, STATUS_RETRY, STATUS_BUSY)

#: What the amdgpu driver leaves on Linux: the compute device node and the kernel module.
DRIVER_PATHS = ("/dev/kfd",)
SYSFS_ENV = "CARBONKIT_SYSFS_ROOT"


class _Library:
    """One ``amdsmi_init`` shared by the probe and the sources; shut down when the last user leaves."""

    def __init__(self, amdsmi: ModuleType) -> None:
        self.amdsmi = amdsmi
        self.users = 0

    def acquire(self) -> None:
        if self.users == 0:
            self.amdsmi.amdsmi_init()
        self.users += 1

    def release(self) -> None:
        if self.users <= 0:
            return
        self.users -= 1
        if self.users == 0:
            try:
                self.amdsmi.amdsmi_shut_down()
            except errors(self.amdsmi) as exc:
                _logger.debug("amdsmi_shut_down failed: %s", exc)


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "err_code", None)
    return code if isinstance(code, int) else None


class AmdSmiSource:
    """The energy (``kind="energy"``) or power (``kind="power"``) of some AMD GPUs.

    Build them with :func:`discover`. The sources of one discovery share one initialisation of
    the library, shut down when the last of them is closed.

    :param kind: ``"energy"`` or ``"power"``.
    :param gpus: The physical GPUs, in the order of :meth:`devices`.
    :param handles: The handle read for each GPU (one of its partitions).
    :param power_fields: For ``kind="power"``, the field of ``amdsmi_get_power_info`` read for each GPU.
    :param max_power_w: Each GPU's ceiling, in watts.
    """

    component = "gpu"
    method = "measured"
    max_interval_s = MAX_INTERVAL_S

    def __init__(
        self,
        *,
        kind: str,
        gpus: Sequence[PhysicalGpu],
        handles: Sequence[Any],
        library: _Library,
        power_fields: Sequence[str] = (),
        gpu_max_power_w: Sequence[float] = (),
    ) -> None:
        if kind not in ("energy", "power"):
            raise ValueError(f"kind={kind!r} is not valid: expected 'energy' or 'power'")
        if not gpus or len(handles) != len(gpus):
            raise ValueError("AmdSmiSource needs one handle per GPU, and at least one GPU")
        self.kind = kind
        self.name = f"{PLUGIN}:{kind}"
        self.gpus = tuple(gpus)
        self._handles = list(handles)
        self._library = library
        self._amdsmi = library.amdsmi
        self._fields = list(power_fields) or [POWER_FIELDS[0]] * len(gpus)
        self.gpu_max_power_w = tuple(gpu_max_power_w) or (DEFAULT_MAX_POWER_W,) * len(gpus)
        self.max_power_w = max(self.gpu_max_power_w)
        self._joules = [0.0] * len(gpus)
        self._last: list[int | None] = [None] * len(gpus)
        self._lost = [False] * len(gpus)
        self._warned: set[tuple[str, int]] = set()
        self._closed = False
        library.acquire()
        try:
            if kind == "energy":
                for i in range(len(gpus)):
                    self._last[i] = self._count(i)[0]
        except BaseException:
            library.release()
            raise
        partitions = {g.label: f"{g.compute_partition or '?'}/{g.memory_partition or '?'}" for g in gpus}
        self.info = {
            "reads": (
                "amdsmi_get_energy_count (accumulator x counter_resolution, uJ)"
                if kind == "energy"
                else "amdsmi_get_power_info (" + ", ".join(sorted(set(self._fields))) + ", W)"
            ),
            "partitions": "; ".join(f"{k}: {v}" for k, v in partitions.items()),
        }

    def devices(self) -> list[str]:
        """One label per physical GPU: ``"gpu<index> <name> (<PCI domain:bus:device>[ <mode>])"``."""
        return [g.label for g in self.gpus]

    def read(self) -> list[float]:
        """Return joules since creation (energy) or watts (power), one value per GPU.

        A GPU that stops answering keeps its energy (or reads 0 W) with one warning; when
        every GPU of the source has stopped answering, raise :class:`MeasurementError`.
        """
        if self._closed:
            raise MeasurementError(f"{self.name} is closed")
        if self.kind == "energy":
            return self._read_energy()
        return self._read_power()

    def close(self) -> None:
        """Release this source's share of the library (once)."""
        if not self._closed:
            self._closed = True
            self._library.release()

    # -- reading ------------------------------------------------------------------------------

    def _count(self, i: int) -> tuple[int, float]:
        result = self._amdsmi.amdsmi_get_energy_count(self._handles[i])
        for key in ENERGY_KEYS:
            if key in result:
                return int(result[key]), float(result["counter_resolution"])
        raise MeasurementError(f"{self.name}: amdsmi_get_energy_count gave none of {ENERGY_KEYS}: {sorted(result)}")

    def _read_energy(self) -> list[float]:
        for i, gpu in enumerate(self.gpus):
            if self._lost[i]:
                continue
            try:
                count, resolution_uj = self._count(i)
            except errors(self._amdsmi) as exc:
                self._failed(i, exc, "its energy so far is kept")
                continue
            last = self._last[i]
            self._last[i] = count
            if last is None:
                continue
            delta = count - last
            if delta < 0:
                self._warn_once(
                    "reset",
                    i,
                    "%s: the energy accumulator of %s went back (driver reloaded or GPU reset?); the energy "
                    "of this sampling interval is not counted",
                    self.name,
                    gpu.label,
                )
                continue
            self._joules[i] += delta * resolution_uj / 1e6
        return list(self._joules)

    def _read_power(self) -> list[float]:
        watts = [0.0] * len(self.gpus)
        for i, gpu in enumerate(self.gpus):
            if self._lost[i]:
                continue
            try:
                info = self._amdsmi.amdsmi_get_power_info(self._handles[i])
            except errors(self._amdsmi) as exc:
                self._failed(i, exc, "it reads 0 W from now on")
                continue
            value = info.get(self._fields[i])
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                watts[i] = float(value)
            else:
                self._warn_once(
                    "n/a", i, "%s: %s gave %s=%r; 0 W counted for this sample", self.name, gpu.label,
                    self._fields[i], value,
                )
        return watts

    def _failed(self, i: int, exc: Exception, outcome: str) -> None:
        if _code(exc) in _TRANSIENT:
            # Busy, retry, timeout: this sample is skipped, the counter is read again next time.
            self._warn_once("transient", i, "%s: %s did not answer this time (%s)", self.name, self.gpus[i].label, exc)
            return
        self._lost[i] = True
        if all(self._lost):
            lost = ", ".join(g.label for g in self.gpus)
            raise MeasurementError(f"{self.name}: amdsmi no longer answers for {lost} ({_one_line(exc)})") from exc
        _logger.warning(
            "%s: amdsmi no longer answers for %s (%s); %s", self.name, self.gpus[i].label, _one_line(exc), outcome
        )

    def _warn_once(self, what: str, i: int, message: str, *args: object) -> None:
        log = _logger.debug if (what, i) in self._warned else _logger.warning
        self._warned.add((what, i))
        log(message, *args)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _ceiling(amdsmi: ModuleType, gpu: PhysicalGpu) -> float:
    call = getattr(amdsmi, "amdsmi_get_power_cap_info", None)
    if call is None:
        return DEFAULT_MAX_POWER_W
    for device in gpu.devices:
        try:
            caps = call(device.handle)
        except errors(amdsmi) as exc:
            _logger.debug("%s: no power cap from amdsmi (%s)", gpu.label, _one_line(exc))
            continue
        top = caps.get("max_power_cap") if isinstance(caps, dict) else None
        if isinstance(top, int) and not isinstance(top, bool) and top > 0:
            return MAX_POWER_MARGIN * top / 1e6
    return DEFAULT_MAX_POWER_W


def _unavailable(reason: str, hint: str = "", *, warn: bool = False) -> Unavailable:
    return Unavailable(plugin=PLUGIN, reason=reason, hint=hint, warn=warn)


def _init_failed(exc: Exception) -> Unavailable:
    code = _code(exc)
    if code == STATUS_DRIVER_NOT_LOADED:
        return _unavailable(
            "the amdgpu driver is not loaded (AMDSMI_STATUS_DRIVER_NOT_LOADED)", "check that amd-smi works"
        )
    if code == STATUS_NO_PERM:
        return _unavailable(
            "no permission to use the AMD GPU driver (AMDSMI_STATUS_NO_PERM)",
            "add the user to the 'render' and 'video' groups, or run the container with /dev/kfd and /dev/dri",
            warn=True,
        )
    if code == STATUS_FAIL_LOAD_MODULE:
        return _unavailable(
            "the AMD SMI library (libamd_smi.so) cannot be loaded", "install ROCm, or the amdsmi package matching it"
        )
    return _unavailable(f"amdsmi_init failed ({_one_line(exc)})", "check that amd-smi works", warn=True)


def _driver_present(environ: Mapping[str, str]) -> bool:
    """False only where AMD SMI cannot work: Linux without a trace of the amdgpu driver."""
    if not sys.platform.startswith("linux"):
        return True
    sysfs = Path(environ.get(SYSFS_ENV, "").strip() or "/sys")
    return any(os.path.exists(p) for p in DRIVER_PATHS) or (sysfs / "module" / "amdgpu").is_dir()


def discover(
    config: Config | None = None, *, amdsmi: ModuleType | None = None, environ: Mapping[str, str] | None = None
) -> list[AmdSmiSource | Unavailable]:
    """Return the sources for this machine's AMD GPUs, or a note saying why there are none.

    Up to two sources: ``amdsmi:energy`` for the GPUs with an energy accumulator and
    ``amdsmi:power`` for the others.

    :param config: The tracker configuration (unused for now; the hook passes it).
    :param amdsmi: The bindings module; default: ``amdsmi``, imported here.
    :param environ: The environment (``ROCR_VISIBLE_DEVICES``, ``HIP_VISIBLE_DEVICES``,
        ``CARBONKIT_SYSFS_ROOT``); default ``os.environ``.
    """
    env = os.environ if environ is None else environ
    if amdsmi is None:
        driver = _driver_present(env)
        try:
            findable = "amdsmi" in sys.modules or importlib.util.find_spec("amdsmi") is not None
        except (ImportError, ValueError):
            findable = False
        if not findable:
            return [
                _unavailable(
                    "the amdsmi Python bindings are not installed"
                    + ("" if driver else " (and there is no AMD GPU driver here: no /dev/kfd, no amdgpu module)"),
                    "install the bindings that match your ROCm: pip install /opt/rocm/share/amd_smi "
                    "(or pip install amdsmi==<your ROCm version>)",
                    warn=driver,  # an AMD driver is here: the user wants these GPUs measured
                )
            ]
        try:
            import amdsmi as module  # type: ignore[import-not-found, unused-ignore]
        except Exception as exc:  # the real module loads libamd_smi.so at import: OSError too
            return [
                _unavailable(
                    f"the amdsmi Python bindings cannot be imported ({_one_line(exc)})",
                    "install the bindings that match your ROCm: pip install /opt/rocm/share/amd_smi "
                    "(or pip install amdsmi==<your ROCm version>)",
                    warn=driver,
                )
            ]
        amdsmi = module
    library = _Library(amdsmi)
    try:
        library.acquire()
    except errors(amdsmi) as exc:
        return [_init_failed(exc)]
    try:
        return _discover(amdsmi, library, env)
    finally:
        library.release()  # the sources hold their own share


def _discover(amdsmi: ModuleType, library: _Library, environ: Mapping[str, str]) -> list[AmdSmiSource | Unavailable]:
    try:
        everything = list_devices(amdsmi)
    except errors(amdsmi) as exc:
        return [_unavailable(f"amdsmi cannot list the GPUs ({_one_line(exc)})", "check that amd-smi works", warn=True)]
    if not everything:
        return [_unavailable("amdsmi is installed but finds no AMD GPU")]
    chosen, warnings = visible(everything, environ)
    for message in warnings:
        _logger.warning(message)
    if not chosen:
        set_vars = ", ".join(f"{v}={environ[v]!r}" for v in VISIBILITY_VARIABLES if v in environ)
        return [_unavailable(f"no AMD GPU is visible to this process ({set_vars})", warn=bool(warnings))]
    gpus = group(chosen, everything, amdsmi)

    energy: list[tuple[PhysicalGpu, Any]] = []
    power: list[tuple[PhysicalGpu, Any, str]] = []
    unmeasurable: list[str] = []
    for gpu in gpus:
        found = _energy_handle(amdsmi, gpu) or _power_handle(amdsmi, gpu)
        if found is None:
            unmeasurable.append(gpu.label)
        elif found[1] == "":
            energy.append((gpu, found[0]))
        else:
            power.append((gpu, found[0], found[1]))
        if len(gpu.devices) > 1:
            selected = [d.bdf for d in chosen if d in gpu.devices]
            _logger.info(
                "amdsmi: %s has %d partitions (%s/%s); the whole GPU is measured once, for the partitions %s",
                gpu.label, len(gpu.devices), gpu.compute_partition or "?", gpu.memory_partition or "?",
                ", ".join(selected),
            )
    if not energy and not power:
        return [
            _unavailable(
                "no selected AMD GPU reports its energy or its power: " + ", ".join(unmeasurable),
                "amdsmi answers Not Supported on some virtual-machine guests; use an estimating plugin for them",
                warn=True,
            )
        ]
    if unmeasurable:
        _logger.warning("these AMD GPUs cannot be measured and are not counted: %s", ", ".join(unmeasurable))
    sources: list[AmdSmiSource | Unavailable] = []
    try:
        if energy:
            sources.append(
                AmdSmiSource(
                    kind="energy",
                    gpus=[g for g, _ in energy],
                    handles=[h for _, h in energy],
                    library=library,
                    gpu_max_power_w=[_ceiling(amdsmi, g) for g, _ in energy],
                )
            )
        if power:
            sources.append(
                AmdSmiSource(
                    kind="power",
                    gpus=[g for g, _, _ in power],
                    handles=[h for _, h, _ in power],
                    library=library,
                    power_fields=[f for _, _, f in power],
                    gpu_max_power_w=[_ceiling(amdsmi, g) for g, _, _ in power],
                )
            )
    except (errors(amdsmi), MeasurementError) as exc:
        for source in sources:
            source.close()  # type: ignore[union-attr]
        return [_unavailable(f"amdsmi stopped answering while the sources were set up ({_one_line(exc)})", warn=True)]
    return sources


def _energy_handle(amdsmi: ModuleType, gpu: PhysicalGpu) -> tuple[Any, str] | None:
    call = getattr(amdsmi, "amdsmi_get_energy_count", None)
    if call is None:
        return None
    for device in gpu.devices:
        try:
            result = call(device.handle)
        except errors(amdsmi) as exc:
            _logger.debug("%s: %s: no energy accumulator (%s)", gpu.label, device.bdf, _one_line(exc))
            continue
        if any(key in result for key in ENERGY_KEYS) and result.get("counter_resolution", 0) > 0:
            return device.handle, ""
    return None


def _power_handle(amdsmi: ModuleType, gpu: PhysicalGpu) -> tuple[Any, str] | None:
    call = getattr(amdsmi, "amdsmi_get_power_info", None)
    if call is None:
        return None
    for device in gpu.devices:
        try:
            info = call(device.handle)
        except errors(amdsmi) as exc:
            _logger.debug("%s: %s: no power reading (%s)", gpu.label, device.bdf, _one_line(exc))
            continue
        for field in POWER_FIELDS:
            value = info.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                _logger.info("%s has no energy accumulator; its %s is read instead", gpu.label, field)
                return device.handle, field
    return None


@hookimpl
def register_power_sources(config: Config) -> list[AmdSmiSource | Unavailable]:
    return discover(config)
