"""Run logs: one JSON Lines file per run, written as the run goes, readable after a kill.

The schema is documented in ``docs/run-log.md``. Every record is one line with a ``type``:
``header`` (first), ``sample``, ``shares``, ``intensity``, ``fallback``, ``warning``,
``epoch``, ``prediction`` and ``report`` (last, only when the run stopped). Each line is
flushed as it is written, so a run killed with SIGKILL leaves every line but the one being
written, and :func:`load_run` recomputes the report from the raw readings it finds.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ._accounting import Accountant
from ._engine import Engine
from .errors import RunLogError
from .protocols import ReporterBase, RunStart
from .records import (
    DroppedSource,
    EpochRecord,
    Fallback,
    IntensitySample,
    Prediction,
    Report,
)

__all__ = ["SCHEMA_VERSION", "RunLogWriter", "iter_records", "load_run"]

SCHEMA_VERSION = 1
_logger = logging.getLogger(__name__)


def _dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


class RunLogWriter(ReporterBase):
    """Write a run's events to ``<log_dir>/carbonkit-<UTC time>-<host>-<pid>-<id>.jsonl``."""

    name = "runlog"

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = Path(log_dir)
        self.path: Path | None = None
        self._file: IO[str] | None = None

    def _write(self, record: Mapping[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(_dumps(record) + "\n")
        self._file.flush()

    def on_start(self, run: RunStart) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stamp = run.start_time.strftime("%Y%m%dT%H%M%SZ")
        host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:40]
        self.path = self.log_dir / f"carbonkit-{stamp}-{host}-{os.getpid()}-{secrets.token_hex(2)}.jsonl"
        self._file = self.path.open("x", encoding="utf-8")
        self._write(dict(run.header))

    def on_sample(self, t_s: float, readings: Mapping[str, Sequence[float]]) -> None:
        self._write({"type": "sample", "t": round(t_s, 6), "r": {k: list(v) for k, v in readings.items()}})

    def on_shares(self, t_s: float, shares: Mapping[str, float]) -> None:
        self._write({"type": "shares", "t": round(t_s, 6), "s": dict(shares)})

    def on_provider_sample(self, sample: IntensitySample, provider: str) -> None:
        self._write({"type": "intensity", "provider": provider, **sample.to_dict()})

    def on_fallback(self, fallback: Fallback) -> None:
        self._write({"type": "fallback", **fallback.to_dict()})

    def on_warning(self, message: str) -> None:
        self._write({"type": "warning", "message": message})

    def on_epoch(self, epoch: EpochRecord) -> None:
        self._write({"type": "epoch", **epoch.to_dict()})

    def on_prediction(self, prediction: Prediction) -> None:
        self._write({"type": "prediction", **prediction.to_dict()})

    def on_pause(self, t0: float, t1: float, outcome: Any) -> None:
        self._write(
            {
                "type": "pause",
                "t": round(t0, 6),
                "end_t": round(t1, 6),
                "paused_s": round(t1 - t0, 6),
                "decisions": [d.to_dict() for d in outcome.decisions],
            }
        )

    def on_report(self, report: Report) -> None:
        self._write({"type": "report", "report": report.to_dict()})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def iter_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the records of a run log; a torn last line (a killed run) is skipped."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if line.endswith("\n"):
                    raise RunLogError(f"{path}: line {number} is not JSON: {line[:80]!r}") from None
                return  # the line being written when the run was killed
            if isinstance(record, dict):
                yield record


def load_run(path: str | os.PathLike[str]) -> Report:
    """Read a run log back as a :class:`~carbonkit.Report`.

    A log with a final ``report`` record returns that report. A log without one (the run was
    killed) is recomputed from its raw readings, epochs and intensity samples by the same engine
    as a live run, and returned with ``completed=False``.

    :raises RunLogError: when the file is empty or not a carbonkit run log.
    """
    from . import __version__

    records = iter_records(path)
    header = next(records, None)
    if header is None or header.get("type") != "header":
        raise RunLogError(f"{path} is not a carbonkit run log (its first line is not a header record)")
    if int(header.get("schema", 0)) > SCHEMA_VERSION:
        raise RunLogError(
            f"{path} has run-log schema {header['schema']}; this carbonkit ({__version__}) reads "
            f"schema {SCHEMA_VERSION} and older: upgrade carbonkit"
        )
    sources = header["sources"]
    engine = Engine(
        accountant=Accountant.for_sources(sources, header["start_unix"], header.get("bucket_s", 60.0)),
        location=header["location"],
        pue=header["pue"],
        pue_source=header["pue_source"],
        provider=(header.get("providers") or ["unknown"])[0],
        epochs_planned=header.get("epochs"),
        tags=header.get("tags", {}),
        dropped=[DroppedSource.from_dict(d) for d in header.get("dropped", ())],
        attribution=header.get("attribution", "machine"),
        source_info={s["name"]: s.get("info", {}) for s in sources},
    )
    names = [s["name"] for s in sources]
    rest = list(records)
    for r in rest:  # marks and pauses first, so each sample resolves the epochs it covers
        if r.get("type") == "pause":
            engine.add_pause(r["t"], r["end_t"])
        if r.get("type") == "epoch":
            engine.add_mark("start", r["start_s"])  # paused time is inside, not training
            engine.add_mark("end", r["end_s"])
    shares: dict[str, float] | None = None
    last_t = 0.0
    for r in rest:
        kind = r.get("type")
        if kind == "sample":
            readings = [r["r"].get(n) for n in names]
            engine.accountant.add(r["t"], readings, shares)
            last_t = r["t"]
        elif kind == "shares":
            shares = r["s"]
        elif kind == "intensity":
            provider = r.pop("provider", "unknown")
            r.pop("type")
            engine.add_intensity(IntensitySample.from_dict(r), provider)
        elif kind == "fallback":
            r.pop("type")
            engine.fallbacks.append(Fallback.from_dict(r))
        elif kind == "warning":
            engine.warn(r["message"])
        elif kind == "prediction":
            r.pop("type")
            engine.prediction = Prediction.from_dict(r)
        elif kind == "report":
            return Report.from_dict(r["report"])
    engine.new_epochs()
    engine.warn(f"the run did not stop: recomputed from its log up to {last_t:.1f} s")
    report = engine.report(last_t, version=header.get("carbonkit_version", __version__), completed=False)
    return report
