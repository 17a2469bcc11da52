"""Which cloud region this machine runs in, from the cloud's instance metadata service.

Three probes, each through the core's bounded HTTP helpers (:mod:`carbonkit.http`) and the
``httpx.Client`` the hook received:

- **AWS** (IMDSv2): ``PUT {base}/latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds: 21600``
  returns a session token as the body; ``GET {base}/latest/meta-data/placement/region`` with
  ``X-aws-ec2-metadata-token: <token>`` returns the region (``eu-west-1``). An instance that
  answers 404 for ``placement/region`` is asked ``placement/availability-zone``
  (``eu-west-1a``) instead. IMDSv1 (a GET without a token) is never sent: every EC2 instance
  serves IMDSv2, instances set to ``HttpTokens=required`` refuse v1, and AWS counts each v1 call
  in the ``MetadataNoToken`` metric that security teams watch before turning v1 off. The token
  is used once, kept nowhere and never logged.
- **GCP**: ``GET {base}/computeMetadata/v1/instance/zone`` with ``Metadata-Flavor: Google``
  returns ``projects/<number>/zones/<zone>``; the region is the zone without its last
  ``-<letter>`` (``us-central1-a`` -> ``us-central1``). With the default base URL, the server's
  documented address ``http://169.254.169.254`` is asked too (a VM whose DNS does not resolve
  ``metadata.google.internal`` still answers there).
- **Azure** (IMDS): ``GET {base}/metadata/instance/compute/location?api-version=2021-02-01&format=text``
  with ``Metadata: true`` returns the region (``westeurope``); when that leaf is refused (400,
  404 or 405), the full document ``/metadata/instance?api-version=2021-02-01`` is read for ``compute.location``.

Defaults: ``http://169.254.169.254`` (AWS, Azure) and ``http://metadata.google.internal`` (GCP);
each is a base URL, the paths are appended (a trailing slash is ignored).

**Bounded.** A machine outside any cloud must pay a few hundred milliseconds at most, whatever
its network does: no route to 169.254.169.254, a firewall that drops the packets, or a slow DNS
lookup of ``metadata.google.internal`` (which no HTTP timeout bounds). :func:`probe_clouds` runs
the three probes at once on daemon threads, each call limited to the time left, and stops
waiting at one overall deadline; the first probe that finds a region wins. A probe still blocked
then is abandoned: its thread ends when its own call does, and never keeps the process alive.

Any answer that is not the documented one (a non-2xx status, an HTML page, junk, a body of the
wrong shape) means "not this cloud": no region, a DEBUG-level note on the ``carbonkit.location``
logger, never an exception.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from attrs import frozen

from carbonkit import ConfigError, IntensityUnavailable
from carbonkit.http import get_bytes, put_bytes

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AWS_METADATA_URL",
    "AZURE_API_VERSION",
    "AZURE_METADATA_URL",
    "DEFAULT_DEADLINE_S",
    "GCP_METADATA_IP_URL",
    "GCP_METADATA_URL",
    "MAX_DEADLINE_S",
    "CloudRegion",
    "Endpoints",
    "aws_region",
    "azure_region",
    "gcp_region",
    "probe_clouds",
]

_logger = logging.getLogger("carbonkit.location")

AWS_METADATA_URL = "http://169.254.169.254"
GCP_METADATA_URL = "http://metadata.google.internal"
#: The GCP metadata server's documented address, asked too when the URL is the default one.
GCP_METADATA_IP_URL = "http://169.254.169.254"
AZURE_METADATA_URL = "http://169.254.169.254"
#: The Azure IMDS API version asked for (documented, generally available in every region).
AZURE_API_VERSION = "2021-02-01"
#: How long the three probes may take together, by default, seconds.
DEFAULT_DEADLINE_S = 0.5
#: The longest overall deadline accepted: the core gives the whole hook 2 s.
MAX_DEADLINE_S = 1.5
#: Seconds the AWS session token may live (the documented maximum; it is used once, at once).
AWS_TOKEN_TTL_S = 21600
_MAX_BODY = 64 * 1024
_PROVIDER = "location:cloud-metadata"
#: Each probe asks once per process: no connection is kept in the shared client's pool (an
#: abandoned probe's socket would otherwise outlive it, and a client nobody closes leaks it).
_ONCE = {"Connection": "close"}

_AWS_REGION = re.compile(r"[a-z]{2,4}(?:-[a-z]+)+-\d{1,2}")
_AWS_AZ = re.compile(r"([a-z]{2,4}(?:-[a-z]+)+-\d{1,2})[a-z]")
_AWS_TOKEN = re.compile(r"[\x21-\x7e]{1,1024}")
_GCP_ZONE = re.compile(r"projects/\d+/zones/([a-z]+(?:-[a-z]+)*\d+)-[a-z]")
_AZURE_REGION = re.compile(r"[a-z0-9]{2,40}")


@frozen
class CloudRegion:
    """A cloud region found in instance metadata: ``cloud`` is ``"aws"``, ``"gcp"`` or ``"azure"``."""

    cloud: str
    region: str


@frozen
class Endpoints:
    """Base URLs of the three metadata services (paths are appended to them)."""

    aws: str = AWS_METADATA_URL
    gcp: str = GCP_METADATA_URL
    azure: str = AZURE_METADATA_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Endpoints:
        """Read ``CARBONKIT_{AWS,GCP,AZURE}_METADATA_URL`` (blank: the default).

        :raises ConfigError: naming the variable, when a value is not an ``http://`` or
            ``https://`` URL.
        """
        return cls(
            aws=base_url(environ, "CARBONKIT_AWS_METADATA_URL", AWS_METADATA_URL),
            gcp=base_url(environ, "CARBONKIT_GCP_METADATA_URL", GCP_METADATA_URL),
            azure=base_url(environ, "CARBONKIT_AZURE_METADATA_URL", AZURE_METADATA_URL),
        )


def base_url(environ: Mapping[str, str], name: str, default: str) -> str:
    """Read a base URL from ``environ[name]``: blank means ``default``; a trailing slash is dropped."""
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not re.match(r"https?://[^/\s]+", value):
        raise ConfigError(f"{name}={value!r} is not a URL: expected a base URL such as {default!r}")
    return value.rstrip("/")


def _text(body: bytes) -> str | None:
    try:
        return body.decode("ascii").strip()
    except UnicodeDecodeError:
        return None


def _status(exc: BaseException) -> int | None:
    """The HTTP status behind a helper's failure, None for a transport failure."""
    response = getattr(exc.__cause__, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _note(cloud: str, message: str) -> None:
    _logger.debug("carbonkit-location: %s instance metadata: %s", cloud, message)


def aws_region(client: httpx.Client, base: str, deadline_s: float) -> CloudRegion | None:
    """Ask the AWS instance metadata service (IMDSv2) for the region; None when it does not answer as documented."""
    end = time.monotonic() + deadline_s
    token = ""
    try:
        token_body = put_bytes(
            client, f"{base}/latest/api/token", provider=_PROVIDER, what="AWS IMDSv2 token (PUT /latest/api/token)",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(AWS_TOKEN_TTL_S), **_ONCE},
            max_bytes=_MAX_BODY, deadline_s=deadline_s,
        )
        token = _text(token_body.content) or ""
        if not _AWS_TOKEN.fullmatch(token):
            token = ""
            _note("AWS", "the token request answered something that is not a token")
            return None
        headers = {"X-aws-ec2-metadata-token": token, **_ONCE}
        for path, pattern in (("placement/region", _AWS_REGION), ("placement/availability-zone", _AWS_AZ)):
            left = end - time.monotonic()
            if left <= 0:
                _note("AWS", "no time left")
                return None
            try:
                body = get_bytes(
                    client, f"{base}/latest/meta-data/{path}", provider=_PROVIDER, headers=headers,
                    what=f"AWS IMDSv2 /latest/meta-data/{path}", max_bytes=_MAX_BODY, deadline_s=left,
                )
            except IntensityUnavailable as exc:
                if _status(exc) == 404 and path == "placement/region":
                    continue  # an older instance without placement/region: its availability zone says it
                raise
            text = _text(body.content)
            found = pattern.fullmatch(text) if text is not None else None
            if found is None:
                _note("AWS", f"/latest/meta-data/{path} answered {body.content[:80]!r}, not a region")
                return None
            return CloudRegion("aws", found.group(1) if pattern is _AWS_AZ else found.group(0))
        return None
    except IntensityUnavailable as exc:
        _note("AWS", str(exc))
    except Exception as exc:  # never let a probe raise (nor a message show the token)
        message = f"{type(exc).__name__}: {exc}"
        _note("AWS", message.replace(token, "***") if token else message)
    return None


def gcp_region(client: httpx.Client, base: str, deadline_s: float) -> CloudRegion | None:
    """Ask the GCP metadata server for the zone, and return its region; None when it does not answer as documented."""
    try:
        body = get_bytes(
            client, f"{base}/computeMetadata/v1/instance/zone", provider=_PROVIDER,
            headers={"Metadata-Flavor": "Google", **_ONCE}, what="GCP metadata /computeMetadata/v1/instance/zone",
            max_bytes=_MAX_BODY, deadline_s=deadline_s,
        )
        text = _text(body.content)
        found = _GCP_ZONE.fullmatch(text) if text is not None else None
        if found is None:
            _note("GCP", f"instance/zone answered {body.content[:80]!r}, not projects/<n>/zones/<zone>")
            return None
        return CloudRegion("gcp", found.group(1))
    except IntensityUnavailable as exc:
        _note("GCP", str(exc))
    except Exception as exc:
        _note("GCP", f"{type(exc).__name__}: {exc}")
    return None


def _azure_location(text: str) -> str | None:
    """The region in an IMDS answer: plain text (``westeurope``), a JSON string, or the full document."""
    value: Any = text
    if text.startswith(("{", '"')):
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if isinstance(value, dict):
            compute = value.get("compute")
            value = compute.get("location") if isinstance(compute, dict) else value.get("location")
    if not isinstance(value, str):
        return None
    region = re.sub(r"[\s_-]+", "", value.strip().lower())
    return region if _AZURE_REGION.fullmatch(region) else None


def azure_region(client: httpx.Client, base: str, deadline_s: float) -> CloudRegion | None:
    """Ask the Azure Instance Metadata Service for the VM's location; None when it does not answer as documented."""
    end = time.monotonic() + deadline_s
    asks: Sequence[tuple[str, dict[str, str]]] = (
        ("/metadata/instance/compute/location", {"api-version": AZURE_API_VERSION, "format": "text"}),
        ("/metadata/instance", {"api-version": AZURE_API_VERSION}),
    )
    try:
        for path, params in asks:
            left = end - time.monotonic()
            if left <= 0:
                _note("Azure", "no time left")
                return None
            try:
                body = get_bytes(
                    client, f"{base}{path}", provider=_PROVIDER, params=params, headers={"Metadata": "true", **_ONCE},
                    what=f"Azure IMDS {path}", max_bytes=_MAX_BODY, deadline_s=left,
                )
            except IntensityUnavailable as exc:
                if path == asks[0][0] and _status(exc) in (400, 404, 405):
                    _note("Azure", f"{exc}; asking for the full document")
                    continue
                raise
            text = _text(body.content)
            region = _azure_location(text) if text else None
            if region is None:
                _note("Azure", f"{path} answered {body.content[:80]!r}, not a location")
                return None
            return CloudRegion("azure", region)
        return None
    except IntensityUnavailable as exc:
        _note("Azure", str(exc))
    except Exception as exc:
        _note("Azure", f"{type(exc).__name__}: {exc}")
    return None


Probe = Callable[["httpx.Client", str, float], "CloudRegion | None"]


def probe_clouds(
    client: httpx.Client,
    endpoints: Endpoints | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> CloudRegion | None:
    """Ask the three metadata services at once; return the first region found, or None at the deadline.

    Each probe runs on a daemon thread of its own (named ``carbonkit-location-<cloud>``), so a
    blocked connection or DNS lookup never holds the caller past ``deadline_s``. The deadline
    counts from when ``client`` exists (a lazily built client is built first).

    :param client: The ``httpx.Client`` the hook received.
    :param endpoints: Base URLs (default: the real services).
    :param deadline_s: Seconds to wait in all, > 0 and at most :data:`MAX_DEADLINE_S`.
    :raises ConfigError: ``deadline_s`` is out of range.
    """
    if isinstance(deadline_s, bool) or not isinstance(deadline_s, (int, float)) or not 0 < deadline_s <= MAX_DEADLINE_S:
        raise ConfigError(f"deadline_s must be a number of seconds > 0 and <= {MAX_DEADLINE_S:g}, got {deadline_s!r}")
    endpoints = endpoints or Endpoints()
    # The core hands hooks a client built on first use: build it before the clock starts, so that
    # importing httpx (about 0.1 s, once per process, longer on a loaded machine) does not eat
    # the probes' time on a cloud where the answer takes a millisecond.
    getattr(client, "timeout", None)
    probes: list[tuple[str, Probe, str]] = [
        ("aws", aws_region, endpoints.aws),
        ("gcp", gcp_region, endpoints.gcp),
        ("azure", azure_region, endpoints.azure),
    ]
    if endpoints.gcp == GCP_METADATA_URL:  # the server's documented address, where DNS is broken
        probes.append(("gcp-ip", gcp_region, GCP_METADATA_IP_URL))
    answers: queue.Queue[CloudRegion | None] = queue.Queue()
    end = time.monotonic() + deadline_s

    def run(probe: Probe, base: str) -> None:
        result: CloudRegion | None = None
        try:
            result = probe(client, base, max(end - time.monotonic(), 0.001))
        finally:
            answers.put(result)

    for cloud, probe, base in probes:
        threading.Thread(target=run, args=(probe, base), name=f"carbonkit-location-{cloud}", daemon=True).start()
    pending = len(probes)
    while pending:
        left = end - time.monotonic()
        if left <= 0:
            break
        try:
            found = answers.get(timeout=left)
        except queue.Empty:
            break
        pending -= 1
        if found is not None:
            return found
    if pending:
        _logger.debug("carbonkit-location: %d metadata probe(s) did not answer within %.2g s", pending, deadline_s)
    return None
