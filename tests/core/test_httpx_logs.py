"""httpx's own request log lines carry no credential once carbonkit.http is imported."""

from __future__ import annotations

import logging

import carbonkit.http  # noqa: F401  (installs the filter)
from carbonkit._redact import install_log_filter


def test_httpx_request_lines_are_redacted(caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s %d %s"', "GET",
        "https://web-api.tp.entsoe.eu/api?documentType=A75&securityToken=abc-123-secret", "HTTP/1.1", 200, "OK",
    )
    logging.getLogger("httpx").info("HTTP Request: GET https://api.eia.gov/v2/x?api_key=KEY999&length=5 200")
    assert "abc-123-secret" not in caplog.text and "KEY999" not in caplog.text
    assert "length=5" in caplog.text


def test_install_is_idempotent():
    before = {name: list(logging.getLogger(name).filters) for name in ("httpx", "httpcore")}
    install_log_filter()
    install_log_filter()
    for name, filters in before.items():
        assert logging.getLogger(name).filters == filters
