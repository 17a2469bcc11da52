"""Hook specifications: what a carbonkit plugin can implement.

A plugin is a module (or an object) with functions marked ``@carbonkit.hookimpl`` whose names
match the specs below. Installed plugins are found through the entry-point group ``carbonkit``.

Rules every hook follows:

- Hooks are called with keyword arguments. An implementation may accept any subset of a spec's
  arguments, in any order; new arguments may be added to a spec later and old implementations
  keep working. Implementation arguments **with default values are not passed**: do not give
  them defaults.
- A collector (``register_*``) returns a list, empty when nothing applies. It may include
  :class:`~carbonkit.Unavailable` notes saying why it offers nothing on this machine; those are
  shown by ``carbonkit plugins``.
- A hook must not raise for an expected absence (no driver, no permission, no network); an
  unexpected exception skips that plugin with one warning naming it.
- Importing a plugin and calling a ``register_*`` hook must be cheap: no network calls, and
  hardware probed only as far as needed to know whether it can be read.

The full reference, with each hook under its exact signature, is ``docs/hooks.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import httpx

    from .config import Config
    from .equivalents import Equivalent
    from .protocols import IntensityProvider, PowerSource, Predictor, Reporter
    from .records import ResolvedLocation, Unavailable

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("carbonkit")
hookimpl = pluggy.HookimplMarker("carbonkit")

# The functions below are signatures only: pluggy reads them and never calls them, so their
# bodies are the docstring alone (hence the ``empty-body`` ignores; mypy cannot see that).


# -------------------------------------------------------------------------------------------
# Measurement
# -------------------------------------------------------------------------------------------


@hookspec
def register_power_sources(config: Config) -> list[PowerSource | Unavailable]:  # type: ignore[empty-body]
    """Return the power sources this plugin can read on this machine.

    Called once when a :class:`~carbonkit.Tracker` is built from plugins, on the thread that
    builds it. Return an empty list, or an :class:`~carbonkit.Unavailable` note, when the
    hardware, driver or permission is missing; never return a source that would read zeros.

    :param config: The tracker configuration (``config.pid`` is the root of the tracked
        process tree, ``config.attribution`` is ``"machine"``, ``"process"`` or ``"cgroup"``).
    :returns: Objects satisfying :class:`~carbonkit.protocols.PowerSource`, each with a
        ``name`` unique across plugins (``"<entry point>:<id>"``), and optionally
        :class:`~carbonkit.Unavailable` notes.
    """


@hookspec
def register_intensity_providers(  # type: ignore[empty-body]
    config: Config, http_client: httpx.Client
) -> list[IntensityProvider | Unavailable]:
    """Return the carbon-intensity providers this plugin offers.

    Called once when a tracker is built, and by ``carbonkit plugins`` and
    ``carbonkit intensity``. Do not call the network here: providers are queried later, on the
    tracker's intensity thread. The core chooses among all providers: the one named by
    ``config.intensity_provider``, else the highest ``priority`` covering the zone; the others
    covering the zone, by priority, are the fallbacks.

    :param config: The tracker configuration (``config.location`` is the zone code).
    :param http_client: The core's shared :class:`httpx.Client`, with timeouts and a
        ``User-Agent`` set. Use it for every request; tests inject a mock transport through it.
    :returns: Objects satisfying :class:`~carbonkit.protocols.IntensityProvider`, and
        optionally :class:`~carbonkit.Unavailable` notes.
    """


@hookspec
def register_predictors(config: Config) -> list[Predictor | Unavailable]:  # type: ignore[empty-body]
    """Return the predictors this plugin offers.

    The core uses the one named by ``config.predictor`` (default ``"linear"``, built in:
    the paper's method, total = planned epochs x mean of the monitored epochs).

    :param config: The tracker configuration.
    :returns: Objects satisfying :class:`~carbonkit.protocols.Predictor`, with unique names.
    """


# -------------------------------------------------------------------------------------------
# Output
# -------------------------------------------------------------------------------------------


@hookspec
def register_reporters(config: Config) -> list[Reporter | Unavailable]:  # type: ignore[empty-body]
    """Return the reporters that should receive this run's events.

    Every reporter returned is used. Reporters run on the tracker's background thread, so
    they may write files or call services; one that raises is disabled with a warning.
    Built in: the console reporter (off with ``config.quiet``) and the run-log writer (on when
    ``config.log_dir`` is set).

    :param config: The tracker configuration.
    :returns: Objects satisfying :class:`~carbonkit.protocols.Reporter`
        (subclass :class:`~carbonkit.ReporterBase`).
    """


@hookspec
def register_equivalents(config: Config) -> list[Equivalent]:  # type: ignore[empty-body]
    """Return everyday equivalents of CO2eq (km driven, smartphones charged...) for statements.

    Called by ``carbonkit statement`` (and :func:`carbonkit.reports.statement.statement`), which
    gives, for the runs' zones, every equivalent that applies to all of them. Built in: the
    European Environment Agency's average new EU car (any zone) and the US EPA Greenhouse Gas
    Equivalencies (US zones). Every figure must say where it comes from: its ``source`` (with the
    figure as published) and ``year``.

    :param config: The configuration (``config.location`` is the zone, when one is set).
    :returns: :class:`~carbonkit.equivalents.Equivalent` objects, with names unique across
        plugins; ``zones`` names the zone codes each applies to (empty: any zone).
    """


# -------------------------------------------------------------------------------------------
# Discovery
# -------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def resolve_location(config: Config, http_client: httpx.Client) -> str | ResolvedLocation | None:
    """Return the zone code of this machine, when the user gave none, and how it was found.

    Stops at first non-None result. Called only when neither the ``location`` argument nor
    ``CARBONKIT_LOCATION`` is set; when no plugin answers, the core falls back to ``"WORLD"``
    with one warning. It runs while the tracker is built, under the hook deadline (2 s), so
    keep it fast: bound every probe (a metadata file, a cloud metadata endpoint) so that a
    machine where nothing answers pays a few hundred milliseconds at most, and remember that
    name resolution (DNS) is bounded by no HTTP timeout. A zone no installed provider knows is
    replaced by ``"WORLD"`` with a warning.

    :param config: The tracker configuration (``config.location`` is None here).
    :param http_client: The core's shared :class:`httpx.Client`.
    :returns: A :class:`~carbonkit.ResolvedLocation` (the zone, and how it was found, which the
        report's ``location_source`` and the run log's header record, e.g.
        ``"cloud metadata: aws eu-west-1"``), or a plain zone code such as ``"DK-DK2"``
        (recorded as ``"resolve_location hook"``), or None to let other plugins answer.
    """
