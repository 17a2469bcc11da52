"""``carbonkit reprice``: a measured run's power profile priced in another zone or time.

The run of every test: one GPU energy counter sampled each minute for 4 h from 2024-03-01T00:00Z,
drawing 300 W for the first 2 h and 100 W for the last 2 h (0.6 + 0.2 = 0.8 kWh IT). The series:
hourly values of 400 g/kWh, with a trough of 100 g/kWh from 04:00 to 06:00.

Hand arithmetic (PUE 1):

- at its own times (00:00 to 04:00, all at 400): 0.8 kWh x 400 = 320 g;
- moved to start at 04:00: the 300 W half in the trough, 0.6 x 100 = 60 g, the 100 W half after
  it, 0.2 x 400 = 80 g: 140 g. An even power (200 W) would give 0.4 x 100 + 0.4 x 400 = 200 g;
- Flexible Start within 2 h: starting at s hours (0 <= s <= 2), the 300 W half runs in [s, s + 2]
  (never in the trough) and the 100 W half overlaps the trough for s hours: 240 + 0.1 x (400 x
  (2 - s) + 100 x s) = 320 - 30 s, least at s = 2: 260 g, a saving of 60 / 320 = 18.75 %. At even
  power the 200 W tail catches the trough: 0.4 x 400 + 0.4 x 100 = 200 g, 120 / 320 = 37.5 %: the
  measured profile saves half as much, because only its 100 W part can be moved into the trough;
- Pause and Resume within 2 h (horizon 00:00 to 06:00): the job's running time is in order, so its
  last 2 running hours (100 W) are what can sit in the trough: again 260 g (18.75 %) against 200 g
  (37.5 %) at even power.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from logfiles import header, iso, write  # noqa: E402

from carbonkit import ConfigError, IntensitySample  # noqa: E402
from carbonkit.cli import main  # noqa: E402
from carbonkit.reports.reprice import measured_profile, reprice  # noqa: E402

START = 1709251200.0  # 2024-03-01T00:00:00Z
GPU = {"name": "test:gpu", "component": "gpu", "method": "measured", "kind": "energy", "devices": ["gpu0"],
       "info": {}}


def profile_log(path: Path, *, pue: float = 1.0, stopped_at_watts: tuple[float, float] = (300.0, 100.0)) -> Path:
    """4 h of minute samples of a cumulative energy counter: 2 h at the first power, 2 h at the second."""
    records: list[dict[str, Any]] = [
        header(sources=[GPU], start=START, location="SE-SE3", pue=pue),
        {"type": "intensity", "provider": "test:grid", "time": iso(START), "g_per_kwh": 50.0, "zone": "SE-SE3",
         "source": "test yearly average", "kind": "average", "period_s": None, "year": 2024},
    ]
    joules = 0.0
    for k in range(241):
        records.append({"type": "sample", "t": k * 60.0, "r": {"test:gpu": [joules]}})
        joules += (stopped_at_watts[0] if k < 120 else stopped_at_watts[1]) * 60.0
    return write(path, records)


def trough_series(path: Path, hours: int = 30) -> Path:
    lines = ["time,g_per_kwh"]
    lines += [f"{iso(START + h * 3600)},{100 if h in (4, 5) else 400}" for h in range(hours)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_profile_is_the_measured_one_not_an_even_spread(tmp_path):
    """240 intervals of a minute: 5 Wh each for 2 h, then 1.667 Wh each."""
    prof = measured_profile(profile_log(tmp_path / "run.jsonl"))
    assert prof.joules.size == 240
    assert prof.start == START and prof.duration_s == 4 * 3600
    assert prof.it_energy_kwh == pytest.approx(0.8)
    assert prof.joules[0] == pytest.approx(300 * 60) and prof.joules[-1] == pytest.approx(100 * 60)
    halves = prof.equal_segments(2)
    assert halves == pytest.approx([0.6, 0.2])


def test_at_its_own_times_and_moved_into_the_trough(tmp_path):
    log, series = profile_log(tmp_path / "run.jsonl"), trough_series(tmp_path / "s.csv")
    own = reprice(log, "SE-SE3", series_file=series)
    assert own.co2eq_g == pytest.approx(320.0)
    assert own.intensity_g_per_kwh == pytest.approx(400.0)
    assert own.original["co2eq_g"] == pytest.approx(0.8 * 50.0)  # the log priced it at its own 50 g/kWh
    assert own.change == pytest.approx(320.0 / 40.0 - 1)
    assert own.source.kind == "series" and own.source.signal == "average"
    moved = reprice(log, "SE-SE3", series_file=series, at=datetime(2024, 3, 1, 4, tzinfo=timezone.utc))
    assert moved.co2eq_g == pytest.approx(0.6 * 100 + 0.2 * 400)  # 140 g, not the 200 g of an even power
    assert moved.moved_s == 4 * 3600
    assert moved.start_time == datetime(2024, 3, 1, 4, tzinfo=timezone.utc)


def test_pue_scales_the_repriced_energy(tmp_path):
    r = reprice(profile_log(tmp_path / "run.jsonl", pue=1.5), "SE-SE3", series_file=trough_series(tmp_path / "s.csv"))
    assert r.energy_kwh == pytest.approx(1.2) and r.co2eq_g == pytest.approx(480.0)


def test_scheduling_savings_for_the_measured_profile_against_even_power(tmp_path):
    """The arithmetic is in the module docstring: 18.75 % for the profile, 37.5 % at even power."""
    r = reprice(profile_log(tmp_path / "run.jsonl"), "SE-SE3", series_file=trough_series(tmp_path / "s.csv"),
                flexible_start_window="2h", pause_resume_window="2h")
    fs, pr = r.schedules
    assert fs.algorithm == "flexible_start" and pr.algorithm == "pause_and_resume"
    for plan in (fs, pr):
        assert plan.baseline_g == pytest.approx(320.0)
        assert plan.emissions_g == pytest.approx(260.0)
        assert plan.saving == pytest.approx(60 / 320)
        assert plan.even_baseline_g == pytest.approx(320.0)
        assert plan.even_emissions_g == pytest.approx(200.0)
        assert plan.even_saving == pytest.approx(120 / 320)
    assert fs.start_time == datetime(2024, 3, 1, 2, tzinfo=timezone.utc)
    # The even-power case is the scheduler's own, unchanged.
    from carbonkit.scheduling import flexible_start
    from carbonkit.scheduling.plans import _dt

    even = flexible_start(
        ([START + h * 3600 for h in range(30)], [100 if h in (4, 5) else 400 for h in range(30)]),
        "4h", "2h", START, energy_kwh=0.8,
    )
    assert even.saving == pytest.approx(fs.even_saving) and even.start == _dt(START + 2 * 3600)


def test_a_series_that_does_not_cover_the_run_names_the_gap(tmp_path):
    log = profile_log(tmp_path / "run.jsonl")
    with pytest.raises(ConfigError, match="nothing is known from 2024-03-01T03:00:00Z to 2024-03-01T04:00:00Z"):
        reprice(log, "SE-SE3", series_file=trough_series(tmp_path / "s.csv", hours=3))
    with pytest.raises(ConfigError, match="does not cover the run"):
        reprice(log, "SE-SE3", series_file=trough_series(tmp_path / "s.csv"), at=START + 86400 * 2)


class Provider:
    """A provider with a catalogue of zones, a yearly average and (optionally) a history."""

    def __init__(self, name: str, zones: set[str], priority: int, *, average: float | None = None,
                 history: Any = None, signal: str = "average") -> None:
        self.name, self.zones, self.priority = name, frozenset(zones), priority
        self.offline = average is not None
        self.signal = signal
        self._average, self._history = average, history
        if history is not None:
            self.history = self._hist

    def known_zones(self) -> list[str]:
        return sorted(self.zones)

    def current(self, zone: str) -> IntensitySample | None:
        if self._average is None:
            raise RuntimeError("live only")
        return IntensitySample(time=datetime(2024, 1, 1, tzinfo=timezone.utc), g_per_kwh=self._average, zone=zone,
                               source="test table 2023", kind="average", year=2023)

    def forecast(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        return []

    def _hist(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        return list(self._history(zone, start, end))


def hourly(zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
    t = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while t < end:
        h = int((t.timestamp() - START) // 3600)
        out.append(IntensitySample(time=t, g_per_kwh=100.0 if h in (4, 5) else 400.0, zone=zone,
                                   source="test grid history", kind="live", period_s=3600))
        t += timedelta(hours=1)
    return out


def test_a_providers_history_prices_the_run(tmp_path):
    providers = [Provider("test:live", {"FR"}, 100, history=hourly), Provider("test:static", {"FR"}, 10, average=56)]
    r = reprice(profile_log(tmp_path / "run.jsonl"), "FR", at=START + 4 * 3600, providers=providers)
    assert r.source.kind == "history" and r.source.provider == "test:live"
    assert r.co2eq_g == pytest.approx(140.0)


def test_without_history_the_yearly_average_is_used_and_said(tmp_path):
    def broken(zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        raise RuntimeError("HTTP 403 from the service")

    providers = [Provider("test:live", {"FR"}, 100, history=broken), Provider("test:static", {"FR"}, 10, average=56)]
    r = reprice(profile_log(tmp_path / "run.jsonl"), "fr", providers=providers, flexible_start_window="2h")
    assert r.source.kind == "average" and r.source.year == 2023
    assert r.co2eq_g == pytest.approx(0.8 * 56)
    assert r.schedules == ()
    notes = " ".join(r.notes)
    assert "HTTP 403" in notes and "yearly average" in notes and "flat in time" in notes


def test_marginal_without_a_marginal_provider_is_refused(tmp_path):
    providers = [Provider("test:static", {"FR"}, 10, average=56)]
    with pytest.raises(ConfigError, match="marginal"):
        reprice(profile_log(tmp_path / "run.jsonl"), "FR", providers=providers, signal="marginal")
    with pytest.raises(ConfigError, match="--signal must be"):
        reprice(profile_log(tmp_path / "run.jsonl"), "FR", providers=providers, signal="mean")


def test_an_unknown_zone_names_the_closest_codes(tmp_path):
    providers = [Provider("test:static", {"FR", "DK-DK2", "DE"}, 10, average=56)]
    with pytest.raises(ConfigError, match="closest known codes: DK-DK2"):
        reprice(profile_log(tmp_path / "run.jsonl"), "DK2", providers=providers)


def test_cli_table_json_and_html(tmp_path, capsys):
    log, series = profile_log(tmp_path / "run.jsonl"), trough_series(tmp_path / "s.csv")
    page = tmp_path / "what-if.html"
    args = ["reprice", str(log), "--zone", "SE-SE3", "--series", str(series), "--flexible-start", "2h",
            "--pause-resume", "2h"]
    assert main([*args, "--json", "--html", str(page)]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run = data["runs"][0]
    assert run["co2eq_g"] == pytest.approx(320.0) and run["original"]["co2eq_g"] == pytest.approx(40.0)
    assert [s["saving"] for s in run["schedules"]] == pytest.approx([0.1875, 0.1875])
    assert [s["even_saving"] for s in run["schedules"]] == pytest.approx([0.375, 0.375])
    assert data["total"]["co2eq_g"] == pytest.approx(320.0)
    html = page.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in html and "<script" not in html and "Flexible Start within 2h" in html
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "as measured" in text and "re-priced" in text and "18.8%" in text and "37.5%" in text


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    log = profile_log(tmp_path / "run.jsonl")
    assert main(["reprice", str(log), "--zone", "SE-SE3", "--series", str(trough_series(tmp_path / "s.csv", 2))]) == 2
    assert "does not cover the run" in capsys.readouterr().err
    assert main(["reprice", str(log), "--zone", "SE-SE3", "--at", "2024-03-01T04:00"]) == 2
    assert "no UTC offset" in capsys.readouterr().err


def test_the_evaluator_takes_a_power_profile_and_keeps_the_even_case():
    """evaluate(profile=...) prices each start with the shape: the same 18.75 % against 37.5 % at one start;
    a uniform profile gives exactly the even-power table."""
    from carbonkit.scheduling import evaluate

    series = ([START + h * 3600 for h in range(30)], [100 if h in (4, 5) else 400 for h in range(30)])
    shaped = evaluate(series, ["4h"], ["2h"], starts=[START], step="1h", profile=[3, 3, 1, 1])
    even = evaluate(series, ["4h"], ["2h"], starts=[START], step="1h")
    cell, even_cell = shaped.cells[0], even.cells[0]
    assert cell.flexible_start_saving == pytest.approx(60 / 320)
    assert cell.pause_and_resume_saving == pytest.approx(60 / 320)
    assert even_cell.flexible_start_saving == pytest.approx(120 / 320)
    assert even_cell.pause_and_resume_saving == pytest.approx(120 / 320)
    many = {"starts": 10, "step": "1h"}
    assert evaluate(series, ["4h", "6h"], ["2h", "50%"], profile=[2.0] * 7, **many) == evaluate(
        series, ["4h", "6h"], ["2h", "50%"], **many
    )


def test_a_history_that_blocks_is_abandoned_at_its_deadline(tmp_path, monkeypatch):
    """The call runs off the caller's thread under the provider deadline: the command goes on to the average."""
    import threading

    import carbonkit.tracker

    monkeypatch.setattr(carbonkit.tracker, "PROVIDER_DEADLINE_S", 0.2)
    release = threading.Event()

    def blocks(zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        release.wait()
        return []

    providers = [Provider("test:stuck", {"FR"}, 100, history=blocks), Provider("test:static", {"FR"}, 10, average=56)]
    try:
        r = reprice(profile_log(tmp_path / "run.jsonl"), "FR", providers=providers)
    finally:
        release.set()
    assert r.source.kind == "average" and r.co2eq_g == pytest.approx(0.8 * 56)
    assert any("test:stuck" in n and "blocked" in n for n in r.notes)


def test_history_of_a_real_provider_against_its_stand_in(tmp_path):
    """The Electricity Maps plugin's history() (a local stand-in of its API, the real shapes) prices the
    run moved to three days ago at 06:00: hourly values of 50 + hour for FR, so 0.3 kWh x 56 + 0.3 x 57 +
    0.1 x 58 + 0.1 x 59 = 45.6 g."""
    import httpx
    from account_standins import ElectricityMapsStandIn, em_value

    import carbonkit_intensity_electricitymaps as em

    when = (datetime.now(timezone.utc) - timedelta(days=3)).replace(hour=6, minute=0, second=0, microsecond=0)
    with ElectricityMapsStandIn() as standin, httpx.Client(timeout=5.0) as client:
        live = em.ElectricityMapsProvider(client=client, token=ElectricityMapsStandIn.TOKEN,
                                          base_url=f"{standin.url}/v3")
        r = reprice(profile_log(tmp_path / "run.jsonl"), "FR", at=when, providers=[live])
        assert any(p.startswith("/v3/carbon-intensity/past-range?") for p, _ in standin.requests)
    hours = [when + timedelta(hours=h) for h in range(4)]
    expected = sum(kwh * em_value("FR", t) for kwh, t in zip([0.3, 0.3, 0.1, 0.1], hours))
    assert expected == pytest.approx(0.3 * 56 + 0.3 * 57 + 0.1 * 58 + 0.1 * 59)
    assert r.source.kind == "history" and r.source.provider == live.name
    assert r.co2eq_g == pytest.approx(expected)


def test_cli_skips_what_is_not_a_run_log_and_exits_3(tmp_path, capsys):
    folder = tmp_path / "logs"
    folder.mkdir()
    profile_log(folder / "run.jsonl")
    (folder / "other.jsonl").write_text('{"not": "a run log"}\n', encoding="utf-8")
    series = trough_series(tmp_path / "s.csv")
    assert main(["reprice", str(folder), "--zone", "SE-SE3", "--series", str(series), "--json"]) == 3
    out, err = capsys.readouterr()
    assert "skipped" in err and "other.jsonl" in err
    assert json.loads(out.strip().splitlines()[-1])["total"]["runs"] == 1
    assert main(["reprice", str(folder / "other.jsonl"), "--zone", "SE-SE3", "--series", str(series)]) == 2
    assert main(["reprice", str(folder / "run.jsonl"), "--zone", "SE-SE3", "--timeout", "0"]) == 2
    assert "--timeout must be" in capsys.readouterr().err


def test_the_documented_fixture_is_this_run():
    """docs/what-if.md re-prices tests/reports/fixtures/whatif/: the same run and series as these tests."""
    folder = Path(__file__).parent / "fixtures" / "whatif"
    r = reprice(folder / "run-300w-100w.jsonl", "SE-SE3", series_file=folder / "trough.csv",
                flexible_start_window="2h")
    assert r.original["completed"] is True and r.original["co2eq_g"] == pytest.approx(40.0)
    assert r.co2eq_g == pytest.approx(320.0) and r.schedules[0].emissions_g == pytest.approx(260.0)


def test_no_history_and_no_average_asks_for_a_series(tmp_path):
    providers = [Provider("test:live", {"FR"}, 100)]  # live only: no history, no yearly average
    with pytest.raises(ConfigError, match="nothing to price FR with.*give --series FILE"):
        reprice(profile_log(tmp_path / "run.jsonl"), "FR", providers=providers)


def test_marginal_history_comes_from_a_marginal_provider_only(tmp_path):
    def marginal(zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        return [IntensitySample(time=s.time, g_per_kwh=2 * s.g_per_kwh, zone=zone, source="test MOER", kind="live",
                                period_s=3600, signal="marginal") for s in hourly(zone, start, end)]

    providers = [Provider("test:average", {"US-CAL-CISO"}, 100, history=hourly),
                 Provider("test:moer", {"US-CAL-CISO"}, 90, history=marginal, signal="marginal")]
    r = reprice(profile_log(tmp_path / "run.jsonl"), "US-CAL-CISO", providers=providers, signal="marginal")
    assert (r.source.kind, r.source.provider, r.source.signal) == ("history", "test:moer", "marginal")
    assert r.co2eq_g == pytest.approx(2 * 320.0)
    r = reprice(profile_log(tmp_path / "run.jsonl"), "US-CAL-CISO", providers=providers)
    assert (r.source.provider, r.co2eq_g) == ("test:average", pytest.approx(320.0))


def test_history_is_asked_for_the_scheduling_window_too(tmp_path):
    """With --flexible-start 2h the providers are asked for 2 h past the run, so the plan can use the trough."""
    asked: list[tuple[datetime, datetime]] = []

    def recording(zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        asked.append((start, end))
        return hourly(zone, start, end)

    providers = [Provider("test:live", {"FR"}, 100, history=recording)]
    r = reprice(profile_log(tmp_path / "run.jsonl"), "FR", providers=providers, flexible_start_window="2h")
    assert asked == [(datetime(2024, 3, 1, tzinfo=timezone.utc), datetime(2024, 3, 1, 6, tzinfo=timezone.utc))]
    assert r.source.kind == "history" and r.schedules[0].emissions_g == pytest.approx(260.0)
