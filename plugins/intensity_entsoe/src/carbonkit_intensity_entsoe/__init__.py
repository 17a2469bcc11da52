"""carbonkit plugin ``intensity_entsoe``: live and forecast carbon intensity of European zones.

Source: the ENTSO-E Transparency Platform's RESTful API (https://transparency.entsoe.eu/),
free security token. Live: actual generation per production type (A75) priced with the
IPCC 2014 AR5 life-cycle factors of :mod:`carbonkit.emission_factors`. Forecast: the
day-ahead wind and solar (A69) and aggregated generation (A71) forecasts. Zones: the
Electricity Maps codes of :data:`~carbonkit_intensity_entsoe.zones.EIC_BY_ZONE`.

Settings (option in ``Config.options``, else environment variable):

- ``intensity_entsoe.token`` / ``CARBONKIT_ENTSOE_TOKEN``: the security token (required).
- ``intensity_entsoe.api_url`` / ``CARBONKIT_ENTSOE_API_URL``: API endpoint (default
  ``https://web-api.tp.entsoe.eu/api``).

Without a token the hook offers an :class:`~carbonkit.Unavailable` note saying how to get one.
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

    from .provider import EntsoeProvider

__all__ = [
    "DEFAULT_BASE_URL",
    "EIC_BY_ZONE",
    "FUEL_BY_PSR_TYPE",
    "MAX_LAG_S",
    "TOKEN_PARAM",
    "TOKEN_VARIABLE",
    "URL_VARIABLE",
    "ZONE_NAMES",
    "EntsoeProvider",
    "MixInterval",
    "NoData",
    "Point",
    "Series",
    "fuel_of",
    "parse_document",
    "provider_from_config",
    "register_intensity_providers",
    "timeline",
]

# Submodules load on first use: without a token the hook answers from this module alone, so an
# installed but unconfigured plugin costs every run's start (and `carbonkit intensity --timeout`) nothing.
_LAZY = {
    "NoData": "documents",
    "Point": "documents",
    "Series": "documents",
    "parse_document": "documents",
    "MixInterval": "mix",
    "timeline": "mix",
    "DEFAULT_BASE_URL": "provider",
    "MAX_LAG_S": "provider",
    "TOKEN_PARAM": "provider",
    "EntsoeProvider": "provider",
    "EIC_BY_ZONE": "zones",
    "FUEL_BY_PSR_TYPE": "zones",
    "ZONE_NAMES": "zones",
    "fuel_of": "zones",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


PLUGIN = "intensity_entsoe"
TOKEN_VARIABLE = "CARBONKIT_ENTSOE_TOKEN"
URL_VARIABLE = "CARBONKIT_ENTSOE_API_URL"
#: What ``carbonkit plugins`` says when no token is set.
TOKEN_HINT = (
    "register at https://transparency.entsoe.eu/ (Login, Register), then e-mail transparency@entsoe.eu with "
    "the subject 'Restful API access' and your account's e-mail address; once granted, generate the token under "
    f"My Account Settings and set {TOKEN_VARIABLE}"
)


def provider_from_config(
    config: Config, http_client: httpx.Client, environ: Mapping[str, str] | None = None
) -> EntsoeProvider | None:
    """Build the provider from options and variables; None when no token is set.

    :raises ConfigError: a setting has a value the provider cannot use.
    """
    env = os.environ if environ is None else environ
    token = text_setting(config, PLUGIN, "token", TOKEN_VARIABLE, env)
    if token is None:
        return None
    from .provider import DEFAULT_BASE_URL, EntsoeProvider

    return EntsoeProvider(
        client=http_client,
        token=token,
        base_url=text_setting(config, PLUGIN, "api_url", URL_VARIABLE, env) or DEFAULT_BASE_URL,
    )


@hookimpl
def register_intensity_providers(config: Config, http_client: httpx.Client) -> list[EntsoeProvider | Unavailable]:
    """Offer the ENTSO-E provider when a token is set, else a note saying how to get one.
    No network here."""
    return offer_provider(
        PLUGIN,
        lambda: provider_from_config(config, http_client),
        fix_hint=f"fix {TOKEN_VARIABLE} or {URL_VARIABLE}",
        missing=f"no {TOKEN_VARIABLE} set",
        missing_hint=TOKEN_HINT,
    )
