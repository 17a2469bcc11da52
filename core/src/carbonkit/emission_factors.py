"""Life-cycle emission factors per fuel, and the one function that turns a generation mix into
grams CO2eq per kWh.

Providers that receive a generation mix rather than an intensity (ENTSO-E's actual generation
per production type, the US EIA's hourly net generation by energy source) map their codes to
the fuel vocabulary :data:`FUELS` and call :func:`mix_intensity`. Every sample computed this
way records :data:`IPCC_2014.name <IPCC_2014>` in ``IntensitySample.factors``, so a report says
which factor set made the number. The table, its sources and the reasons for each choice are in
``docs/emission-factors.md``.

The factor set, :data:`IPCC_2014` (grams CO2eq per kWh of electricity generated, life cycle:
construction, fuel supply, operation and decommissioning):

========== ===== =========================================================================
fuel       g/kWh source
========== ===== =========================================================================
coal       820   IPCC AR5 WGIII Annex III, Table A.III.2, coal, pulverised (PC), median
gas        490   same table, gas, combined cycle, median
oil        650   not in the IPCC table; UK Parliamentary Office of Science and Technology
                 (POST), carbon footprint of electricity generation, oil-fired
nuclear    12    IPCC table, nuclear, median
hydro      24    IPCC table, hydropower, median
wind       11    IPCC table, wind onshore, median (offshore: 12)
solar      48    IPCC table, solar PV utility scale, median (rooftop: 41)
biomass    230   IPCC table, biomass dedicated, median
geothermal 38    IPCC table, geothermal, median
unknown    700   an assumption: unidentified generation is taken to be thermal, between
                 gas (490) and coal (820)
storage    --    not priced: the energy a store gives back was generated earlier and counted
                 then, so storage output takes the intensity of the rest of the mix
========== ===== =========================================================================

:func:`mix_intensity` is the generation-weighted mean of these factors over the fuels that
generate (storage excluded). Pricing storage output at the intensity of the rest of the mix is
the same as leaving it out: ``(sum(f_i * g_i) + I * s) / (G + s) = I`` when
``I = sum(f_i * g_i) / G``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from attrs import field, frozen

__all__ = [
    "FUELS",
    "IPCC_2014",
    "STORAGE",
    "UNPRICED",
    "FactorSet",
    "mix_intensity",
]

#: Fuel for energy storage output (pumped hydro, batteries): not priced (see the module text).
STORAGE = "storage"
#: The fuel vocabulary: every key a generation mix may have.
FUELS: tuple[str, ...] = (
    "coal",
    "gas",
    "oil",
    "nuclear",
    "hydro",
    "wind",
    "solar",
    "biomass",
    "geothermal",
    "unknown",
    STORAGE,
)
#: Fuels that carry no factor of their own: their output is priced at the rest of the mix.
UNPRICED: frozenset[str] = frozenset({STORAGE})


def _read_only(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@frozen(kw_only=True)
class FactorSet:
    """A named, cited set of emission factors, grams CO2eq per kWh generated, one per fuel.

    :param name: How samples name it in ``IntensitySample.factors``.
    :param g_per_kwh: Factor per fuel of :data:`FUELS` (every fuel but those in
        :data:`UNPRICED`).
    :param sources: Where each factor comes from, per fuel.
    :param citation: The publication of the set as a whole.
    """

    name: str
    g_per_kwh: Mapping[str, float] = field(converter=_read_only)
    sources: Mapping[str, str] = field(converter=_read_only)
    citation: str

    def __attrs_post_init__(self) -> None:
        wanted = set(FUELS) - UNPRICED
        if set(self.g_per_kwh) != wanted:
            raise ValueError(
                f"factor set {self.name!r} must give a factor for exactly {sorted(wanted)}, "
                f"got {sorted(self.g_per_kwh)}"
            )
        for fuel, value in self.g_per_kwh.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"factor set {self.name!r}: factor for {fuel!r} must be a number >= 0, got {value!r}")


_AR5 = (
    "IPCC 2014, AR5 WGIII Annex III (Schlömer et al.), Table A.III.2, life-cycle median"
)

#: IPCC AR5 (2014) life-cycle medians, with oil and unknown filled in as the module text says.
IPCC_2014 = FactorSet(
    name="IPCC 2014 AR5 lifecycle medians",
    g_per_kwh={
        "coal": 820.0,
        "gas": 490.0,
        "oil": 650.0,
        "nuclear": 12.0,
        "hydro": 24.0,
        "wind": 11.0,
        "solar": 48.0,
        "biomass": 230.0,
        "geothermal": 38.0,
        "unknown": 700.0,
    },
    sources={
        "coal": f"{_AR5}, coal PC",
        "gas": f"{_AR5}, gas combined cycle",
        "oil": "UK Parliamentary Office of Science and Technology (POST), carbon footprint of electricity "
        "generation, oil-fired (AR5 Annex III gives no oil value)",
        "nuclear": f"{_AR5}, nuclear",
        "hydro": f"{_AR5}, hydropower",
        "wind": f"{_AR5}, wind onshore (offshore 12)",
        "solar": f"{_AR5}, solar PV utility (rooftop 41)",
        "biomass": f"{_AR5}, biomass dedicated",
        "geothermal": f"{_AR5}, geothermal",
        "unknown": "assumption: unidentified generation is thermal, between gas (490) and coal (820)",
    },
    citation=(
        "Schlömer S. et al., 2014: Annex III: Technology-specific cost and performance parameters. In: "
        "Climate Change 2014: Mitigation of Climate Change. Contribution of Working Group III to the Fifth "
        "Assessment Report of the IPCC. Cambridge University Press. Table A.III.2"
    ),
)


def mix_intensity(mix: Mapping[str, float], factors: FactorSet = IPCC_2014) -> float:
    """Return the intensity, grams CO2eq per kWh, of a generation mix.

    :param mix: Generation per fuel of :data:`FUELS`, in any one unit of power or energy (MW or
        MWh: only the shares matter). Every value must be a finite number >= 0; a fuel may be
        absent. ``storage`` output is not priced (it takes the intensity of the rest).
    :param factors: The factor set, default :data:`IPCC_2014`.
    :returns: ``sum(factor[fuel] * mix[fuel]) / sum(mix[fuel])`` over the priced fuels.
    :raises ValueError: an unknown fuel (the message lists the vocabulary), a negative, NaN,
        infinite or non-numeric value (named with its fuel), or no priced generation at all.
    """
    if not isinstance(mix, Mapping):
        raise ValueError(f"a generation mix must be a mapping of fuel to MW or MWh, got {mix!r}")
    weighted = 0.0
    total = 0.0
    for fuel, value in mix.items():
        if fuel not in FUELS:
            raise ValueError(f"unknown fuel {fuel!r} in the generation mix; fuels are {', '.join(FUELS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"generation of {fuel!r} must be a finite number >= 0, got {value!r}")
        if fuel in UNPRICED:
            continue
        weighted += factors.g_per_kwh[fuel] * float(value)
        total += float(value)
    if total <= 0:
        raise ValueError(f"the generation mix has no generation to price: {dict(mix)!r}")
    return weighted / total
