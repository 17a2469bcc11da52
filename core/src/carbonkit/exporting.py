"""What exporter plugins share: who a run is, its figures in base units, and a sender that never blocks.

Exporters (Prometheus, OpenTelemetry, MLflow, Weights & Biases) are reporters
(:class:`~carbonkit.ReporterBase`): each already runs on a thread of its own with a bounded queue.
This module gives them one way to say which run a figure belongs to, one set of figures, and one
way to call a slow back end without ever being disabled for it.

- :func:`host_name` and :func:`job_id`, gathered by :func:`identify` into a :class:`RunIdentity`:
  the ``host`` (``CARBONKIT_HOST``, else the host name) and the ``job`` (the ``job`` tag or the
  launcher's job id, as recorded in the run log header, else this run's own id) of a run, plus
  its ``zone``. Values pass through the core's redaction and are made printable.
- :class:`RunFigures`: one run's figures as the events arrive, in joules, grams and seconds.
  The run totals follow the finished epochs live and become the report's totals at the end;
  device energy is integrated from the samples. :class:`Board` adds up the runs of one process
  that share labels, so a counter never goes back when a second tracker starts.
- :class:`BoundedSender`: hands calls to a back end (an HTTP push, a tracking server) to one
  worker thread. A reporter method only queues and returns; a back end that is slow or down
  costs one warning, never the reporter's deadline.
- :func:`provenance`: the report's provenance as flat ``carbonkit.*`` strings (tags), redacted.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from attrs import frozen

from ._redact import redact_text
from ._text import printable

if TYPE_CHECKING:
    from .protocols import RunStart
    from .records import EpochRecord, IntensitySample, Prediction, Report

__all__ = [
    "HOST_ENV",
    "JOULES_PER_KWH",
    "Board",
    "BoundedSender",
    "RunFigures",
    "RunIdentity",
    "host_name",
    "identify",
    "job_id",
    "provenance",
    "run_id",
]

_logger = logging.getLogger("carbonkit")

#: Joules in one kilowatt-hour.
JOULES_PER_KWH = 3.6e6
#: Overrides the host name (containers that share a host, pods that want their node's name).
HOST_ENV = "CARBONKIT_HOST"
#: Launcher variables that carry a job id, in the order they are tried (after the run log
#: header's ``job``, which already covers the ``job`` tag, Slurm and torchrun).
JOB_VARIABLES = ("SLURM_JOB_ID", "TORCHELASTIC_RUN_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID", "OMPI_MCA_ess_base_jobid")
#: Longest label or tag value exported (longer values are cut).
MAX_VALUE_CHARS = 128


def _clean(value: str) -> str:
    text = printable(redact_text(str(value)), single_line=True).strip()
    return text[:MAX_VALUE_CHARS]


def host_name(environ: Mapping[str, str] | None = None) -> str:
    """Return ``$CARBONKIT_HOST`` when set and not blank, else this machine's host name."""
    env = os.environ if environ is None else environ
    value = (env.get(HOST_ENV) or "").strip()
    return _clean(value or socket.gethostname() or "unknown")


def run_id(run: RunStart) -> str:
    """Return an id for one run: ``run-<UTC start>-<pid>`` (the header's pid, else this process's)."""
    pid = run.header.get("pid") if isinstance(run.header.get("pid"), int) else os.getpid()
    return f"run-{run.start_time:%Y%m%dT%H%M%SZ}-{pid}"


def job_id(run: RunStart, environ: Mapping[str, str] | None = None) -> str:
    """Return the run's job id: the run log header's ``job`` (the ``job`` tag, ``SLURM_JOB_ID`` or
    ``TORCHELASTIC_RUN_ID``), else another launcher's job id (PBS, LSF, SGE, Open MPI), else
    :func:`run_id`: a run that belongs to no job is a job of its own."""
    env = os.environ if environ is None else environ
    job = run.header.get("job") or run.tags.get("job")
    if not job:
        for name in JOB_VARIABLES:
            value = (env.get(name) or "").strip()
            if value and value != "none":  # torchrun's default run id is "none"
                job = value
                break
    return _clean(job) if job else run_id(run)


@frozen
class RunIdentity:
    """Which run a figure belongs to: ``host``, ``job`` and ``zone`` (the location's zone code)."""

    host: str
    job: str
    zone: str

    def labels(self) -> dict[str, str]:
        """Return ``{"host": ..., "job": ..., "zone": ...}``."""
        return {"host": self.host, "job": self.job, "zone": self.zone}


def identify(run: RunStart, environ: Mapping[str, str] | None = None) -> RunIdentity:
    """Return the :class:`RunIdentity` of ``run`` (see :func:`host_name` and :func:`job_id`)."""
    return RunIdentity(host=host_name(environ), job=job_id(run, environ), zone=_clean(run.location))


def provenance(report: Report) -> dict[str, str]:
    """Return how the report's figures were obtained, as flat ``carbonkit.*`` strings.

    Every value goes through the core's redaction (a URL password, a token in a source's
    description never leaves), is made printable and is at most 250 characters.
    """
    intensity = report.intensity
    used = "; ".join(
        f"{u.provider} ({u.kind}, {u.zone}{f', {u.year}' if u.year else ''}, {u.energy_share:.0%} of energy)"
        for u in intensity.used
    )
    values = {
        "carbonkit.version": report.carbonkit_version,
        "carbonkit.location": report.location,
        "carbonkit.location_source": report.location_source or "",
        "carbonkit.pue": f"{report.pue:g}",
        "carbonkit.pue_source": report.pue_source,
        "carbonkit.methods": ", ".join(f"{c}={m}" for c, m in sorted(report.methods.items())),
        "carbonkit.attribution": report.attribution,
        "carbonkit.intensity.provider": intensity.provider,
        "carbonkit.intensity.used": used,
        "carbonkit.intensity.fallbacks": str(len(intensity.fallbacks)),
        "carbonkit.completed": str(report.completed).lower(),
        "carbonkit.cut_short": str(len(report.cut_short)),
        "carbonkit.warnings": str(len(report.warnings)),
    }
    out = {}
    for key, value in values.items():
        text = printable(redact_text(value), single_line=True)
        out[key] = text if len(text) <= 250 else text[:247] + "..."
    return out


# -- figures --------------------------------------------------------------------------------


class RunFigures:
    """One run's figures, in joules, grams and seconds, updated from its reporter events.

    Thread-safe: the reporter thread updates, a scrape or export thread reads :meth:`snapshot`.

    - ``energy_j``, ``it_energy_j``, ``co2eq_g``: the run totals. While the run goes on they are
      the sums over finished epochs (the core's own figures, so energy never exceeds what the
      report will say); the report sets them to its totals.
    - ``components``: ``(component, method) -> (energy_j, it_energy_j)``, from the report only.
    - ``devices``: ``(component, device, method) -> joules``, the machine-wide IT energy (before
      PUE and attribution) of each device, integrated from the samples as they arrive: a
      counter's increase, or watts by the trapezoid rule. A sample a source missed (a rejected
      reading) restarts that source's integration, so nothing is counted twice.
    - ``power_w``: ``(component, device, method) -> watts``, the latest power of each device.
    """

    def __init__(self, identity: RunIdentity, run: RunStart) -> None:
        self.identity = identity
        self.pue = float(run.pue)
        self._lock = threading.Lock()
        self._sources: dict[str, tuple[str, str, str, tuple[str, ...]]] = {}
        for meta in run.sources:
            try:
                self._sources[str(meta["name"])] = (
                    _clean(meta["component"]), _clean(meta["method"]), str(meta["kind"]),
                    tuple(_clean(d) for d in meta["devices"]),
                )
            except (KeyError, TypeError):
                continue
        self._last: dict[str, tuple[float, list[float]]] = {}
        self.epochs = 0
        self.energy_j = 0.0
        self.it_energy_j = 0.0
        self.co2eq_g = 0.0
        self.components: dict[tuple[str, str], tuple[float, float]] = {}
        self.devices: dict[tuple[str, str, str], float] = {}
        self.power_w: dict[tuple[str, str, str], float] = {}
        self.intensity: tuple[float, str] | None = None  # (g/kWh, kind)
        self.prediction: tuple[float, float, float] | None = None  # (energy J, co2 g, duration s)
        self.finished = False
        for _name, (component, method, _kind, devices) in self._sources.items():
            for device in devices:
                self.devices.setdefault((component, device, method), 0.0)

    def add_sample(self, t_s: float, readings: Mapping[str, Sequence[float]]) -> None:
        """Integrate one sample (``on_sample``)."""
        with self._lock:
            for name, (component, method, kind, devices) in self._sources.items():
                values = readings.get(name)
                if values is None or len(values) != len(devices):
                    self._last.pop(name, None)  # a gap: start again from the next reading
                    continue
                now = [float(v) for v in values]
                last = self._last.get(name)
                self._last[name] = (t_s, now)
                for i, device in enumerate(devices):
                    key = (component, device, method)
                    if kind == "power":
                        self.power_w[key] = now[i]
                        if last is not None and t_s > last[0]:
                            self.devices[key] += (now[i] + last[1][i]) / 2 * (t_s - last[0])
                    elif last is not None:
                        delta = max(now[i] - last[1][i], 0.0)
                        self.devices[key] += delta
                        if t_s > last[0]:
                            self.power_w[key] = delta / (t_s - last[0])

    def add_epoch(self, epoch: EpochRecord) -> None:
        """Add a finished epoch to the live totals (``on_epoch``)."""
        with self._lock:
            if self.finished:
                return
            self.epochs += 1
            self.energy_j += epoch.energy_kwh * JOULES_PER_KWH
            self.it_energy_j += epoch.it_energy_kwh * JOULES_PER_KWH
            self.co2eq_g += epoch.co2eq_g

    def set_intensity(self, sample: IntensitySample) -> None:
        """Remember the intensity in force (``on_intensity``)."""
        with self._lock:
            self.intensity = (float(sample.g_per_kwh), _clean(sample.kind))

    def set_prediction(self, prediction: Prediction) -> None:
        """Remember the prediction (``on_prediction``); the core fills its energy and CO2eq."""
        with self._lock:
            energy = prediction.energy_kwh if prediction.energy_kwh is not None else prediction.it_energy_kwh * self.pue
            self.prediction = (energy * JOULES_PER_KWH, prediction.co2eq_g or 0.0, prediction.duration_s)

    def set_report(self, report: Report) -> None:
        """Take the report's totals and components (``on_report``); the run is finished.

        Energy never goes below what was already shown (the epochs are a part of the run, so
        the report's totals are at least their sum; a difference of rounding is kept at the
        larger value). CO2eq takes the report's value exactly: the report prices every interval
        with the intensity that arrived later, which can be lower than what the epochs used.
        """
        with self._lock:
            self.energy_j = max(self.energy_j, report.energy_kwh * JOULES_PER_KWH)
            self.it_energy_j = max(self.it_energy_j, report.it_energy_kwh * JOULES_PER_KWH)
            self.co2eq_g = report.co2eq_g
            self.epochs = max(self.epochs, len(report.epochs))
            self.components = {
                (_clean(name), _clean(c.method)): (c.energy_kwh * JOULES_PER_KWH, c.it_energy_kwh * JOULES_PER_KWH)
                for name, c in report.components.items()
            }
            self.finished = True

    def snapshot(self) -> dict[str, Any]:
        """Return a consistent copy of the figures (plain dicts and floats)."""
        with self._lock:
            return {
                "epochs": self.epochs,
                "energy_j": self.energy_j,
                "it_energy_j": self.it_energy_j,
                "co2eq_g": self.co2eq_g,
                "components": dict(self.components),
                "devices": dict(self.devices),
                "power_w": dict(self.power_w),
                "intensity": self.intensity,
                "prediction": self.prediction,
                "finished": self.finished,
                "pue": self.pue,
            }


class Board:
    """The runs of one process, added up by labels, for an exporter that outlives a run.

    Counters of runs with the same identity (a second tracker of the same job on the same host)
    are added, so energy only ever grows (CO2eq is added the same way, and may go down once when a
    run's report re-prices it); power, intensity, PUE and prediction come from the latest run of
    each identity. Finished runs are folded into totals at once, so
    memory grows with the number of identities, not of runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: list[RunFigures] = []
        self._done: dict[RunIdentity, dict[str, Any]] = {}  # identity -> summed counters of finished runs
        self._latest: dict[RunIdentity, RunFigures] = {}

    def add(self, figures: RunFigures) -> None:
        with self._lock:
            self._live.append(figures)
            self._latest[figures.identity] = figures

    def retire(self, figures: RunFigures) -> None:
        """Fold a finished run's counters into its identity's totals."""
        with self._lock:
            if figures not in self._live:
                return
            self._live.remove(figures)
            done = self._done.setdefault(figures.identity, _empty_counters())
            _add_counters(done, figures.snapshot())

    def runs(self) -> list[tuple[RunIdentity, dict[str, Any], bool]]:
        """Return, per identity: its summed counters with the latest run's gauges, and whether a
        run of it is measuring now."""
        with self._lock:
            live = list(self._live)
            done = {k: {**v, "components": dict(v["components"]), "devices": dict(v["devices"])}
                    for k, v in self._done.items()}
            latest = dict(self._latest)
        out = []
        for identity, figures in latest.items():
            total = done.get(identity) or _empty_counters()
            active = False
            for run in live:
                if run.identity == identity:
                    active = True
                    _add_counters(total, run.snapshot())
            last = figures.snapshot()
            total.update({k: last[k] for k in ("power_w", "intensity", "prediction", "pue")})
            out.append((identity, total, active))
        return out


def _empty_counters() -> dict[str, Any]:
    return {"epochs": 0, "energy_j": 0.0, "it_energy_j": 0.0, "co2eq_g": 0.0, "components": {}, "devices": {}}


def _add_counters(total: dict[str, Any], snap: Mapping[str, Any]) -> None:
    total["epochs"] += snap["epochs"]
    total["energy_j"] += snap["energy_j"]
    total["it_energy_j"] += snap["it_energy_j"]
    total["co2eq_g"] += snap["co2eq_g"]
    for key, (e, it) in snap["components"].items():
        e0, it0 = total["components"].get(key, (0.0, 0.0))
        total["components"][key] = (e0 + e, it0 + it)
    for key, joules in snap["devices"].items():
        total["devices"][key] = total["devices"].get(key, 0.0) + joules


# -- sending --------------------------------------------------------------------------------


class BoundedSender:
    """One worker thread that makes a reporter's calls to a back end, so the reporter never waits.

    :meth:`submit` queues a call and returns at once. A call that raises gives one warning (the
    first), and later calls are still tried (the back end may come back); a queue that reaches
    ``max_pending`` drops the oldest call, with one warning. With ``latest_only`` (a push of the
    whole current state) a new call replaces the one still waiting, silently. :meth:`close` waits at most its
    ``timeout_s`` for the queue to empty, then leaves the thread behind (a daemon) with a warning.

    :param name: Names the exporter in warnings (``"prometheus push gateway"``).
    :param warn: Records a warning of the run (a reporter's ``warn``); None logs it.
    """

    def __init__(self, name: str, warn: Callable[[str], None] | None = None, max_pending: int = 1000,
                 latest_only: bool = False) -> None:
        self.name = name
        self.latest_only = latest_only
        self.warn = warn
        self.max_pending = max_pending
        self.failures = 0
        self.dropped = 0
        self.sent = 0
        self._queue: collections.deque[tuple[str, Callable[[], object]]] = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closing = False
        self._warned: set[str] = set()
        self._thread = threading.Thread(target=self._serve, name=f"carbonkit-send-{name}", daemon=True)
        self._thread.start()

    def submit(self, what: str, call: Callable[[], object]) -> None:
        """Queue ``call`` (described by ``what`` in a warning); never blocks."""
        with self._cond:
            if self._closing:
                return
            if self.latest_only:  # each call sends the whole current state: only the newest matters
                self._queue.clear()
            elif len(self._queue) >= self.max_pending:
                self._queue.popleft()
                self.dropped += 1
                self._say("behind", f"{self.name} is not keeping up; the oldest updates are being dropped")
            self._queue.append((what, call))
            self._cond.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait until every queued call has run; return False when that took longer than ``timeout_s``."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout=max(timeout_s, 0.0))

    def close(self, timeout_s: float) -> bool:
        """Run what is queued (at most ``timeout_s``), then stop; return False when it did not finish."""
        done = self.flush(timeout_s)
        with self._cond:
            self._closing = True
            left = len(self._queue) + (1 if self._busy else 0)
            self._queue.clear()
            self._cond.notify_all()
        if not done:
            self._say("late", f"{self.name} did not finish within {timeout_s:g} s; {left} update(s) were not sent")
        return done

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing)
                if self._closing and not self._queue:
                    return
                what, call = self._queue.popleft()
                self._busy = True
            try:
                call()
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - a back end that fails must not stop the run
                self.failures += 1
                self._say("failed", f"{self.name}: {what} failed ({type(exc).__name__}: {exc}); the run goes on, "
                                    "later updates are still tried")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _say(self, kind: str, message: str) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        message = redact_text(message)
        if self.warn is not None:
            self.warn(message)
        else:
            _logger.warning("carbonkit: %s", message)


def utc_stamp(when: datetime) -> str:
    """Return ``when`` as ISO 8601 UTC with a ``Z``."""
    return when.isoformat().replace("+00:00", "Z")
