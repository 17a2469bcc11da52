"""Plugin discovery and the typed calls into hooks.

Nothing outside this module calls ``pm.hook.*``: the ``collect_*`` functions call each plugin's
implementation separately (through pluggy's ``subset_hook_caller``, so ordering and opt-in
arguments still apply), check every object returned against its protocol, and isolate failures:
a plugin that raises is skipped with one warning naming it, a plugin that returns an object off
the contract is an error naming the plugin, the hook and the object.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy
from attrs import field, frozen

from . import hookspecs
from .errors import PluginContractError, PluginLoadError
from .protocols import IntensityProvider, PowerSource, Predictor, Reporter
from .records import METHODS, Unavailable

if TYPE_CHECKING:
    import httpx

    from .config import Config

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRYPOINT_GROUP",
    "Offers",
    "PluginInfo",
    "SkippedPlugin",
    "collect_intensity_providers",
    "collect_power_sources",
    "collect_predictors",
    "collect_reporters",
    "list_plugins",
    "make_plugin_manager",
    "resolve_location",
]

_logger = logging.getLogger(__name__)

ENTRYPOINT_GROUP = "carbonkit"
DEFAULT_PLUGINS = (
    "carbonkit.default_plugins.constant_intensity",
    "carbonkit.default_plugins.linear_predictor",
    "carbonkit.default_plugins.console_reporter",
    "carbonkit.default_plugins.runlog_reporter",
)


@frozen
class SkippedPlugin:
    """An entry point that was not loaded, and why."""

    name: str
    distribution: str | None
    reason: str


@frozen
class PluginInfo:
    """A registered plugin: its name, distribution, version and the hooks it implements."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...] = field(converter=tuple)
    builtin: bool = False


@frozen
class Offers:
    """What one collector hook gave: accepted objects, notes, and plugins that failed."""

    objects: tuple[Any, ...] = field(converter=tuple)
    notes: tuple[Unavailable, ...] = field(converter=tuple, default=())
    errors: tuple[tuple[str, str], ...] = field(converter=tuple, default=())
    owners: dict[str, str] = field(factory=dict)


def _split_env(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def make_plugin_manager(
    *, plugins: Iterable[object] = (), entrypoints: bool = True, defaults: bool = True
) -> pluggy.PluginManager:
    """Build a fresh plugin manager (there is no global one).

    Order: hook specs; the built-in default plugins; ``CARBONKIT_DISABLE_PLUGINS`` (blocked names)
    and ``CARBONKIT_PLUGINS`` (allow-list of external plugins, ``""`` for none); the installed
    entry points of the group ``carbonkit``, one by one; then ``plugins``; then
    ``check_pending()`` so a misspelled hook is an error at once.

    :param plugins: Extra plugin objects or modules to register (tests, embedding tools).
    :param entrypoints: Load installed plugins.
    :param defaults: Register the built-in default plugins.
    :returns: The manager. ``pm.carbonkit_skipped`` lists the entry points not loaded, with why,
        and ``pm.carbonkit_dists`` maps plugin names to their distributions.
    :raises PluginLoadError: when an entry point raises something other than ImportError.
    """
    pm = pluggy.PluginManager("carbonkit")
    pm.add_hookspecs(hookspecs)
    skipped: list[SkippedPlugin] = []
    dists: dict[str, tuple[str, str]] = {}
    blocked = set(_split_env("CARBONKIT_DISABLE_PLUGINS") or ())
    for name in blocked:
        pm.set_blocked(name)
    if defaults:
        for dotted in DEFAULT_PLUGINS:
            short = dotted.rsplit(".", 1)[-1]
            if dotted in blocked or short in blocked:
                continue
            pm.register(importlib.import_module(dotted), name=dotted)
    if entrypoints:
        allowed = _split_env("CARBONKIT_PLUGINS")
        for ep in importlib.metadata.entry_points(group=ENTRYPOINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else None
            if pm.is_blocked(ep.name):
                skipped.append(SkippedPlugin(ep.name, dist, "disabled by CARBONKIT_DISABLE_PLUGINS"))
                continue
            if allowed is not None and ep.name not in allowed:
                skipped.append(SkippedPlugin(ep.name, dist, "not listed in CARBONKIT_PLUGINS"))
                continue
            if pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except ImportError as exc:
                _logger.warning("carbonkit: skipped plugin %r (%s): failed to import: %s", ep.name, dist, exc)
                skipped.append(SkippedPlugin(ep.name, dist, f"failed to import: {exc}"))
                continue
            except Exception as exc:
                raise PluginLoadError(
                    f"plugin {ep.name!r} ({dist}) raised while loading: {exc!r}; "
                    f"set CARBONKIT_DISABLE_PLUGINS={ep.name} to skip it",
                    plugin=ep.name,
                ) from exc
            pm.register(module, name=ep.name)
            if ep.dist is not None:
                dists[ep.name] = (ep.dist.name, ep.dist.version)
    for plugin in plugins:
        pm.register(plugin, name=getattr(plugin, "__name__", None))
    pm.check_pending()
    if os.environ.get("CARBONKIT_TRACE_PLUGINS"):
        pm.add_hookcall_monitoring(
            lambda name, impls, kw: _logger.debug("hook %s -> %s", name, [i.plugin_name for i in impls]),
            lambda outcome, name, impls, kw: _logger.debug("hook %s done", name),
        )
    pm.carbonkit_skipped = skipped  # type: ignore[attr-defined]
    pm.carbonkit_dists = dists  # type: ignore[attr-defined]
    return pm


def _call_each(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> Iterable[tuple[str, Any]]:
    """Call ``hook`` on each plugin separately; yield (plugin name, result or exception)."""
    caller = getattr(pm.hook, hook)
    impls = caller.get_hookimpls()
    names = [impl.plugin_name for impl in impls]
    for impl in reversed(impls):  # pluggy calls the last registered first
        others = [pm.get_plugin(n) for n in names if n != impl.plugin_name]
        single = pm.subset_hook_caller(hook, remove_plugins=others)
        try:
            per_impl = single(**kwargs)  # a list with this plugin's one return value
        except Exception as exc:
            yield impl.plugin_name, exc
            continue
        yield impl.plugin_name, [obj for result in per_impl for obj in (result or ())]


def _collect(pm: pluggy.PluginManager, hook: str, protocol: type, **kwargs: Any) -> Offers:
    objects: list[Any] = []
    notes: list[Unavailable] = []
    errors: list[tuple[str, str]] = []
    owners: dict[str, str] = {}
    for plugin, results in _call_each(pm, hook, **kwargs):
        if isinstance(results, Exception):
            _logger.warning("carbonkit: plugin %r failed in %s and was skipped: %r", plugin, hook, results)
            errors.append((plugin, f"{type(results).__name__}: {results}"))
            continue
        for result in results or ():
            if isinstance(result, Unavailable):
                notes.append(result)
                continue
            if not isinstance(result, protocol):
                raise PluginContractError(
                    f"plugin {plugin!r} returned {result!r} from {hook}, which is not a "
                    f"{protocol.__name__}; see docs/plugins.md for the attributes and methods required",
                    plugin=plugin,
                    hook=hook,
                )
            name = result.name
            if name in owners:
                raise PluginContractError(
                    f"plugin {plugin!r} returned {result!r} from {hook} with the name {name!r}, "
                    f"already used by plugin {owners[name]!r}; names must be unique",
                    plugin=plugin,
                    hook=hook,
                )
            owners[name] = plugin
            objects.append(result)
    return Offers(objects, notes, errors, owners)


def _check_source(source: PowerSource, plugin: str) -> None:
    problems = []
    if source.method not in METHODS:
        problems.append(f"method={source.method!r} (expected one of {', '.join(METHODS)})")
    if source.kind not in ("energy", "power"):
        problems.append(f"kind={source.kind!r} (expected 'energy' or 'power')")
    if problems:
        raise PluginContractError(
            f"plugin {plugin!r} returned {source!r} from register_power_sources with "
            + " and ".join(problems),
            plugin=plugin,
            hook="register_power_sources",
        )


def collect_power_sources(pm: pluggy.PluginManager, config: Config) -> Offers:
    """Return every power source the plugins offer, checked against :class:`PowerSource`."""
    offers = _collect(pm, "register_power_sources", PowerSource, config=config)
    for source in offers.objects:
        _check_source(source, offers.owners[source.name])
    return offers


def collect_intensity_providers(
    pm: pluggy.PluginManager, config: Config, http_client: httpx.Client
) -> Offers:
    """Return every intensity provider, checked against :class:`IntensityProvider`."""
    return _collect(
        pm, "register_intensity_providers", IntensityProvider, config=config, http_client=http_client
    )


def collect_predictors(pm: pluggy.PluginManager, config: Config) -> Offers:
    """Return every predictor, checked against :class:`Predictor`."""
    return _collect(pm, "register_predictors", Predictor, config=config)


def collect_reporters(pm: pluggy.PluginManager, config: Config) -> Offers:
    """Return every reporter, checked against :class:`Reporter`."""
    return _collect(pm, "register_reporters", Reporter, config=config)


def resolve_location(pm: pluggy.PluginManager, config: Config, http_client: httpx.Client) -> str | None:
    """Ask the plugins for this machine's zone; None when none answers (or one fails)."""
    try:
        zone = pm.hook.resolve_location(config=config, http_client=http_client)
    except Exception as exc:
        _logger.warning("carbonkit: resolve_location failed: %r", exc)
        return None
    return zone if isinstance(zone, str) and zone.strip() else None


def list_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Describe every registered plugin: name, distribution, version, hooks."""
    dists: dict[str, tuple[str, str]] = getattr(pm, "carbonkit_dists", {})
    from . import __version__

    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or ())
        builtin = name in DEFAULT_PLUGINS
        dist, version = dists.get(name, ("carbonkit", __version__) if builtin else (None, None))
        infos.append(PluginInfo(name, dist, version, hooks, builtin))
    return sorted(infos, key=lambda i: (not i.builtin, i.name))


def ordered_providers(
    providers: Sequence[IntensityProvider], zone: str, named: str | None
) -> list[IntensityProvider]:
    """Return the providers to try for ``zone``, best first.

    The provider named in config comes first (it must exist), then every provider covering the
    zone by priority. Two providers of the same, highest priority are a configuration error.
    """
    from .errors import ConfigError

    covering = [p for p in providers if zone in p.zones or "*" in p.zones]
    covering.sort(key=lambda p: (-int(p.priority), "*" in p.zones))
    if named is not None:
        chosen = [p for p in providers if p.name == named or p.name.split(":", 1)[0] == named]
        if not chosen:
            names = ", ".join(sorted(p.name for p in providers)) or "none"
            raise ConfigError(f"intensity provider {named!r} is not installed; available: {names}")
        return chosen[:1] + [p for p in covering if p is not chosen[0]]
    if len(covering) >= 2:
        a, b = covering[0], covering[1]
        if a.priority == b.priority and ("*" in a.zones) == ("*" in b.zones):
            raise ConfigError(
                f"intensity providers {a.name!r} and {b.name!r} both cover zone {zone!r} with "
                f"priority {a.priority}; choose one with intensity_provider= or "
                "CARBONKIT_INTENSITY_PROVIDER, or disable a plugin with CARBONKIT_DISABLE_PLUGINS"
            )
    return covering
