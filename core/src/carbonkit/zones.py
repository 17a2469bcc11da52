"""Zone codes people can find: which codes exist, what they are called, who covers each.

Zone codes are Electricity Maps codes (``"DE"``, ``"DK-DK1"``, ``"SE-SE3"``, ``"US-CAL-CISO"``,
``"WORLD"``). Every installed intensity provider says what it covers:

- ``zones``: the codes it names (``"*"``: any zone);
- ``known_zones()`` (optional): its catalogue of codes it has data for;
- ``zone_names()`` (optional): code to human name;
- ``capabilities`` (optional): a subset of ``{"live", "forecast", "history"}``; without it, an
  ``offline`` provider gives a yearly average and any other gives live values and a forecast;
- ``signal`` (optional): ``"average"`` (default) or ``"marginal"``.

:func:`catalogue` joins them into one :class:`ZoneCoverage` per code: its name and the providers
covering it by kind (``live``, ``forecast``, ``average``, ``marginal``), in the order a tracker
tries them. ``carbonkit zones [QUERY]`` prints it. A code no catalogue holds is rejected
everywhere a zone is accepted (``Tracker(location=)``, ``carbonkit intensity``, ``carbonkit
schedule``, ``carbonkit run``) with the closest codes (:func:`closest_zones`).

Every call into a provider here goes through a guarded worker under a deadline.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import field, frozen

from ._guard import Worker, describe_failure
from .records import dict_of

__all__ = [
    "CATALOGUE_DEADLINE_S",
    "KINDS",
    "ZoneCoverage",
    "capabilities",
    "catalogue",
    "closest_zones",
    "known_zones",
    "unknown_zone_message",
]

#: Longest a provider's ``known_zones()`` or ``zone_names()`` may take.
CATALOGUE_DEADLINE_S = 1.0
#: The kinds of coverage ``carbonkit zones`` lists.
KINDS = ("live", "forecast", "average", "marginal")
_NAMES = {"WORLD": "World (average of all countries)"}


@frozen(kw_only=True)
class ZoneCoverage:
    """One zone code, its name, and the providers covering it on this machine, by kind.

    :param zone: The code.
    :param name: Its human name ("" when no provider names it).
    :param providers: Kind (``live``, ``forecast``, ``average``, ``marginal``) to provider names,
        best first (the order a tracker tries them in).
    """

    zone: str
    name: str = ""
    providers: Mapping[str, tuple[str, ...]] = field(converter=dict_of, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"zone": self.zone, "name": self.name, "providers": {k: list(v) for k, v in self.providers.items()}}


def capabilities(provider: Any) -> frozenset[str]:
    """What a provider gives: its ``capabilities``, else ``{"average"}`` for an ``offline`` one
    (a static table) and ``{"live", "forecast"}`` for any other."""
    declared = getattr(provider, "capabilities", None)
    if declared is not None:
        try:
            return frozenset(str(c) for c in declared)
        except TypeError:
            pass
    if getattr(provider, "offline", False) is True:
        return frozenset({"average"})
    return frozenset({"live", "forecast"})


def _kinds(provider: Any) -> list[str]:
    from .plugins import provider_signal

    if provider_signal(provider) == "marginal":
        return ["marginal"]
    caps = capabilities(provider)
    kinds: list[str] = [k for k in ("live", "forecast") if k in caps]
    if "average" in caps or getattr(provider, "offline", False) is True:
        kinds.append("average")
    return kinds or ["live"]


def _ask(worker: Worker, provider: Any, method: str, warnings: list[str] | None) -> Any:
    call = getattr(provider, method, None)
    if not callable(call):
        return None
    outcome = worker.call(call, deadline_s=CATALOGUE_DEADLINE_S)
    if outcome.ok:
        return outcome.value
    if warnings is not None:
        warnings.append(f"intensity provider {provider.name!r}: {method}() "
                        f"{describe_failure(outcome, CATALOGUE_DEADLINE_S)}")
    return None


def _codes(value: Any) -> set[str] | None:
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        return {str(z).strip().upper() for z in value}
    except TypeError:
        return None


def known_zones(
    providers: Sequence[Any], worker: Worker | None = None, warnings: list[str] | None = None
) -> frozenset[str] | None:
    """Every zone some provider knows, or None when no provider has a catalogue (``known_zones()``):
    then nothing is rejected, since a provider's ``zones`` say what it covers, not what exists."""
    own = worker is None
    worker = worker or Worker("carbonkit-zones")
    try:
        known: set[str] = set()
        informed = False
        for p in providers:
            known |= {z.upper() for z in p.zones if z != "*"}
            value = _ask(worker, p, "known_zones", warnings)
            codes = _codes(value)
            if codes is not None:
                known |= codes
                informed = True
            elif value is not None and warnings is not None:
                warnings.append(f"intensity provider {p.name!r}: known_zones() returned {value!r}")
        return frozenset(known | {"WORLD"}) if informed else None
    finally:
        if own:
            worker.close()


def closest_zones(zone: str, known: Iterable[str], n: int = 4) -> list[str]:
    """The known codes closest to ``zone``: by spelling (``US-TEX-EROC`` -> ``US-TEX-ERCO``), and
    the codes it ends (``DK2`` -> ``DK-DK2``)."""
    ranked = sorted(known)
    zone = zone.strip().upper()
    close = difflib.get_close_matches(zone, ranked, n=n, cutoff=0.6)
    close += [z for z in ranked if z.endswith("-" + zone) and z not in close][:3]
    return close


def unknown_zone_message(zone: str, known: Iterable[str], given_by: str) -> str:
    """The error for a code no provider knows, naming who gave it and the closest codes."""
    close = closest_zones(zone, known)
    named = {"argument": "location=", "CARBONKIT_LOCATION": "CARBONKIT_LOCATION=", "--zone": "--zone "}
    what = named.get(given_by, f"{given_by} gave ")
    hint = f"; closest known codes: {', '.join(close)}" if close else ""
    return (f"{what}{zone!r} is not a zone any installed intensity provider knows{hint} "
            "(zone codes are Electricity Maps codes such as 'DK-DK2', 'SE-SE3', 'US-CAL-CISO', or 'WORLD'; "
            "`carbonkit zones QUERY` lists them)")


def catalogue(
    providers: Sequence[Any], *, warnings: list[str] | None = None
) -> tuple[list[ZoneCoverage], list[str]]:
    """Every zone code the providers know, with its name and who covers it, sorted by code.

    :returns: The zones, and the names of the providers covering any zone (``"*"``) without a
        catalogue of their own (they are listed under every zone as well).
    """
    from .plugins import provider_order_key, provider_signal

    worker = Worker("carbonkit-zones")
    try:
        ordered = sorted(providers, key=lambda p: (provider_signal(p) != "average", provider_order_key(p)))
        names: dict[str, str] = {}
        coverage: dict[str, dict[str, list[str]]] = {}
        anywhere: list[Any] = []
        for p in ordered:
            codes = {z.upper() for z in p.zones if z != "*"}
            catalogue_codes = _codes(_ask(worker, p, "known_zones", warnings))
            if catalogue_codes is not None:
                codes |= catalogue_codes
            elif "*" in p.zones:
                anywhere.append(p)
            for code in codes:
                kinds = coverage.setdefault(code, {})
                for kind in _kinds(p):
                    kinds.setdefault(kind, []).append(p.name)
            given = _ask(worker, p, "zone_names", warnings)
            if isinstance(given, Mapping):
                for code, name in given.items():
                    names.setdefault(str(code).upper(), str(name))
        for code, name in _NAMES.items():
            names.setdefault(code, name)
        out = []
        for code in sorted(coverage):
            kinds = coverage[code]
            for p in anywhere:
                for kind in _kinds(p):
                    kinds.setdefault(kind, []).append(p.name)
            out.append(ZoneCoverage(
                zone=code, name=names.get(code, ""),
                providers={k: tuple(kinds[k]) for k in KINDS if k in kinds},
            ))
        return out, [p.name for p in anywhere]
    finally:
        worker.close()


def matching(zones: Sequence[ZoneCoverage], query: str | None) -> list[ZoneCoverage]:
    """The zones whose code or name contains ``query`` (case-insensitive); all for None.

    Best matches first: the code itself, then codes starting with it (``DK`` -> ``DK-DK1``), then
    names with a word starting with it (``ger`` -> Germany), then any other match."""
    if not query:
        return list(zones)
    q = query.strip().lower()

    def rank(z: ZoneCoverage) -> int | None:
        code, name = z.zone.lower(), z.name.lower()
        if code == q:
            return 0
        if code.startswith(q):
            return 1
        if any(word.startswith(q) for word in name.replace(",", " ").replace("(", " ").split()):
            return 2
        if q in code or q in name:
            return 3
        return None

    ranked = [(r, i, z) for i, z in enumerate(zones) if (r := rank(z)) is not None]
    return [z for _, _, z in sorted(ranked, key=lambda t: (t[0], t[1]))]
