"""Shared fixtures: a clean CARBONKIT_* environment for every test, and HTTP without network."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

# A shell starts background jobs with SIGINT ignored, and children inherit an ignored signal: the
# Ctrl-C tests would then wait on processes that cannot get it. A handler (unlike SIG_IGN) is reset
# to the default in every child, so the programs the tests start behave as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CARBONKIT_"):
            monkeypatch.delenv(key)


@pytest.fixture
def http():
    """Return a factory: handler -> httpx.Client over httpx.MockTransport."""
    clients: list[httpx.Client] = []

    def make(handler):
        from carbonkit.testing import mock_http_client

        client = mock_http_client(handler)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()
