"""A live provider failing in every way the APIs fail: the tracker falls back, records why, never waits."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

import carbonkit_intensity_dk
import carbonkit_intensity_static
from carbonkit.testing import FakePowerSource, mock_http_client, tracker_for

FAILURES = {
    "500 with an HTML body": lambda request: httpx.Response(500, text="<html><body>Internal Server Error</body></html>"),
    "empty body": lambda request: httpx.Response(200, content=b""),
    "malformed JSON": lambda request: httpx.Response(200, text='{"total": 3, "records": [{"Minutes5UTC"'),
    "429": lambda request: httpx.Response(429, text="Max allowed requests per 10 seconds from each unique IP is max up to 40 only"),
    "empty records": lambda request: httpx.Response(200, json={"total": 0, "dataset": "CO2Emis", "records": []}),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_tracker_falls_back_to_the_static_table_and_records_why(failure):
    """Each failure of the DK API gives way to the static yearly average, with the reason kept."""
    client = mock_http_client(FAILURES[failure])
    t = tracker_for(
        carbonkit_intensity_dk, carbonkit_intensity_static, http_client=client,
        sources=[FakePowerSource()], location="DK-DK2", interval_s=0.01,
    )
    time.sleep(0.1)
    r = t.stop()
    (fallback,) = r.intensity.fallbacks
    assert fallback.provider == "intensity_dk:energidataservice"
    assert fallback.used == "intensity_static:table"
    assert fallback.reason
    (use,) = r.intensity.used
    assert use.provider == "intensity_static:table" and use.kind == "average" and use.year == 2024
    assert any("intensity_dk" in w for w in r.warnings)


def test_a_provider_that_never_answers_does_not_slow_the_training_thread():
    """While the API hangs, epoch_end stays microseconds; stop() falls back and says why."""
    release = threading.Event()

    def hang(request):
        release.wait(5.0)
        raise httpx.ReadTimeout("read timed out", request=request)

    t = tracker_for(
        carbonkit_intensity_dk, carbonkit_intensity_static, http_client=mock_http_client(hang),
        sources=[FakePowerSource()], location="DK-DK1", interval_s=0.01,
    )
    took = []
    for _ in range(2000):
        t.epoch_start()
        a = time.perf_counter()
        t.epoch_end()
        took.append(time.perf_counter() - a)
    r = t.stop(timeout_s=3.0)
    release.set()
    # No network and no lock held for long: a blocked call would take seconds, every time. A loaded
    # machine may deschedule the thread in a few calls, so look at the typical call, not the worst
    # (the speed itself is measured in benchmarks/).
    took.sort()
    assert took[len(took) * 9 // 10] < 0.005
    assert r.intensity.fallbacks and "no answer" in r.intensity.fallbacks[0].reason
    assert r.co2eq_g > 0 and len(r.epochs) == 2000
