"""Discovery and the hook contract, with plugins registered in-process."""

from __future__ import annotations

import importlib.metadata
import logging
import time
import types

import pytest

import carbonkit
from carbonkit import hookimpl
from carbonkit.plugins import (
    collect_power_sources,
    list_plugins,
    make_plugin_manager,
    ordered_providers,
)
from carbonkit.testing import (
    FakeIntensity,
    FakePowerSource,
    RecordingReporter,
    assert_plugin_valid,
    mock_http_client,
    tracker_for,
)


class GridPlugin:
    """An in-process plugin offering one source, one provider and one reporter."""

    __name__ = "fake_grid"

    def __init__(self) -> None:
        self.reporter = RecordingReporter()
        self.source = FakePowerSource(name="fake_grid:cpu", watts=[80.0])

    @hookimpl
    def register_power_sources(self, config):
        return [self.source]

    @hookimpl
    def register_intensity_providers(self, config, http_client):
        return [FakeIntensity(name="fake_grid:XX", zones={"XX"}, priority=50, g_per_kwh=123.0)]

    @hookimpl
    def register_reporters(self):
        return [self.reporter]


def test_hook_register_power_sources():
    """Sources from a plugin are used by a tracker built from plugins."""
    plugin = GridPlugin()
    with tracker_for(plugin, location="XX", interval_s=0.01) as t:
        time.sleep(0.05)
    assert t.report.components["cpu"].sources == ("fake_grid:cpu",)


def test_hook_register_intensity_providers():
    """A provider covering the zone is chosen over the static fallback; others are fallbacks."""
    t = tracker_for(GridPlugin(), location="XX", interval_s=0.01)
    assert [p.name for p in t.providers] == ["fake_grid:XX", "constant:world"]
    r = t.stop()
    assert r.intensity_g_per_kwh == pytest.approx(123.0)


def test_hook_register_predictors():
    """A plugin's predictor is used when config names it."""

    class Twice:
        __name__ = "twice"

        @hookimpl
        def register_predictors(self):
            class P:
                name = "twice"

                def predict(self, *, epochs, completed):
                    return carbonkit.Prediction(
                        epochs=epochs, based_on=len(completed), duration_s=2.0, it_energy_kwh=2.0, predictor="twice"
                    )

            return [P()]

    pm = make_plugin_manager(plugins=[GridPlugin(), Twice()], entrypoints=False)
    pm_config = carbonkit.Config(predictor="twice")
    from carbonkit.plugins import collect_predictors

    assert [p.name for p in collect_predictors(pm, pm_config).objects] == ["twice", "linear", "adaptive"]


def test_hook_register_reporters():
    """Every reporter a plugin registers receives start, samples and the report."""
    plugin = GridPlugin()
    with tracker_for(plugin, location="XX", interval_s=0.01, quiet=True):
        time.sleep(0.05)
    events = {e for e, _ in plugin.reporter.history}
    assert {"on_start", "on_sample", "on_report", "close"} <= events


def test_hook_resolve_location():
    """The first plugin answering resolve_location sets the zone when none is given."""

    class Locator:
        __name__ = "locator"

        @hookimpl
        def resolve_location(self, config, http_client):
            return "SE-SE3"

    t = tracker_for(Locator(), GridPlugin(), interval_s=0.01)
    assert t.config.location == "SE-SE3"
    t.stop()


def test_off_contract_object_is_an_error_naming_plugin_hook_and_object():
    """A hook returning a non-PowerSource raises PluginContractError naming all three."""

    class Bad:
        __name__ = "bad_plugin"

        @hookimpl
        def register_power_sources(self):
            return ["a string"]

    pm = make_plugin_manager(plugins=[Bad()], entrypoints=False, strict=True)
    with pytest.raises(carbonkit.PluginContractError, match="bad_plugin.*'a string'.*register_power_sources"):
        collect_power_sources(pm, carbonkit.Config(), strict=True)


def test_off_contract_plugin_is_dropped_with_one_warning_naming_it(caplog):
    """Outside strict mode (a tracker), the plugin is dropped, named with what it returned."""

    class Bad:
        __name__ = "bad_plugin"

        @hookimpl
        def register_power_sources(self):
            return ["a string"]

    pm = make_plugin_manager(plugins=[Bad(), GridPlugin()], entrypoints=False)
    with caplog.at_level(logging.WARNING):
        offers = collect_power_sources(pm, carbonkit.Config())
    assert [s.name for s in offers.objects] == ["fake_grid:cpu"]
    assert offers.errors[0][0] == "bad_plugin" and "'a string'" in offers.errors[0][1]
    assert not pm.has_plugin("bad_plugin") and pm.is_blocked("bad_plugin")
    assert caplog.text.count("bad_plugin") == 1


def test_bad_method_and_duplicate_names_are_contract_errors():
    """A source with an unknown method, or two with one name, are contract errors."""

    class Weird:
        __name__ = "weird"

        @hookimpl
        def register_power_sources(self):
            return [FakePowerSource(name="weird:x", method="guessed")]

    with pytest.raises(carbonkit.PluginContractError, match="method='guessed'"):
        assert_plugin_valid(Weird())

    class Twins:
        __name__ = "twins"

        @hookimpl
        def register_power_sources(self):
            return [FakePowerSource(name="twins:x"), FakePowerSource(name="twins:x")]

    with pytest.raises(carbonkit.PluginContractError, match="already used"):
        assert_plugin_valid(Twins())


def test_a_plugin_that_raises_is_skipped_with_a_warning(caplog):
    """A hook raising skips that plugin only; the others still offer their objects."""

    class Crashy:
        __name__ = "crashy"

        @hookimpl
        def register_power_sources(self):
            raise RuntimeError("driver exploded")

    pm = make_plugin_manager(plugins=[Crashy(), GridPlugin()], entrypoints=False)
    with caplog.at_level(logging.WARNING):
        offers = collect_power_sources(pm, carbonkit.Config())
    assert [s.name for s in offers.objects] == ["fake_grid:cpu"]
    assert offers.errors[0][0] == "crashy" and "driver exploded" in offers.errors[0][1]
    assert "crashy" in caplog.text


def test_unavailable_notes_are_collected_and_warned_once():
    """Unavailable notes come back separately; warn=True ones become one run warning."""

    class NoPerm:
        __name__ = "noperm"

        @hookimpl
        def register_power_sources(self):
            return [carbonkit.Unavailable(plugin="noperm", reason="energy_uj not readable", hint="chmod", warn=True)]

    t = tracker_for(NoPerm(), GridPlugin(), location="XX", interval_s=0.01)
    r = t.stop()
    assert sum("energy_uj not readable" in w for w in r.warnings) == 1


def test_misspelled_hook_is_an_error_at_once():
    """check_pending() turns an implementation of an unknown hook into an error."""

    class Typo:
        __name__ = "typo"

        @hookimpl
        def register_power_source(self):  # missing "s"
            return []

    with pytest.raises(Exception, match="register_power_source"):
        make_plugin_manager(plugins=[Typo()], entrypoints=False, strict=True)
    pm = make_plugin_manager(plugins=[Typo(), GridPlugin()], entrypoints=False)  # a tracker's: dropped
    assert not pm.has_plugin("typo") and pm.has_plugin("fake_grid")
    (skipped,) = pm.carbonkit_skipped
    assert "'register_power_source'" in skipped.reason and "did you mean 'register_power_sources'" in skipped.reason


def test_provider_tie_is_broken_by_a_named_zone_then_by_name():
    """Two providers with the same priority for a zone: the one naming the zone before a "*" one,
    then alphabetical by name, whatever order they were discovered in."""
    a = FakeIntensity(name="a:x", zones={"XX"}, priority=100)
    b = FakeIntensity(name="b:x", zones={"XX"}, priority=100)
    star = FakeIntensity(name="0:any", zones={"*"}, priority=100)
    low = FakeIntensity(name="0:low", zones={"XX"}, priority=10)
    for given in ([a, b, star, low], [low, star, b, a]):
        assert [p.name for p in ordered_providers(given, "XX", None)] == ["a:x", "b:x", "0:any", "0:low"]
    assert ordered_providers([a, b], "XX", "b:x")[0] is b
    with pytest.raises(carbonkit.ConfigError, match="not installed"):
        ordered_providers([a, b], "XX", "c")


class FakeEntryPoint:
    """Stands in for importlib.metadata.EntryPoint (pluggy's own tests do the same)."""

    def __init__(self, name, loader, dist="fake-dist"):
        self.name = name
        self._loader = loader
        self.dist = types.SimpleNamespace(name=dist, version="9.9")

    def load(self):
        return self._loader()


def _patch_eps(monkeypatch, eps):
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: eps if group == "carbonkit" else [])


def test_broken_entry_point_is_skipped_with_one_warning(monkeypatch, caplog):
    """An entry point that fails to import is skipped, named, with why; the rest load."""
    good = types.ModuleType("goodmod")

    def broken():
        raise ImportError("No module named 'missing_dep'")

    _patch_eps(monkeypatch, [FakeEntryPoint("broken", broken), FakeEntryPoint("good", lambda: good)])
    with caplog.at_level(logging.WARNING):
        pm = make_plugin_manager()
    assert pm.has_plugin("good") and not pm.has_plugin("broken")
    assert [(s.name, "missing_dep" in s.reason) for s in pm.carbonkit_skipped] == [("broken", True)]
    assert caplog.text.count("broken") == 1
    info = {p.name: p for p in list_plugins(pm)}
    assert info["good"].distribution == "fake-dist" and info["good"].version == "9.9"


def test_disable_and_allow_lists(monkeypatch):
    """CARBONKIT_DISABLE_PLUGINS blocks by name; CARBONKIT_PLUGINS is an allow-list."""
    mods = {n: types.ModuleType(n) for n in ("one", "two")}
    _patch_eps(monkeypatch, [FakeEntryPoint(n, lambda n=n: mods[n]) for n in mods])
    monkeypatch.setenv("CARBONKIT_DISABLE_PLUGINS", "one,console_reporter")
    pm = make_plugin_manager()
    assert not pm.has_plugin("one") and pm.has_plugin("two")
    assert not pm.has_plugin("carbonkit.default_plugins.console_reporter")
    monkeypatch.delenv("CARBONKIT_DISABLE_PLUGINS")
    monkeypatch.setenv("CARBONKIT_PLUGINS", "")
    pm = make_plugin_manager()
    assert not pm.has_plugin("one") and not pm.has_plugin("two")
    assert {s.reason for s in pm.carbonkit_skipped} == {"not listed in CARBONKIT_PLUGINS"}


def test_entry_point_raising_other_errors_is_a_load_error(monkeypatch):
    """An entry point raising something other than ImportError is a PluginLoadError naming it."""

    def bad():
        raise ZeroDivisionError("oops")

    _patch_eps(monkeypatch, [FakeEntryPoint("divider", bad)])
    with pytest.raises(carbonkit.PluginLoadError, match="divider.*CARBONKIT_DISABLE_PLUGINS=divider"):
        make_plugin_manager(strict=True)
    pm = make_plugin_manager()  # a tracker's manager: dropped, recorded, the rest loads
    (skipped,) = [s for s in pm.carbonkit_skipped if s.name == "divider"]
    assert skipped.failed and "raised ZeroDivisionError: oops while being imported" in skipped.reason
    assert pm.has_plugin("carbonkit.default_plugins.console_reporter")


def test_tracker_composed_without_any_plugin_manager(monkeypatch):
    """Explicit sources, provider, predictor and reporters need no plugin discovery at all."""

    def fail(*a, **k):
        raise AssertionError("plugin discovery must not run")

    monkeypatch.setattr(carbonkit.plugins, "make_plugin_manager", fail)
    from carbonkit.default_plugins.linear_predictor import LinearPredictor

    t = carbonkit.Tracker(
        sources=[FakePowerSource()], provider=FakeIntensity(), predictor=LinearPredictor(), reporters=[],
        location="XX", interval_s=0.01, http_client=mock_http_client(),
    )
    assert t.stop().co2eq_g >= 0
