"""Keep credentials out of httpx's own log lines.

httpx logs every request at INFO on the ``httpx`` logger, URL and query included
(``HTTP Request: GET https://web-api.tp.entsoe.eu/api?...&securityToken=... "HTTP/1.1 200 OK"``).
Services such as ENTSO-E (``securityToken``) and the US EIA (``api_key``) take their credential
in the query, so a program that sets logging to INFO would print it. :func:`install` adds a
filter to the ``httpx`` and ``httpcore`` loggers that rewrites each record through
:func:`carbonkit._redact.redact_text` before any handler sees it. It is idempotent.
"""

from __future__ import annotations

import logging

from ._redact import redact_text

__all__ = ["install"]

LOGGERS = ("httpx", "httpcore")


class RedactingFilter(logging.Filter):
    """Replaces a record's message by its redacted text (secret query parameters, URL passwords)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install() -> None:
    """Attach one :class:`RedactingFilter` to each logger of :data:`LOGGERS` (once)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
