"""Shared set-up for the framework callback tests: real frameworks, a fake power source.

These tests need the frameworks (``make test-frameworks`` installs them into
``.venv-frameworks``); each module skips without its framework. Nothing is downloaded: models are
built from configs, data is made here, and the Hugging Face hub is off.
"""

from __future__ import annotations

import os

import pytest
from frameworks.checks import G_PER_KWH, WATTS

# Set before any framework is imported: Keras reads its backend once, at import.
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["WANDB_DISABLED"] = "true"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

# The frameworks warn about things these tiny runs do on purpose (few batches, no workers, CPU);
# the suite otherwise turns every warning into an error.
FRAMEWORK_WARNINGS = (
    "ignore::UserWarning",
    "ignore::DeprecationWarning",
    "ignore::FutureWarning",
    "ignore::PendingDeprecationWarning",
    "ignore::ResourceWarning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            for spec in FRAMEWORK_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture
def tracker_kwargs():
    """Tracker arguments for a deterministic run: one fake 100 W source, a fake 200 g/kWh live
    provider, no plugin discovery, no network, no console or log output."""
    from carbonkit.testing import FakeIntensity, FakePowerSource, mock_http_client, plugin_manager_for_tests

    client = mock_http_client()
    yield {
        "sources": [FakePowerSource(watts=(WATTS,))],
        "provider": FakeIntensity(g_per_kwh=G_PER_KWH),
        "reporters": [],
        "location": "WORLD",
        "pue": 1.5,
        "interval_s": 0.05,
        "quiet": True,
        "plugin_manager": plugin_manager_for_tests(),
        "http_client": client,
    }
    client.close()
