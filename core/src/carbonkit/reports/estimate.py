"""What-if estimates for runs that were not measured: energy and CO2eq from power and time.

Arithmetic (the same as the carbontracker paper's appendix D)::

    it_energy_kwh = power_w x count x utilization x seconds / 3.6e6
    energy_kwh    = it_energy_kwh x pue
    co2eq_g       = energy_kwh x intensity_g_per_kwh
    car_km        = co2eq_g / car_g_per_km

Power: ``power_w`` as given, or the board power of a known accelerator from the table shipped
in ``data/gpus.csv`` (each row with the vendor's figure, what it is, and the vendor page). Board
power is the most a card draws; ``utilization`` scales it linearly, which is a rough model
(an idle GPU still draws tens of watts), so an estimate is an upper bound at ``utilization=1``.

Intensity: ``intensity_g_per_kwh`` as given, or the yearly average for a zone through the
installed intensity providers: :func:`carbonkit.plugins.make_plugin_manager`,
:func:`~carbonkit.plugins.collect_intensity_providers` and
:func:`~carbonkit.plugins.ordered_providers`, then ``current(zone)`` on each provider in order
until one answers with a sample of kind ``"average"``. The providers get an HTTP client that
refuses every request, so live APIs fail at once and are skipped: a hypothetical run has no
"now", and a yearly average is the figure that fits it. The built-in world average answers
for any zone; the result says when it stood in for an unknown zone.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from attrs import field, frozen

from ..config import DEFAULT_PUE, DEFAULT_PUE_SOURCE
from ..errors import ConfigError
from ..records import IntensitySample, _Record, tuple_of
from ._car import CarFactor, car_factor

__all__ = ["Estimate", "Gpu", "ZoneIntensity", "estimate", "find_gpu", "gpus", "zone_intensities", "zone_intensity"]

J_PER_KWH = 3.6e6


# -- accelerators ---------------------------------------------------------------------------


@frozen(kw_only=True)
class Gpu:
    """One accelerator of the shipped table, with its vendor's power figure and source."""

    name: str
    aliases: tuple[str, ...] = field(converter=tuple_of)
    vendor: str
    form_factor: str
    memory_gb: str
    power_w: float
    power_basis: str
    source: str
    url: str

    def citation(self) -> str:
        return f"{self.vendor} {self.name}: {self.power_w:g} W ({self.power_basis}), {self.source}, {self.url}"


def _key(name: str) -> str:
    text = name.upper().replace("_", "-").replace(" ", "-")
    for prefix in ("NVIDIA-", "AMD-"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return "-".join(part for part in text.split("-") if part)


@lru_cache(maxsize=1)
def gpus() -> dict[str, Gpu]:
    """The shipped table, by name."""
    path = resources.files("carbonkit").joinpath("reports/data/gpus.csv")
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    table = {}
    for r in rows:
        table[r["name"]] = Gpu(
            name=r["name"],
            aliases=[a for a in r["aliases"].split(";") if a],
            vendor=r["vendor"],
            form_factor=r["form_factor"],
            memory_gb=r["memory_gb"],
            power_w=float(r["power_w"]),
            power_basis=r["power_basis"],
            source=r["source"],
            url=r["url"],
        )
    return table


def find_gpu(name: str) -> Gpu:
    """Look an accelerator up by name or alias (case, spaces, ``_`` and an ``NVIDIA``/``AMD``
    prefix do not matter: ``"NVIDIA A100-SXM4-80GB"`` and ``a100 sxm4 80gb`` both work).

    :raises ConfigError: naming the accepted names.
    """
    wanted = _key(name)
    for gpu in gpus().values():
        if wanted == _key(gpu.name) or wanted in {_key(a) for a in gpu.aliases}:
            return gpu
    names = ", ".join(gpus())
    raise ConfigError(f"unknown accelerator {name!r}; known: {names}; or give its power with --power-w")


# -- intensity ------------------------------------------------------------------------------


@frozen(kw_only=True)
class ZoneIntensity(_Record):
    """The yearly average used for a zone, and where it came from.

    ``fallback`` is true when no provider knew the zone and a wider average (the world's)
    stood in.
    """

    zone: str
    g_per_kwh: float
    source: str
    provider: str
    kind: str
    year: int | None = None
    used_zone: str = ""
    fallback: bool = False


def _offline_client() -> Any:
    # A plain client: it never sends anything, so the core's timeouts and User-Agent do not matter.
    import httpx

    def refuse(request: Any) -> Any:
        raise httpx.ConnectError("carbonkit estimate uses yearly averages: no network request", request=request)

    return httpx.Client(transport=httpx.MockTransport(refuse))


def _installed_providers(client: Any) -> list[Any]:
    from ..config import Config
    from ..plugins import collect_intensity_providers, make_plugin_manager

    return list(collect_intensity_providers(make_plugin_manager(), Config(), client).objects)


def _lookup(code: str, chain: Sequence[Any]) -> ZoneIntensity:
    errors = []
    for p in chain:
        if not (code in p.zones or "*" in p.zones):
            continue
        try:
            sample: IntensitySample | None = p.current(code)
        except Exception as exc:  # a live API without network, an unknown zone: try the next
            errors.append(f"{p.name}: {exc}")
            continue
        if sample is None or sample.kind != "average":
            continue
        used = sample.zone.upper()
        return ZoneIntensity(
            zone=code,
            g_per_kwh=sample.g_per_kwh,
            source=sample.source,
            provider=p.name,
            kind=sample.kind,
            year=sample.year,
            used_zone=used,
            fallback=used == "WORLD" and code != "WORLD",
        )
    why = "; ".join(errors) or "no provider covers it"
    raise ConfigError(f"no yearly average intensity for zone {code!r} ({why}); give --intensity G instead")


def _code(zone: Any) -> str:
    code = zone.strip().upper() if isinstance(zone, str) else ""
    if not code or " " in code:
        raise ConfigError(f"a zone must be a code such as 'DK-DK2', 'FR' or 'US-CAL-CISO', got {zone!r}")
    return code


def zone_intensities(zones: Iterable[str], providers: Sequence[Any] | None = None) -> list[ZoneIntensity]:
    """The yearly average of each zone from the first provider that gives one, cleanest first.

    :param providers: Providers to ask, in this order (default: the installed ones, ordered for
        each zone as a tracker orders them, with an HTTP client that refuses every request).
    :raises ConfigError: when a zone code is malformed or no provider gives an average.
    """
    from ..plugins import ordered_providers

    codes = list(dict.fromkeys(_code(z) for z in zones))
    if providers is not None:
        out = [_lookup(code, providers) for code in codes]
    else:
        with _offline_client() as client:
            installed = _installed_providers(client)
            out = [_lookup(code, ordered_providers(installed, code, None)) for code in codes]
    return sorted(out, key=lambda zi: (zi.g_per_kwh, zi.zone))


def zone_intensity(zone: str, providers: Sequence[Any] | None = None) -> ZoneIntensity:
    """The yearly average for one zone (see :func:`zone_intensities`)."""
    return zone_intensities([zone], providers)[0]


def known_zones() -> list[str]:
    """Every zone with a yearly average of its own in ``carbonkit-intensity-static``.

    :raises ConfigError: when that plugin is not installed.
    """
    try:
        import carbonkit_intensity_static as static
    except ImportError:
        raise ConfigError(
            "--compare all needs the zone list of carbonkit-intensity-static (not installed); "
            "give a list instead: --compare DK-DK2,FR,PL"
        ) from None
    return sorted(static.known_zones())


# -- the estimate ---------------------------------------------------------------------------


@frozen(kw_only=True)
class Estimate(_Record):
    """A what-if footprint. Figures use the :class:`~carbonkit.Report` names.

    ``compare`` holds the same energy priced in each zone compared, cleanest first, each with
    its ``co2eq_g``.
    """

    power_w: float
    power_source: str
    count: int
    utilization: float
    duration_s: float
    pue: float
    pue_source: str
    it_energy_kwh: float
    energy_kwh: float
    co2eq_g: float
    intensity_g_per_kwh: float
    intensity: ZoneIntensity | None = None
    location: str | None = None
    car_km: float = 0.0
    car_g_per_km: float = 0.0
    car_year: int | None = None
    car_source: str = ""
    compare: tuple[dict[str, Any], ...] = field(converter=tuple_of, default=())
    warnings: tuple[str, ...] = field(converter=tuple_of, default=())


def _number(name: str, value: Any, *, low: float, low_ok: bool, high: float | None = None, what: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number{what}, got {value!r}")
    bad = value < low if low_ok else value <= low
    if bad or (high is not None and value > high):
        bound = f">= {low:g}" if low_ok else f"> {low:g}"
        rng = f"between {low:g} and {high:g}" if high is not None else bound
        raise ConfigError(f"{name} must be {rng}{what}, got {value!r}")
    return float(value)


def estimate(
    *,
    duration_s: float,
    power_w: float | None = None,
    gpu: str | None = None,
    count: int = 1,
    utilization: float = 1.0,
    pue: float | None = None,
    pue_source: str | None = None,
    intensity_g_per_kwh: float | None = None,
    location: str | None = None,
    compare: Iterable[str] | None = None,
    car: CarFactor | None = None,
    providers: Sequence[Any] | None = None,
) -> Estimate:
    """Estimate a run's energy and CO2eq (the arithmetic is in the module docstring).

    :param duration_s: How long the run lasts, seconds (> 0).
    :param power_w: Power per device, watts; or ``gpu``, a name from the shipped table.
    :param count: Number of devices (>= 1).
    :param utilization: Fraction of the power drawn on average, 0 to 1.
    :param pue: Power usage effectiveness (default :data:`carbonkit.config.DEFAULT_PUE`).
    :param intensity_g_per_kwh: Carbon intensity; or ``location``, a zone priced at its yearly
        average (see :func:`zone_intensity`).
    :param compare: Zones to price the same energy in (cleanest first in the result).
    :param car: The car factor (default: the latest year shipped).
    :param providers: Intensity providers to ask (default: the installed ones).
    :raises ConfigError: naming the bad value and what is accepted.
    """
    if (power_w is None) == (gpu is None):
        raise ConfigError("give the power per device with --power-w W, or an accelerator with --gpu NAME (one of them)")
    if (intensity_g_per_kwh is None) == (location is None):
        raise ConfigError(
            "give the carbon intensity with --intensity G (gCO2eq/kWh), or a zone with --location Z (one of them)"
        )
    seconds = _number("duration", duration_s, low=0.0, low_ok=False, what=" (seconds)")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"--count must be a whole number >= 1 (devices), got {count!r}")
    util = _number("--utilization", utilization, low=0.0, low_ok=True, high=1.0, what=" (a fraction of full power)")
    if pue is None:
        pue_value, pue_text = DEFAULT_PUE, DEFAULT_PUE_SOURCE
    else:
        pue_value = _number("--pue", pue, low=1.0, low_ok=True, high=5.0, what=" (total facility power / IT power)")
        pue_text = pue_source or "given"
    if gpu is not None:
        device = find_gpu(gpu)
        watts, power_source = device.power_w, device.citation()
    else:
        watts = _number("--power-w", power_w, low=0.0, low_ok=False, what=" (watts per device)")
        power_source = "given"
    warnings = []
    zone_info = None
    if location is not None:
        zone_info = zone_intensity(location, providers)
        intensity = zone_info.g_per_kwh
        if zone_info.fallback:
            warnings.append(f"no yearly average for zone {zone_info.zone}: {zone_info.source}")
    else:
        intensity = _number("--intensity", intensity_g_per_kwh, low=0.0, low_ok=True, what=" (gCO2eq/kWh)")
    car = car or car_factor()
    it_kwh = watts * count * util * seconds / J_PER_KWH
    kwh = it_kwh * pue_value
    grams = kwh * intensity
    rows = []
    if compare is not None:
        for zi in zone_intensities(compare, providers):
            rows.append({**zi.to_dict(), "co2eq_g": kwh * zi.g_per_kwh})
            if zi.fallback:
                warnings.append(f"no yearly average for zone {zi.zone}: the world average stands in")
    return Estimate(
        power_w=watts,
        power_source=power_source,
        count=count,
        utilization=util,
        duration_s=seconds,
        pue=pue_value,
        pue_source=pue_text,
        it_energy_kwh=it_kwh,
        energy_kwh=kwh,
        co2eq_g=grams,
        intensity_g_per_kwh=intensity,
        intensity=zone_info,
        location=zone_info.zone if zone_info else None,
        car_km=grams / car.g_per_km,
        car_g_per_km=car.g_per_km,
        car_year=car.year,
        car_source=car.citation(),
        compare=rows,
        warnings=warnings,
    )
