"""Plugin discovery and the typed calls into hooks: the one door between carbonkit and plugin code.

Nothing outside this module calls ``pm.hook.*``. Every call into plugin code made here (importing
an entry point, each plugin's implementation of a hook) runs on a worker thread under a deadline
(:mod:`carbonkit._guard`), so no plugin can hang, crash or exit the caller:

- a plugin that fails to import, raises anything (``SystemExit`` included) or blocks past its
  deadline while importing or in a hook, implements a hook that does not exist, or returns an
  object off the contract is *dropped*: unregistered and blocked for the rest of this manager's
  life, recorded in ``pm.carbonkit_skipped`` with what it did, and logged once;
- the other plugins are unaffected.

``strict=True`` (used by :func:`carbonkit.testing.assert_plugin_valid`) raises instead, so a
plugin author sees :class:`~carbonkit.errors.PluginContractError` or
:class:`~carbonkit.errors.PluginLoadError` in their own tests.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import math
import os
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy
from attrs import field, frozen

from . import hookspecs
from ._guard import Outcome, Worker, describe_failure
from .errors import PluginContractError, PluginLoadError
from .protocols import IntensityProvider, PowerSource, Predictor, Reporter
from .records import METHODS, SIGNALS, ResolvedLocation, Unavailable, tuple_of

if TYPE_CHECKING:
    import httpx

    from .config import Config

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRYPOINT_GROUP",
    "HOOK_DEADLINE_S",
    "IMPORT_DEADLINE_S",
    "Offers",
    "PluginInfo",
    "SkippedPlugin",
    "collect_equivalents",
    "collect_intensity_providers",
    "collect_power_sources",
    "collect_predictors",
    "collect_reporters",
    "list_plugins",
    "make_plugin_manager",
    "ordered_providers",
    "provider_order_key",
    "provider_signal",
    "resolve_location",
]

_logger = logging.getLogger("carbonkit")

ENTRYPOINT_GROUP = "carbonkit"
DEFAULT_PLUGINS = (
    "carbonkit.default_plugins.constant_intensity",
    "carbonkit.default_plugins.linear_predictor",
    "carbonkit.default_plugins.adaptive_predictor",
    "carbonkit.default_plugins.console_reporter",
    "carbonkit.default_plugins.runlog_reporter",
    "carbonkit.default_plugins.equivalents",
)
#: Longest an entry point's import may take before the plugin is dropped.
IMPORT_DEADLINE_S = 3.0
#: Longest one plugin's implementation of one hook may take before the plugin is dropped.
HOOK_DEADLINE_S = 2.0


@frozen
class SkippedPlugin:
    """An entry point that was not loaded or was dropped, and why.

    ``failed`` is True when the plugin misbehaved (failed to import, raised, blocked, broke the
    contract), False when it was left out on purpose (``CARBONKIT_DISABLE_PLUGINS``).
    """

    name: str
    distribution: str | None
    reason: str
    failed: bool = False


@frozen
class PluginInfo:
    """A registered plugin: its name, distribution, version and the hooks it implements."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...] = field(converter=tuple_of)
    builtin: bool = False


@frozen
class Offers:
    """What one collector hook gave: accepted objects, notes, and plugins that failed."""

    objects: tuple[Any, ...] = field(converter=tuple_of)
    notes: tuple[Unavailable, ...] = field(converter=tuple_of, default=())
    errors: tuple[tuple[str, str], ...] = field(converter=tuple_of, default=())
    owners: dict[str, str] = field(factory=dict)


def _split_env(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _worker(pm: pluggy.PluginManager) -> Worker:
    worker: Worker | None = getattr(pm, "carbonkit_worker", None)
    if worker is None:
        worker = Worker("carbonkit-plugin-call")
        pm.carbonkit_worker = worker  # type: ignore[attr-defined]
        weakref.finalize(pm, worker.close)  # the thread ends with the manager
    return worker


def drop_plugin(pm: pluggy.PluginManager, name: str, reason: str, *, log: bool = True) -> None:
    """Unregister and block plugin ``name`` for the rest of ``pm``'s life, recording why."""
    from ._redact import redact_text

    reason = redact_text(reason)
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin, name=name)
    pm.set_blocked(name)
    dist = getattr(pm, "carbonkit_dists", {}).get(name, (None,))[0]
    skipped: list[SkippedPlugin] = getattr(pm, "carbonkit_skipped", [])
    skipped.append(SkippedPlugin(name, dist, reason, failed=True))
    pm.carbonkit_skipped = skipped  # type: ignore[attr-defined]
    if log and getattr(pm, "carbonkit_log", True):
        _logger.warning("carbonkit: plugin %r was dropped: %s", name, reason)


def make_plugin_manager(
    *,
    plugins: Iterable[object] = (),
    entrypoints: bool = True,
    defaults: bool = True,
    strict: bool = False,
    log_failures: bool = True,
) -> pluggy.PluginManager:
    """Build a fresh plugin manager (there is no global one).

    Order: hook specs; the built-in default plugins; ``CARBONKIT_DISABLE_PLUGINS`` (blocked names)
    and ``CARBONKIT_PLUGINS`` (allow-list of external plugins, ``""`` for none); the installed
    entry points of the group ``carbonkit``, one by one, each imported under
    :data:`IMPORT_DEADLINE_S`; then ``plugins``; then the hook names of each plugin are checked
    against the specs (a misspelled hook drops that plugin).

    :param plugins: Extra plugin objects or modules to register (tests, embedding tools).
    :param entrypoints: Load installed plugins.
    :param defaults: Register the built-in default plugins.
    :param strict: Raise instead of dropping a misbehaving plugin (for plugin authors' tests).
    :param log_failures: Log one warning per dropped plugin (the tracker turns them into run
        warnings itself, and passes False).
    :returns: The manager. ``pm.carbonkit_skipped`` lists the entry points not loaded or dropped,
        with why; ``pm.carbonkit_dists`` maps plugin names to (distribution, version);
        ``pm.carbonkit_unknown_names`` lists warnings about names in ``CARBONKIT_PLUGINS`` and
        ``CARBONKIT_DISABLE_PLUGINS`` that match no plugin.
    :raises PluginLoadError: with ``strict=True``, when an entry point fails to load.
    """
    pm = pluggy.PluginManager("carbonkit")
    pm.add_hookspecs(hookspecs)
    pm.carbonkit_log = log_failures  # type: ignore[attr-defined]
    skipped: list[SkippedPlugin] = []
    dists: dict[str, tuple[str, str]] = {}
    pm.carbonkit_skipped = skipped  # type: ignore[attr-defined]
    pm.carbonkit_dists = dists  # type: ignore[attr-defined]
    blocked = set(_split_env("CARBONKIT_DISABLE_PLUGINS") or ())
    allowed = _split_env("CARBONKIT_PLUGINS")
    for name in blocked:
        pm.set_blocked(name)
    known_names: set[str] = set()
    if defaults:
        for dotted in DEFAULT_PLUGINS:
            short = dotted.rsplit(".", 1)[-1]
            known_names.update((dotted, short))
            if dotted in blocked or short in blocked:
                continue
            pm.register(importlib.import_module(dotted), name=dotted)
    if entrypoints:
        worker = _worker(pm)
        for ep in importlib.metadata.entry_points(group=ENTRYPOINT_GROUP):
            known_names.add(ep.name)
            dist = ep.dist.name if ep.dist is not None else None
            if pm.is_blocked(ep.name):
                skipped.append(SkippedPlugin(ep.name, dist, "disabled by CARBONKIT_DISABLE_PLUGINS"))
                continue
            if allowed is not None and ep.name not in allowed:
                skipped.append(SkippedPlugin(ep.name, dist, "not listed in CARBONKIT_PLUGINS"))
                continue
            if pm.has_plugin(ep.name):
                continue
            if ep.dist is not None:
                dists[ep.name] = (ep.dist.name, ep.dist.version)
            outcome = worker.call(ep.load, deadline_s=IMPORT_DEADLINE_S)
            if not outcome.ok:
                what = describe_failure(outcome, IMPORT_DEADLINE_S)
                if strict:
                    raise PluginLoadError(
                        f"plugin {ep.name!r} ({dist}) {what} while loading; "
                        f"set CARBONKIT_DISABLE_PLUGINS={ep.name} to skip it",
                        plugin=ep.name,
                    ) from outcome.error
                drop_plugin(pm, ep.name, f"{what} while being imported ({dist})")
                continue
            _register(pm, outcome.value, ep.name, strict)
    for plugin in plugins:
        _register(pm, plugin, getattr(plugin, "__name__", None), strict)
    _check_hook_names(pm, strict)
    pm.carbonkit_unknown_names = _unknown_names(blocked, allowed, known_names, entrypoints)  # type: ignore[attr-defined]
    if os.environ.get("CARBONKIT_TRACE_PLUGINS"):
        pm.add_hookcall_monitoring(
            lambda name, impls, kw: _logger.debug("hook %s -> %s", name, [i.plugin_name for i in impls]),
            lambda outcome, name, impls, kw: _logger.debug("hook %s done", name),
        )
    return pm


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None, strict: bool) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # a hookimpl whose arguments the spec lacks
        if strict:
            raise
        label = name or str(plugin)
        pm.set_blocked(label)
        drop_plugin(pm, label, f"does not fit the hook specs: {exc}")
    except ValueError as exc:  # a name registered twice
        if strict:
            raise
        _logger.warning("carbonkit: plugin %r not registered: %s", name, exc)


def _check_hook_names(pm: pluggy.PluginManager, strict: bool) -> None:
    """Drop each plugin that implements a hook with no spec (a misspelled name)."""
    specs = [name for name in dir(hookspecs) if not name.startswith("_")]
    for _ in range(len(pm.get_plugins()) + 1):
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            if strict:
                raise
            name = pm.get_name(exc.plugin) or str(exc.plugin)
            unknown = [h.name for h in pm.get_hookcallers(exc.plugin) or () if not h.has_spec()]
            hint = ""
            if unknown:
                close = difflib.get_close_matches(unknown[0], specs, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
            drop_plugin(pm, name, f"implements hook(s) {', '.join(map(repr, unknown)) or '?'} that carbonkit "
                                  f"does not define{hint}")


def _unknown_names(
    blocked: set[str], allowed: list[str] | None, known: set[str], checked: bool
) -> list[str]:
    if not checked:
        return []
    out = []
    for var, names in (("CARBONKIT_DISABLE_PLUGINS", sorted(blocked)), ("CARBONKIT_PLUGINS", allowed or [])):
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=2)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                out.append(f"{var} names {name!r}, which is no installed plugin{hint}")
    return out


def _call_each(
    pm: pluggy.PluginManager, hook: str, step: Any = None, **kwargs: Any
) -> Iterable[tuple[str, Outcome]]:
    """Call ``hook`` on each plugin separately, under a deadline; yield (plugin name, outcome).

    ``step(results)`` runs on the worker thread too, right after the call: whatever it does with
    the plugin's objects (materialising an iterator, reading attributes) is under the same
    deadline, never on the caller's thread.
    """
    caller = getattr(pm.hook, hook)
    impls = caller.get_hookimpls()
    names = [impl.plugin_name for impl in impls]
    worker = _worker(pm)
    for impl in reversed(impls):  # pluggy calls the last registered first
        if pm.get_plugin(impl.plugin_name) is None:  # dropped meanwhile
            continue
        others = [p for p in (pm.get_plugin(n) for n in names if n != impl.plugin_name) if p is not None]
        single = pm.subset_hook_caller(hook, remove_plugins=others)

        def run(single: Any = single) -> Any:
            results = single(**kwargs)
            return step(results) if step is not None else results

        yield impl.plugin_name, worker.call(run, deadline_s=HOOK_DEADLINE_S)


def _flatten(value: Any) -> list[Any]:
    """Flatten pluggy's list of one implementation's return value; raise TypeError when it is off."""
    out: list[Any] = []
    for result in value or ():
        if result is None:
            continue
        if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
            raise TypeError(f"returned {result!r}, not a list")
        out.extend(result)
    return out


def _collect(
    pm: pluggy.PluginManager,
    hook: str,
    protocol: type,
    check: Any = None,
    strict: bool = False,
    **kwargs: Any,
) -> Offers:
    def step(value: Any) -> tuple[list[Any], list[Unavailable], str | None]:
        # On the worker: materialise, check every object against the contract.
        try:
            results = _flatten(value)
        except TypeError as exc:
            return [], [], f"{exc} from {hook}"
        mine: list[Any] = []
        notes: list[Unavailable] = []
        for result in results:
            if isinstance(result, Unavailable):
                notes.append(result)
                continue
            problem = _contract_problem(result, protocol, hook, check)
            if problem is not None:
                return [], notes, problem
            mine.append(result)
        return mine, notes, None

    objects: list[Any] = []
    notes: list[Unavailable] = []
    errors: list[tuple[str, str]] = []
    owners: dict[str, str] = {}
    for plugin, outcome in _call_each(pm, hook, step, **kwargs):
        if not outcome.ok:  # raised, exited or blocked: dropped (strict: reported in errors)
            failure = f"{describe_failure(outcome, HOOK_DEADLINE_S)} in {hook}"
            errors.append((plugin, failure))
            if not strict:
                drop_plugin(pm, plugin, failure)
            continue
        mine, found_notes, problem = outcome.value
        notes.extend(found_notes)
        names_here: set[str] = set()
        for result in mine:
            if problem is None and (result.name in owners or result.name in names_here):
                by = owners.get(result.name, plugin)
                problem = (f"returned {result!r} from {hook} with the name {result.name!r}, already used "
                           f"by plugin {by!r}; names must be unique")
            names_here.add(result.name)
        if problem is not None:
            if strict:  # off-contract: an error for the plugin's author
                raise PluginContractError(f"plugin {plugin!r} {problem}", plugin=plugin, hook=hook)
            errors.append((plugin, problem))
            drop_plugin(pm, plugin, problem)
            continue
        for result in mine:
            owners[result.name] = plugin
            objects.append(result)
    return Offers(objects, notes, errors, owners)


def _contract_problem(result: Any, protocol: type, hook: str, check: Any) -> str | None:
    try:
        if not isinstance(result, protocol):
            return (f"returned {result!r} from {hook}, which is not a {protocol.__name__}; see docs/plugins.md "
                    "for the attributes and methods required")
        name = getattr(result, "name", None)
        if not isinstance(name, str) or not name:
            return f"returned {result!r} from {hook} with the name {name!r}; a name must be a non-empty string"
        return check(result, hook) if check is not None else None
    except Exception as exc:  # a property that raises is off-contract too
        return f"returned an object from {hook} whose attributes raise {exc!r}"


def source_problem(source: Any, hook: str = "register_power_sources") -> str | None:
    """Return what is wrong with a power source's declared attributes, or None."""
    problems = []
    if source.method not in METHODS:
        problems.append(f"method={source.method!r} (expected one of {', '.join(METHODS)})")
    if source.kind not in ("energy", "power"):
        problems.append(f"kind={source.kind!r} (expected 'energy' or 'power')")
    if not isinstance(source.component, str) or not source.component:
        problems.append(f"component={source.component!r} (expected a label such as 'cpu' or 'gpu')")
    for attr in ("max_interval_s", "max_power_w"):
        value = getattr(source, attr, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value <= 0):
            problems.append(f"{attr}={value!r} (expected a number > 0, or absent)")
    if problems:
        return f"returned {source!r} from {hook} with " + " and ".join(problems)
    return None


def collect_power_sources(pm: pluggy.PluginManager, config: Config, *, strict: bool = False) -> Offers:
    """Return every power source the plugins offer, checked against :class:`PowerSource`."""
    return _collect(pm, "register_power_sources", PowerSource, source_problem, strict, config=config)


def collect_intensity_providers(
    pm: pluggy.PluginManager, config: Config, http_client: httpx.Client, *, strict: bool = False
) -> Offers:
    """Return every intensity provider, checked against :class:`IntensityProvider`."""
    return _collect(
        pm, "register_intensity_providers", IntensityProvider, _provider_problem, strict,
        config=config, http_client=http_client,
    )


def _provider_problem(provider: Any, hook: str) -> str | None:
    zones, priority = provider.zones, provider.priority
    if isinstance(zones, str) or not all(isinstance(z, str) for z in zones):
        return f"returned {provider!r} from {hook} with zones={zones!r} (expected a set of zone codes)"
    if isinstance(priority, bool) or not isinstance(priority, int):
        return f"returned {provider!r} from {hook} with priority={priority!r} (expected a whole number)"
    signal = getattr(provider, "signal", None)
    if signal is not None and signal not in SIGNALS:
        return f"returned {provider!r} from {hook} with signal={signal!r} (expected 'average' or 'marginal')"
    lag = getattr(provider, "max_lag_s", None)
    if lag is not None and (isinstance(lag, bool) or not isinstance(lag, (int, float)) or not math.isfinite(lag)
                            or lag < 0):
        return f"returned {provider!r} from {hook} with max_lag_s={lag!r} (expected a number of seconds >= 0)"
    return None


def collect_predictors(pm: pluggy.PluginManager, config: Config, *, strict: bool = False) -> Offers:
    """Return every predictor, checked against :class:`Predictor`."""
    return _collect(pm, "register_predictors", Predictor, None, strict, config=config)


def collect_reporters(pm: pluggy.PluginManager, config: Config, *, strict: bool = False) -> Offers:
    """Return every reporter, checked against :class:`Reporter`."""
    return _collect(pm, "register_reporters", Reporter, None, strict, config=config)


def collect_equivalents(pm: pluggy.PluginManager, config: Config, *, strict: bool = False) -> Offers:
    """Return every everyday equivalent, checked to be an :class:`~carbonkit.equivalents.Equivalent`."""
    from .equivalents import Equivalent

    return _collect(pm, "register_equivalents", Equivalent, None, strict, config=config)


def resolve_location(
    pm: pluggy.PluginManager, config: Config, http_client: httpx.Client
) -> ResolvedLocation | None:
    """Ask the plugins for this machine's zone; None when none answers in time (or one fails).

    A hook's plain zone code comes back as ``ResolvedLocation(zone, how="resolve_location hook")``;
    a :class:`~carbonkit.ResolvedLocation` it returned comes back as it is.
    """
    outcome = _worker(pm).call(pm.hook.resolve_location, deadline_s=HOOK_DEADLINE_S, config=config,
                               http_client=http_client)
    if not outcome.ok:
        impls = [i.plugin_name for i in pm.hook.resolve_location.get_hookimpls()]
        reason = f"{describe_failure(outcome, HOOK_DEADLINE_S)} in resolve_location"
        if len(impls) == 1:
            drop_plugin(pm, impls[0], reason)
        else:
            from ._redact import redact_text

            _logger.warning("carbonkit: resolve_location (plugins %s) %s", ", ".join(impls), redact_text(reason))
        return None
    found = outcome.value
    if isinstance(found, ResolvedLocation):
        return found
    if isinstance(found, str) and found.strip():
        return ResolvedLocation(zone=found, how="resolve_location hook")
    return None


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


def provider_signal(provider: Any) -> str:
    """The signal of a provider's samples: its ``signal`` attribute, ``"average"`` when absent."""
    value = getattr(provider, "signal", None)
    return value if isinstance(value, str) and value in SIGNALS else "average"


def provider_order_key(provider: Any) -> tuple[int, bool, str]:
    """How providers of one signal are ranked for a zone: the highest ``priority`` first; on a tie,
    a provider that names the zone before one covering every zone (``"*"``); then by ``name``, in
    alphabetical order, so that the order never depends on how the plugins were discovered."""
    return (-int(provider.priority), "*" in provider.zones, str(provider.name))


def ordered_providers(
    providers: Sequence[IntensityProvider], zone: str, named: str | None, signal: str = "average"
) -> list[IntensityProvider]:
    """Return the providers to try for ``zone``, best first (``docs/plugins.md``, "Provider order").

    1. The provider named in config (``intensity_provider=``, ``CARBONKIT_INTENSITY_PROVIDER``),
       when given: it must be installed and give the ``signal`` asked for.
    2. Every provider of ``signal`` covering the zone (it names it, or covers ``"*"``), ranked by
       :func:`provider_order_key`: priority, then a named zone before ``"*"``, then name.
    3. For a ``"marginal"`` run only: the ``"average"`` providers covering the zone, in the same
       order, as fallbacks (the run records the fallback and the share each signal priced). An
       average run never takes marginal values.

    :raises ConfigError: when ``named`` is not installed, or gives the other signal.
    """
    from .errors import ConfigError

    covering = sorted((p for p in providers if zone in p.zones or "*" in p.zones), key=provider_order_key)
    chain = [p for p in covering if provider_signal(p) == signal]
    if signal != "average":
        chain += [p for p in covering if provider_signal(p) == "average"]
    if named is not None:
        chosen = [p for p in providers if p.name == named or p.name.split(":", 1)[0] == named]
        if not chosen:
            names = ", ".join(sorted(p.name for p in providers)) or "none"
            raise ConfigError(f"intensity provider {named!r} is not installed; available: {names}")
        if provider_signal(chosen[0]) != signal:
            raise ConfigError(
                f"intensity provider {chosen[0].name!r} gives the {provider_signal(chosen[0])} signal, but the run "
                f"asks for the {signal} signal; set signal={provider_signal(chosen[0])!r} (CARBONKIT_SIGNAL) "
                "or choose another provider"
            )
        return chosen[:1] + [p for p in chain if p is not chosen[0]]
    return chain
