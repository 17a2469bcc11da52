"""Shared fixtures: a clean CARBONKIT_* environment for every test, and HTTP without network."""

from __future__ import annotations

import os

import httpx
import pytest


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
