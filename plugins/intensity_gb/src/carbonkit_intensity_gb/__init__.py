"""carbonkit plugin ``intensity_gb``: live and forecast carbon intensity for Great Britain.

Source: the Carbon Intensity API of NESO (the National Energy System Operator, formerly
National Grid ESO), https://carbonintensity.org.uk/, documented at
https://carbon-intensity.github.io/api-definitions/ (CC BY 4.0, no key needed).

- National: ``/intensity`` (latest half hour, with ``actual`` once metered) and
  ``/intensity/{from}/fw48h`` (48 hours of half-hour forecasts).
- Regional (one of 14 distribution regions, or England/Scotland/Wales), by outward postcode
  or region id: ``/regional/postcode/{pc}``, ``/regional/regionid/{id}`` and their
  ``/regional/intensity/{from}/fw48h/...`` forecasts. Regional values are forecasts only.

Units: grams CO2 per kWh (gCO2/kWh) of electricity generated, direct (operational) emission
factors, half-hour slots.

Settings:

- Region: ``Config.postcode`` (else ``CARBONKIT_POSTCODE``), a UK postcode or outward code,
  or ``Config.options["intensity_gb.region_id"]`` (else ``CARBONKIT_GB_REGION_ID``), 1-17.
  The region id wins when both are set. With neither, national values are used.
- ``intensity_gb.api_url`` / ``CARBONKIT_GB_API_URL``: API root (default
  ``https://api.carbonintensity.org.uk``).

Providers: ``intensity_gb:national`` (zone ``GB``, priority 100) always, and, when a region is
set, ``intensity_gb:regional`` (zone ``GB``, priority 101) which the core then prefers, falling
back to the national one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from carbonkit import Config, ConfigError, Unavailable, hookimpl

from .provider import (
    DEFAULT_BASE_URL,
    REGION_IDS,
    Backoff,
    CarbonIntensityGBProvider,
    Period,
    RegionalSeries,
    outward_code,
    parse_national,
    parse_regional,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "REGION_IDS",
    "Backoff",
    "CarbonIntensityGBProvider",
    "Period",
    "RegionalSeries",
    "outward_code",
    "parse_national",
    "parse_regional",
    "providers_from_config",
    "register_intensity_providers",
]

PLUGIN = "intensity_gb"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _base_url(config: Config, env: Mapping[str, str]) -> str:
    value = config.options.get(f"{PLUGIN}.api_url")
    if _blank(value):
        value = env.get("CARBONKIT_GB_API_URL", "")
    if not isinstance(value, str):
        raise ConfigError(f"option {PLUGIN}.api_url must be a string URL, got {value!r}")
    return value.strip() or DEFAULT_BASE_URL


def _region_id(config: Config, env: Mapping[str, str]) -> int | None:
    value = config.options.get(f"{PLUGIN}.region_id")
    origin = f"option {PLUGIN}.region_id"
    if _blank(value):
        value, origin = env.get("CARBONKIT_GB_REGION_ID", ""), "CARBONKIT_GB_REGION_ID"
    if _blank(value):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ConfigError(f"{origin}={value!r} is not a region id: expected a whole number from 1 to 17") from None
    if isinstance(value, bool) or not isinstance(value, int) or value not in REGION_IDS:
        raise ConfigError(f"{origin}={value!r} is not a region id: expected a whole number from 1 to 17")
    return value


def providers_from_config(
    config: Config, http_client: httpx.Client, environ: Mapping[str, str] | None = None
) -> list[CarbonIntensityGBProvider]:
    """Build the national provider and, when a postcode or region id is set, the regional one.

    :raises ConfigError: a setting has a value the providers cannot use (naming it).
    """
    env = os.environ if environ is None else environ
    base_url = _base_url(config, env)
    backoff = Backoff()  # one API, one rate limit: a 429 pauses both providers
    national = CarbonIntensityGBProvider(client=http_client, base_url=base_url, backoff=backoff)
    region_id = _region_id(config, env)
    postcode = config.postcode if not _blank(config.postcode) else env.get("CARBONKIT_POSTCODE")
    if region_id is None and _blank(postcode):
        return [national]
    regional = CarbonIntensityGBProvider(
        client=http_client,
        base_url=base_url,
        region_id=region_id,
        postcode=None if region_id is not None or _blank(postcode) else postcode,
        backoff=backoff,
    )
    return [regional, national]


@hookimpl
def register_intensity_providers(
    config: Config, http_client: httpx.Client
) -> list[CarbonIntensityGBProvider | Unavailable]:
    """Offer the GB providers (no network here). A bad setting gives a warned
    :class:`~carbonkit.Unavailable` note naming it, plus the national provider when the
    setting at fault is the region."""
    try:
        return list(providers_from_config(config, http_client))
    except ConfigError as exc:
        note = Unavailable(
            plugin=PLUGIN,
            reason=str(exc),
            hint="fix the postcode, intensity_gb.* options or CARBONKIT_GB_* variables (see the plugin README)",
            warn=True,
        )
    try:
        national = CarbonIntensityGBProvider(client=http_client, base_url=_base_url(config, os.environ))
    except ConfigError:
        return [note]
    return [note, national]
