"""carbonkit plugin ``intensity_watttime``: marginal CO2 emission rates (WattTime ``co2_moer``)
of US grid regions, with a WattTime account.

Marginal signal: the emissions of the generators that respond to a change in demand, not the
average of all generation (Dodge et al. 2022 use it for scheduling decisions). Values are
converted from lbs CO2/MWh to g/kWh. See the README for coverage, plans and licence.

Settings (option key in ``Config.options``, else environment variable):

- ``intensity_watttime.username`` / ``CARBONKIT_WATTTIME_USERNAME`` and
  ``intensity_watttime.password`` / ``CARBONKIT_WATTTIME_PASSWORD``: the account (required).
- ``intensity_watttime.api_url`` / ``CARBONKIT_WATTTIME_API_URL``: API root (default
  ``https://api.watttime.org``).
- ``intensity_watttime.region`` / ``CARBONKIT_WATTTIME_REGION``: a WattTime region code used
  for the run's zone instead of the zone table (``CAISO_NORTH``, ``ERCOT_AUSTIN``...).
- ``intensity_watttime.latitude``, ``intensity_watttime.longitude`` /
  ``CARBONKIT_WATTTIME_LATITUDE``, ``CARBONKIT_WATTTIME_LONGITUDE``: the machine's coordinates,
  resolved to a region by ``/v3/region-from-loc`` (both or neither).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from carbonkit import Config, ConfigError, Unavailable, hookimpl
from carbonkit.plugin_settings import offer_provider

from .provider import (
    DEFAULT_BASE_URL,
    G_PER_KWH_PER_LBS_PER_MWH,
    RENEW_AFTER_S,
    SIGNAL_TYPE,
    TOKEN_LIFETIME_S,
    UNITS,
    MoerPoint,
    MoerSeries,
    WattTimeProvider,
    lbs_per_mwh_to_g_per_kwh,
    parse_series,
)
from .regions import REGIONS_BY_ZONE, Region

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ACCOUNT_HINT",
    "DEFAULT_BASE_URL",
    "G_PER_KWH_PER_LBS_PER_MWH",
    "REGIONS_BY_ZONE",
    "RENEW_AFTER_S",
    "SIGNAL_TYPE",
    "TOKEN_LIFETIME_S",
    "UNITS",
    "MoerPoint",
    "MoerSeries",
    "Region",
    "WattTimeProvider",
    "lbs_per_mwh_to_g_per_kwh",
    "parse_series",
    "provider_from_config",
    "register_intensity_providers",
]

PLUGIN = "intensity_watttime"
#: What ``carbonkit plugins`` says when no account is set.
ACCOUNT_HINT = (
    "register a WattTime account with POST https://api.watttime.org/register (https://docs.watttime.org/) and "
    "set CARBONKIT_WATTTIME_USERNAME and CARBONKIT_WATTTIME_PASSWORD; the free plan gives MOER values for "
    "CAISO_NORTH only"
)


def _setting(config: Config, key: str, env: Mapping[str, str]) -> tuple[Any, str]:
    """The value of a setting and how the user set it (option key or variable name)."""
    value = config.options.get(f"{PLUGIN}.{key}")
    if value is not None and not (isinstance(value, str) and not value.strip()):
        return value, f"option {PLUGIN}.{key}"
    variable = f"CARBONKIT_WATTTIME_{key.upper()}"
    text = env.get(variable, "")
    return (text.strip() or None), variable


def _text(value: Any, where: str, *, secret: bool = False) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got a {type(value).__name__}")
    return value if secret else value.strip()


def _degrees(value: Any, where: str, limit: float) -> float | None:
    if value is None:
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise ConfigError(f"{where}={value!r} is not a number of degrees from {-limit:g} to {limit:g}")
    return number


def provider_from_config(
    config: Config, http_client: httpx.Client, environ: Mapping[str, str] | None = None
) -> WattTimeProvider | None:
    """Build the provider from ``config.options`` and ``CARBONKIT_WATTTIME_*`` variables; None
    when neither username nor password is set.

    :raises ConfigError: one of username and password is missing, or a setting has a value the
        provider cannot use (the message names it; never the password).
    """
    env = os.environ if environ is None else environ
    user_value, user_where = _setting(config, "username", env)
    username = _text(user_value, user_where)
    pw_value, pw_where = _setting(config, "password", env)
    password = _text(pw_value, pw_where, secret=True)
    if username is None and password is None:
        return None
    if username is None or password is None:
        missing = user_where if username is None else pw_where
        raise ConfigError(f"{missing} is not set: the WattTime login needs both a username and a password")
    url_value, url_where = _setting(config, "api_url", env)
    url = _text(url_value, url_where)
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{url_where}={url!r} must start with http:// or https:// (default {DEFAULT_BASE_URL})")
    region_value, region_where = _setting(config, "region", env)
    region = _text(region_value, region_where)
    if region is not None:
        region = region.upper()
        if not region.replace("_", "").isalnum():
            raise ConfigError(f"{region_where}={region_value!r} is not a WattTime region code such as 'CAISO_NORTH'")
    lat_value, lat_where = _setting(config, "latitude", env)
    lon_value, lon_where = _setting(config, "longitude", env)
    lat, lon = _degrees(lat_value, lat_where, 90), _degrees(lon_value, lon_where, 180)
    if (lat is None) != (lon is None):
        missing = lat_where if lat is None else lon_where
        raise ConfigError(f"{missing} is not set: coordinates need both a latitude and a longitude")
    coordinates = (lat, lon) if lat is not None and lon is not None else None
    extra = {config.location.upper()} if config.location and (region or coordinates) else set()
    try:
        return WattTimeProvider(
            client=http_client,
            username=username,
            password=password,
            base_url=url or DEFAULT_BASE_URL,
            region=region,
            coordinates=coordinates,
            extra_zones=frozenset(extra),  # type: ignore[arg-type]  # attrs converter
        )
    except ConfigError as exc:
        raise ConfigError(f"{user_where}/{pw_where}: {exc}") from None


@hookimpl
def register_intensity_providers(config: Config, http_client: httpx.Client) -> list[WattTimeProvider | Unavailable]:
    """Offer the WattTime marginal provider when an account is set (no network here).

    Without an account: an :class:`~carbonkit.Unavailable` note saying how to get one. A bad
    setting: a warned note naming it.
    """
    return offer_provider(
        PLUGIN,
        lambda: provider_from_config(config, http_client),
        fix_hint="fix the intensity_watttime.* options or CARBONKIT_WATTTIME_* variables (see the plugin README)",
        missing="no CARBONKIT_WATTTIME_USERNAME and CARBONKIT_WATTTIME_PASSWORD set",
        missing_hint=ACCOUNT_HINT,
    )
