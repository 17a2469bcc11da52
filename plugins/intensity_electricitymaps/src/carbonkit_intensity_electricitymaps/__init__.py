"""carbonkit plugin ``intensity_electricitymaps``: carbon intensity of any zone from the
Electricity Maps API (https://www.electricitymaps.com/), with a token.

Average signal (the emissions of all the electricity consumed in the zone, flow-traced across
borders), gCO2eq/kWh, life-cycle emission factors by default. See the README for coverage,
plans and licence.

Settings (option key in ``Config.options``, else environment variable):

- ``intensity_electricitymaps.token`` / ``CARBONKIT_ELECTRICITYMAPS_TOKEN``: the API token
  (required; without it the plugin offers nothing and says how to get one).
- ``intensity_electricitymaps.api_url`` / ``CARBONKIT_ELECTRICITYMAPS_API_URL``: API root
  (default ``https://api.electricitymaps.com/v3``).
- ``intensity_electricitymaps.emission_factor_type`` /
  ``CARBONKIT_ELECTRICITYMAPS_EMISSION_FACTOR_TYPE``: ``lifecycle`` (default) or ``direct``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from carbonkit import Config, ConfigError, Unavailable, hookimpl
from carbonkit.plugin_settings import offer_provider

from .provider import (
    DEFAULT_BASE_URL,
    EMISSION_FACTOR_TYPES,
    GRANULARITY_S,
    ElectricityMapsProvider,
    Entry,
    parse_entries,
    parse_entry,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "EMISSION_FACTOR_TYPES",
    "GRANULARITY_S",
    "TOKEN_HINT",
    "ElectricityMapsProvider",
    "Entry",
    "parse_entries",
    "parse_entry",
    "provider_from_config",
    "register_intensity_providers",
]

PLUGIN = "intensity_electricitymaps"
TOKEN_VARIABLE = "CARBONKIT_ELECTRICITYMAPS_TOKEN"
URL_VARIABLE = "CARBONKIT_ELECTRICITYMAPS_API_URL"
FACTOR_VARIABLE = "CARBONKIT_ELECTRICITYMAPS_EMISSION_FACTOR_TYPE"
#: What ``carbonkit plugins`` says when no token is set.
TOKEN_HINT = (
    f"get a token at https://portal.electricitymaps.com/ and set {TOKEN_VARIABLE}; the free tier covers one "
    "zone, its latest value and the last 24 hours, no forecast"
)


def _setting(config: Config, key: str, variable: str, env: Mapping[str, str]) -> tuple[str | None, str]:
    """The value of a setting and how the user set it (option key or variable name)."""
    value = config.options.get(f"{PLUGIN}.{key}")
    where = f"option {PLUGIN}.{key}"
    if value is None or (isinstance(value, str) and not value.strip()):
        value, where = env.get(variable, ""), variable
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got a {type(value).__name__}")
    return (value.strip() or None), where


def provider_from_config(
    config: Config, http_client: httpx.Client, environ: Mapping[str, str] | None = None
) -> ElectricityMapsProvider | None:
    """Build the provider from ``config.options`` and ``CARBONKIT_ELECTRICITYMAPS_*`` variables;
    None when no token is set.

    :raises ConfigError: a setting has a value the provider cannot use (the message names the
        variable or option and, except for the token, the value).
    """
    env = os.environ if environ is None else environ
    token, token_where = _setting(config, "token", TOKEN_VARIABLE, env)
    if token is None:
        return None
    url, url_where = _setting(config, "api_url", URL_VARIABLE, env)
    factor, factor_where = _setting(config, "emission_factor_type", FACTOR_VARIABLE, env)
    if factor is not None and factor.lower() not in EMISSION_FACTOR_TYPES:
        raise ConfigError(
            f"{factor_where}={factor!r} is not an emission factor type of Electricity Maps; accepted: "
            f"{', '.join(EMISSION_FACTOR_TYPES)} (lifecycle: construction, fuel supply and operation; "
            "direct: combustion only)"
        )
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{url_where}={url!r} must start with http:// or https:// (default {DEFAULT_BASE_URL})")
    try:
        return ElectricityMapsProvider(
            client=http_client,
            token=token,
            base_url=url or DEFAULT_BASE_URL,
            emission_factor_type=(factor or "lifecycle").lower(),
        )
    except ConfigError as exc:
        raise ConfigError(f"{token_where}: {exc}") from None


@hookimpl
def register_intensity_providers(
    config: Config, http_client: httpx.Client
) -> list[ElectricityMapsProvider | Unavailable]:
    """Offer the Electricity Maps provider for any zone when a token is set (no network here).

    Without a token: an :class:`~carbonkit.Unavailable` note saying how to get one. A bad
    setting: a warned note naming it.
    """
    return offer_provider(
        PLUGIN,
        lambda: provider_from_config(config, http_client),
        fix_hint="fix the intensity_electricitymaps.* options or CARBONKIT_ELECTRICITYMAPS_* variables "
        "(see the plugin README)",
        missing=f"no {TOKEN_VARIABLE} set",
        missing_hint=TOKEN_HINT,
    )
