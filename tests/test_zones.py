"""The zone's static intensity prices a run from its first second; a zone nobody knows is an error."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import httpx
import pytest

import carbonkit
import carbonkit_intensity_dk
import carbonkit_intensity_static
from carbonkit.testing import FakePowerSource, mock_http_client, tracker_for


def static(zone: str) -> float:
    return carbonkit_intensity_static.lookup(zone).g_per_kwh


@pytest.mark.parametrize(
    "given, expected, closest",
    [("dk2", "'DK2'", "DK-DK2"), ("US-TEX-EROC", "'US-TEX-EROC'", "US-TEX-ERCO"), ("XX-NOPE", "'XX-NOPE'", None)],
)
def test_an_unknown_zone_is_a_config_error_naming_the_closest_codes(given, expected, closest):
    with pytest.raises(carbonkit.ConfigError) as err:
        carbonkit.Tracker(location=given, sources=[FakePowerSource()], quiet=True, http_client=mock_http_client())
    text = str(err.value)
    assert text.startswith(f"location={expected} is not a zone")
    if closest:
        assert closest in text.split("closest known codes:")[1]


def test_the_message_names_the_variable_the_user_set(monkeypatch):
    monkeypatch.setenv("CARBONKIT_LOCATION", "dk2")
    with pytest.raises(carbonkit.ConfigError, match="CARBONKIT_LOCATION='DK2' is not a zone.*DK-DK2"):
        carbonkit.Tracker(sources=[FakePowerSource()], quiet=True, http_client=mock_http_client())


def test_a_real_zone_without_a_row_of_its_own_still_falls_back_to_its_country():
    """Known codes pass: DK-DK1 has its own row; WORLD always passes."""
    for zone in ("DK-DK1", "WORLD", "SE-SE3"):
        t = carbonkit.Tracker(location=zone, sources=[FakePowerSource()], quiet=True, http_client=mock_http_client())
        assert t.stop().location == zone


def test_carbonkit_run_rejects_an_unknown_zone_before_running_the_command(tmp_path):
    marker = tmp_path / "ran"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    out = subprocess.run(
        [sys.executable, "-m", "carbonkit", "run", "--location", "dk2", "--", sys.executable, "-c",
         f"open({str(marker)!r}, 'w').close()"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "'DK2' is not a zone" in out.stderr and "DK-DK2" in out.stderr
    assert not marker.exists()


def test_a_hanging_live_api_prices_epochs_and_prediction_at_the_zones_static_value():
    """Energi Data Service never answers: from the first epoch on, DK-DK1's own yearly average is
    used (not the world average), and the report says the live API did not answer."""
    release = threading.Event()

    def hang(request):
        release.wait(30)
        raise httpx.ReadTimeout("read timed out", request=request)

    try:
        t = tracker_for(
            carbonkit_intensity_dk, carbonkit_intensity_static, http_client=mock_http_client(hang),
            sources=[FakePowerSource(watts=[100.0])], location="DK-DK1", interval_s=0.01, epochs=3, pue=1.0,
        )
        for _ in range(3):
            t.epoch_start()
            t.epoch_end()
        r = t.stop()
    finally:
        release.set()
    dk1 = static("DK-DK1")
    assert r.intensity_g_per_kwh == pytest.approx(dk1)
    assert r.prediction is not None and r.prediction.intensity_g_per_kwh == pytest.approx(dk1)
    assert "DK-DK1" in r.prediction.intensity_source
    for e in r.epochs:
        assert e.co2eq_g == pytest.approx(e.energy_kwh * dk1, rel=1e-9)
    (fb,) = r.intensity.fallbacks
    assert fb.provider.startswith("intensity_dk") and "no answer" in fb.reason and fb.used.startswith("intensity_static")
