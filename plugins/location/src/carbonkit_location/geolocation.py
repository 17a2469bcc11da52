"""The grid zone of this machine's public IP address, from an IP geolocation service (opt-in).

**Privacy.** A lookup sends the machine's public IP address to a third party (the service at
``CARBONKIT_IP_GEOLOCATION_URL``, by default ipapi.co). It runs only when the user opts in with
``CARBONKIT_IP_GEOLOCATION=1``, and the recorded location source says it did.

The service is asked ``GET <url>`` for the caller's own address and must answer JSON in one of
two documented shapes:

- ipapi.co (``https://ipapi.co/json/``, the default, HTTPS):
  ``{"ip": ..., "country_code": "US", "region_code": "CA", ...}``; failures
  ``{"error": true, "reason": "RateLimited", "message": ...}`` (HTTP 429) or
  ``{"error": true, "reason": "Reserved IP Address", ...}``.
- ip-api.com (``http://ip-api.com/json/``, plain HTTP on its free tier):
  ``{"status": "success", "countryCode": "US", "region": "CA", ...}``; failures
  ``{"status": "fail", "message": "private range", ...}``.

**Country and region to zone.** Where the service gives a subdivision and carbonkit has a zone
for it, the zone is sub-national: Canadian provinces and territories (``CA-ON``...), Australian
states (``AU-NSW``...; the ACT is in the NSW region of the National Electricity Market),
Danish regions (Hovedstaden and Sjaelland: ``DK-DK2``; the rest: ``DK-DK1``), Northern Ireland
(``GB-NIR``), and the US states that one balancing authority or ISO serves for most of their
load (California ``US-CAL-CISO``, Texas ``US-TEX-ERCO``, New York ``US-NY-NYIS``, the six New
England states ``US-NE-ISNE``, Hawaii ``US-HI``, Alaska ``US-AK``). Elsewhere the zone is the
country, and where the country has several grid zones the detail says it is coarse.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from attrs import frozen

from carbonkit import ConfigError, IntensityUnavailable
from carbonkit.http import get_json

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_DEADLINE_S", "DEFAULT_URL", "Place", "locate", "opted_in", "parse_answer", "zone_for_place"]

_logger = logging.getLogger("carbonkit.location")

DEFAULT_URL = "https://ipapi.co/json/"
#: Seconds one lookup may take (it runs only when the user opted in).
DEFAULT_DEADLINE_S = 1.0
_PROVIDER = "location:ip-geolocation"
_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")
_COUNTRY = re.compile(r"[A-Z]{2}")

_US_STATES = {
    "CA": "US-CAL-CISO",
    "TX": "US-TEX-ERCO",
    "NY": "US-NY-NYIS",
    "CT": "US-NE-ISNE",
    "MA": "US-NE-ISNE",
    "ME": "US-NE-ISNE",
    "NH": "US-NE-ISNE",
    "RI": "US-NE-ISNE",
    "VT": "US-NE-ISNE",
    "HI": "US-HI",
    "AK": "US-AK",
}
_CA_PROVINCES = frozenset({"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"})
_AU_STATES = {"NSW": "AU-NSW", "ACT": "AU-NSW", "VIC": "AU-VIC", "QLD": "AU-QLD", "SA": "AU-SA", "TAS": "AU-TAS",
              "WA": "AU-WA", "NT": "AU-NT"}
_DK_REGIONS = {"81": "DK-DK1", "82": "DK-DK1", "83": "DK-DK1", "84": "DK-DK2", "85": "DK-DK2"}
#: Countries whose grid carbonkit splits into several zones: the country alone is coarse there.
_SPLIT = frozenset({"AU", "BR", "CA", "CL", "DK", "ES", "FR", "GB", "IN", "IT", "JP", "MY", "NO", "PH", "PT", "RU",
                    "SE", "US"})


@frozen
class Place:
    """Where an IP geolocation service placed this machine, and the zone that gives."""

    service: str
    country: str
    region: str | None
    zone: str
    coarse: bool

    def detail(self) -> str:
        """For the location source: ``"ipapi.co, US/CA (this machine's IP address was sent to that service)"``."""
        where = f"{self.country}/{self.region}" if self.region else self.country
        coarse = ", country only: coarse" if self.coarse else ""
        return f"{self.service}, {where}{coarse} (this machine's IP address was sent to that service)"


def opted_in(environ: Mapping[str, str]) -> bool:
    """Whether ``CARBONKIT_IP_GEOLOCATION`` turns the lookup on (off unless set).

    :raises ConfigError: the variable is set to something other than an on/off word.
    """
    value = environ.get("CARBONKIT_IP_GEOLOCATION", "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigError(
        f"CARBONKIT_IP_GEOLOCATION={environ['CARBONKIT_IP_GEOLOCATION']!r} is not accepted: use 1/true/yes/on "
        "to send this machine's IP address to a geolocation service, or 0/false/no/off (the default)"
    )


def service_url(environ: Mapping[str, str]) -> str:
    """The lookup URL: ``CARBONKIT_IP_GEOLOCATION_URL``, else :data:`DEFAULT_URL`.

    :raises ConfigError: the variable is not an ``http://`` or ``https://`` URL.
    """
    value = environ.get("CARBONKIT_IP_GEOLOCATION_URL", "").strip()
    if not value:
        return DEFAULT_URL
    if not re.match(r"https?://[^/\s]+", value):
        raise ConfigError(f"CARBONKIT_IP_GEOLOCATION_URL={value!r} is not a URL: expected one such as {DEFAULT_URL!r}")
    return value


def parse_answer(payload: Any) -> tuple[str, str | None] | None:
    """Return ``(country, region or None)`` from a service's JSON, or None for a failure or another shape."""
    if not isinstance(payload, Mapping):
        return None
    if payload.get("error") or payload.get("status") == "fail":
        return None
    country = payload.get("country_code", payload.get("countryCode"))
    region = payload.get("region_code", payload.get("region"))
    if not isinstance(country, str) or not _COUNTRY.fullmatch(country.strip().upper()):
        return None
    region_code = region.strip().upper() if isinstance(region, str) and region.strip() else None
    return country.strip().upper(), region_code


def zone_for_place(country: str, region: str | None) -> tuple[str, bool]:
    """Return ``(zone, coarse)`` for a country code and an optional subdivision code."""
    region = (region or "").upper()
    if country == "US" and region in _US_STATES:
        return _US_STATES[region], False
    if country == "CA" and region in _CA_PROVINCES:
        return f"CA-{region}", False
    if country == "AU" and region in _AU_STATES:
        return _AU_STATES[region], False
    if country == "DK" and region in _DK_REGIONS:
        return _DK_REGIONS[region], False
    if country == "GB":
        return ("GB-NIR", False) if region == "NIR" else ("GB", False)
    return country, country in _SPLIT


def locate(client: httpx.Client, url: str = DEFAULT_URL, deadline_s: float = DEFAULT_DEADLINE_S) -> Place | None:
    """Look this machine's public address up; None when the service fails or answers another shape.

    Failures are DEBUG-level notes on the ``carbonkit.location`` logger, never exceptions.
    """
    service = urlsplit(url).hostname or url
    try:
        payload = get_json(client, url, provider=_PROVIDER, what=f"IP geolocation ({service})", deadline_s=deadline_s,
                           max_bytes=64 * 1024, headers={"Connection": "close"})
    except IntensityUnavailable as exc:
        _logger.debug("carbonkit-location: %s", exc)
        return None
    except Exception as exc:  # never let the lookup raise
        _logger.debug("carbonkit-location: IP geolocation (%s): %s: %s", service, type(exc).__name__, exc)
        return None
    found = parse_answer(payload)
    if found is None:
        keys = sorted(payload)[:12] if isinstance(payload, Mapping) else type(payload).__name__
        _logger.debug("carbonkit-location: IP geolocation (%s) gave no country (fields: %s)", service, keys)
        return None
    zone, coarse = zone_for_place(*found)
    return Place(service=service, country=found[0], region=found[1], zone=zone, coarse=coarse)
