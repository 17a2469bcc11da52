"""carbonkit.http.put_bytes: the bounded helper for services that hand out a token on a PUT."""

from __future__ import annotations

import httpx
import pytest

from carbonkit import IntensityUnavailable
from carbonkit.http import put_bytes
from carbonkit.testing import mock_http_client


def test_put_sends_a_put_with_its_headers_and_returns_the_body():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="AQAEAtoken")

    client = mock_http_client(handler)
    body = put_bytes(client, "http://imds.test/latest/api/token", provider="p",
                     headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
    assert body.content == b"AQAEAtoken" and body.status == 200
    (request,) = seen
    assert request.method == "PUT" and request.content == b""
    assert request.headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"


def test_put_follows_no_redirect_and_names_itself_in_errors():
    """A client following redirects would turn a 303 into a GET: the PUT stops at the status."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return httpx.Response(303, headers={"Location": "http://imds.test/elsewhere"})

    with pytest.raises(IntensityUnavailable, match=r"^PUT http://imds.test/latest/api/token: HTTP 303"):
        put_bytes(mock_http_client(handler), "http://imds.test/latest/api/token", provider="p")
    assert seen == ["PUT"]


def test_put_keeps_secret_header_values_out_of_errors():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=f"token {request.headers['x-aws-ec2-metadata-token']} refused")

    with pytest.raises(IntensityUnavailable) as caught:
        put_bytes(mock_http_client(handler), "http://imds.test/x", provider="p",
                  headers={"X-aws-ec2-metadata-token": "s3cr3t-token-value"})
    assert "s3cr3t-token-value" not in str(caught.value) and "HTTP 401" in str(caught.value)
