"""The objects plugins return: the contract third-party plugins build on.

Each protocol is ``runtime_checkable``: the core checks every object a hook returns with
``isinstance`` (attributes and methods present) and raises
:class:`~carbonkit.errors.PluginContractError` naming the plugin, the hook and the object.
See ``docs/plugins.md`` for a complete example plugin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from attrs import field, frozen

from .records import tuple_of

if TYPE_CHECKING:
    from .records import (
        BudgetExceeded,
        BudgetReport,
        DroppedSource,
        EpochRecord,
        IntensitySample,
        Prediction,
        Report,
        Snapshot,
    )

__all__ = [
    "IntensityProvider",
    "PowerSource",
    "Predictor",
    "Reporter",
    "ReporterBase",
    "RunStart",
]


@runtime_checkable
class PowerSource(Protocol):
    """Something that reads the power or energy of one or more devices.

    Attributes:

    - ``name``: unique across plugins, ``"<plugin>:<id>"`` (``"rapl:package"``, ``"nvml:gpu"``).
    - ``component``: ``"cpu"``, ``"dram"``, ``"gpu"`` or another label. Devices of one
      component are summed.
    - ``method``: ``"measured"`` (a hardware counter or sensor), ``"estimated"`` (a model such as
      TDP x utilisation) or ``"simulated"``. Where several sources cover one component, only those
      with the best method are used and the others are reported as dropped.
    - ``kind``: ``"energy"`` when :meth:`read` returns cumulative joules per device (monotonic;
      the source unwraps counter overflow itself), ``"power"`` when it returns watts per device
      (the core integrates with the trapezoid rule).

    Optional attributes: ``max_interval_s`` (float): the longest gap between two reads that
    the source can tolerate (for example before a counter could wrap twice); the sampler reads
    at least that often. ``max_power_w`` (float): the most any one of its devices can draw, in
    watts; a power reading above it, or a counter advancing faster than it allows, is rejected
    (without it, a default per component applies: ``carbonkit._readings.DEFAULT_MAX_POWER_W``).
    ``info`` (a mapping of short strings): how the figure is obtained (a model, a TDP and where
    it came from); the run log and the report's component ``details`` show it.
    ``process_shares(pids)``: with ``attribution`` ``"process"`` or ``"cgroup"``, called right
    after :meth:`read` (same thread, same deadline) with the tracked process ids; returns each
    device's share in [0, 1] those processes took since the previous call (None where unknown).
    A device without a valid share is charged whole (``docs/attribution.md``).

    :meth:`read` is called from one tracker thread at a time, never concurrently, under a
    deadline (2 s for all sources of one tick): a source that blocks past it is abandoned for the
    rest of the run. It may raise any exception when the device is gone: the tracker then stops
    reading that source with one warning and keeps what it measured. Every value it returns is
    checked: one finite number >= 0 per device, or the reading is rejected with one warning.
    """

    @property
    def name(self) -> str: ...

    @property
    def component(self) -> str: ...

    @property
    def method(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def devices(self) -> Sequence[str]:
        """Return the device labels, in the order :meth:`read` returns their values."""
        ...

    def read(self) -> Sequence[float]:
        """Return one value per device: cumulative joules (``kind="energy"``) or watts."""
        ...

    def close(self) -> None:
        """Release files, handles or libraries. Called once, when the run stops."""
        ...


@runtime_checkable
class IntensityProvider(Protocol):
    """A source of carbon intensity for some zones.

    - ``name``: unique, ``"<plugin>:<id>"`` or the plugin name.
    - ``zones``: the zone codes it covers (``"DK-DK1"``, ``"GB"``); ``"*"`` means any zone.
    - ``priority``: the core tries the providers covering the zone by priority, highest first
      (free regional live APIs 100, account-based global services 90, static tables 10, the
      built-in world constant 0); on a tie, one naming the zone before one covering ``"*"``,
      then by name (:func:`carbonkit.plugins.ordered_providers`, ``docs/hooks.md``).

    Optional attributes, read with ``getattr`` and a default (``docs/plugins.md`` has the table):

    - ``offline`` (bool, default False): :meth:`current` answers from local data, at once and
      without the network (a static table); the tracker asks the first such provider for the
      zone's value at construction, so a run is priced from its first second.
    - ``known_zones()``: every zone code the provider has data for (a catalogue); when any
      provider has one, a location no provider knows is a
      :class:`~carbonkit.errors.ConfigError` naming the closest codes.
    - ``zone_names()``: a mapping of zone code to human name, for ``carbonkit zones``.
    - ``signal`` (str, default ``"average"``): ``"average"`` or ``"marginal"``, the signal of
      every sample it returns. A marginal provider prices only runs asking for that signal.
    - ``max_lag_s`` (float, default none): how late the service publishes live data; a live
      value prices the periods after its own for up to this long past its end, with its age
      recorded, until a newer one arrives (without it: one hour from its start).
    - ``capabilities`` (frozenset of ``"live"``, ``"forecast"``, ``"history"``; default
      ``{"live", "forecast"}``, or ``{"average"}`` when ``offline``): what it can give.
    - ``history(zone, start, end)``: past values (kind ``"live"``) covering ``[start, end)``
      UTC, oldest first, for ``carbonkit reprice``; called under the same deadline, off the
      caller's thread.

    A provider that cannot work without a key is not returned: the hook returns
    ``Unavailable(plugin=..., reason="no CARBONKIT_X_TOKEN set", hint="how to get one: URL")``.

    Both methods run on the tracker's intensity thread, never on the training thread, under a
    deadline of 30 s each. They should raise :class:`~carbonkit.errors.IntensityUnavailable` (or
    any exception) when the service cannot answer; the core then falls back to the next
    provider and records why.
    """

    @property
    def name(self) -> str: ...

    @property
    def zones(self) -> frozenset[str]: ...

    @property
    def priority(self) -> int: ...

    def current(self, zone: str) -> IntensitySample | None:
        """Return the intensity in force now in ``zone``, or None if there is none."""
        ...

    def forecast(self, zone: str, start: datetime, end: datetime) -> Sequence[IntensitySample]:
        """Return forecast samples covering ``[start, end)`` (UTC), possibly fewer, or empty."""
        ...


@runtime_checkable
class Predictor(Protocol):
    """Predicts a whole run's duration and energy from its first epochs.

    ``predict`` receives keyword arguments: ``epochs`` (the planned total) and ``completed``
    (the :class:`~carbonkit.EpochRecord` of each finished epoch). It returns a
    :class:`~carbonkit.Prediction` with ``duration_s`` and ``it_energy_kwh`` for all epochs;
    the core adds PUE and CO2eq.
    """

    @property
    def name(self) -> str: ...

    def predict(self, *, epochs: int, completed: Sequence[EpochRecord]) -> Prediction: ...


@runtime_checkable
class Reporter(Protocol):
    """Receives a run's events, in order, on a thread of its own.

    Subclass :class:`ReporterBase` to implement only the events you need. Events reach each
    reporter through its own bounded queue, so a slow reporter delays no other and never the
    measurement. A reporter that raises, or stays in one call for more than 10 s, is disabled for
    the rest of the run with one warning; the run goes on.
    ``on_report`` receives the final report when the run stops; ``close`` comes last.
    """

    @property
    def name(self) -> str: ...

    def on_start(self, run: RunStart) -> None: ...

    def on_sample(self, t_s: float, readings: Mapping[str, Sequence[float]]) -> None: ...

    def on_intensity(self, sample: IntensitySample) -> None: ...

    def on_epoch(self, epoch: EpochRecord) -> None: ...

    def on_prediction(self, prediction: Prediction) -> None: ...

    def on_warning(self, message: str) -> None: ...

    def on_report(self, report: Report) -> None: ...

    def close(self) -> None: ...


class ReporterBase:
    """A reporter that does nothing: subclass it and override the events you need.

    ``on_sample`` receives ``t_s``, seconds since the run started, and the raw reading of
    every source that answered, by source name (joules or watts as the source's ``kind``).
    ``on_warning`` receives each warning the run records (a device lost, a provider failing).

    Optional: a reporter whose ``warn`` attribute is None when the tracker starts gets the run's
    warning function there (``warn(message)``, callable from any thread): its warnings then reach
    the report, the run log and the console like the run's own, once each. Exporters use it to
    say once that their back end is slow or down, without failing (which would disable them).
    The optional events (not part of :class:`Reporter`; a reporter without them is simply not
    called): ``on_prediction_update`` (each prediction after the first), ``on_budget_exceeded``,
    ``on_budget_stop`` and ``on_progress`` (with ``progress=True``).
    """

    name = "reporter"

    def on_start(self, run: RunStart) -> None:
        pass

    def on_sample(self, t_s: float, readings: Mapping[str, Sequence[float]]) -> None:
        pass

    def on_intensity(self, sample: IntensitySample) -> None:
        pass

    def on_epoch(self, epoch: EpochRecord) -> None:
        pass

    def on_prediction(self, prediction: Prediction) -> None:
        pass

    def on_warning(self, message: str) -> None:
        pass

    def on_prediction_update(self, prediction: Prediction) -> None:
        """Optional: each prediction after the first (one per epoch), with its interval."""

    def on_budget_exceeded(self, event: BudgetExceeded) -> None:
        """Optional: the run went over its budget (once per run)."""

    def on_budget_stop(self, epoch: int) -> None:
        """Optional: training was stopped because of the budget, after ``epoch`` epochs."""

    def on_progress(self, snapshot: Snapshot, budget: BudgetReport | None) -> None:
        """Optional, with ``progress=True``: the figures so far, after each epoch."""

    def on_report(self, report: Report) -> None:
        pass

    def close(self) -> None:
        pass


@frozen(kw_only=True)
class RunStart:
    """What a reporter learns when a run starts.

    ``sources`` holds one dict per source used (``name``, ``component``, ``method``, ``kind``,
    ``devices``); ``dropped`` the sources not used, with why; ``header`` is the run log's
    header record (versions, host, pid, Python, config), plain JSON types.
    """

    start_time: datetime
    location: str
    pue: float
    pue_source: str
    epochs: int | None
    sources: tuple[Mapping[str, Any], ...] = field(converter=tuple_of)
    dropped: tuple[DroppedSource, ...] = field(converter=tuple_of, default=())
    header: Mapping[str, Any] = field(factory=dict)
    tags: Mapping[str, str] = field(factory=dict)
