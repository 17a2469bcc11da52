"""The one HTTP client the core owns and hands to plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

#: Connect quickly or give up; a provider never holds a thread for long.
TIMEOUT_S = {"connect": 3.0, "read": 10.0, "write": 10.0, "pool": 3.0}


def user_agent() -> str:
    from . import __version__

    return f"carbonkit/{__version__} (+https://pypi.org/project/carbonkit/)"


def default_http_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """Return a client with explicit timeouts and a ``User-Agent`` naming carbonkit.

    :param transport: An httpx transport, e.g. ``httpx.MockTransport(handler)`` in tests.
    """
    import httpx

    from ._redact import install_log_filter

    install_log_filter()
    return httpx.Client(
        timeout=httpx.Timeout(**TIMEOUT_S),
        headers={"User-Agent": user_agent()},
        transport=transport,
        follow_redirects=True,
    )
