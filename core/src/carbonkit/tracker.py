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
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from . import __version__
from ._accounting import Accountant
from ._compose import Composition, LazyHttpClient, SourceSlot, compose
from ._dispatch import Channel
from ._engine import Engine
from ._guard import Outcome, Worker, describe_failure
from ._readings import check_counter, check_values
from ._redact import install_log_filter, redact_mapping, redact_text
from .config import Config
from .errors import ConfigError, IntensityUnavailable
from .protocols import IntensityProvider, PowerSource, Predictor, Reporter, RunStart
from .records import Fallback, IntensitySample, Report

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
    :param predictor: Predictor instead of the plugins' ``linear``.
    :param reporters: Reporters instead of the plugins' (an empty list means none).
    :param quiet: No console output at all (warnings still reach the report, the run log and
        ``logging``).
    :param attribution: ``"machine"`` or ``"process"`` (scale CPU and DRAM energy by the tracked
        process tree's share).
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
        predictor: Predictor | None = None,
        reporters: Sequence[Reporter] | None = None,
        *,
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
        comp = compose(
            config,
            sources=sources,
            provider=provider,
            predictor=predictor,
            reporters=reporters,
            pm=plugin_manager,
            http_client=self._http,
            location_given_by=given_by,
        )
        comp.warnings[:0] = early_warnings
        self._start(comp)

    # -- starting ---------------------------------------------------------------------------

    def _start(self, comp: Composition) -> None:
        """Take the first reading (t = 0: the run starts here) and start the threads."""
        self._composition = comp
        self.config = config = comp.config
        self._pm = comp.pm
        self._slots: list[SourceSlot] = comp.sources
        self.sources: list[Any] = [s.source for s in comp.sources]
        self.providers: list[IntensityProvider] = comp.providers
        self.predictor: Predictor = comp.predictor
        self.reporters: list[Reporter] = comp.reporters
        self._share = None
        if config.attribution == "process":
            from .attribution import ProcessShare

            try:
                self._share = ProcessShare(pid=config.pid)
            except Exception as exc:
                raise ConfigError(f"attribution='process' needs a running process pid={config.pid}: {exc}") from exc
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
            signal=config.signal,
            provider_lags=_provider_lags(comp.providers),
        )
        if comp.seed is not None:
            self._engine.add_intensity(*comp.seed)
        self._engine.fallbacks.extend(comp.fallbacks)
        first = self._read(0.0)
        from .runlog import RunLogWriter

        for r in comp.reporters:
            if isinstance(r, RunLogWriter):
                r.warn = self._warn  # a log deleted mid-run is a run warning
        self._channels = [Channel(r, self._warn) for r in comp.reporters]
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
        notes = [f"reporter {ch.name!r} {ch.disabled}" for ch in self._channels
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
        from . import _signals

        _signals.unregister(self)
        return self._report

    def _wait_for_reporters(self, deadline: float) -> list[str]:
        """Wait until every reporter has closed or is disabled (a stuck one is disabled at its
        deadline); return the names of those still running at ``deadline``."""
        pending = list(self._channels)
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
            "host": socket.gethostname(),
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
            "attribution": self.config.attribution,
            "tags": dict(self.config.tags),
            **_job_identity(self.config.tags),
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
                shares = self._share.sample()
            except Exception as exc:
                self._share = None
                self._warn(f"process attribution failed and was turned off; machine figures are used from {t:.1f} s "
                           f"({exc!r})")
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
        self._emit("on_sample", t, by_name)
        self._drain_inbox()
        for epoch in engine.new_epochs():
            self._emit("on_epoch", epoch)
        if not self._predicted and len(engine.epochs) >= self.config.predict_after:
            self._predicted = True
            try:
                planned = self.config.epochs or len(engine.epochs)  # not None here: _predicted starts True without
                raw = self.predictor.predict(epochs=planned, completed=list(engine.epochs))
                engine.prediction = engine.complete_prediction(raw, t)
                self._emit("on_prediction", engine.prediction)
            except Exception as exc:
                self._warn(f"predictor {self.predictor.name!r} failed: {exc!r}")
            self._predicted_event.set()
        for channel in self._channels:
            channel.check()

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
            self._predicted_event.set()
            for channel in self._channels:
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
    """The job id and ranks of this process, for counting a multi-host, multi-rank job once per host.

    ``job``: the ``job`` tag, else ``SLURM_JOB_ID``, else ``TORCHELASTIC_RUN_ID`` (torchrun's
    default ``"none"`` is no job id). ``rank`` and ``local_rank`` from the usual launchers.
    """
    env = os.environ if environ is None else environ
    job = tags.get("job") or env.get("SLURM_JOB_ID") or None
    if job is None:
        run_id = env.get("TORCHELASTIC_RUN_ID")
        if run_id and run_id != "none":
            job = run_id

    def first_int(*names: str) -> int | None:
        for name in names:
            value = (env.get(name) or "").strip()
            if value.isdigit():
                return int(value)
        return None

    return {
        "job": job,
        "rank": first_int("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"),
        "local_rank": first_int("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"),
    }


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "failed"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, IntensityUnavailable) else f"{type(exc).__name__}: {text}"
