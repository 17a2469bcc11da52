"""Local stand-ins of the three clouds' instance metadata services, on 127.0.0.1.

Each answers as the real service is documented to (and as captured answers show), failures
included:

- **AWS IMDSv2** (docs.aws.amazon.com, "Use the Instance Metadata Service to access instance
  metadata"): ``PUT /latest/api/token`` needs ``X-aws-ec2-metadata-token-ttl-seconds`` (1 to
  21600; else 400) and answers the token as text; every ``GET /latest/meta-data/...`` needs
  ``X-aws-ec2-metadata-token`` with a token it issued, else 401 (``HttpTokens=required``). Error
  bodies are the service's small XHTML pages. ``placement/region`` and
  ``placement/availability-zone`` are served (the former can be withheld: 404, as on older
  instances).
- **GCP metadata server** (cloud.google.com/compute/docs/metadata): ``GET
  /computeMetadata/v1/instance/zone`` needs ``Metadata-Flavor: Google``, else 403 with the HTML
  ``... Missing Metadata-Flavor:Google header.``; answers ``projects/<number>/zones/<zone>`` as
  ``application/text`` with the response header ``Metadata-Flavor: Google``.
- **Azure IMDS** (learn.microsoft.com, "Azure Instance Metadata Service"): every request needs
  ``Metadata: true`` (else 400 ``{"error": "Bad request: . Required metadata header not
  specified"}``) and ``api-version`` (else 400 with ``newest-versions``);
  ``/metadata/instance/compute/location`` answers the location as text with ``format=text``,
  as a JSON string without; ``/metadata/instance`` answers the full document.

Every request is recorded in ``requests`` as ``(method, path, headers)``.
"""

from __future__ import annotations

import json
import secrets
import socket
from urllib.parse import parse_qs, urlsplit

from localserver import LocalServer, QuietHandler, send

AWS_ERROR = """<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>{code} - {reason}</title>
 </head>
 <body>
  <h1>{code} - {reason}</h1>
 </body>
</html>
"""

GCP_403 = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 403 (Forbidden)!!1</title>\n"
    "  <p><b>403.</b> <ins>That\u2019s an error.</ins>\n  <p>Your client does not have permission to get URL "
    "<code>{path}</code> from this server. Missing Metadata-Flavor:Google header. <ins>That\u2019s all we know.</ins>\n"
)

AZURE_NO_HEADER = {"error": "Bad request: . Required metadata header not specified"}
AZURE_NO_VERSION = {
    "error": "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds",
    "newest-versions": ["2023-07-01", "2021-12-13", "2021-11-15"],
}


def azure_document(location: str) -> dict:
    """The full instance document (abridged to what matters, real field names)."""
    return {
        "compute": {
            "azEnvironment": "AzurePublicCloud",
            "location": location,
            "name": "examplevmname",
            "osType": "Linux",
            "vmSize": "Standard_A3",
            "zone": "",
        },
        "network": {"interface": []},
    }


class MetadataStandIn(LocalServer):
    """One cloud's metadata service: ``cloud`` is ``"aws"``, ``"gcp"`` or ``"azure"``."""

    def __init__(
        self,
        cloud: str,
        *,
        region: str = "eu-west-1",
        gcp_zone: str = "projects/123456789012/zones/us-central1-a",
        azure_location: str = "westeurope",
        aws_region_path: bool = True,
        azure_leaf: bool = True,
        body: tuple[int, str, bytes] | None = None,
    ) -> None:
        self.cloud = cloud
        self.region = region
        self.gcp_zone = gcp_zone
        self.azure_location = azure_location
        self.aws_region_path = aws_region_path
        self.azure_leaf = azure_leaf
        self.body = body  # (status, content type, body) answered to everything: junk, HTML
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        stand_in = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, method: str) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                stand_in.requests.append((method, self.path, headers))
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    self.rfile.read(length)
                status, content_type, data, extra = stand_in.answer(method, self.path, headers)
                send(self, status, content_type, data, extra)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self._answer("GET")

            def do_PUT(self) -> None:  # noqa: N802
                self._answer("PUT")

        self.serve(Handler, daemon_threads=True, poll_interval=0.02)

    @property
    def url(self) -> str:
        return self.root

    # -- the services ---------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, bytes, dict[str, str]]:
        if self.body is not None:
            status, content_type, data = self.body
            return status, content_type, data, {}
        return {"aws": self.aws, "gcp": self.gcp, "azure": self.azure}[self.cloud](method, path, headers)

    def aws(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, bytes, dict[str, str]]:
        def error(code: int, reason: str) -> tuple[int, str, bytes, dict[str, str]]:
            return code, "text/html", AWS_ERROR.format(code=code, reason=reason).encode(), {}

        if path == "/latest/api/token":
            if method != "PUT":
                return error(405, "Method Not Allowed")
            ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return error(400, "Missing or Invalid Parameters")
            token = "AQAEA" + secrets.token_urlsafe(40)
            self.tokens.add(token)
            return 200, "text/plain", token.encode(), {"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": ttl}
        if not path.startswith("/latest/meta-data/"):
            return error(404, "Not Found")
        if headers.get("x-aws-ec2-metadata-token") not in self.tokens:
            return error(401, "Unauthorized")
        leaf = path.removeprefix("/latest/meta-data/")
        if leaf == "placement/region" and self.aws_region_path:
            return 200, "text/plain", self.region.encode(), {}
        if leaf == "placement/availability-zone":
            return 200, "text/plain", (self.region + "a").encode(), {}
        return error(404, "Not Found")

    def gcp(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, bytes, dict[str, str]]:
        url = urlsplit(path)
        if headers.get("metadata-flavor") != "Google":
            return 403, "text/html; charset=UTF-8", GCP_403.format(path=url.path).encode(), {}
        extra = {"Metadata-Flavor": "Google", "Server": "Metadata Server for VM"}
        if url.path == "/computeMetadata/v1/instance/zone":
            return 200, "application/text", self.gcp_zone.encode(), extra
        return 404, "text/html; charset=UTF-8", b"<!DOCTYPE html><title>Error 404 (Not Found)!!1</title>", extra

    def azure(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, bytes, dict[str, str]]:
        url = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}

        def as_json(status: int, body: object) -> tuple[int, str, bytes, dict[str, str]]:
            return status, "application/json; charset=utf-8", json.dumps(body).encode(), {}

        if headers.get("metadata") != "true":
            return as_json(400, AZURE_NO_HEADER)
        if "api-version" not in query:
            return as_json(400, AZURE_NO_VERSION)
        if url.path == "/metadata/instance/compute/location" and self.azure_leaf:
            if query.get("format") == "text":
                return 200, "text/plain; charset=utf-8", self.azure_location.encode(), {}
            return as_json(200, self.azure_location)
        if url.path == "/metadata/instance":
            return as_json(200, azure_document(self.azure_location))
        return as_json(404, {"error": "Not found"})


class Blackhole:
    """An endpoint that accepts TCP connections (the kernel completes the handshake from the
    listen backlog) and never answers a byte, like a firewall that swallows the request."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def connections(self) -> int:
        """Connections made to it so far (each is taken from the backlog and closed)."""
        self.sock.setblocking(False)
        count = 0
        try:
            while True:
                conn, _ = self.sock.accept()
                conn.close()
                count += 1
        except BlockingIOError:
            return count

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def refused_url() -> str:
    """A base URL where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


IPAPI_CO = {
    "ip": "203.0.113.7",
    "network": "203.0.113.0/24",
    "version": "IPv4",
    "city": "Sacramento",
    "region": "California",
    "region_code": "CA",
    "country": "US",
    "country_name": "United States",
    "country_code": "US",
    "country_code_iso3": "USA",
    "continent_code": "NA",
    "in_eu": False,
    "postal": "95814",
    "latitude": 38.5816,
    "longitude": -121.4944,
    "timezone": "America/Los_Angeles",
    "utc_offset": "-0800",
    "asn": "AS64496",
    "org": "Example Networks",
}
IPAPI_CO_RATE_LIMITED = {
    "error": True,
    "reason": "RateLimited",
    "message": "Visit https://ipapi.co/ratelimited/ for details",
}
IP_API_COM = {
    "status": "success",
    "country": "Canada",
    "countryCode": "CA",
    "region": "QC",
    "regionName": "Quebec",
    "city": "Montreal",
    "zip": "H1K",
    "lat": 45.6085,
    "lon": -73.5493,
    "timezone": "America/Toronto",
    "isp": "Le Groupe Videotron Ltee",
    "org": "Videotron Ltee",
    "as": "AS5769 Videotron Telecom Ltee",
    "query": "24.48.0.1",
}
IP_API_COM_FAIL = {"status": "fail", "message": "private range", "query": "10.0.0.1"}


class GeolocationStandIn(LocalServer):
    """An IP geolocation service answering ``GET /json/`` with ``(status, body)``; requests are counted."""

    def __init__(self, status: int = 200, body: object = IPAPI_CO) -> None:
        self.status = status
        self.body = body
        self.requests: list[str] = []
        stand_in = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                stand_in.requests.append(self.path)
                send(self, stand_in.status, "application/json", json.dumps(stand_in.body).encode())

        self.serve(Handler, daemon_threads=True, poll_interval=0.02)

    @property
    def url(self) -> str:
        return f"{self.root}/json/"
