"""Composition: decide what a run measures with, before anything runs.

:func:`compose` turns a :class:`~carbonkit.config.Config` and the plugins' offers (or the objects
given to the tracker) into a :class:`Composition`: the location and how it was found, the power
sources chosen (with their devices and ceilings read once), those dropped and why, the intensity
providers in the order they are tried, the zone's static intensity (available at once, without
the network), the predictor, the reporters, and every warning. It starts no thread and reads no
sensor; every call into plugin code goes through :mod:`carbonkit.plugins` or a guarded worker,
under a deadline. The tracker then runs the composition (:mod:`carbonkit.tracker`).
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
from attrs import define, field

from ._guard import Worker, describe_failure
from ._readings import ceiling_w
from .config import Config
from .errors import ConfigError, NoPowerSourceError
from .protocols import IntensityProvider, PowerSource, Predictor, Reporter
from .records import METHODS, DroppedSource, IntensitySample, Unavailable

if TYPE_CHECKING:
    import pluggy

__all__ = ["Composition", "LazyHttpClient", "SourceSlot", "compose"]

_logger = logging.getLogger("carbonkit")

#: Longest a source's ``devices()`` and attributes may take to answer at construction.
DEVICES_DEADLINE_S = 2.0
#: Longest an offline provider may take to give the zone's static value at construction.
SEED_DEADLINE_S = 1.0

_NO_SOURCE_HINT = (
    "no power source is available on this machine; install carbonkit-rapl (Intel/AMD CPUs on "
    "Linux), carbonkit-nvml (NVIDIA GPUs) or carbonkit-cpu-estimate (an estimate from CPU "
    "utilisation and TDP, for VMs and containers), or pass sources= explicitly"
)


class LazyHttpClient:
    """The core's ``httpx.Client``, created on first use (on the thread that first needs it).

    Importing httpx and building a client costs about 100 ms; a run that never reaches a live
    API (an offline zone, a static table) never pays it, and the training thread never does.
    """

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._client is None:
                from ._http import default_http_client

                self._client = default_http_client()
            return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __enter__(self) -> Any:
        return self._get()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def created(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


@define
class SourceSlot:
    """A chosen power source and what was read of it once, at construction."""

    source: Any
    name: str
    component: str
    method: str
    kind: str
    devices: tuple[str, ...]
    max_interval_s: float | None
    ceiling_w: float
    info: dict[str, str]

    def meta(self) -> dict[str, Any]:
        """Plain description for the run log and reporters."""
        return {
            "name": self.name,
            "component": self.component,
            "method": self.method,
            "kind": self.kind,
            "devices": list(self.devices),
            "max_power_w": self.ceiling_w,
            "info": dict(self.info),
        }


@define
class Composition:
    """Everything a run is made of, decided before it starts."""

    config: Config
    location_given_by: str
    sources: list[SourceSlot]
    dropped: list[DroppedSource]
    notes: list[Unavailable]
    providers: list[IntensityProvider]
    seed: tuple[IntensitySample, str] | None
    predictor: Predictor
    reporters: list[Reporter]
    warnings: list[str] = field(factory=list)
    plugin_versions: dict[str, str | None] = field(factory=dict)
    pm: pluggy.PluginManager | None = None


def compose(
    config: Config,
    *,
    sources: Sequence[PowerSource] | None = None,
    provider: IntensityProvider | Sequence[IntensityProvider] | None = None,
    predictor: Predictor | None = None,
    reporters: Sequence[Reporter] | None = None,
    pm: pluggy.PluginManager | None = None,
    http_client: Any = None,
    location_given_by: str = "argument",
) -> Composition:
    """Decide the run's parts. Plugin code runs only under deadlines (see the module docstring).

    :raises ConfigError: for objects given explicitly that break the contract, an unknown zone,
        or an unknown predictor or intensity provider name.
    :raises NoPowerSourceError: when no power source is left.
    """
    from . import plugins as plug

    warnings: list[str] = []
    needs_pm = sources is None or provider is None or predictor is None or reporters is None
    if needs_pm and pm is None:
        pm = plug.make_plugin_manager(log_failures=False)
    if pm is not None:
        for skipped in getattr(pm, "carbonkit_skipped", ()):
            if skipped.failed:
                warnings.append(f"plugin {skipped.name!r} was dropped: {skipped.reason}")
        warnings.extend(getattr(pm, "carbonkit_unknown_names", ()))
    seen_drops = len(getattr(pm, "carbonkit_skipped", ()))

    def new_drops() -> None:
        nonlocal seen_drops
        skipped = getattr(pm, "carbonkit_skipped", ())
        for s in skipped[seen_drops:]:
            if s.failed:
                warnings.append(f"plugin {s.name!r} was dropped: {s.reason}")
        seen_drops = len(skipped)

    http: Any = http_client if http_client is not None else LazyHttpClient()  # an httpx.Client to plugins

    # Location.
    zone = config.location
    given_by = location_given_by
    if zone is None and pm is not None:
        zone = plug.resolve_location(pm, config, http)
        new_drops()
        given_by = "resolve_location hook"
    if zone is None:
        zone = "WORLD"
        given_by = "default"
        warnings.append(
            "no location given: using the world average intensity; set location= or "
            "CARBONKIT_LOCATION to a zone code such as 'DK-DK2', 'GB' or 'SE-SE3'"
        )
    else:
        zone = zone.strip().upper()
    config = attrs.evolve(config, location=zone, given_by={**config.given_by, "location": given_by})

    # Power sources.
    notes: list[Unavailable] = []
    owners: dict[str, str] = {}
    if sources is None:
        assert pm is not None
        offers = plug.collect_power_sources(pm, config)
        new_drops()
        offered = list(offers.objects)
        owners = dict(offers.owners)
        notes += offers.notes
    else:
        offered = list(sources)
        for s in offered:
            if not isinstance(s, PowerSource):
                raise ConfigError(
                    f"sources must be PowerSource objects (name, component, method, kind, "
                    f"devices(), read(), close()), got {s!r}"
                )
            problem = plug.source_problem(s, "sources=")
            if problem is not None:
                raise ConfigError(f"sources= {problem.removeprefix('returned ')}")
        names = [s.name for s in offered]
        if len(set(names)) != len(names):
            raise ConfigError(f"source names must be unique, got {names}")
    for note in notes:
        if note.warn:
            hint = f" {note.hint}" if note.hint else ""
            warnings.append(f"{note.plugin}: {note.reason}.{hint}")
    worker = Worker("carbonkit-compose")
    slots: list[SourceSlot] = []
    for s in offered:
        outcome = worker.call(_slot, s, deadline_s=DEVICES_DEADLINE_S)
        if not outcome.ok:
            owner = owners.get(getattr(s, "name", "?"), "sources=")
            warnings.append(
                f"power source {getattr(s, 'name', s)!r} ({owner}) {describe_failure(outcome, DEVICES_DEADLINE_S)} "
                "when asked for its devices and was not used"
            )
            if outcome.timed_out and pm is not None and owner in dict(pm.list_name_plugin()):
                plug.drop_plugin(pm, owner, "blocked in devices()", log=False)
            continue
        slot = outcome.value
        if not slot.devices:
            warnings.append(f"power source {slot.name!r} has no devices and was not used")
            worker.call(_close, s, deadline_s=DEVICES_DEADLINE_S)
            continue
        slots.append(slot)
    if not slots:
        reasons = "; ".join(f"{n.plugin}: {n.reason}" for n in notes)
        raise NoPowerSourceError(_NO_SOURCE_HINT + (f" (plugins said: {reasons})" if reasons else ""))
    chosen, dropped = _select(slots)
    for slot in slots:
        if slot not in chosen:
            worker.call(_close, slot.source, deadline_s=DEVICES_DEADLINE_S)

    # Intensity providers, best first; the world average is always last.
    from .default_plugins.constant_intensity import WorldAverage

    if provider is None:
        assert pm is not None
        offers = plug.collect_intensity_providers(pm, config, http)
        new_drops()
        available = list(offers.objects)
        chain = plug.ordered_providers(available, zone, config.intensity_provider)
    else:
        chain = list(provider) if isinstance(provider, Sequence) else [provider]
        for p in chain:
            if not isinstance(p, IntensityProvider):
                raise ConfigError(
                    f"provider must be an IntensityProvider (name, zones, priority, current(), "
                    f"forecast()), got {p!r}"
                )
        available = list(chain)
    if not any(isinstance(p, WorldAverage) for p in chain):
        chain.append(WorldAverage())
    known = _known_zones(available, worker, warnings)
    if known is not None and zone not in known:
        if given_by not in ("resolve_location hook", "default"):  # the user set it
            raise ConfigError(_unknown_zone_message(zone, known, given_by))
        warnings.append(_unknown_zone_message(zone, known, given_by) + "; the world average is used")
        zone = "WORLD"
        config = attrs.evolve(config, location=zone, given_by={**config.given_by, "location": "default"})
        chain = [p for p in chain if "*" in p.zones or zone in p.zones] or [WorldAverage()]
    seed = _seed(chain, zone, worker, warnings)

    # Predictor.
    if predictor is None:
        assert pm is not None
        by_name = {p.name: p for p in plug.collect_predictors(pm, config).objects}
        new_drops()
        if config.predictor not in by_name:
            raise ConfigError(
                f"predictor {config.predictor!r} is not installed; available: {', '.join(sorted(by_name))}"
            )
        predictor = by_name[config.predictor]
    elif not isinstance(predictor, Predictor):
        raise ConfigError(f"predictor must have a name and predict(epochs=, completed=), got {predictor!r}")

    # Reporters.
    if reporters is None:
        assert pm is not None
        reporters = list(plug.collect_reporters(pm, config).objects)
        new_drops()
    else:
        for r in reporters:
            if not isinstance(r, Reporter):
                raise ConfigError(f"reporters must be Reporter objects (see ReporterBase), got {r!r}")
    worker.close()
    plugin_worker: Worker | None = getattr(pm, "carbonkit_worker", None)
    if plugin_worker is not None:
        plugin_worker.close()  # its thread ends; a later hook call starts another

    versions: dict[str, str | None] = {}
    if pm is not None:
        versions = {p.name: p.version for p in plug.list_plugins(pm)}
    return Composition(
        config=config,
        location_given_by=given_by,
        sources=chosen,
        dropped=dropped,
        notes=notes,
        providers=chain,
        seed=seed,
        predictor=predictor,
        reporters=list(reporters),
        warnings=warnings,
        plugin_versions=versions,
        pm=pm,
    )


def _slot(s: Any) -> SourceSlot:
    """Read a source's attributes and devices once (on a worker, under a deadline)."""
    devices = tuple(str(d) for d in s.devices())
    max_interval = getattr(s, "max_interval_s", None)
    declared = getattr(s, "max_power_w", None)
    info = getattr(s, "info", None) or {}
    return SourceSlot(
        source=s,
        name=str(s.name),
        component=str(s.component),
        method=str(s.method),
        kind=str(s.kind),
        devices=devices,
        max_interval_s=float(max_interval) if max_interval else None,
        ceiling_w=ceiling_w(str(s.component), float(declared) if declared else None),
        info={str(k): str(v) for k, v in dict(info).items()},
    )


def _close(s: Any) -> None:
    s.close()


def _select(slots: list[SourceSlot]) -> tuple[list[SourceSlot], list[DroppedSource]]:
    """Keep, per component, only the sources with the best method (measured > estimated > simulated)."""
    best: dict[str, int] = {}
    for s in slots:
        rank = METHODS.index(s.method)
        best[s.component] = min(best.get(s.component, rank), rank)
    kept, dropped = [], []
    for s in slots:
        if METHODS.index(s.method) == best[s.component]:
            kept.append(s)
        else:
            dropped.append(
                DroppedSource(
                    name=s.name,
                    component=s.component,
                    method=s.method,
                    reason=f"a {METHODS[best[s.component]]} source covers {s.component}",
                )
            )
    return kept, dropped


def _known_zones(providers: Sequence[Any], worker: Worker, warnings: list[str]) -> frozenset[str] | None:
    """Every zone some provider knows, or None when no provider has a catalogue of zones (then
    nothing is rejected: a provider's own ``zones`` say what it covers, not what exists)."""
    known: set[str] = set()
    informed = False  # only a provider with a catalogue (known_zones()) makes a code unknown
    for p in providers:
        known |= {z.upper() for z in p.zones if z != "*"}
        method = getattr(p, "known_zones", None)
        if callable(method):
            outcome = worker.call(method, deadline_s=SEED_DEADLINE_S)
            if outcome.ok and outcome.value is not None:
                try:
                    known |= {str(z).upper() for z in outcome.value}
                    informed = True
                except TypeError:
                    warnings.append(f"intensity provider {p.name!r}: known_zones() returned {outcome.value!r}")
            elif not outcome.ok:
                warnings.append(f"intensity provider {p.name!r}: known_zones() "
                                f"{describe_failure(outcome, SEED_DEADLINE_S)}")
    if not informed:
        return None
    return frozenset(known | {"WORLD"})


def _unknown_zone_message(zone: str, known: frozenset[str], given_by: str) -> str:
    ranked = sorted(known)
    close = difflib.get_close_matches(zone, ranked, n=4, cutoff=0.6)
    # A short code is often the end of a longer one ('DK2' for 'DK-DK2').
    close += [z for z in ranked if z.endswith("-" + zone) and z not in close][:3]
    named = {"argument": "location=", "CARBONKIT_LOCATION": "CARBONKIT_LOCATION=", "--zone": "--zone "}
    what = named.get(given_by, f"{given_by} gave ")
    hint = f"; closest known codes: {', '.join(close)}" if close else ""
    return (f"{what}{zone!r} is not a zone any installed intensity provider knows{hint} "
            "(zone codes are Electricity Maps codes such as 'DK-DK2', 'SE-SE3', 'US-CAL-CISO', or 'WORLD'; "
            "`carbonkit intensity ZONE` shows what a code resolves to)")


def _seed(chain: Sequence[Any], zone: str, worker: Worker, warnings: list[str]) -> tuple[IntensitySample, str] | None:
    """The zone's value from the first offline provider in the chain: there from the first second."""
    for p in chain:
        if getattr(p, "offline", False) is not True:
            continue
        outcome = worker.call(p.current, zone, deadline_s=SEED_DEADLINE_S)
        if outcome.ok and isinstance(outcome.value, IntensitySample):
            return outcome.value, p.name
        why = describe_failure(outcome, SEED_DEADLINE_S) if not outcome.ok else f"returned {outcome.value!r}"
        warnings.append(f"intensity provider {p.name!r} {why} when asked for {zone}'s static value")
    return None
