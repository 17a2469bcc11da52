"""carbonkit plugin ``location``: find the grid zone of this machine when the user gave none.

Implements the ``resolve_location`` hook, called only when neither ``location=`` nor
``CARBONKIT_LOCATION`` is set:

1. **Cloud instance metadata** (:mod:`carbonkit_location.metadata`): AWS IMDSv2, the GCP
   metadata server and Azure IMDS are asked at once, on daemon threads, under one overall
   deadline (``CARBONKIT_CLOUD_METADATA_TIMEOUT``, default 0.5 s), so a machine outside any
   cloud pays at most that. The region found is mapped to a grid zone with the shipped table
   (:mod:`carbonkit_location.regions`). ``CARBONKIT_CLOUD_METADATA=0`` skips this step.
2. **IP geolocation** (:mod:`carbonkit_location.geolocation`), only when the user opts in with
   ``CARBONKIT_IP_GEOLOCATION=1``: it sends this machine's public IP address to a third party
   (``CARBONKIT_IP_GEOLOCATION_URL``, default ``https://ipapi.co/json/``).

The answer is a :class:`carbonkit.ResolvedLocation`, so the report's ``location_source`` and the
run log say how the zone was found: ``"cloud metadata: aws eu-west-1"``,
``"IP geolocation: ipapi.co, US/CA (this machine's IP address was sent to that service)"``.
Nothing found: None, and the core uses ``WORLD`` with a warning.

Settings (environment variables; blank means unset):

- ``CARBONKIT_AWS_METADATA_URL``, ``CARBONKIT_GCP_METADATA_URL``, ``CARBONKIT_AZURE_METADATA_URL``:
  base URLs of the metadata services (defaults ``http://169.254.169.254``,
  ``http://metadata.google.internal``, ``http://169.254.169.254``).
- ``CARBONKIT_CLOUD_METADATA``: ``0``/``false``/``no``/``off`` skips the metadata services.
- ``CARBONKIT_CLOUD_METADATA_TIMEOUT``: seconds the three probes may take together, 0.05 to 1.5.
- ``CARBONKIT_IP_GEOLOCATION``: ``1``/``true``/``yes``/``on`` to opt in to IP geolocation.
- ``CARBONKIT_IP_GEOLOCATION_URL``: the geolocation service's URL.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from carbonkit import Config, ConfigError, ResolvedLocation, hookimpl

from .geolocation import Place, locate, opted_in, service_url
from .metadata import DEFAULT_DEADLINE_S, MAX_DEADLINE_S, CloudRegion, Endpoints, probe_clouds
from .regions import RegionZone, region_table, zone_for_region

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CloudRegion",
    "Endpoints",
    "Place",
    "RegionZone",
    "find_location",
    "probe_clouds",
    "region_table",
    "resolve_location",
    "zone_for_region",
]

PLUGIN = "location"
_logger = logging.getLogger("carbonkit.location")
_MIN_DEADLINE_S = 0.05
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def _cloud_metadata_on(environ: Mapping[str, str]) -> bool:
    value = environ.get("CARBONKIT_CLOUD_METADATA", "").strip().lower()
    if not value or value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigError(
        f"CARBONKIT_CLOUD_METADATA={environ['CARBONKIT_CLOUD_METADATA']!r} is not accepted: use 0/false/no/off to "
        "skip the cloud metadata services, or 1/true/yes/on (the default)"
    )


def _deadline(environ: Mapping[str, str]) -> float:
    value = environ.get("CARBONKIT_CLOUD_METADATA_TIMEOUT", "").strip()
    if not value:
        return DEFAULT_DEADLINE_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and _MIN_DEADLINE_S <= seconds <= MAX_DEADLINE_S):
        raise ConfigError(
            f"CARBONKIT_CLOUD_METADATA_TIMEOUT={value!r} is not accepted: a number of seconds from "
            f"{_MIN_DEADLINE_S:g} to {MAX_DEADLINE_S:g} (the three metadata services are asked at once; the "
            "whole resolve_location hook has 2 s)"
        )
    return seconds


def _from_cloud(found: CloudRegion) -> ResolvedLocation | None:
    row = zone_for_region(found.cloud, found.region)
    if row is None:
        _logger.warning(
            "carbonkit-location: this machine runs in %s region %r, which the region table does not map to a "
            "grid zone; set CARBONKIT_LOCATION to the zone of its grid", found.cloud, found.region,
        )
        return None
    detail = f"{found.cloud} {found.region}" + (" (country only: coarse)" if row.coarse else "")
    return ResolvedLocation(zone=row.zone, how="cloud metadata", detail=detail)


def find_location(http_client: httpx.Client, environ: Mapping[str, str] | None = None) -> ResolvedLocation | None:
    """Find this machine's zone: cloud metadata, then IP geolocation when opted in; None when neither answers.

    :param http_client: The ``httpx.Client`` to send requests through.
    :param environ: The environment to read the settings from (default ``os.environ``).
    :raises ConfigError: a setting has a value that is not accepted (naming the variable).
    """
    env = os.environ if environ is None else environ
    use_cloud = _cloud_metadata_on(env)
    deadline = _deadline(env)
    endpoints = Endpoints.from_env(env)
    use_ip = opted_in(env)
    url = service_url(env) if use_ip else None
    if use_cloud:
        found = probe_clouds(http_client, endpoints, deadline)
        if found is not None:
            resolved = _from_cloud(found)
            if resolved is not None:
                return resolved
    if url is not None:
        place = locate(http_client, url)
        if place is not None:
            return ResolvedLocation(zone=place.zone, how="IP geolocation", detail=place.detail())
    return None


@hookimpl
def resolve_location(config: Config, http_client: httpx.Client) -> ResolvedLocation | None:
    """Find the zone from cloud metadata (or IP geolocation when opted in); see the module docstring.

    ``config`` is not read: the settings are environment variables (the module docstring).
    """
    return find_location(http_client)
