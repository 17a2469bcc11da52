"""carbonkit plugin ``intensity_eia``: hourly carbon intensity of US balancing authorities.

Source: the US Energy Information Administration's Open Data API v2
(https://www.eia.gov/opendata/), route ``electricity/rto/fuel-type-data`` (Form EIA-930 hourly
net generation by energy source), free key. Each hour's mix is priced with the IPCC 2014 AR5
life-cycle factors of :mod:`carbonkit.emission_factors`. Zones: the Electricity Maps codes of
:data:`~carbonkit_intensity_eia.zones.RESPONDENT_BY_ZONE` (``US-CAL-CISO``, ``US-TEX-ERCO``...).
No forecast: EIA publishes none by energy source.

Settings (option in ``Config.options``, else environment variable):

- ``intensity_eia.api_key`` / ``CARBONKIT_EIA_API_KEY``: the API key (required).
- ``intensity_eia.api_url`` / ``CARBONKIT_EIA_API_URL``: API root (default
  ``https://api.eia.gov/v2``).

Without a key the hook offers an :class:`~carbonkit.Unavailable` note saying how to get one.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from carbonkit import Config, Unavailable, hookimpl
from carbonkit.plugin_settings import offer_provider, text_setting

if TYPE_CHECKING:
    import httpx

    from .provider import EiaProvider

__all__ = [
    "DEFAULT_BASE_URL",
    "FUEL_BY_CODE",
    "KEY_PARAM",
    "KEY_VARIABLE",
    "MAX_LAG_S",
    "RESPONDENT_BY_ZONE",
    "URL_VARIABLE",
    "ZONE_NAMES",
    "EiaProvider",
    "HourMix",
    "fuel_of",
    "hourly_mixes",
    "parse_rows",
    "provider_from_config",
    "register_intensity_providers",
]

# Submodules load on first use: without a key the hook answers from this module alone, so an
# installed but unconfigured plugin costs every run's start (and `carbonkit intensity --timeout`) nothing.
_LAZY = {
    "DEFAULT_BASE_URL": "provider",
    "KEY_PARAM": "provider",
    "MAX_LAG_S": "provider",
    "EiaProvider": "provider",
    "HourMix": "provider",
    "hourly_mixes": "provider",
    "parse_rows": "provider",
    "FUEL_BY_CODE": "zones",
    "RESPONDENT_BY_ZONE": "zones",
    "ZONE_NAMES": "zones",
    "fuel_of": "zones",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


PLUGIN = "intensity_eia"
KEY_VARIABLE = "CARBONKIT_EIA_API_KEY"
URL_VARIABLE = "CARBONKIT_EIA_API_URL"
#: What ``carbonkit plugins`` says when no key is set.
KEY_HINT = f"get a free key at https://www.eia.gov/opendata/register.php (sent by e-mail) and set {KEY_VARIABLE}"


def provider_from_config(
    config: Config, http_client: httpx.Client, environ: Mapping[str, str] | None = None
) -> EiaProvider | None:
    """Build the provider from options and variables; None when no key is set.

    :raises ConfigError: a setting has a value the provider cannot use.
    """
    env = os.environ if environ is None else environ
    key = text_setting(config, PLUGIN, "api_key", KEY_VARIABLE, env)
    if key is None:
        return None
    from .provider import DEFAULT_BASE_URL, EiaProvider

    return EiaProvider(
        client=http_client,
        api_key=key,
        base_url=text_setting(config, PLUGIN, "api_url", URL_VARIABLE, env) or DEFAULT_BASE_URL,
    )


@hookimpl
def register_intensity_providers(config: Config, http_client: httpx.Client) -> list[EiaProvider | Unavailable]:
    """Offer the EIA provider when a key is set, else a note saying how to get one. No network here."""
    return offer_provider(
        PLUGIN,
        lambda: provider_from_config(config, http_client),
        fix_hint=f"fix {KEY_VARIABLE} or {URL_VARIABLE}",
        missing=f"no {KEY_VARIABLE} set",
        missing_hint=KEY_HINT,
    )
