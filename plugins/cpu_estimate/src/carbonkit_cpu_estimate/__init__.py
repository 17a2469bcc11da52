"""carbonkit plugin ``cpu_estimate``: CPU (and optionally DRAM) power estimated from utilisation.

For machines where no CPU energy counter can be read: virtual machines, containers without
RAPL, macOS, Windows, or Linux without permission to read RAPL. The figures are estimates
(method ``"estimated"``, kind ``"power"``, watts); a measured source for the same component,
when there is one, is preferred by the core.

Model (the linear server power model of Fan, Weber & Barroso, "Power provisioning for a
warehouse-sized computer", ISCA 2007, applied to the processor packages)::

    P_cpu = P_idle + (TDP - P_idle) * u,   P_idle = idle_fraction * TDP

- ``u``: the machine-wide CPU busy fraction between two reads, from ``psutil.cpu_times()``
  (busy = total - idle - iowait - steal; guest time is already inside user time on Linux).
- ``TDP``: watts per processor package times the number of packages, from
  ``CARBONKIT_CPU_TDP_W``, else the shipped table (``data/cpu-tdp.csv``, compiled by the
  codecarbon project, MIT licence) matched by model name, else 8 W per physical core.
- ``idle_fraction``: 0.25 by default, about the median ratio of idle to full-load power over
  16 x86 processor families in Cloud Carbon Footprint's SPECpower-derived coefficients
  (median 0.24, range 0.15-0.41).

DRAM (opt in with ``CARBONKIT_CPU_ESTIMATE_DRAM=1``): 0.3725 W per GiB of memory in use, the
figure of Green Algorithms (Lannelongue, Grealey & Inouye, Advanced Science 2021).

Each source declares ``max_power_w``: the model's largest output (TDP at full utilisation; all
memory in use) times :data:`MAX_POWER_MARGIN`.

Units: watts (W). Details, sources and limitations: the plugin's README.
https://doi.org/10.1145/1250662.1250665
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import psutil
from attrs import define, field, frozen

from carbonkit import hookimpl
from carbonkit.errors import ConfigError
from carbonkit.records import Unavailable

from ._tdp import CpuInfo, TdpMatch, TdpTable, normalise_model

if TYPE_CHECKING:
    from carbonkit.config import Config

__all__ = [
    "DEFAULT_IDLE_FRACTION",
    "DEFAULT_W_PER_CORE",
    "DRAM_ENV",
    "DRAM_OPTION",
    "DRAM_W_PER_GIB",
    "IDLE_ENV",
    "IDLE_OPTION",
    "MAX_POWER_MARGIN",
    "TDP_ENV",
    "TDP_OPTION",
    "CpuEstimate",
    "CpuInfo",
    "DramEstimate",
    "Settings",
    "TdpMatch",
    "TdpTable",
    "build_sources",
    "normalise_model",
    "parse_flag",
    "parse_idle_fraction",
    "parse_tdp_w",
    "register_power_sources",
    "resolve_tdp",
]

_logger = logging.getLogger(__name__)

PLUGIN = "cpu_estimate"
#: Environment variable: the processor's TDP in watts per package (multiplied by sockets).
TDP_ENV = "CARBONKIT_CPU_TDP_W"
#: ``config.options`` key with the same meaning; wins over the variable.
TDP_OPTION = "cpu_estimate.tdp_w"
#: Environment variable and option: idle power as a fraction of TDP, between 0 and 1.
IDLE_ENV = "CARBONKIT_CPU_ESTIMATE_IDLE_FRACTION"
IDLE_OPTION = "cpu_estimate.idle_fraction"
#: Environment variable and option: also estimate DRAM power (off by default).
DRAM_ENV = "CARBONKIT_CPU_ESTIMATE_DRAM"
DRAM_OPTION = "cpu_estimate.dram"

#: Idle power as a fraction of TDP: the median (0.24, rounded) over 16 x86 processor families
#: (Intel Sandy Bridge to Granite Rapids, AMD EPYC 1st to 5th generation) of min/max watts per
#: vCPU in Cloud Carbon Footprint's coefficients derived from SPECpower_ssj2008 results
#: (range 0.15 to 0.41).
DEFAULT_IDLE_FRACTION = 0.25
#: Watts per physical core when the model is unknown: about the median TDP per core of
#: common parts (EPYC 7763: 280 W / 64 = 4.4; Ryzen 9 5950X: 105 / 16 = 6.6; Xeon Gold 6248:
#: 150 / 20 = 7.5; Xeon E5-2686 v4: 145 / 18 = 8.1; Xeon Platinum 8375C: 300 / 32 = 9.4;
#: Core i7-8700K: 95 / 6 = 15.8).
DEFAULT_W_PER_CORE = 8.0
#: DRAM watts per GiB in use: Green Algorithms' 0.3725 W/GB (Lannelongue et al. 2021).
DRAM_W_PER_GIB = 0.3725
#: ``max_power_w`` is the model's largest output times this: the estimate at full load equals
#: TDP (all memory in use, for DRAM), so any reading above 1.5 times that is a fault.
MAX_POWER_MARGIN = 1.5
#: CPU-seconds (summed over CPUs) a utilisation window needs before it replaces the last value.
MIN_WINDOW_CPU_S = 0.5

_GIB = 2**30


def _number(value: Any, *, unit: str = "") -> float | None:
    """Return ``value`` as a finite float (text may end with ``unit``), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if unit and text[-len(unit) :].lower() == unit.lower():
            text = text[: -len(unit)].strip()
        try:
            value = float(text)
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def parse_tdp_w(value: Any, *, setting: str = TDP_ENV) -> float:
    """Return ``value`` as watts per processor package.

    Accepts a positive number, or text such as ``"95"`` or ``"95 W"``.

    :param setting: The variable or option the value came from, named in the error.
    :raises ConfigError: naming the setting, the value and what is accepted.
    """
    number = _number(value, unit="W")
    if number is None or number <= 0:
        raise ConfigError(
            f"{setting}={value!r} is not valid: expected the processor's TDP as a positive "
            "number of watts per package, e.g. 95"
        )
    return number


def parse_idle_fraction(value: Any, *, setting: str = IDLE_ENV) -> float:
    """Return ``value`` as an idle fraction of TDP, a number from 0 to 1.

    :raises ConfigError: naming the setting, the value and what is accepted.
    """
    number = _number(value)
    if number is None or not 0.0 <= number <= 1.0:
        raise ConfigError(
            f"{setting}={value!r} is not valid: expected idle power as a fraction of TDP, "
            f"a number from 0 to 1 (default {DEFAULT_IDLE_FRACTION})"
        )
    return number


def parse_flag(value: Any, *, setting: str = DRAM_ENV) -> bool:
    """Return ``value`` as a boolean (``1/0``, ``true/false``, ``yes/no``, ``on/off``).

    :raises ConfigError: naming the setting, the value and what is accepted.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{setting}={value!r} is not valid: expected 1 or 0 (true/false, yes/no, on/off)")


@frozen(kw_only=True)
class Settings:
    """The plugin's settings, from ``config.options`` first, then the environment.

    Build it with :meth:`from_config`.

    :param tdp_w: TDP in watts per package given by the user, or None to look it up.
    :param tdp_setting: Which setting gave ``tdp_w`` (``CARBONKIT_CPU_TDP_W`` or
        ``option cpu_estimate.tdp_w``).
    :param idle_fraction: Idle power as a fraction of TDP.
    :param dram: Whether to also estimate DRAM power.
    """

    tdp_w: float | None = None
    tdp_setting: str | None = None
    idle_fraction: float = DEFAULT_IDLE_FRACTION
    dram: bool = False

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; an option wins over its environment variable.

        :raises ConfigError: naming the setting and value that cannot be used.
        """
        env = os.environ if environ is None else environ

        def pick(option: str, variable: str) -> tuple[Any, str] | None:
            if config.options.get(option) is not None:
                return config.options[option], f"option {option}"
            raw = env.get(variable)
            if raw is not None and raw.strip():
                return raw, variable
            return None

        values: dict[str, Any] = {}
        if (tdp := pick(TDP_OPTION, TDP_ENV)) is not None:
            values["tdp_w"] = parse_tdp_w(tdp[0], setting=tdp[1])
            values["tdp_setting"] = tdp[1]
        if (idle := pick(IDLE_OPTION, IDLE_ENV)) is not None:
            values["idle_fraction"] = parse_idle_fraction(idle[0], setting=idle[1])
        if (dram := pick(DRAM_OPTION, DRAM_ENV)) is not None:
            values["dram"] = parse_flag(dram[0], setting=dram[1])
        return cls(**values)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def resolve_tdp(cpu: CpuInfo, settings: Settings, table: TdpTable) -> tuple[float, str]:
    """Return the machine's total TDP in watts and a line saying where it came from.

    In order: the user's setting x packages; the table entry for the model x packages (on a
    virtual machine, capped at the per-core default x the cores it sees, since it may run on
    part of a larger processor); the per-core default x physical cores.
    """
    packages = _plural(cpu.sockets, "package")
    if settings.tdp_w is not None:
        return settings.tdp_w * cpu.sockets, f"{settings.tdp_setting}: {settings.tdp_w:g} W x {packages}"
    default_w = DEFAULT_W_PER_CORE * cpu.physical_cores
    default_line = f"default: {DEFAULT_W_PER_CORE:g} W per core x {_plural(cpu.physical_cores, 'core')}"
    match = table.lookup(cpu.model_name) if cpu.model_name else None
    if match is not None:
        how = "" if match.exact else ", token match"
        line = f"table: {match.name} ({match.tdp_w:g} W x {packages}{how})"
        total = match.tdp_w * cpu.sockets
        if cpu.virtual_machine and total > default_w:
            return default_w, f"{line}, capped for a virtual machine at {default_line}"
        return total, line
    return default_w, default_line


def _cpu_split(times: Any) -> tuple[float, float]:
    """Return (busy, total) CPU-seconds from a ``psutil.cpu_times()`` record."""
    fields = times._asdict()
    total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
    idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0) + fields.get("steal", 0.0)
    return total - idle, total


def _positive_watts(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    number = _number(value) if not isinstance(value, str) else None
    if number is None or number <= 0:
        raise ConfigError(
            f"{type(instance).__name__}.{attribute.name} must be a positive number of watts, got {value!r}"
        )


def _fraction(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    number = _number(value) if not isinstance(value, str) else None
    if number is None or not 0.0 <= number <= 1.0:
        raise ConfigError(
            f"{type(instance).__name__}.{attribute.name} must be a number from 0 to 1, got {value!r}"
        )


@define
class CpuEstimate:
    """Estimated power of all the machine's processors: idle power plus a share of TDP.

    ``read`` returns ``[idle_w + (tdp_w - idle_w) * u]`` for one device, ``"cpu"`` (every
    package together), where ``u`` is the CPU busy fraction since the previous window.
    A window closes once :data:`MIN_WINDOW_CPU_S` CPU-seconds have passed, so readings are
    not dominated by the 10 ms tick of the counters; before that, the previous fraction is
    kept. The first fraction is the average since boot, until the first window closes.

    :param tdp_w: Total TDP of all packages, watts.
    :param tdp_source: Where ``tdp_w`` came from (setting, table row or default).
    :param model_name: The processor's name as the system reports it.
    :param idle_fraction: Idle power as a fraction of TDP.
    :param cpu_times: ``psutil.cpu_times`` or a stand-in returning the same record.
    :raises ConfigError: for a TDP that is not a positive number or a fraction outside 0-1.
    """

    name: ClassVar[str] = f"{PLUGIN}:cpu"
    component: ClassVar[str] = "cpu"
    method: ClassVar[str] = "estimated"
    kind: ClassVar[str] = "power"

    tdp_w: float = field(validator=_positive_watts)
    tdp_source: str = "user-supplied"
    model_name: str = ""
    idle_fraction: float = field(default=DEFAULT_IDLE_FRACTION, validator=_fraction)
    cpu_times: Callable[[], Any] = psutil.cpu_times
    _last: tuple[float, float] = field(init=False, default=(0.0, 0.0))
    _utilisation: float = field(init=False, default=0.0)

    def __attrs_post_init__(self) -> None:
        busy, total = _cpu_split(self.cpu_times())
        self._last = (busy, total)
        self._utilisation = _clamp(busy / total) if total > 0 else 0.0

    @property
    def idle_w(self) -> float:
        """Power at zero utilisation, watts."""
        return self.tdp_w * self.idle_fraction

    @property
    def max_power_w(self) -> float:
        """The ceiling of a reading, watts: TDP (the estimate at full load) x :data:`MAX_POWER_MARGIN`."""
        return self.tdp_w * MAX_POWER_MARGIN

    @property
    def utilisation(self) -> float:
        """The busy fraction used by the latest reading, from 0 to 1."""
        return self._utilisation

    @property
    def info(self) -> dict[str, str]:
        """How the figure is obtained, for the report (the optional ``info`` of a PowerSource)."""
        return {
            "model": f"P = P_idle + (TDP - P_idle) x CPU utilisation, P_idle = {self.idle_fraction:g} x TDP",
            "processor": self.model_name or "unknown",
            "tdp": f"{self.tdp_w:g} W ({self.tdp_source})",
        }

    def devices(self) -> list[str]:
        """Return ``["cpu"]``: all packages as one device."""
        return ["cpu"]

    def read(self) -> list[float]:
        """Return the estimated power of all packages, watts."""
        busy, total = _cpu_split(self.cpu_times())
        d_total = total - self._last[1]
        if d_total >= MIN_WINDOW_CPU_S:
            d_busy = max(0.0, busy - self._last[0])
            self._utilisation = _clamp(d_busy / d_total)
            self._last = (busy, total)
        elif d_total < 0:  # counters went back (suspend, a VM migration): start a new window
            self._last = (busy, total)
        return [self.idle_w + (self.tdp_w - self.idle_w) * self._utilisation]

    def close(self) -> None:
        """Nothing to release."""


@define
class DramEstimate:
    """Estimated DRAM power: a fixed figure per GiB of memory in use (total - available).

    :param w_per_gib: Watts per GiB in use.
    :param virtual_memory: ``psutil.virtual_memory`` or a stand-in with ``total`` and
        ``available`` in bytes.
    """

    name: ClassVar[str] = f"{PLUGIN}:dram"
    component: ClassVar[str] = "dram"
    method: ClassVar[str] = "estimated"
    kind: ClassVar[str] = "power"

    w_per_gib: float = field(default=DRAM_W_PER_GIB, validator=_positive_watts)
    virtual_memory: Callable[[], Any] = psutil.virtual_memory
    #: The ceiling of a reading, watts: all memory in use x ``w_per_gib`` x :data:`MAX_POWER_MARGIN`
    #: (the memory size is read once, at creation).
    max_power_w: float = field(init=False)

    def __attrs_post_init__(self) -> None:
        total = self.virtual_memory().total
        self.max_power_w = max(total, 0) / _GIB * self.w_per_gib * MAX_POWER_MARGIN

    @property
    def info(self) -> dict[str, str]:
        """How the figure is obtained, for the report."""
        return {"model": f"{self.w_per_gib:g} W per GiB of memory in use"}

    def devices(self) -> list[str]:
        """Return ``["dram"]``: all memory as one device."""
        return ["dram"]

    def read(self) -> list[float]:
        """Return the estimated DRAM power, watts."""
        memory = self.virtual_memory()
        in_use = max(0, memory.total - memory.available)
        return [in_use / _GIB * self.w_per_gib]

    def close(self) -> None:
        """Nothing to release."""


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def build_sources(
    config: Config,
    cpu: CpuInfo,
    environ: Mapping[str, str] | None = None,
    *,
    cpu_times: Callable[[], Any] = psutil.cpu_times,
    virtual_memory: Callable[[], Any] = psutil.virtual_memory,
) -> list[Any]:
    """Return the estimate sources for ``cpu``, or a warning note when a setting is bad.

    :param config: The tracker configuration (``options`` are read).
    :param cpu: The machine's processors.
    :param environ: The environment to read (default ``os.environ``).
    :param cpu_times: ``psutil.cpu_times`` or a stand-in.
    :param virtual_memory: ``psutil.virtual_memory`` or a stand-in.
    """
    try:
        settings = Settings.from_config(config, environ)
    except ConfigError as exc:
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"{exc}; no CPU estimate is made",
                hint=f"fix or unset the setting (unset {TDP_ENV} to look the processor up by model name)",
                warn=True,
            )
        ]
    tdp_w, tdp_source = resolve_tdp(cpu, settings, TdpTable.for_model(cpu.model_name))
    sources: list[Any] = [
        CpuEstimate(
            tdp_w=tdp_w,
            tdp_source=tdp_source,
            model_name=cpu.model_name,
            idle_fraction=settings.idle_fraction,
            cpu_times=cpu_times,
        )
    ]
    if settings.dram:
        sources.append(DramEstimate(virtual_memory=virtual_memory))
    _logger.debug("cpu_estimate: %s, TDP %.1f W (%s)", cpu.model_name or "unknown model", tdp_w, tdp_source)
    return sources


@hookimpl
def register_power_sources(config: Config) -> list[CpuEstimate | DramEstimate | Unavailable]:
    return build_sources(config, CpuInfo.detect())
