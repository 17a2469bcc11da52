"""The tracker: measure a run from construction to ``stop()``, predict it, report it.

Threads: the caller's (training) thread only appends timestamps; a sampler thread reads every
power source every ``interval_s``, accounts energy, resolves epochs, runs the predictor and calls
the reporters (all file and console output happens there); an intensity thread fetches carbon
intensity at start and every ``intensity_refresh_s``, falling back provider by provider.
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
from ._engine import Engine, source_meta
from .config import Config
from .errors import ConfigError, IntensityUnavailable, NoPowerSourceError
from .protocols import IntensityProvider, PowerSource, Predictor, Reporter, RunStart
from .records import METHODS, DroppedSource, Fallback, IntensitySample, Report, Unavailable

if TYPE_CHECKING:
    import httpx
    import pluggy

__all__ = ["Tracker"]

_logger = logging.getLogger("carbonkit")

#: How long epochs and the prediction wait for a first intensity value before using the
#: world average (labelled as a fallback).
FIRST_INTENSITY_WAIT_S = 5.0
#: How far ahead the intensity thread asks for a forecast.
FORECAST_HORIZON = timedelta(hours=48)

_NO_SOURCE_HINT = (
    "no power source is available on this machine; install carbonkit-rapl (Intel/AMD CPUs on "
    "Linux), carbonkit-nvml (NVIDIA GPUs) or carbonkit-cpu-estimate (an estimate from CPU "
    "utilisation and TDP, for VMs and containers), or pass sources= explicitly"
)


def _select_sources(
    sources: Sequence[PowerSource],
) -> tuple[list[PowerSource], list[DroppedSource]]:
    """Keep, per component, only the sources with the best method (measured > estimated > simulated)."""
    best: dict[str, int] = {}
    for s in sources:
        rank = METHODS.index(s.method)
        best[s.component] = min(best.get(s.component, rank), rank)
    kept, dropped = [], []
    for s in sources:
        if METHODS.index(s.method) == best[s.component]:
            kept.append(s)
        else:
            better = METHODS[best[s.component]]
            dropped.append(
                DroppedSource(
                    name=s.name,
                    component=s.component,
                    method=s.method,
                    reason=f"a {better} source covers {s.component}",
                )
            )
    return kept, dropped


class Tracker:
    """Measure, predict and report the energy and carbon footprint of a run.

    Measurement runs from construction to :meth:`stop`; ``epoch_start()`` / ``epoch_end()``
    break the run into epochs. Used as a context manager, the block is measured and
    :attr:`report` is set when it ends.

    :param epochs: Planned number of epochs, for the prediction; None for no prediction.
    :param predict_after: Epochs to monitor before predicting (>= 1).
    :param location: Zone code (``"DK-DK2"``, ``"GB"``...). None: ``CARBONKIT_LOCATION``, else the
        ``resolve_location`` hook, else ``"WORLD"`` with a warning.
    :param pue: Power usage effectiveness. None: ``CARBONKIT_PUE``, else the default
        (:data:`carbonkit.config.DEFAULT_PUE`, with its source in the report).
    :param interval_s: Seconds between samples (default 1.0, or ``CARBONKIT_INTERVAL``).
    :param log_dir: Folder for the JSON Lines run log. None: ``CARBONKIT_LOG_DIR``, else none.
    :param sources: Power sources to use instead of the plugins' (an empty list means none).
    :param provider: Intensity provider, or a list tried in order, instead of the plugins'.
        The built-in world average is always the last fallback.
    :param predictor: Predictor instead of the plugins' ``linear``.
    :param reporters: Reporters instead of the plugins' (an empty list means none).
    :param quiet: Silence the console reporter.
    :param attribution: ``"machine"`` or ``"process"`` (scale CPU and DRAM energy by the tracked
        process tree's share).
    :param postcode: Outward postcode for regional providers (Great Britain).
    :param tags: Labels recorded in the run log and the report.
    :param intensity_provider: Name of the provider to use among the plugins'.
    :param intensity_refresh_s: Seconds between intensity fetches (default 900).
    :param intensity_resolution_s: Length of the intervals CO2eq is accounted in (default 60).
    :param functional_unit: What the run produces (``"sample"``, ``"token"``...): the report then
        gives the Software Carbon Intensity per unit, counted with :meth:`add_units` or
        ``stop(units=N)``.
    :param embodied: Embodied emissions per component for SCI (``CARBONKIT_EMBODIED``):
        ``{"gpu": {"kgco2e": 150, "lifetime_years": 4, "source": "..."}}``; none by default.
    :param options: Settings for third-party plugins.
    :param http_client: An ``httpx.Client`` for providers (default: the core's own).
    :param plugin_manager: A manager from :func:`carbonkit.make_plugin_manager`.
    :raises ConfigError: on any invalid argument, naming it and what is accepted.
    :raises NoPowerSourceError: when no power source is available.
    """

    def __init__(
        self,
        epochs: int | None = None,
        predict_after: int = 1,
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
        t0 = self._clock()
        self._t0 = t0
        wall0 = time.time()
        self._marks: list[tuple[str, float]] = []
        self._report: Report | None = None
        self._stopped = False
        self._pending_warnings: list[str] = []
        self._started = False  # the background threads are running
        if tags is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise ConfigError(f"tags must map strings to strings, got {tags!r}")
        self.config = config = Config.from_env(
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
            intensity_refresh_s=intensity_refresh_s,
            intensity_resolution_s=intensity_resolution_s,
            functional_unit=functional_unit,
            embodied=embodied,
            options=options,
            pid=pid,
        )
        if config.embodied:
            from .reports.sci import embodied_from_config

            self._embodied = embodied_from_config(config.embodied)
        else:
            self._embodied = {}
        if config.functional_unit is not None and not (
            isinstance(config.functional_unit, str) and config.functional_unit.strip()
        ):
            raise ConfigError(f"functional_unit must be a word such as 'sample' or 'token', got {config.functional_unit!r}")
        self._units = 0.0
        self._final_units: float | None = None
        self._pm = plugin_manager
        self._own_client = http_client is None
        self._http = http_client
        needs_pm = sources is None or provider is None or predictor is None or reporters is None

        if needs_pm and self._pm is None:
            from .plugins import make_plugin_manager

            self._pm = make_plugin_manager()

        # Location.
        zone = config.location
        if zone is None and self._pm is not None:
            from .plugins import resolve_location

            zone = resolve_location(self._pm, config, self.http_client)
        if zone is None:
            zone = "WORLD"
            self._pending_warnings.append(
                "no location given: using the world average intensity; set location= or "
                "CARBONKIT_LOCATION to a zone code such as 'DK-DK2', 'GB' or 'SE-SE3'"
            )
        self.config = config = attrs.evolve(config, location=zone)

        # Power sources.
        notes: list[Unavailable] = []
        if sources is None:
            from .plugins import collect_power_sources

            offers = collect_power_sources(self._pm, config)  # type: ignore[arg-type]
            offered = list(offers.objects)
            notes += offers.notes
            for plugin, err in offers.errors:
                self._pending_warnings.append(f"plugin {plugin!r} failed to offer power sources: {err}")
        else:
            from .plugins import _check_source

            offered = list(sources)
            for s in offered:
                if not isinstance(s, PowerSource):
                    raise ConfigError(
                        f"sources must be PowerSource objects (name, component, method, kind, "
                        f"devices(), read(), close()), got {s!r}"
                    )
                _check_source(s, "sources=")
            names = [s.name for s in offered]
            if len(set(names)) != len(names):
                raise ConfigError(f"source names must be unique, got {names}")
        for note in notes:
            if note.warn:
                hint = f" {note.hint}" if note.hint else ""
                self._pending_warnings.append(f"{note.plugin}: {note.reason}.{hint}")
        if not offered:
            reasons = "; ".join(f"{n.plugin}: {n.reason}" for n in notes)
            raise NoPowerSourceError(_NO_SOURCE_HINT + (f" (plugins said: {reasons})" if reasons else ""))
        self.sources, dropped = _select_sources(offered)
        for d in dropped:
            _close_quietly(next(s for s in offered if s.name == d.name))
        self._devices = [len(s.devices()) for s in self.sources]

        # Intensity providers, best first; the world average is always last.
        from .default_plugins.constant_intensity import WorldAverage

        if provider is None:
            from .plugins import collect_intensity_providers, ordered_providers

            offers = collect_intensity_providers(self._pm, config, self.http_client)  # type: ignore[arg-type]
            chain = ordered_providers(list(offers.objects), zone, config.intensity_provider)
        else:
            chain = list(provider) if isinstance(provider, Sequence) else [provider]
            for p in chain:
                if not isinstance(p, IntensityProvider):
                    raise ConfigError(
                        f"provider must be an IntensityProvider (name, zones, priority, current(), "
                        f"forecast()), got {p!r}"
                    )
        if not any(isinstance(p, WorldAverage) for p in chain):
            chain.append(WorldAverage())
        self.providers: list[IntensityProvider] = chain

        # Predictor.
        if predictor is None:
            from .plugins import collect_predictors

            by_name = {p.name: p for p in collect_predictors(self._pm, config).objects}  # type: ignore[arg-type]
            if config.predictor not in by_name:
                raise ConfigError(
                    f"predictor {config.predictor!r} is not installed; available: {', '.join(sorted(by_name))}"
                )
            predictor = by_name[config.predictor]
        elif not isinstance(predictor, Predictor):
            raise ConfigError(f"predictor must have a name and predict(epochs=, completed=), got {predictor!r}")
        self.predictor = predictor

        # Reporters.
        if reporters is None:
            from .plugins import collect_reporters

            reporters = list(collect_reporters(self._pm, config).objects)  # type: ignore[arg-type]
        else:
            for r in reporters:
                if not isinstance(r, Reporter):
                    raise ConfigError(f"reporters must be Reporter objects (see ReporterBase), got {r!r}")
        self.reporters: list[Reporter] = list(reporters)

        # Attribution.
        self._share = None
        if config.attribution == "process":
            from .attribution import ProcessShare

            try:
                self._share = ProcessShare(pid=config.pid)
            except Exception as exc:
                raise ConfigError(f"attribution='process' needs a running process pid={config.pid}: {exc}") from exc

        meta = source_meta(self.sources)
        self._engine = Engine(
            accountant=Accountant.for_sources(
                meta, start_wall=wall0 - (self._clock() - t0), bucket_s=config.intensity_resolution_s
            ),
            location=zone,
            pue=config.pue,
            pue_source=config.pue_source,
            provider=chain[0].name,
            epochs_planned=config.epochs,
            tags=dict(config.tags),
            dropped=dropped,
            attribution=config.attribution,
            source_info={m["name"]: m["info"] for m in meta},
        )
        intervals = [float(getattr(s, "max_interval_s", 0) or 0) for s in self.sources]
        safe = min([i for i in intervals if i > 0], default=config.interval_s)
        self._interval = min(config.interval_s, safe)
        if self._interval < config.interval_s:
            _logger.debug("sampling every %.3g s, as a source requires", self._interval)
        self._run_start = RunStart(
            start_time=datetime.fromtimestamp(wall0, tz=timezone.utc),
            location=zone,
            pue=config.pue,
            pue_source=config.pue_source,
            epochs=config.epochs,
            sources=meta,
            dropped=dropped,
            header=self._header(meta, dropped, notes, wall0),
            tags=dict(config.tags),
        )

        # First reading now: the run starts here.
        self._inbox: list[tuple[str, Any]] = []
        self._pauses: list[tuple[float, float]] = []  # (start, end) seconds: the training thread's
        self._latest_current: IntensitySample | None = None  # set by the intensity thread
        self._latest_forecast: list[IntensitySample] = []
        self._live = [True] * len(self.sources)
        self._disabled_reporters: set[int] = set()
        self._tick(0.0)
        self._predicted = config.epochs is None
        self._ends = 0
        self._predict_at = -1 if self._predicted else config.predict_after
        self._first_intensity_deadline = FIRST_INTENSITY_WAIT_S
        self._stop_t: float | None = None
        self._wake = threading.Event()
        self._intensity_stop = threading.Event()
        self._intensity_first = threading.Event()
        self._sampler = threading.Thread(target=self._sampler_main, name="carbonkit-sampler", daemon=True)
        self._fetcher = threading.Thread(target=self._intensity_main, name="carbonkit-intensity", daemon=True)
        self._started = True
        self._sampler.start()
        self._fetcher.start()

    # -- the training thread's API ----------------------------------------------------------

    def epoch_start(self) -> None:
        """Mark the start of an epoch: records a timestamp, nothing else."""
        self._marks.append(("start", self._clock() - self._t0))

    def epoch_end(self) -> None:
        """Mark the end of an epoch: records a timestamp, nothing else.

        Without a matching ``epoch_start()``, the epoch starts where the previous one ended
        (or where the run started).
        """
        self._marks.append(("end", self._clock() - self._t0))
        self._ends += 1
        if self._ends == self._predict_at:  # once: wake the sampler to predict now
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
            self._inbox.append(("pause", (start_t, end_t, outcome)))
        if outcome.cancelled:
            raise KeyboardInterrupt
        return outcome

    def add_units(self, n: float = 1) -> None:
        """Count ``n`` functional units produced (samples, tokens...), for SCI."""
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or n < 0:
            raise ConfigError(f"add_units takes a finite number >= 0, got {n!r}")
        self._units += n

    def stop(self, timeout_s: float = 10.0, *, units: float | None = None) -> Report:
        """Stop measuring, report, and return the :class:`~carbonkit.Report` (idempotent).

        :param units: Functional units produced, for SCI (instead of those counted with
            :meth:`add_units`).
        """
        if units is not None:
            if isinstance(units, bool) or not isinstance(units, (int, float)) or not math.isfinite(units) or units < 0:
                raise ConfigError(f"units must be a finite number >= 0, got {units!r}")
            self._final_units = float(units)
        if self._report is not None or self._stopped:
            self._sampler.join(timeout_s)
            return self._report or self._emergency_report()
        self._stopped = True
        self._stop_t = self._clock() - self._t0
        if not self._intensity_first.is_set():
            self._intensity_first.wait(min(2.0, timeout_s))
        self._intensity_stop.set()
        self._wake.set()
        self._sampler.join(timeout_s)
        if self._report is None:
            _logger.warning("carbonkit: the sampler did not finish within %.0f s; reporting what it has", timeout_s)
            self._report = self._emergency_report()
        self._fetcher.join(0.1)
        for s in self.sources:
            _close_quietly(s)
        if self._own_client and self._http is not None and not self._fetcher.is_alive():
            self._http.close()
        return self._report

    @property
    def report(self) -> Report | None:
        """The report, once :meth:`stop` has run (None before)."""
        return self._report

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<Tracker {state} location={self.config.location} sources={[s.name for s in self.sources]}>"

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def http_client(self) -> httpx.Client:
        if self._http is None:
            from ._http import default_http_client

            self._http = default_http_client()
        return self._http

    def _header(
        self, meta: list[dict[str, Any]], dropped: list[DroppedSource], notes: list[Unavailable], wall0: float
    ) -> dict[str, Any]:
        plugins: dict[str, Any] = {}
        if self._pm is not None:
            from .plugins import list_plugins

            plugins = {p.name: p.version for p in list_plugins(self._pm)}
        config = {
            a.name: (str(v) if isinstance(v, Path) else v)
            for a in attrs.fields(Config)
            for v in [getattr(self.config, a.name)]
        }
        config["tags"] = dict(self.config.tags)
        config["options"] = {k: repr(v) for k, v in self.config.options.items()}
        return {
            "type": "header",
            "schema": 1,
            "carbonkit_version": __version__,
            "plugins": plugins,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "start_time": datetime.fromtimestamp(wall0, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
            "start_unix": wall0 - (self._clock() - self._t0),
            "bucket_s": self._engine.accountant.bucket_s,
            "interval_s": self.config.interval_s,
            "location": self.config.location,
            "pue": self.config.pue,
            "pue_source": self.config.pue_source,
            "epochs": self.config.epochs,
            "predict_after": self.config.predict_after,
            "attribution": self.config.attribution,
            "tags": dict(self.config.tags),
            **_job_identity(self.config.tags),
            "config": config,
            "sources": meta,
            "dropped": [d.to_dict() for d in dropped],
            "unavailable": [n.to_dict() for n in notes],
            "providers": [p.name for p in self.providers],
        }

    def _emit(self, event: str, *args: Any) -> None:
        for i, reporter in enumerate(self.reporters):
            if i in self._disabled_reporters:
                continue
            method = getattr(reporter, event, None)
            if method is None:
                continue
            try:
                method(*args)
            except Exception as exc:
                self._disabled_reporters.add(i)
                self._warn(f"reporter {getattr(reporter, 'name', reporter)!r} failed in {event} and was disabled: {exc!r}")

    def _warn(self, message: str) -> None:
        if not self._started:  # still constructing: reported once the sampler starts
            self._pending_warnings.append(message)
            return
        if self._engine.warn(message):
            _logger.warning("carbonkit: %s", message)
            self._emit("on_warning", message)

    def _tick(self, t: float) -> None:
        """Read every live source at ``t`` and account the interval (sampler thread)."""
        engine = self._engine
        # Marks first: every mark taken before this clock reading is resolved by this tick.
        n = len(engine.marks)
        new_marks = self._marks[n:]
        for kind, tm in new_marks:
            engine.add_mark(kind, tm)
        readings: list[Sequence[float] | None] = []
        by_name: dict[str, Sequence[float]] = {}
        for i, source in enumerate(self.sources):
            if not self._live[i]:
                readings.append(None)
                continue
            try:
                values = source.read()
                if len(values) != self._devices[i]:
                    raise ValueError(f"read() returned {len(values)} values for {self._devices[i]} devices")
            except Exception as exc:
                self._live[i] = False
                readings.append(None)
                self._warn(
                    f"power source {source.name} failed after {t:.1f} s and was stopped; "
                    f"the energy it measured until then is kept ({exc!r})"
                )
                continue
            readings.append(values)
            by_name[source.name] = values
        shares = None
        if self._share is not None:
            try:
                shares = self._share.sample()
            except Exception as exc:
                self._share = None
                self._warn(f"process attribution failed and was turned off; machine figures are used from {t:.1f} s ({exc!r})")
        engine.accountant.add(t, readings, shares)
        if not self._started:  # the first reading, at construction: logged at start
            self._first_sample = (t, by_name)
        else:
            if shares is not None:  # before the sample it applies to, for replay
                self._emit("on_shares", t, shares)
            self._emit("on_sample", t, by_name)

    def _drain_inbox(self) -> None:
        while self._inbox:
            kind, payload = self._inbox.pop(0)
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

    def _after_tick(self, t: float, final: bool = False) -> None:
        self._drain_inbox()
        engine = self._engine
        if len(engine.timeline) == 0 and (final or t >= self._first_intensity_deadline):
            self._force_world_average(t)
        if len(engine.timeline) == 0:
            return  # epochs wait for a first intensity value (a few seconds at most)
        for epoch in engine.new_epochs():
            self._emit("on_epoch", epoch)
        if not self._predicted and len(engine.epochs) >= self.config.predict_after:
            self._predicted = True
            try:
                raw = self.predictor.predict(epochs=self.config.epochs, completed=list(engine.epochs))
                engine.prediction = engine.complete_prediction(raw, t)
                self._emit("on_prediction", engine.prediction)
            except Exception as exc:
                self._warn(f"predictor {self.predictor.name!r} failed: {exc!r}")

    def _force_world_average(self, t: float) -> None:
        from .default_plugins.constant_intensity import WorldAverage

        world = WorldAverage()
        waited = self.providers[0].name
        fb = Fallback(
            provider=waited,
            reason=f"no answer within {t:.1f} s",
            time=datetime.now(timezone.utc),
            used=world.name,
        )
        self._inbox.append(("fallback", fb))
        self._inbox.append(("sample", (world.current(self.config.location or "WORLD"), world.name)))
        self._drain_inbox()

    def _sampler_main(self) -> None:
        try:
            self._emit("on_start", self._run_start)
            self._emit("on_sample", *self._first_sample)
            for message in self._pending_warnings:
                self._warn(message)
            next_t = self._interval
            while True:
                now = self._clock() - self._t0
                if next_t > now:
                    self._wake.wait(next_t - now)
                if self._stop_t is not None:
                    break
                self._wake.clear()
                now = self._clock() - self._t0
                self._tick(now)
                self._after_tick(now)
                next_t += self._interval
                if next_t <= now:
                    next_t = now + self._interval
            t_end = max(self._stop_t, self._engine.accountant.t_last or 0.0)
            self._stop_t = t_end
            self._tick(t_end)
            self._after_tick(t_end, final=True)
            open_epoch = self._marks and self._marks[-1][0] == "start"
            if open_epoch:
                self._warn(
                    f"stopped during epoch {len(self._engine.epochs)}: its energy is in the totals, "
                    "not in the epochs"
                )
            report = self._with_sci(self._engine.report(t_end, version=__version__))
            self._report = report
            self._emit("on_report", report)
        except Exception as exc:  # never let the sampler die silently
            _logger.exception("carbonkit: the sampler failed: %r", exc)
        finally:
            for i, reporter in enumerate(self.reporters):
                try:
                    reporter.close()
                except Exception as exc:
                    _logger.warning("carbonkit: reporter %r failed to close: %r", getattr(reporter, "name", reporter), exc)

    def _with_sci(self, report: Report) -> Report:
        unit = self.config.functional_unit
        if unit is None:
            return report
        units = self._final_units if self._final_units is not None else self._units
        if units <= 0:
            self._warn(f"functional_unit={unit!r} but no units were counted (add_units() or stop(units=N)): no SCI")
            return attrs.evolve(report, functional_unit=unit, units=units, warnings=self._engine.warnings)
        from .reports.sci import sci_from_report

        return attrs.evolve(
            report, functional_unit=unit, units=units,
            sci=sci_from_report(report, units, unit, self._embodied),
        )

    def _emergency_report(self) -> Report:
        t_end = self._stop_t if self._stop_t is not None else self._clock() - self._t0
        return self._engine.report(t_end, version=__version__)

    def _intensity_main(self) -> None:
        zone = self.config.location or "WORLD"
        while True:
            self._fetch_intensity(zone)
            self._intensity_first.set()
            if self._intensity_stop.wait(self.config.intensity_refresh_s):
                return

    def _fetch_intensity(self, zone: str) -> None:
        now = datetime.now(timezone.utc)
        for i, provider in enumerate(self.providers):
            nxt = self.providers[i + 1].name if i + 1 < len(self.providers) else "nothing"
            try:
                sample = provider.current(zone)
                if sample is None:
                    raise IntensityUnavailable(f"{provider.name} has no current value for {zone}")
                if not isinstance(sample, IntensitySample):
                    raise TypeError(f"current() returned {sample!r}, not an IntensitySample")
            except Exception as exc:
                self._inbox.append(("fallback", Fallback(provider=provider.name, reason=_reason(exc), time=now, used=nxt)))
                continue
            self._inbox.append(("sample", (sample, provider.name)))
            self._latest_current = sample
            try:
                forecast = [f for f in provider.forecast(zone, now, now + FORECAST_HORIZON) or () if isinstance(f, IntensitySample)]
                for f in forecast:
                    self._inbox.append(("sample", (f, provider.name)))
                self._latest_forecast = forecast
            except Exception as exc:
                self._inbox.append(("warning", f"no forecast from {provider.name} for {zone}: {_reason(exc)}"))
            return


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


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, IntensityUnavailable) else f"{type(exc).__name__}: {text}"


def _close_quietly(obj: Any) -> None:
    try:
        obj.close()
    except Exception as exc:
        _logger.warning("carbonkit: %r failed to close: %r", getattr(obj, "name", obj), exc)
