"""carbonkit plugin ``intensity_dk``: live and forecast carbon intensity for Denmark.

Source: Energinet's Energi Data Service (https://www.energidataservice.dk/), no key needed.

- ``CO2Emis``: CO2 emission per kWh of electricity consumed in each price area, 5-minute
  resolution, near real time (https://www.energidataservice.dk/tso-electricity/co2emis).
- ``CO2EmisProg``: the same quantity forecast from plant schedules, at least 9 hours ahead
  (https://www.energidataservice.dk/tso-electricity/co2emisprog).

Units: grams CO2 per kWh consumed (CO2 only, heat from combined heat and power allocated by
Energinet's 125 % method), reported as ``g_per_kwh``.

Terms: *price area* ``DK1`` is West Denmark (Jutland, Funen), ``DK2`` East Denmark (Zealand,
Bornholm). Zones: ``DK-DK1``, ``DK-DK2`` and ``DK`` (the unweighted mean of DK1 and DK2 for the
same 5-minute interval).

Settings (option key in ``Config.options``, else environment variable):

- ``intensity_dk.api_url`` / ``CARBONKIT_DK_API_URL``: API root (default
  ``https://api.energidataservice.dk``).
- ``intensity_dk.live_dataset`` / ``CARBONKIT_DK_LIVE_DATASET``: default ``CO2Emis``.
- ``intensity_dk.forecast_dataset`` / ``CARBONKIT_DK_FORECAST_DATASET``: default ``CO2EmisProg``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from carbonkit import Config, ConfigError, Unavailable, hookimpl

from .provider import (
    AREAS_BY_ZONE,
    DEFAULT_BASE_URL,
    DEFAULT_FORECAST_DATASET,
    DEFAULT_LIVE_DATASET,
    EmissionRow,
    EnergiDataServiceProvider,
    parse_records,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AREAS_BY_ZONE",
    "DEFAULT_BASE_URL",
    "DEFAULT_FORECAST_DATASET",
    "DEFAULT_LIVE_DATASET",
    "EmissionRow",
    "EnergiDataServiceProvider",
    "parse_records",
    "provider_from_config",
    "register_intensity_providers",
]

PLUGIN = "intensity_dk"


def _setting(config: Config, key: str, env: Mapping[str, str]) -> str | None:
    value = config.options.get(f"{PLUGIN}.{key}")
    if value is None or (isinstance(value, str) and not value.strip()):
        value = env.get(f"CARBONKIT_DK_{key.upper()}", "")
    if not isinstance(value, str):
        raise ConfigError(f"option {PLUGIN}.{key} must be a string, got {value!r}")
    return value.strip() or None


def provider_from_config(
    config: Config, http_client: httpx.Client, environ: Mapping[str, str] | None = None
) -> EnergiDataServiceProvider:
    """Build the provider from ``config.options`` and ``CARBONKIT_DK_*`` variables.

    :raises ConfigError: a setting has a value the provider cannot use.
    """
    env = os.environ if environ is None else environ
    return EnergiDataServiceProvider(
        client=http_client,
        base_url=_setting(config, "api_url", env) or DEFAULT_BASE_URL,
        live_dataset=_setting(config, "live_dataset", env) or DEFAULT_LIVE_DATASET,
        forecast_dataset=_setting(config, "forecast_dataset", env) or DEFAULT_FORECAST_DATASET,
    )


@hookimpl
def register_intensity_providers(
    config: Config, http_client: httpx.Client
) -> list[EnergiDataServiceProvider | Unavailable]:
    """Offer the Energi Data Service provider for DK-DK1, DK-DK2 and DK (no network here).

    A bad setting gives an :class:`~carbonkit.Unavailable` note (shown and warned) instead.
    """
    try:
        return [provider_from_config(config, http_client)]
    except ConfigError as exc:
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=str(exc),
                hint="fix intensity_dk.* options or CARBONKIT_DK_* variables (see the plugin README)",
                warn=True,
            )
        ]
