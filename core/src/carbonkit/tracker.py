"""The tracker: measure a run from its first reading to ``stop()``, predict it, report it.

:class:`Tracker` composes the run (:func:`carbonkit._compose.compose`: plugins, sources,
providers, reporters, every call into plugin code under a deadline), then runs it on background
threads; ``docs/architecture.md`` draws them and says who can delay whom:

- the caller's (training) thread only appends timestamps, and wakes the sampler;
- the sampler thread reads every power source through a guarded reader (a source that blocks is
  abandoned at its deadline and marked failed), validates each reading, accounts energy,
  resolves epochs, runs the predictor and hands every event to the reporters;
- each reporter has its own thread and bounded queue (:mod:`carbonkit._dispatch`);
- the intensity thread fetches carbon intensity at start and every ``intensity_refresh_s``,
  provider by provider, each call under a deadline. The zone's static value is there from the
  first second, so nothing waits for the network.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from . import __version__
from ._accounting import J_PER_KWH, Accountant
from ._compose import Composition, LazyHttpClient, SourceSlot, compose
from ._dispatch import Channel
from ._engine import Engine
from ._guard import Outcome, Worker, describe_failure
from ._readings import check_counter, check_values
from ._redact import install_log_filter, redact_mapping, redact_text
from .config import Config
from .errors import ConfigError, IntensityUnavailable
from .protocols import IntensityProvider, PowerSource, Predictor, Reporter, RunStart
from .records import BudgetExceeded, BudgetReport, Fallback, IntensitySample, Prediction, Report, Snapshot

if TYPE_CHECKING:
    import httpx
    import pluggy

__all__ = ["Tracker"]

_logger = logging.getLogger("carbonkit")

#: How far ahead the intensity thread asks for a forecast.
FORECAST_HORIZON = timedelta(hours=48)
#: Longest all sources of one tick may take to answer ``read()``; past it the source being read
#: is abandoned and marked failed for the rest of the run.
READ_DEADLINE_S = 2.0
#: Longest an intensity provider's ``current()`` or ``forecast()`` may take before the next
#: provider is used; a provider that blocks this long is not asked again during the run.
PROVIDER_DEADLINE_S = 30.0
#: Longest a source's ``close()`` may take at the end of a run.
CLOSE_DEADLINE_S = 1.0
#: ``stop()`` gives a first intensity fetch still under way this long to finish (a local or
#: fast provider makes it; a slow network is not waited for: the static value prices the run).
FIRST_FETCH_GRACE_S = 0.05
#: Longest the job's store may take, at construction, to count this process among the job's
#: processes running trackers (multi-process jobs only).
REGISTER_DEADLINE_S = 2.0
#: Predictions are updated after every epoch up to 999 epochs, then after every
#: ``(epochs // PREDICTION_SPACING)``-th: a run of 10,000 epochs gets about 2,300 updates, one of a
#: million about 5,700, so neither the report nor the sampler's work grows with the run's square.
PREDICTION_SPACING = 500
#: An ``epoch_end()`` wakes the sampler at once, but ticks are never closer than this.
MIN_TICK_GAP_S = 0.02


class Tracker:
    """Measure, predict and report the energy and carbon footprint of a run.

    Measurement runs from the first reading (at the end of construction) to :meth:`stop`; the
    report's duration and energy cover exactly that span. ``epoch_start()`` / ``epoch_end()``
    break the run into epochs. Used as a context manager, the block is measured and
    :attr:`report` is set when it ends (also through an exception or Ctrl-C).

    :param epochs: Planned number of epochs, for the prediction; None for no prediction.
    :param predict_after: Epochs to monitor before predicting (1 to ``epochs``; default 1).
    :param location: Zone code (``"DK-DK2"``, ``"GB"``...). None: ``CARBONKIT_LOCATION``, else the
        ``resolve_location`` hook, else ``"WORLD"`` with a warning. A code no installed provider
        knows is a :class:`ConfigError` naming the closest known codes.
    :param pue: Power usage effectiveness. None: ``CARBONKIT_PUE``, else the default
        (:data:`carbonkit.config.DEFAULT_PUE`, with its source in the report).
    :param interval_s: Seconds between samples (default 1.0, or ``CARBONKIT_INTERVAL``).
    :param log_dir: Folder for the JSON Lines run log. None: ``CARBONKIT_LOG_DIR``, else none.
    :param sources: Power sources to use instead of the plugins' (an empty list means none).
    :param provider: Intensity provider, or a list tried in order, instead of the plugins'
        (those of the run's ``signal`` first; a marginal one in an average run is a
        :class:`ConfigError`). The built-in world average is always the last fallback.
    :param predictor: Predictor, or the name of an installed one (``"adaptive"``, the default,
        or the paper's ``"linear"``).
    :param reporters: Reporters instead of the plugins' (an empty list means none).
    :param quiet: No console output at all (warnings still reach the report, the run log and
        ``logging``).
    :param attribution: ``"machine"``, ``"process"`` (scale CPU and DRAM energy, and each GPU's
        where its source can say, by the tracked process tree's share) or ``"cgroup"`` (by the
        share of this process's cgroup v2: a container or a Slurm job). See
        ``docs/attribution.md``.
    :param postcode: Outward postcode for regional providers (Great Britain).
    :param tags: Labels recorded in the run log and the report.
    :param intensity_provider: Name of the provider to use among the plugins'.
    :param signal: ``"average"`` (default, or ``CARBONKIT_SIGNAL``) or ``"marginal"``: the intensity
        signal the run is priced with. Providers of that signal are tried first; when none answers,
        average values price the run, recorded as a fallback, and the report's
        ``intensity.signal_shares`` says which share of the energy each signal priced.
    :param intensity_refresh_s: Seconds between intensity fetches (default 900).
    :param intensity_resolution_s: Length of the intervals CO2eq is accounted in (default 60).
    :param functional_unit: What the run produces (``"sample"``, ``"token"``...): the report then
        gives the Software Carbon Intensity per unit, counted with :meth:`add_units` or
        ``stop(units=N)``.
    :param embodied: Embodied emissions per component for SCI (``CARBONKIT_EMBODIED``):
        ``{"gpu": {"kgco2e": 150, "lifetime_years": 4, "source": "..."}}``; none by default.
    :param options: Settings for third-party plugins.
    :param http_client: An ``httpx.Client`` for providers (default: the core's own, created
        when a provider first needs it).
    :param plugin_manager: A manager from :func:`carbonkit.make_plugin_manager`.

    In a job of several processes (``docs/distributed.md``) only the first process per host to
    start measures; the others (:attr:`role` ``"observer"``) use no power source, not even
    ``sources=``, and ask no intensity API. On global rank 0, :meth:`stop` returns the job's
    report.

    :param budget_g: Carbon budget of the run in grams CO2eq (``CARBONKIT_BUDGET_G``).
    :param budget_kwh: Energy budget of the run in kWh, PUE included (``CARBONKIT_BUDGET_KWH``).
    :param on_over_budget: What to do when the latest prediction or the actual figure exceeds a
        budget: ``"warn"`` (one warning, the default), ``"stop"`` (one warning, and
        :attr:`should_stop` becomes True so that a loop or framework callback stops at the end
        of the epoch), or a function called once with the :class:`~carbonkit.BudgetExceeded`,
        on a thread of its own (never the training thread; bounded like a reporter).
    :param progress: Print one line per epoch on standard error (energy, CO2eq, the latest
        prediction with its interval, the budget), through the console reporter.
    :raises ConfigError: on any invalid argument or variable, naming it and what is accepted.
    :raises NoPowerSourceError: when no power source is left after every plugin was tried.
    """

    def __init__(
        self,
        epochs: int | None = None,
        predict_after: int | None = None,
        location: str | None = None,
        pue: float | None = None,
        interval_s: float | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        sources: Sequence[PowerSource] | None = None,
        provider: IntensityProvider | Sequence[IntensityProvider] | None = None,
        predictor: Predictor | str | None = None,
        reporters: Sequence[Reporter] | None = None,
        *,
        budget_g: float | None = None,
        budget_kwh: float | None = None,
        on_over_budget: str | Callable[[BudgetExceeded], object] = "warn",
        progress: bool = False,
        quiet: bool | None = None,
        attribution: str | None = None,
        postcode: str | None = None,
        tags: Mapping[str, str] | None = None,
        intensity_provider: str | None = None,
        signal: str | None = None,
        intensity_refresh_s: float | None = None,
        intensity_resolution_s: float | None = None,
        functional_unit: str | None = None,
        embodied: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        pid: int | None = None,
        http_client: httpx.Client | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        self._clock: Callable[[], float] = time.monotonic
        self._marks: list[tuple[str, float]] = []
        self._report: Report | None = None
        self._started = False
        self._pending: list[str] = []  # warnings raised before the reporters exist
        self._dead_providers: set[str] = set()
        if tags is not None and not (
            isinstance(tags, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
        ):
            raise ConfigError(f"tags must map strings to strings, got {tags!r}")
        self._budget_action, self._budget_hook = _check_on_over_budget(on_over_budget)
        if not isinstance(progress, bool):
            raise ConfigError(f"progress={progress!r} is not accepted: progress must be True or False")
        predictor_name = None
        if isinstance(predictor, str):
            predictor_name, predictor = predictor, None
        config = Config.from_env(
            epochs=epochs,
            predict_after=predict_after,
            location=location,
            pue=pue,
            interval_s=interval_s,
            log_dir=log_dir,
            quiet=quiet,
            attribution=attribution,
            postcode=postcode,
            tags=tags,
            intensity_provider=intensity_provider,
            signal=signal,
            intensity_refresh_s=intensity_refresh_s,
            intensity_resolution_s=intensity_resolution_s,
            functional_unit=functional_unit,
            embodied=embodied,
            options=options,
            pid=pid,
            predictor=predictor_name,
            budget_g=budget_g,
            budget_kwh=budget_kwh,
            progress=progress,
        )
        if config.functional_unit is not None and not (
            isinstance(config.functional_unit, str) and config.functional_unit.strip()
        ):
            raise ConfigError(
                f"functional_unit must be a word such as 'sample' or 'token', got {config.functional_unit!r}"
            )
        self._embodied: dict[str, Any] = {}
        if config.embodied:
            from .reports.sci import embodied_from_config

            self._embodied = embodied_from_config(config.embodied)
        early_warnings = _check_environment()
        install_log_filter()  # a provider's request URL (with its key) logged by httpx is redacted
        self._units = 0.0
        self._final_units: float | None = None
        self._own_client = http_client is None
        self._http: Any = http_client if http_client is not None else LazyHttpClient()
        given_by = config.describe_source("location")
        self._job, self._role, self._host_lock, role_why = _job_role(config)
        if self._role is not None:
            _logger.info("carbonkit: %s (%s)", self._role, role_why)
        self._role_why = role_why
        if self._role == "observer" and provider is None:
            # It measures nothing, so it prices nothing: no live API is asked once per process.
            from .default_plugins.constant_intensity import WorldAverage

            provider = [WorldAverage()]
        try:
            comp = self._compose(config, sources, provider, predictor, reporters, plugin_manager, given_by)
        except BaseException:
            self._release_host()
            if self._own_client:  # a resolve_location hook may have used it: leave no socket open
                self._http.close()
            raise
        comp.warnings[:0] = early_warnings
        self._start(comp)

    def _compose(self, config: Config, sources: Sequence[PowerSource] | None,
                 provider: IntensityProvider | Sequence[IntensityProvider] | None, predictor: Predictor | None,
                 reporters: Sequence[Reporter] | None, plugin_manager: pluggy.PluginManager | None,
                 given_by: str) -> Composition:
        return compose(
            config,
            sources=sources,
            provider=provider,
            predictor=predictor,
            reporters=reporters,
            pm=plugin_manager,
            http_client=self._http,
            location_given_by=given_by,
            measure=self._role != "observer",
        )

    # -- starting ---------------------------------------------------------------------------

    def _start(self, comp: Composition) -> None:
        """Take the first reading (t = 0: the run starts here) and start the threads."""
        self._composition = comp
        self._registered = False
        self.config = config = comp.config
        self._pm = comp.pm
        self._slots: list[SourceSlot] = comp.sources
        self.sources: list[Any] = [s.source for s in comp.sources]
        self.providers: list[IntensityProvider] = comp.providers
        self.predictor: Predictor = comp.predictor
        self.reporters: list[Reporter] = comp.reporters
        self._share: Any = None
        if config.attribution == "process":
            from .attribution import ProcessShare

            try:
                self._share = ProcessShare(pid=config.pid)
            except Exception as exc:
                raise ConfigError(f"attribution='process' needs a running process pid={config.pid}: {exc}") from exc
        elif config.attribution == "cgroup":
            from .cgroups import CgroupShare

            self._share = CgroupShare.from_env()
        notes = self._share.describe() if self._share is not None else {}
        intervals = [s.max_interval_s for s in self._slots if s.max_interval_s]
        self._interval = min([config.interval_s, *intervals])
        self._live = [True] * len(self._slots)
        self._rejected: dict[str, int] = {}
        self._cut_short: list[str] = []
        self._lock = threading.RLock()  # guards warnings and the inbox
        self._inbox: list[tuple[str, Any]] = []
        self._pauses: list[tuple[float, float]] = []
        self._latest_current: IntensitySample | None = None
        self._latest_forecast: list[IntensitySample] = []
        self._wake = threading.Event()
        self._stop_requested = threading.Event()
        self._done = threading.Event()  # the sampler has made the report
        self._predicted_event = threading.Event()
        self._intensity_stop = threading.Event()
        self._first_fetch = threading.Event()
        self._ended_by: str | None = None
        self._stop_lock = threading.RLock()  # re-entrant: a SIGTERM handler may call stop() inside stop()
        self._stopping = False
        self._reader = Worker("carbonkit-read")
        self._predicted = config.epochs is None
        if self._predicted:
            self._predicted_event.set()
        self._ends = 0
        # The budget: flags written by the sampler only, read by anyone (plain attribute reads).
        self.over_budget = False
        self.should_stop = False
        self._stopped_by_budget: int | None = None
        self._snapshot: Snapshot | None = None
        self._tick_done = threading.Condition()

        meta = [s.meta() for s in self._slots]
        # t = 0 is the first reading: duration and energy cover the same span from here.
        self._t0 = self._clock()
        wall0 = time.time()
        self._engine = Engine(
            accountant=Accountant.for_sources(meta, start_wall=wall0, bucket_s=config.intensity_resolution_s),
            location=config.location or "WORLD",
            pue=config.pue,
            pue_source=config.pue_source,
            provider=comp.providers[0].name,
            epochs_planned=config.epochs,
            tags=dict(config.tags),
            dropped=comp.dropped,
            attribution=config.attribution,
            source_info={m["name"]: m["info"] for m in meta},
            attribution_notes=notes,
            signal=config.signal,
            provider_lags=_provider_lags(comp.providers),
        )
        if config.budget_g is not None or config.budget_kwh is not None:
            self._engine.budget = BudgetReport(
                co2eq_g=config.budget_g, energy_kwh=config.budget_kwh, action=self._budget_action
            )
        if comp.seed is not None:
            self._engine.add_intensity(*comp.seed)
        self._engine.fallbacks.extend(comp.fallbacks)
        first = self._read(0.0)
        for r in comp.reporters:
            # A reporter with a ``warn`` attribute set to None records its warnings as the run's
            # (a log deleted mid-run, a tracking server down): see ReporterBase.
            if getattr(r, "warn", False) is None:
                try:
                    setattr(r, "warn", self._warn)  # noqa: B010 - an optional attribute, not in the protocol
                except Exception:  # noqa: S110 - a read-only attribute: the reporter logs instead
                    pass
        self._channels = [Channel(r, self._warn) for r in comp.reporters]
        # The user's on_over_budget function runs on a channel of its own, like a reporter.
        self._hooks = [Channel(_BudgetHook(self._budget_hook), self._warn)] if self._budget_hook else []
        header = self._header(meta, comp, wall0)
        self._run_start = RunStart(
            start_time=datetime.fromtimestamp(wall0, tz=timezone.utc),
            location=self._engine.location,
            pue=config.pue,
            pue_source=config.pue_source,
            epochs=config.epochs,
            sources=meta,
            dropped=comp.dropped,
            header=header,
            tags=dict(config.tags),
        )
        self._emit("on_start", self._run_start)
        for fallback in comp.fallbacks:
            self._emit("on_fallback", fallback)
            comp.warnings.append(f"{fallback.reason}; the run is priced with {fallback.used}")
        if comp.seed is not None:
            self._emit("on_intensity", comp.seed[0])
            self._emit("on_provider_sample", *comp.seed)
        self._emit("on_sample", 0.0, first)
        self._publish(0.0)
        self._started = True
        for message in comp.warnings + self._pending:
            self._warn(message)
        self._pending = []
        self._sampler = threading.Thread(target=self._sampler_main, name="carbonkit-sampler", daemon=True)
        self._fetcher = threading.Thread(target=self._intensity_main, name="carbonkit-intensity", daemon=True)
        self._sampler.start()
        self._fetcher.start()
        from . import _signals

        _signals.register(self)
        self._register_with_job(wait=True)

    def _register_with_job(self, *, wait: bool) -> None:
        """Count this process among the job's processes running trackers, once the job's process
        group exists (see :func:`carbonkit.distributed.register`): at construction, bounded; or
        later from the sampler, in the background."""
        if self._registered or "torch" not in sys.modules:
            return
        from . import distributed as dist

        group = dist.torch_group()
        if group is None or group[1] < 2:
            return
        self._registered = True
        if dist.registered():
            return
        if wait:
            worker = Worker("carbonkit-job")
            outcome = worker.call(dist.register, group[2], deadline_s=REGISTER_DEADLINE_S)
            worker.close()
            if not outcome.ok:
                _logger.warning("carbonkit: the job's store did not answer (%s)",
                                describe_failure(outcome, REGISTER_DEADLINE_S))
            return

        def run() -> None:
            try:
                dist.register(group[2])
            except Exception as exc:
                _logger.warning("carbonkit: the job's store did not answer (%r)", exc)

        threading.Thread(target=run, name="carbonkit-job", daemon=True).start()

    # -- the training thread's API ----------------------------------------------------------

    def epoch_start(self) -> None:
        """Mark the start of an epoch: records a timestamp, nothing else."""
        self._marks.append(("start", self._clock() - self._t0))

    def epoch_end(self) -> None:
        """Mark the end of an epoch: records a timestamp and wakes the sampler, nothing else.

        The sampler then reads the sources and writes the epoch to the run log at once (within one
        sampling interval at the latest). Without a matching ``epoch_start()``, the epoch starts
        where the previous one ended (or where the run started).
        """
        self._marks.append(("end", self._clock() - self._t0))
        self._ends += 1
        self._wake.set()

    # over_budget and should_stop are plain attributes set in _start (read as cheaply as any).
    #: True once the latest prediction or the figure so far exceeds a budget (set by the sampler).
    over_budget: bool
    #: True once over budget with ``on_over_budget="stop"``: end training at the end of the epoch.
    should_stop: bool

    def stopped_by_budget(self) -> None:
        """Record that training was stopped because of the budget (report and run log).

        Call it after ending the loop on :attr:`should_stop` or :attr:`over_budget`; the
        framework callbacks call it when they ask their framework to stop. Only records, at the
        number of epochs ended so far; idempotent.
        """
        if self._stopped_by_budget is None:
            self._stopped_by_budget = self._ends
            self._post("budget_stop", self._ends)
            self._wake.set()

    def snapshot(self, timeout_s: float = 1.0) -> Snapshot:
        """Return the energy, CO2eq, duration and epochs so far, without stopping the run.

        The figures are those of a sampler tick taken after this call (it wakes the sampler and
        waits for it, at most ``timeout_s``; ``0`` returns the last tick's figures at once).
        After :meth:`stop` they are the report's.

        :raises ConfigError: when ``timeout_s`` is not a number >= 0.
        """
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s >= 0:
            raise ConfigError(f"snapshot(timeout_s=) must be a number of seconds >= 0, got {timeout_s!r}")
        report = self._report
        if report is not None:
            return _snapshot_of_report(report, self.over_budget)
        if timeout_s > 0 and not self._done.is_set():
            called = self._clock() - self._t0  # every epoch mark made before now is in that tick
            with self._tick_done:
                self._wake.set()
                self._tick_done.wait_for(
                    lambda: (self._snapshot is not None and self._snapshot.t_s >= called) or self._done.is_set(),
                    timeout_s,
                )
        report = self._report
        if report is not None:
            return _snapshot_of_report(report, self.over_budget)
        snap = self._snapshot
        assert snap is not None  # published by the first tick's caller in _start
        return snap

    def pause_while_high(
        self,
        threshold: float | str = "p25",
        deadline: datetime | None = None,
        *,
        remaining_s: float | None = None,
        max_sleep_s: float = 900.0,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> Any:
        """Sleep while the carbon intensity is high, between epochs; resume when it drops or when
        the deadline would otherwise be missed.

        It reads the intensity the tracker's background thread last fetched (no network on this
        thread). The time paused is recorded in the report (``paused_s``, and per epoch) and the
        run log, and it is not training time: predictions leave it out.

        :param threshold: Run while the intensity is at or below this: g/kWh (a number), a
            percentile of the forecast up to the deadline (``"p25"``), or ``"plan"`` (follow the
            Pause and Resume plan of the remaining work).
        :param deadline: When the run must be finished (a timezone-aware datetime).
        :param remaining_s: Training time still needed; default: the prediction's duration
            minus the training time so far.
        :param max_sleep_s: Longest sleep before deciding again with fresher data.
        :param clock: Current aware time, for tests.
        :param sleep: Sleep function, for tests.
        :returns: A :class:`carbonkit.scheduling.PauseOutcome` (``paused_s``, ``decisions``).
        :raises ConfigError: without a deadline, or without ``remaining_s`` before a prediction.
        :raises KeyboardInterrupt: when Ctrl-C ends the pause.
        """
        from .scheduling import PausePolicy

        if deadline is None:
            raise ConfigError("pause_while_high needs deadline=, an aware datetime by which the run must finish")
        policy = PausePolicy(threshold=threshold, deadline=deadline, max_sleep_s=max_sleep_s)
        start_t = self._clock() - self._t0
        if remaining_s is None:
            if self._ends >= self.config.predict_after:
                # The sampler makes the prediction right after the epoch end that allows it.
                self._predicted_event.wait(READ_DEADLINE_S + self._interval)
            prediction = self._engine.prediction
            if prediction is None:
                raise ConfigError(
                    "pause_while_high needs remaining_s= (seconds of training left), or epochs= and a "
                    "prediction (made after predict_after epochs)"
                )
            trained = start_t - sum(b - a for a, b in self._pauses)
            remaining_s = max(prediction.duration_s - trained, 0.0)

        def read(now: datetime) -> tuple[float | None, Any]:
            # The value in force now, by the accounting's rule: a live value covering now, else
            # the forecast for now, else a live value of the last hour.
            from ._accounting import IntensityTimeline

            timeline = IntensityTimeline()
            forecast = self._latest_forecast
            for sample in [*forecast, *([self._latest_current] if self._latest_current else [])]:
                timeline.add(sample, "latest")
            entry = timeline.at(now.timestamp())
            return (None if entry is None else entry[0].g_per_kwh), forecast

        kwargs: dict[str, Any] = {}
        if clock is not None:
            kwargs["clock"] = clock
        if sleep is not None:
            kwargs["sleep"] = sleep
        outcome = policy.wait(read, remaining_s=remaining_s, **kwargs)
        if outcome.paused_s > 0:
            end_t = self._clock() - self._t0
            self._pauses.append((start_t, end_t))
            self._post("pause", (start_t, end_t, outcome))
        if outcome.cancelled:
            raise KeyboardInterrupt
        return outcome

    def begin_pause(self) -> float:
        """Note that the work measured has just been paused from outside (``carbonkit run
        --pause-resume`` stopping its command); return a token for :meth:`end_pause`."""
        return self._clock() - self._t0

    def end_pause(self, token: float, outcome: Any) -> None:
        """Record the pause begun at ``token`` (from :meth:`begin_pause`) as ending now: it goes into
        the report's ``paused_s`` and the run log's ``pause`` lines, and it is not training time.

        :param outcome: A :class:`carbonkit.scheduling.PauseOutcome` with the decisions taken.
        """
        end_t = self._clock() - self._t0
        self._pauses.append((token, end_t))
        self._post("pause", (token, end_t, outcome))

    def add_units(self, n: float = 1) -> None:
        """Count ``n`` functional units produced (samples, tokens...), for SCI."""
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or n < 0:
            raise ConfigError(f"add_units takes a finite number >= 0, got {n!r}")
        self._units += n

    def stop(self, timeout_s: float = 10.0, *, units: float | None = None) -> Report:
        """Stop measuring, report, and return the :class:`~carbonkit.Report` (idempotent).

        Returns within ``timeout_s``: a source, reporter or provider that does not finish in time is
        left behind, and the report says what was cut short and why.

        :param units: Functional units produced, for SCI (instead of those counted with
            :meth:`add_units`).
        """
        if units is not None:
            if isinstance(units, bool) or not isinstance(units, (int, float)) or not math.isfinite(units) or units < 0:
                raise ConfigError(f"units must be a finite number >= 0, got {units!r}")
            self._final_units = float(units)
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise ConfigError(f"stop(timeout_s=) must be a number of seconds > 0, got {timeout_s!r}")
        deadline = self._clock() + timeout_s
        with self._stop_lock:
            first = not self._stopping
            self._stopping = True
        if first:
            self._first_fetch.wait(FIRST_FETCH_GRACE_S)
            self._stop_requested.set()
            self._intensity_stop.set()
            self._wake.set()
        self._done.wait(max(deadline - self._clock() - 0.2, 0.0))
        if self._report is None:
            with self._lock:
                if self._report is None:
                    self._cut_short.append(f"the sampler did not finish within {timeout_s:g} s: the report covers what "
                                           "it had accounted until then")
                    self._warn(self._cut_short[-1])
                    self._report = self._final_report(self._engine.accountant.t_last or 0.0)
            return self._report
        if not first:
            return self._report
        late = self._wait_for_reporters(deadline)
        notes = [f"reporter {ch.name!r} {ch.disabled}" for ch in (*self._channels, *self._hooks)
                 if ch.disabled is not None and ch.disabled.startswith("blocked")]
        if late:
            notes.append(f"reporter(s) {', '.join(late)} did not finish within {timeout_s:g} s of stop()")
            self._warn(notes[-1])
        if notes or len(self._engine.warnings) != len(self._report.warnings):
            self._report = attrs.evolve(self._report, cut_short=(*self._report.cut_short, *notes),
                                        warnings=tuple(self._engine.warnings))
        for slot in self._slots:
            left = max(deadline - self._clock(), 0.01)
            outcome = self._reader.call(slot.source.close, deadline_s=min(CLOSE_DEADLINE_S, left))
            if not outcome.ok:
                _logger.warning("carbonkit: power source %r %s in close()", slot.name,
                                describe_failure(outcome, CLOSE_DEADLINE_S))
        self._reader.close()
        if self._own_client and not self._fetcher.is_alive():
            try:
                self._http.close()
            except Exception:  # noqa: S110 - closing a client we own must not fail stop()
                pass
        self._release_host()
        self._local_report = self._report
        self._report = self._job_report(self._report, deadline)
        if self._report is not self._local_report and not self.config.quiet:
            self._print_job(self._report)
        from . import _signals

        _signals.unregister(self)
        return self._report

    def _print_job(self, report: Report) -> None:
        from .default_plugins.console_reporter import PREFIX, describe_report

        try:
            sys.stderr.write("".join(f"{PREFIX}{line}\n" for line in describe_report(report)))
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed stream must not break stop()
            pass

    def _release_host(self) -> None:
        lock, self._host_lock = self._host_lock, None
        if lock is not None:
            lock.release()

    def _job_report(self, own: Report, deadline: float) -> Report:
        """In a multi-process job: send this rank's part (any rank but 0) or make the job's report
        (global rank 0), within ``deadline``; see :mod:`carbonkit.distributed`. Never raises."""

        worker = Worker("carbonkit-job")
        try:
            return self._job_report_on(worker, own, deadline)
        finally:
            worker.close()

    def _job_report_on(self, worker: Worker, own: Report, deadline: float) -> Report:
        from . import distributed as dist

        try:
            group = dist.torch_group()
            if group is not None and group[1] < 2:
                group = None  # one process: nothing to add up
            if group is None and self._role is None:
                return own
            if group is not None:
                rank, world, store = group
                exchange = dist.StoreExchange(store, rank, world)
                if rank != 0:
                    part = dist.part_of(own, self._job, self._role, rank, self._units_counted())
                    outcome = worker.call(exchange.post, part, deadline_s=max(deadline - self._clock(), 0.05))
                    if not outcome.ok:
                        _logger.warning("carbonkit: this rank's figures could not be sent to rank 0: %s",
                                        describe_failure(outcome, max(deadline - self._clock(), 0.05)))
                    return own
                margin = 0.1
                outcome = worker.call(exchange.collect, deadline - margin, self._clock,
                                      deadline_s=max(deadline - self._clock(), 0.05))
                parts, expected = outcome.value if outcome.ok else ({}, world - 1)
                late = expected - len(parts)
                if late <= 0:
                    job = dist.from_parts(own, self._job, self._role, rank, parts, world)
                    return self._job_sci(job, dist.job_units(self._units_counted(), parts))
                why = (f"{late} of the {expected} other process(es) running a tracker did not send their figures "
                       "before rank 0's stop() timed out")
                by_logs = self._from_logs(worker, own, deadline, why)
                if by_logs is not None:
                    return by_logs
                _logger.warning("carbonkit: %s: this report covers %s only", why, self._job.host)
                return dist.own_host_only(own, self._job, rank, parts, why + f": this report covers {self._job.host} "
                                          "only")
            if self._job.rank == 0:
                by_logs = self._from_logs(worker, own, deadline, "")
                if by_logs is not None:
                    return by_logs
            return own
        except Exception as exc:  # the job total must never break stop()
            _logger.warning("carbonkit: the job's total could not be made: %r", exc)
            return own

    def _units_counted(self) -> float:
        return self._final_units if self._final_units is not None else self._units

    def _job_sci(self, job: Report, units: float) -> Report:
        """The job's SCI per functional unit: its CO2eq, its devices, every rank's units."""
        unit = self.config.functional_unit
        if unit is None or units <= 0:
            return job
        from .reports.sci import sci_from_report

        return attrs.evolve(job, functional_unit=unit, units=units,
                            sci=sci_from_report(job, units, unit, self._embodied))

    def _from_logs(self, worker: Worker, own: Report, deadline: float, why: str) -> Report | None:
        from . import distributed as dist

        if self.config.log_dir is None:
            return None
        outcome = worker.call(dist.job_from_logs, own, self._job, Path(self.config.log_dir), deadline - 0.1,
                                    clock=self._clock, why=why, deadline_s=max(deadline - self._clock(), 0.05))
        if outcome.ok and outcome.value is not None:
            return outcome.value  # type: ignore[no-any-return]
        return None

    @property
    def local_report(self) -> Report | None:
        """This process's own report (on global rank 0 of a multi-process job, :attr:`report`
        is the job's; this is what rank 0 itself measured)."""
        return getattr(self, "_local_report", None) or self._report

    @property
    def role(self) -> str | None:
        """``"measurer"`` or ``"observer"`` in a multi-process job, None otherwise."""
        return self._role

    def _wait_for_reporters(self, deadline: float) -> list[str]:
        """Wait until every reporter has closed or is disabled (a stuck one is disabled at its
        deadline); return the names of those still running at ``deadline``."""
        pending = [*self._channels, *self._hooks]
        while pending and self._clock() < deadline:
            for ch in pending:
                ch.check()
            pending[0].join(min(0.05, max(deadline - self._clock(), 0.0)))
            pending = [ch for ch in pending if not ch.finished.is_set()]
        return [ch.name for ch in pending]

    @property
    def report(self) -> Report | None:
        """The report, once :meth:`stop` has run (None before)."""
        return self._report

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopping else "running"
        return f"<Tracker {state} location={self.config.location} sources={[s.name for s in self._slots]}>"

    @property
    def http_client(self) -> Any:
        """The HTTP client handed to providers."""
        return self._http

    def _terminate(self, signal_name: str, timeout_s: float = 5.0) -> None:
        """End the run because the process is being ended (a signal, interpreter exit)."""
        if self._ended_by is None and not self._stopping:
            self._ended_by = signal_name
        self.stop(timeout_s)

    # -- the sampler thread -----------------------------------------------------------------

    def _header(self, meta: list[dict[str, Any]], comp: Composition, wall0: float) -> dict[str, Any]:
        config = {
            a.name: (str(v) if isinstance(v, Path) else v)
            for a in attrs.fields(Config)
            for v in [getattr(self.config, a.name)]
        }
        config["tags"] = dict(self.config.tags)
        config["options"] = {k: redact_text(repr(v)) for k, v in redact_mapping(self.config.options).items()}
        config["embodied"] = redact_mapping(self.config.embodied)
        config = {k: v for k, v in config.items() if _jsonable(v)}
        return {
            "type": "header",
            "schema": 1,
            "carbonkit_version": __version__,
            "plugins": comp.plugin_versions,
            "host": self._job.host,
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "start_time": datetime.fromtimestamp(wall0, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
            "start_unix": wall0,
            "bucket_s": self._engine.accountant.bucket_s,
            "interval_s": self.config.interval_s,
            "location": self._engine.location,
            "location_source": comp.location_given_by,
            "pue": self.config.pue,
            "pue_source": self.config.pue_source,
            "epochs": self.config.epochs,
            "predict_after": self.config.predict_after,
            "predictor": self.predictor.name,
            "budget": {"co2eq_g": self.config.budget_g, "energy_kwh": self.config.budget_kwh,
                       "action": self._budget_action},
            "attribution": self.config.attribution,
            "attribution_notes": dict(self._engine.attribution_notes),
            "tags": dict(self.config.tags),
            **self._job.header(),
            "host_source": self._job.host_source,
            "role": self._role,
            "role_reason": self._role_why,
            "config": config,
            "sources": meta,
            "dropped": [d.to_dict() for d in comp.dropped],
            "unavailable": [n.to_dict() for n in comp.notes],
            "providers": [p.name for p in self.providers],
            "signal": self.config.signal,
            "provider_details": [_provider_detail(p) for p in self.providers],
        }

    def _emit(self, event: str, *args: Any) -> None:
        for channel in self._channels:
            channel.put(event, *args)

    def _warn(self, message: str) -> None:
        """Record a warning once: the report, the run log, ``logging`` and the console reporter."""
        message = redact_text(message)
        with self._lock:
            if not self._started:  # still constructing: reported once the reporters exist
                if message not in self._pending:
                    self._pending.append(message)
                return
            new = self._engine.warn(message)
        if new:
            _logger.warning("carbonkit: %s", message)
            self._emit("on_warning", message)

    def _read(self, t: float) -> dict[str, Sequence[float]]:
        """Read every live source at ``t`` under one deadline, validate, and account (sampler)."""
        live = [i for i, ok in enumerate(self._live) if ok]
        results: list[Any] = [None] * len(self._slots)
        state = {"at": -1, "abandoned": False}
        lock = threading.Lock()
        slots = self._slots
        pids = None
        if self._share is not None:
            try:
                pids = self._share.pids()
            except Exception:  # noqa: BLE001 - the CPU share below reports a broken attribution
                pids = None
        device_shares: dict[int, Any] = {}

        def read_all() -> None:
            for i in live:
                with lock:
                    if state["abandoned"]:
                        return
                    state["at"] = i
                try:
                    value: Any = ("ok", slots[i].source.read())
                except KeyboardInterrupt:  # pragma: no cover - not delivered to this thread
                    raise
                except BaseException as exc:  # noqa: BLE001 - SystemExit from a source must not escape
                    value = ("error", exc)
                split = getattr(slots[i].source, "process_shares", None) if pids is not None else None
                if value[0] == "ok" and callable(split):
                    try:
                        device_shares[i] = split(pids)
                    except KeyboardInterrupt:  # pragma: no cover - not delivered to this thread
                        raise
                    except BaseException:  # noqa: BLE001 - no split this tick: the device is charged whole
                        device_shares[i] = None
                with lock:
                    if state["abandoned"]:
                        return
                    results[i] = value
                    state["at"] = -1

        outcome = self._reader.call(read_all, deadline_s=READ_DEADLINE_S)
        if not outcome.ok:
            with lock:
                state["abandoned"] = True
                stuck = state["at"]
                got = list(results)
            if stuck >= 0 and outcome.timed_out:
                self._live[stuck] = False
                note = (f"power source {slots[stuck].name} blocked in read() for more than {READ_DEADLINE_S:g} s at "
                        f"{t:.1f} s and was abandoned; the energy it measured until then is kept")
                with self._lock:
                    self._cut_short.append(note)
                self._warn(note)
            results = got
        acc = self._engine.accountant
        readings: list[Sequence[float] | None] = [None] * len(slots)
        by_name: dict[str, Sequence[float]] = {}
        for i in live:
            got_i = results[i]
            if got_i is None:
                continue
            kind, raw = got_i
            slot = slots[i]
            if kind == "error":
                self._live[i] = False
                self._warn(
                    f"power source {slot.name} failed after {t:.1f} s and was stopped; the energy it measured "
                    f"until then is kept ({describe_failure(Outcome(ok=False, error=raw), READ_DEADLINE_S)})"
                )
                continue
            values, problem = check_values(raw, len(slot.devices), slot.kind, slot.ceiling_w)
            if values is not None and slot.kind == "energy":
                st = acc.sources[i]
                dt = t - st.last_t if st.last_t is not None else 0.0
                problem = check_counter(values, st.last, dt, slot.ceiling_w)
                if problem is not None:
                    acc.rebase(i, values, t)  # a jump no device can make: not counted
                    problem += "; the jump was not counted"
                    values = None
            if problem is not None or values is None:
                self._reject(slot.name, problem or "unusable reading")
                continue
            readings[i] = values
            by_name[slot.name] = values
        shares = None
        if self._share is not None:
            try:
                shares = dict(self._share.sample())
            except Exception as exc:
                self._share = None
                self._warn(f"{self.config.attribution} attribution failed and was turned off; machine figures are "
                           f"used from {t:.1f} s ({exc!r})")
        if shares is not None and hasattr(self._share, "device_shares"):
            for i, slot in enumerate(slots):  # a cgroup pinned to some processor packages
                per_device = self._share.device_shares(slot.component, slot.devices)
                if per_device is not None and readings[i] is not None:
                    for j, value in enumerate(per_device):
                        shares[f"{slot.name}#{j}"] = value
        if shares is not None:
            for i, split in device_shares.items():
                if readings[i] is None:
                    continue
                good = _device_shares(split, len(slots[i].devices))
                if good is not None:
                    for j, value in enumerate(good):
                        shares[f"{slots[i].name}#{j}"] = value
        acc.add(t, readings, shares)
        if shares is not None and self._started:  # before the sample it applies to, for replay
            self._emit("on_shares", t, shares)
        return by_name

    def _reject(self, name: str, problem: str) -> None:
        count = self._rejected.get(name, 0) + 1
        self._rejected[name] = count
        if count == 1:
            self._warn(f"power source {name}: a reading was rejected: {problem} (later rejections are counted "
                       "in the report)")

    def _tick(self, t: float) -> None:
        """One sample at ``t``: marks first, then the reading, epochs and prediction (sampler)."""
        engine = self._engine
        # Every mark taken before this clock reading is resolved by this tick.
        n = len(engine.marks)
        for kind, tm in self._marks[n:]:
            engine.add_mark(kind, tm)
        by_name = self._read(t)
        if not self._registered:
            self._register_with_job(wait=False)
        self._emit("on_sample", t, by_name)
        self._drain_inbox()
        new = engine.new_epochs()
        for epoch in new:
            self._emit("on_epoch", epoch)
        planned = self.config.epochs
        if planned is not None:
            # One prediction per epoch, from predict_after on, even when a tick ends several
            # (from 1,000 epochs on, spaced so that their number grows slowly: PREDICTION_SPACING).
            for count in range(len(engine.epochs) - len(new) + 1, len(engine.epochs) + 1):
                if count >= self.config.predict_after and (
                    count == self.config.predict_after or count % max(1, count // PREDICTION_SPACING) == 0
                ):
                    self._predict(t, max(planned, count), count)
        self._check_budget(t)
        snap = self._publish(t)
        if new and self.config.progress:
            self._emit("on_progress", snap, engine.budget)
        for channel in (*self._channels, *self._hooks):
            channel.check()

    def _predict(self, t: float, planned: int, count: int) -> None:
        """Predict the run from its first ``count`` epochs: the first prediction, then one per epoch (sampler)."""
        engine = self._engine
        try:
            raw = self.predictor.predict(epochs=planned, completed=engine.epochs[:count])
            if not isinstance(raw, Prediction):
                raise TypeError(f"predict() returned {raw!r}, not a Prediction")
            prediction = engine.complete_prediction(raw, t)
            if engine.add_prediction(prediction):
                self._emit("on_prediction", prediction)
            else:
                self._emit("on_prediction_update", prediction)
        except Exception as exc:
            self._warn(f"predictor {self.predictor.name!r} failed: {exc!r}")
        if not self._predicted:
            self._predicted = True
            self._predicted_event.set()

    def _check_budget(self, t: float) -> None:
        """Flip :attr:`over_budget` when the latest prediction or the figure so far exceeds a budget (sampler)."""
        engine = self._engine
        budget = engine.budget
        if budget is None or budget.exceeded is not None:
            return
        latest = engine.predictions[-1] if engine.predictions else None
        checks: list[tuple[str, float, str, float | None]] = []
        if budget.co2eq_g is not None:
            checks.append(("co2eq_g", budget.co2eq_g, "actual", engine.co2_so_far_g()))
            checks.append(("co2eq_g", budget.co2eq_g, "predicted", latest.co2eq_g if latest else None))
        if budget.energy_kwh is not None:
            checks.append(("energy_kwh", budget.energy_kwh, "actual", engine.energy_so_far_kwh()))
            checks.append(("energy_kwh", budget.energy_kwh, "predicted", latest.energy_kwh if latest else None))
        over = [c for c in checks if c[3] is not None and c[3] > c[1]]
        if not over:
            return
        which, limit, basis, value = over[0]
        assert value is not None
        event = BudgetExceeded(
            budget=which, limit=limit, value=value, basis=basis, epoch=len(engine.epochs), t_s=t,
            time=datetime.fromtimestamp(engine.start_wall + t, tz=timezone.utc), action=budget.action,
        )
        engine.budget = attrs.evolve(budget, exceeded=event)
        self.over_budget = True
        if budget.action == "stop":
            self.should_stop = True
        self._emit("on_budget_exceeded", event)
        if budget.action == "warn":
            self._warn(f"over budget: {event.describe()}; training goes on (on_over_budget='warn')")
        elif budget.action == "stop":
            self._warn(f"over budget: {event.describe()}; training should stop at the end of this epoch "
                       "(on_over_budget='stop': tracker.should_stop is True)")
        for hook in self._hooks:
            hook.put("on_budget_exceeded", event)

    def _publish(self, t: float) -> Snapshot:
        """Publish the figures of this tick for :meth:`snapshot` (sampler)."""
        engine = self._engine
        snap = Snapshot(
            t_s=t,
            duration_s=t,
            energy_kwh=engine.energy_so_far_kwh(),
            it_energy_kwh=engine.accountant.e_attr_j / J_PER_KWH,
            co2eq_g=engine.co2_so_far_g(),
            epochs=len(engine.epochs),
            epochs_planned=engine.epochs_planned,
            prediction=engine.predictions[-1] if engine.predictions else None,
            over_budget=self.over_budget,
        )
        with self._tick_done:
            self._snapshot = snap
            self._tick_done.notify_all()
        return snap

    def _drain_inbox(self) -> None:
        with self._lock:
            items, self._inbox = self._inbox, []
        for kind, payload in items:
            if kind == "sample":
                sample, provider = payload
                self._engine.add_intensity(sample, provider)
                self._emit("on_intensity", sample)
                self._emit("on_provider_sample", sample, provider)
            elif kind == "fallback":
                self._engine.fallbacks.append(payload)
                self._emit("on_fallback", payload)
                self._warn(f"intensity provider {payload.provider} failed ({payload.reason}); using {payload.used}")
            elif kind == "warning":
                self._warn(payload)
            elif kind == "pause":
                t0, t1, outcome = payload
                self._engine.add_pause(t0, t1)
                self._emit("on_pause", t0, t1, outcome)
            elif kind == "budget_stop":
                budget = self._engine.budget or BudgetReport(action=self._budget_action)
                self._engine.budget = attrs.evolve(budget, stopped=True, stopped_at_epoch=payload)
                self._emit("on_budget_stop", payload)

    def _sampler_main(self) -> None:
        try:
            last = 0.0
            next_t = self._interval
            while not self._stop_requested.is_set():
                now = self._clock() - self._t0
                if next_t > now:
                    self._wake.wait(next_t - now)
                if self._stop_requested.is_set():
                    break
                self._wake.clear()
                now = self._clock() - self._t0
                if now - last < MIN_TICK_GAP_S:  # woken by a burst of epoch ends: take them together
                    if self._stop_requested.wait(MIN_TICK_GAP_S - (now - last)):
                        break
                    now = self._clock() - self._t0
                self._tick(now)
                last = now
                next_t = max(next_t, now)
                while next_t <= now:
                    next_t += self._interval
            t_end = max(self._clock() - self._t0, self._engine.accountant.t_last or 0.0)
            self._tick(t_end)
            self._note_unanswered(t_end)
            if self._marks and self._marks[-1][0] == "start":
                self._warn(
                    f"stopped during epoch {len(self._engine.epochs)}: its energy is in the totals, not in the epochs"
                )
            report = self._final_report(t_end)
            with self._lock:
                if self._report is None:
                    self._report = report
            self._emit("on_report", self._report)
        except Exception as exc:  # never let the sampler die silently
            _logger.exception("carbonkit: the sampler failed: %r", exc)
            with self._lock:
                if self._report is None:
                    self._cut_short.append(f"the sampler failed: {exc!r}")
                    self._report = self._final_report(self._engine.accountant.t_last or 0.0)
        finally:
            self._done.set()
            with self._tick_done:
                self._tick_done.notify_all()
            self._predicted_event.set()
            for channel in (*self._channels, *self._hooks):
                channel.close()

    def _note_unanswered(self, t_end: float) -> None:
        """Say so when the preferred provider had not answered by the end of the run."""
        seed = self._composition.seed
        first = self.providers[0]
        if self._first_fetch.is_set() or seed is None or first.name == seed[1]:
            return
        self._engine.fallbacks.append(
            Fallback(provider=first.name, reason=f"no answer within the run's {t_end:.1f} s",
                     time=datetime.now(timezone.utc), used=seed[1])
        )

    def _final_report(self, t_end: float) -> Report:
        for name, count in self._rejected.items():
            if count > 1:
                self._engine.warn(f"power source {name}: {count} readings were rejected in all")
        report = self._engine.report(t_end, version=__version__)
        report = attrs.evolve(
            report,
            cut_short=tuple(self._cut_short),
            ended_by=self._ended_by,
            location_source=self._composition.location_given_by,
            warnings=tuple(self._engine.warnings),
            role=self._role,
            job=self._job.job if self._role is not None else None,
        )
        return self._with_sci(report)

    def _with_sci(self, report: Report) -> Report:
        unit = self.config.functional_unit
        if unit is None:
            return report
        units = self._final_units if self._final_units is not None else self._units
        if units <= 0:
            self._engine.warn(
                f"functional_unit={unit!r} but no units were counted (add_units() or stop(units=N)): no SCI"
            )
            return attrs.evolve(report, functional_unit=unit, units=units, warnings=tuple(self._engine.warnings))
        from .reports.sci import sci_from_report

        return attrs.evolve(
            report, functional_unit=unit, units=units,
            sci=sci_from_report(report, units, unit, self._embodied),
        )

    # -- the intensity thread ---------------------------------------------------------------

    def _intensity_main(self) -> None:
        zone = self.config.location or "WORLD"
        worker = Worker("carbonkit-provider-call")
        try:
            while not self._intensity_stop.is_set():
                self._fetch_intensity(zone, worker)
                self._first_fetch.set()
                if self._intensity_stop.wait(self.config.intensity_refresh_s):
                    return
        except Exception as exc:  # never let it die silently
            _logger.exception("carbonkit: the intensity thread failed: %r", exc)
        finally:
            worker.close()

    def _post(self, kind: str, payload: Any) -> None:
        with self._lock:
            self._inbox.append((kind, payload))

    def _fetch_intensity(self, zone: str, worker: Worker) -> None:
        from .plugins import provider_signal

        now = datetime.now(timezone.utc)
        chain = [p for p in self.providers if p.name not in self._dead_providers]
        for i, provider in enumerate(chain):
            if self._intensity_stop.is_set():
                return
            nxt = chain[i + 1].name if i + 1 < len(chain) else "nothing"
            if i + 1 < len(chain) and provider_signal(chain[i + 1]) != self.config.signal:
                nxt += f" ({provider_signal(chain[i + 1])} signal: no {self.config.signal} provider answered)"
            outcome = worker.call(provider.current, zone, deadline_s=PROVIDER_DEADLINE_S)
            sample = outcome.value if outcome.ok else None
            if not outcome.ok or not isinstance(sample, IntensitySample):
                if outcome.timed_out:
                    self._dead_providers.add(provider.name)
                    reason = f"blocked for more than {PROVIDER_DEADLINE_S:g} s (not asked again in this run)"
                elif not outcome.ok:
                    reason = _reason(outcome.error)
                elif sample is None:
                    reason = f"{provider.name} has no current value for {zone}"
                else:
                    reason = f"current() returned {sample!r}, not an IntensitySample"
                self._post("fallback", Fallback(provider=provider.name, reason=redact_text(reason), time=now, used=nxt))
                continue
            sample = _scrubbed(sample)
            self._post("sample", (sample, provider.name))
            self._latest_current = sample
            outcome = worker.call(provider.forecast, zone, now, now + FORECAST_HORIZON, deadline_s=PROVIDER_DEADLINE_S)
            if outcome.ok:
                try:
                    forecast = [_scrubbed(f) for f in outcome.value or () if isinstance(f, IntensitySample)]
                except TypeError:
                    forecast = []
                for f in forecast:
                    self._post("sample", (f, provider.name))
                self._latest_forecast = forecast
            else:
                why = describe_failure(outcome, PROVIDER_DEADLINE_S) if outcome.timed_out else _reason(outcome.error)
                self._post("warning", f"no forecast from {provider.name} for {zone}: {redact_text(why)}")
            return


def _scrubbed(sample: IntensitySample) -> IntensitySample:
    """The sample with no secret in its text (a provider may put a URL with its key in ``source``)."""
    source = redact_text(sample.source)
    factors = redact_text(sample.factors) if sample.factors else sample.factors
    if source == sample.source and factors == sample.factors:
        return sample
    return attrs.evolve(sample, source=source, factors=factors)


def _provider_lags(providers: Sequence[Any]) -> dict[str, float]:
    """Each provider's declared publication lag (``max_lag_s``), for those that declare one."""
    lags = {}
    for p in providers:
        lag = getattr(p, "max_lag_s", None)
        if isinstance(lag, (int, float)) and not isinstance(lag, bool) and math.isfinite(lag) and lag >= 0:
            lags[p.name] = float(lag)
    return lags


def _provider_detail(provider: Any) -> dict[str, Any]:
    """What the run log records of a provider in the chain: enough to redo the accounting."""
    from .plugins import provider_signal

    return {
        "name": provider.name,
        "priority": provider.priority,
        "signal": provider_signal(provider),
        "max_lag_s": _provider_lags([provider]).get(provider.name),
    }
class _BudgetHook:
    """The user's ``on_over_budget`` function, as a reporter with one event (its own thread)."""

    name = "on_over_budget"

    def __init__(self, fn: Callable[[BudgetExceeded], object]) -> None:
        self._fn = fn

    def on_budget_exceeded(self, event: BudgetExceeded) -> None:
        self._fn(event)

    def close(self) -> None:
        pass


def _check_on_over_budget(value: object) -> tuple[str, Callable[[BudgetExceeded], object] | None]:
    if isinstance(value, str) and value in ("warn", "stop"):
        return value, None
    if callable(value) and not isinstance(value, str):
        return "callable", value
    raise ConfigError(
        f"on_over_budget={value!r} is not accepted: it must be 'warn', 'stop' or a function taking "
        "the BudgetExceeded event"
    )


def _snapshot_of_report(report: Report, over_budget: bool) -> Snapshot:
    latest = report.predictions[-1] if report.predictions else report.prediction
    return Snapshot(
        t_s=report.duration_s, duration_s=report.duration_s, energy_kwh=report.energy_kwh,
        it_energy_kwh=report.it_energy_kwh, co2eq_g=report.co2eq_g, epochs=len(report.epochs),
        epochs_planned=report.epochs_planned, prediction=latest, over_budget=over_budget,
    )


def _check_environment() -> list[str]:
    """Warnings about the environment before anything starts (a mistyped ``CARBONKIT_*`` name)."""
    from .config import unknown_variables

    return unknown_variables(os.environ)


def _jsonable(value: Any) -> bool:
    import json

    try:
        json.dumps(value, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _job_identity(tags: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The job id and ranks of this process (see :func:`carbonkit.distributed.detect`)."""
    from .distributed import detect

    ctx = detect(tags, environ)
    return {"job": ctx.job, "rank": ctx.rank, "local_rank": ctx.local_rank}


def _job_role(config: Config) -> tuple[Any, str | None, Any, str]:
    """This process's job context, role, host lock and why (see :mod:`carbonkit.distributed`)."""
    from . import distributed as dist

    ctx = dist.detect(config.tags)
    if not ctx.multi_process:
        group = dist.torch_group()
        if group is not None and group[1] > 1:  # a process group started without launcher variables
            ctx = attrs.evolve(ctx, rank=group[0], world_size=group[1])
    if config.attribution == "process" and ctx.multi_process:
        return ctx, "measurer", None, "attribution='process': every process measures its own share"
    role, lock, why = dist.choose_role(ctx)
    return ctx, role, lock, why


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "failed"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, IntensityUnavailable) else f"{type(exc).__name__}: {text}"


def _device_shares(split: Any, size: int) -> list[float] | None:
    """A source's ``process_shares`` answer if it is one share in [0, 1] per device, else None."""
    if split is None or isinstance(split, (str, bytes)):
        return None
    try:
        values = [float(v) for v in split]
    except (TypeError, ValueError):
        return None
    if len(values) != size or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        return None
    return values
