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
import math
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

import attrs

from ._accounting import Accountant
from ._engine import Engine
from ._redact import redact_strings
from ._text import printable
from .errors import RunLogError
from .protocols import ReporterBase, RunStart
from .records import (
    SIGNALS,
    BudgetExceeded,
    BudgetReport,
    DroppedSource,
    EpochRecord,
    Fallback,
    IntensitySample,
    Prediction,
    Report,
)

__all__ = [
    "CHUNK_BYTES",
    "MAX_BUCKETS",
    "MAX_LINE_BYTES",
    "MAX_LISTED",
    "MAX_READING",
    "SCHEMA_VERSION",
    "RunLogReader",
    "RunLogWriter",
    "SkippedLine",
    "iter_records",
    "load_run",
    "read_final_report",
    "read_header",
]

SCHEMA_VERSION = 1
_logger = logging.getLogger(__name__)

#: Record types that hold only numbers and source names: written without the redaction pass.
_NUMBERS_ONLY = frozenset({"sample", "shares", "epoch"})


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _dumps(record: Mapping[str, Any]) -> str:
    try:
        return json.dumps(record, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN or infinity somewhere: never written, never fatal
        return json.dumps(_finite(record), separators=(",", ":"), allow_nan=False, default=str)
    except TypeError:  # an object JSON cannot hold: written as text
        return json.dumps(_finite(record), separators=(",", ":"), allow_nan=False, default=str)


#: Run logs are readable by the group and others, writable by the owner only, whatever the umask.
FILE_MODE = 0o644
#: How often (seconds) the writer checks that its file is still where it was.
CHECK_EVERY_S = 5.0


class RunLogWriter(ReporterBase):
    """Write a run's events to ``<log_dir>/carbonkit-<UTC time>-<host>-<pid>-<id>.jsonl``.

    Each record is one line, flushed as it is written. A value JSON cannot hold (NaN, infinity)
    is written as null, never stopping the log. If the file or its folder disappears during the
    run, the writer says so once (``warn``, set by the tracker) and starts a new file with the
    header, so the rest of the run is kept.
    """

    name = "runlog"

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = Path(log_dir)
        self.path: Path | None = None
        self._file: IO[str] | None = None
        self._header: Mapping[str, Any] | None = None
        self._start: datetime | None = None
        self._checked = 0.0
        self._lost_warned = False
        self.warn: Callable[[str], None] | None = None

    def _open(self, start: datetime) -> None:
        created = not self.log_dir.exists()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if created:
            os.chmod(self.log_dir, 0o755)
        stamp = start.strftime("%Y%m%dT%H%M%SZ")
        host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:40]
        self.path = self.log_dir / f"carbonkit-{stamp}-{host}-{os.getpid()}-{secrets.token_hex(2)}.jsonl"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.fchmod(fd, FILE_MODE)  # the umask could have left it group- or world-writable
        self._file = os.fdopen(fd, "w", encoding="utf-8")
        self._checked = time.monotonic()

    def _write(self, record: Mapping[str, Any]) -> None:
        if self._file is None:
            return
        now = time.monotonic()
        if now - self._checked >= CHECK_EVERY_S:
            self._checked = now
            self._check_still_there()
        if record.get("type") not in _NUMBERS_ONLY:  # text from plugins and providers: no secrets
            record = redact_strings(record)
        try:
            self._file.write(_dumps(record) + "\n")
            self._file.flush()
        except OSError as exc:  # disk full, folder gone on a network file system...
            self._say(f"the run log {self.path} could not be written ({exc}); records are being lost")

    def _check_still_there(self) -> None:
        if self.path is None or self.path.exists() or self._header is None or self._start is None:
            return
        lost = self.path
        try:
            if self._file is not None:
                self._file.close()
            self._open(self._start)
            self._write(dict(self._header))
        except OSError as exc:
            self._file = None
            self._say(f"the run log {lost} was deleted during the run and a new one could not be made ({exc})")
            return
        self._say(f"the run log {lost} was deleted during the run; the rest of the run goes to {self.path}")

    def _say(self, message: str) -> None:
        if self._lost_warned:
            return
        self._lost_warned = True
        if self.warn is not None:
            self.warn(message)
        else:
            _logger.warning("carbonkit: %s", message)

    def on_start(self, run: RunStart) -> None:
        self._header = dict(run.header)
        self._start = run.start_time
        self._open(run.start_time)
        self._write(self._header)

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

    def on_prediction_update(self, prediction: Prediction) -> None:
        self._write({"type": "prediction_update", **prediction.to_dict()})

    def on_budget_exceeded(self, event: BudgetExceeded) -> None:
        self._write({"type": "budget_exceeded", **event.to_dict()})

    def on_budget_stop(self, epoch: int) -> None:
        self._write({"type": "budget_stop", "epoch": epoch})

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


# -- reading ----------------------------------------------------------------------------------
#
# A run log is read in binary chunks, never as text lines: a crash can leave a tail of NUL bytes
# (a file system that had extended the file but not written its blocks), and a damaged file can
# hold a "line" of any length. Memory stays bounded by the chunk and the longest line accepted;
# time is linear in the file's size, and holes in a sparse file are jumped over.

#: A line longer than this many bytes is skipped as broken (a sample of 64 GPUs is about 2 KiB).
MAX_LINE_BYTES = 1 << 20
#: The file is read in chunks of this many bytes.
CHUNK_BYTES = 1 << 20
#: A recovered run spans at most this many accounting intervals (694 days at 60 s): a record
#: with a time past it is skipped, so one corrupt ``t`` cannot make the accounting unbounded.
MAX_BUCKETS = 1_000_000
#: A reading (joules or watts) larger than this in magnitude is skipped as corrupt.
MAX_READING = 1e15
#: Skipped lines named one by one in a recovered report's warnings; the rest are counted.
MAX_LISTED = 10
#: Latest ``start_unix`` accepted (the year 3000): past it, no date can be computed.
_MAX_UNIX = 32503680000.0
_SOURCE_KINDS = ("energy", "power")
_NON_NUL = re.compile(rb"[^\x00]")


class SkippedLine(NamedTuple):
    """A line of a run log that was not read, and why."""

    line: int
    reason: str


class _Bad(ValueError):
    """A record that is not what its type promises (the message says what is wrong)."""


def _name(path: str | os.PathLike[str]) -> str:
    return printable(os.fspath(path), single_line=True)


def _show(value: Any, limit: int = 40) -> str:
    text = printable(repr(value), single_line=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


# json.loads accepts NaN and Infinity, and turns 1e999 into inf. The literals are refused while
# parsing (parse_constant costs nothing on other lines); an overflow is found by walking the record
# (cheaper than a hook on every number, which would take the parser off its fast path).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _finite_tree(value: Any) -> bool:
    """True when no float anywhere in ``value`` is NaN or infinite."""
    stack = [value]
    while stack:
        v = stack.pop()
        kind = type(v)
        if kind is float:
            if v - v != 0.0:  # inf - inf and nan - nan are nan
                return False
        elif kind is dict:
            stack.extend(v.values())
        elif kind is list:
            stack.extend(v)
    return True


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """Parse one line: (record, None), (None, why it is not a record), or (None, None) when blank."""
    text = raw.strip()
    if not text:
        return None, None
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte 0x{text[exc.start]:02x} at column {exc.start + 1})"
    try:
        record = _DECODER.decode(decoded)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg}: column {exc.colno})"
    except ValueError as exc:  # NaN, Infinity, 1e999, an integer of thousands of digits
        return None, f"not a valid record ({exc})"
    except RecursionError:
        return None, "not a valid record (nested too deeply)"
    if not isinstance(record, dict):
        return None, f"not a JSON object (a {type(record).__name__})"
    if not _finite_tree(record):
        return None, "not a valid record (a number out of range: JSON has no infinity)"
    return record, None


class _Lines:
    """Split a binary file into ``(line number, bytes or None, how it ended)``.

    A line ends at ``"\\n"`` (``"nl"``), at a run of NUL bytes (``"nul"``: the bytes after the
    run start a new fragment with the same line number) or at the end of the file (``"eof"``).
    A line longer than ``max_line`` gives ``None`` once (``"long"``) and is discarded up to its
    end. Line numbers count ``"\\n"`` only, so they match an editor's.
    """

    def __init__(self, f: IO[bytes], max_line: int, chunk: int, wanted: tuple[bytes, ...] | None = None) -> None:
        self.f = f
        self.wanted = wanted
        self.max_line = max_line
        self.chunk = chunk
        self.nul_bytes = 0
        self.number = 1
        self._parts: list[bytes] = []
        self._size = 0
        self._long = False
        self._zeros = bytes(chunk)  # calloc'd: costs no memory until compared with

    def _take(self, piece: bytes) -> None:
        if self._long or not piece:
            return
        self._size += len(piece)
        if self._size > self.max_line:
            self._long = True
            self._parts = []
        else:
            self._parts.append(piece)

    def _end(self, how: str) -> tuple[int, bytes | None, str] | None:
        out: tuple[int, bytes | None, str] | None = None
        if self._long:
            out = (self.number, None, "long")
        elif self._parts:
            out = (self.number, b"".join(self._parts), how)
        self._parts, self._size, self._long = [], 0, False
        return out

    def _skip_hole(self) -> None:
        """After a chunk of NUL bytes, jump to the next data of a sparse file (Linux, macOS)."""
        seek_data = getattr(os, "SEEK_DATA", None)
        if seek_data is None:
            return
        fd = self.f.fileno()
        here = os.lseek(fd, 0, os.SEEK_CUR)
        try:
            there = os.lseek(fd, here, seek_data)
        except OSError:  # ENXIO: only a hole is left; anything else: no jump
            there = os.lseek(fd, 0, os.SEEK_END)
        if there < here:  # never go back
            there = os.lseek(fd, here, os.SEEK_SET)
        self.nul_bytes += there - here

    def __iter__(self) -> Iterator[tuple[int, bytes | None, str]]:
        max_line = self.max_line
        while True:
            data = self.f.read(self.chunk)
            if not data:
                break
            if b"\x00" not in data and self.wanted is not None and not any(w in data for w in self.wanted):
                # Nothing wanted in this chunk: only its first line (which may continue a wanted
                # one from the last chunk) is given; the lines after it are counted, not split.
                first = data.find(b"\n")
                self._take(data if first < 0 else data[:first])
                if first >= 0:
                    seg = self._end("nl")
                    if seg is not None:
                        yield seg
                    last = data.rfind(b"\n")
                    self.number += 1 + data.count(b"\n", first + 1, last + 1)
                    self._take(data[last + 1 :])
                continue
            if b"\x00" not in data:  # the common case: split the chunk at once
                lines = data.split(b"\n")
                self._take(lines[0])
                if len(lines) > 1:
                    seg = self._end("nl")
                    if seg is not None:
                        yield seg
                    self.number += 1
                    for line in lines[1:-1]:
                        if len(line) > max_line:
                            yield (self.number, None, "long")
                        elif line:
                            yield (self.number, line, "nl")
                        self.number += 1
                    self._take(lines[-1])
                continue
            if data == self._zeros[: len(data)]:  # a chunk of NUL bytes only (compared, not scanned)
                self.nul_bytes += len(data)
                seg = self._end("nul")
                if seg is not None:
                    yield seg
                self._skip_hole()
                continue
            yield from self._mixed(data)
        seg = self._end("eof")
        if seg is not None:
            yield seg

    def _mixed(self, data: bytes) -> Iterator[tuple[int, bytes | None, str]]:
        """A chunk with both text and NUL bytes: cut fragments at each NUL run."""
        pos, n = 0, len(data)
        while pos < n:
            nl = data.find(b"\n", pos)
            stop = n if nl < 0 else nl
            nul = data.find(b"\x00", pos, stop)
            if nul >= 0:
                self._take(data[pos:nul])
                seg = self._end("nul")
                if seg is not None:
                    yield seg
                after = _NON_NUL.search(data, nul, stop)
                pos = stop if after is None else after.start()
                self.nul_bytes += pos - nul
                if pos < stop or nl < 0:
                    continue
            else:
                self._take(data[pos:stop])
                if nl < 0:
                    return
            seg = self._end("nl")
            if seg is not None:
                yield seg
            self.number += 1
            pos = stop + 1


class RunLogReader:
    """Read a run log's records in one streaming pass, skipping and counting what is unreadable.

    Iterating yields ``(line number, record)`` for every line that is a JSON object, in order.
    Skipped, and counted in :attr:`skipped_count` (the first :data:`MAX_LISTED` are kept in
    :attr:`skipped` with their line number and reason): a line that is not UTF-8, not JSON, not
    an object, holds NaN or an infinite number, or is longer than ``max_line_bytes``; the torn
    last line of a killed run. NUL bytes are not lines: they are counted in :attr:`nul_bytes`,
    and a run of them ends the fragment before it. :meth:`checked` goes further and checks each
    record against its type in the schema.

    :param path: The run log.
    :param wanted: Parse only the lines that hold one of these byte strings (``b'"epoch"'``);
        the others are passed over without being parsed, checked or counted, and chunks without
        any of them are not even split into lines.
    :param max_line_bytes: Longest line read.
    :param chunk_bytes: Size of the binary reads.
    :raises RunLogError: (when iterated) the file cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        wanted: Sequence[bytes] | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.path = path
        self.wanted = tuple(wanted) if wanted is not None else None
        self.max_line_bytes = max_line_bytes
        self.chunk_bytes = chunk_bytes
        self.skipped: list[SkippedLine] = []
        self.skipped_count = 0
        self.nul_bytes = 0

    def skip(self, line: int, reason: str) -> None:
        """Count line ``line`` as skipped for ``reason``."""
        self.skipped_count += 1
        if len(self.skipped) < MAX_LISTED:
            self.skipped.append(SkippedLine(line, reason))
        _logger.debug("%s: line %d skipped: %s", _name(self.path), line, reason)

    def __iter__(self) -> Generator[tuple[int, dict[str, Any]], None, None]:
        try:
            f = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed below, also when the caller stops early
        except OSError as exc:
            raise RunLogError(f"cannot read {_name(self.path)}: {exc.strerror or exc}") from exc
        lines = _Lines(f, self.max_line_bytes, self.chunk_bytes, self.wanted)
        try:
            for number, raw, how in lines:
                if raw is None:
                    self.skip(number, f"longer than {self.max_line_bytes} bytes")
                    continue
                if self.wanted is not None and not any(w in raw for w in self.wanted):
                    continue
                record, why = _parse(raw)
                if record is not None:
                    yield number, record
                elif why is not None:
                    if how == "eof":
                        why = f"cut off at the end of the file (the run was killed while writing it): {why}"
                    elif how == "nul":
                        why = f"cut short by NUL bytes: {why}"
                    self.skip(number, why)
        finally:
            self.nul_bytes = lines.nul_bytes
            f.close()

    def problems(self) -> list[str]:
        """The lines skipped and the NUL bytes passed over, as warnings for a report."""
        out = [f"line {s.line} of the log skipped: {s.reason}" for s in self.skipped]
        if self.skipped_count > len(self.skipped):
            out.append(f"{self.skipped_count - len(self.skipped)} more lines of the log skipped as unreadable")
        if self.nul_bytes:
            out.append(
                f"{self.nul_bytes} NUL bytes in the log passed over (a crash can leave the file longer than "
                "what reached the disk)"
            )
        return out

    def checked(self, header: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
        """Yield each record after the header as ``(type, value)``, checked against the schema.

        ``header`` is what :func:`read_header` returned for this log. Values: ``sample``:
        ``(t, readings)``, one list of floats (or None) per source of the header, in its order;
        ``shares``: ``{component: share}``; ``intensity``: ``(IntensitySample, provider)``;
        ``fallback``: a :class:`~carbonkit.Fallback`; ``warning``: the message; ``epoch``:
        ``(start_s, end_s)``; ``pause``: ``(t, end_t)``; ``prediction``: a
        :class:`~carbonkit.Prediction`; ``report``: a :class:`~carbonkit.Report`. A record that
        does not match its type is skipped and counted like an unreadable line; types this
        carbonkit does not know are passed over (later schema-1 logs may add some).
        """
        sources = header["sources"]
        names = [s["name"] for s in sources]
        sizes = [len(s["devices"]) for s in sources]
        max_t = MAX_BUCKETS * float(header["bucket_s"])
        first = True
        for number, record in self:
            if first:
                first = False
                if record.get("type") == "header":
                    continue
            kind = record.get("type")
            try:
                if kind == "sample":
                    yield kind, _sample(record, names, sizes, max_t)
                elif kind == "shares":
                    yield kind, _shares(record)
                elif kind == "intensity":
                    yield kind, _intensity(record)
                elif kind == "fallback":
                    yield kind, _from_dict(Fallback, record, ("provider", "reason"))
                elif kind == "warning":
                    message = record.get("message")
                    if not isinstance(message, str):
                        raise _Bad(f"message must be text, got {_show(message)}")
                    yield kind, message
                elif kind == "epoch":
                    yield kind, _span(record, "start_s", "end_s", max_t)
                elif kind == "pause":
                    yield kind, _span(record, "t", "end_t", max_t)
                elif kind in ("prediction", "prediction_update"):
                    yield kind, _prediction(record)
                elif kind == "budget_exceeded":
                    yield kind, _budget_exceeded(record)
                elif kind == "budget_stop":
                    epoch = record.get("epoch")
                    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                        raise _Bad(f"epoch must be a whole number >= 0, got {_show(epoch)}")
                    yield kind, epoch
                elif kind == "report":
                    yield kind, _report(record.get("report"))
            except _Bad as exc:
                self.skip(number, f"a {_show(kind, 20)} record that does not match the schema: {exc}")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{what} must be a number, got {_show(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise _Bad(f"{what} is out of range: {_show(value)}") from None
    if not math.isfinite(out):
        raise _Bad(f"{what} must be finite, got {_show(value)}")
    return out


def _time(value: Any, what: str, max_t: float) -> float:
    t = _number(value, what)
    if not 0.0 <= t <= max_t:
        raise _Bad(f"{what} must be between 0 and {max_t:g} s, got {_show(value)}")
    return t


def _sample(record: Mapping[str, Any], names: Sequence[str], sizes: Sequence[int], max_t: float) -> Any:
    # The hot loop of a recovery (one call per sample): check with type() and comparisons, and
    # build the words of an error only when there is one.
    t = record.get("t")
    if (type(t) is not float and type(t) is not int) or not 0.0 <= t <= max_t:
        t = _time(t, "t", max_t)
    raw = record.get("r")
    if type(raw) is not dict:
        raise _Bad(f"r must be an object of readings by source, got {_show(raw)}")
    readings: list[list[float] | None] = []
    low, high = -MAX_READING, MAX_READING
    for name, size in zip(names, sizes):
        values = raw.get(name)
        if values is None:
            readings.append(None)
            continue
        if type(values) is not list or len(values) != size:
            raise _Bad(f"r[{_show(name)}] must be a list of {size} numbers (one per device), got {_show(values)}")
        for v in values:
            if (type(v) is not float and type(v) is not int) or not low <= v <= high:
                _number(v, f"r[{_show(name)}]")
                raise _Bad(f"r[{_show(name)}] holds a reading beyond {MAX_READING:g}: {_show(v)}")
        readings.append(values)
    return float(t), readings


def _shares(record: Mapping[str, Any]) -> dict[str, float]:
    raw = record.get("s")
    if not isinstance(raw, dict):
        raise _Bad(f"s must be an object of shares by component, got {_show(raw)}")
    out = {}
    for component, value in raw.items():
        share = _number(value, f"s[{_show(component)}]")
        if not 0.0 <= share <= 1.0:
            raise _Bad(f"s[{_show(component)}] must be a share between 0 and 1, got {_show(value)}")
        out[str(component)] = share
    return out


def _from_dict(cls: Any, record: Mapping[str, Any], texts: Sequence[str] = ()) -> Any:
    data = {k: v for k, v in record.items() if k not in ("type", "provider") or k in texts}
    for key in texts:
        if not isinstance(data.get(key), str):
            raise _Bad(f"{key} must be text, got {_show(data.get(key))}")
    try:
        return cls.from_dict(data)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise _Bad(printable(str(exc), single_line=True)[:200]) from None


def _intensity(record: Mapping[str, Any]) -> tuple[IntensitySample, str]:
    _number(record.get("g_per_kwh"), "g_per_kwh")
    period = record.get("period_s")
    if period is not None and _number(period, "period_s") <= 0:
        raise _Bad(f"period_s must be > 0, got {_show(period)}")
    year = record.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise _Bad(f"year must be a whole number, got {_show(year)}")
    for key in ("zone", "source"):
        if not isinstance(record.get(key), str):
            raise _Bad(f"{key} must be text, got {_show(record.get(key))}")
    provider = record.get("provider", "unknown")
    sample: IntensitySample = _from_dict(IntensitySample, record)
    return sample, provider if isinstance(provider, str) else "unknown"


def _span(record: Mapping[str, Any], start: str, end: str, max_t: float) -> tuple[float, float]:
    t0 = _time(record.get(start), start, max_t)
    t1 = _time(record.get(end), end, max_t)
    if t1 < t0:
        raise _Bad(f"{end} ({t1:g}) is before {start} ({t0:g})")
    return t0, t1


def _prediction(record: Mapping[str, Any]) -> Prediction:
    for key in ("epochs", "based_on"):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _Bad(f"{key} must be a whole number >= 0, got {_show(value)}")
    for key in ("duration_s", "it_energy_kwh"):
        _number(record.get(key), key)
    for key in ("energy_kwh", "co2eq_g", "intensity_g_per_kwh"):
        if record.get(key) is not None:
            _number(record.get(key), key)
    prediction: Prediction = _from_dict(Prediction, record)
    return prediction


def _budget_exceeded(record: Mapping[str, Any]) -> BudgetExceeded:
    for key in ("limit", "value", "t_s"):
        _number(record.get(key), key)
    event: BudgetExceeded = _from_dict(BudgetExceeded, record)
    return event


def _report(data: Any) -> Report:
    if not isinstance(data, dict):
        raise _Bad(f"report must be an object, got {_show(data)}")
    try:
        report = Report.from_dict(data)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise _Bad(printable(str(exc), single_line=True)[:200]) from None
    problem = _report_problem(report)
    if problem:
        raise _Bad(problem)
    return report


_REPORT_FIGURES = (
    "duration_s", "it_energy_kwh", "energy_kwh", "co2eq_g", "pue", "intensity_g_per_kwh", "paused_s", "car_km",
    "car_g_per_km",
)


def _report_problem(report: Report) -> str | None:
    """What makes ``report`` unusable (a figure that is not a finite number, a name that is not
    text), or None."""
    try:
        for key in _REPORT_FIGURES:
            _number(getattr(report, key), key)
        for key in ("carbonkit_version", "pue_source", "location", "attribution"):
            if not isinstance(getattr(report, key), str):
                raise _Bad(f"{key} must be text, got {_show(getattr(report, key))}")
        for name, comp in report.components.items():
            _number(comp.energy_kwh, f"components[{_show(name)}].energy_kwh")
            _number(comp.it_energy_kwh, f"components[{_show(name)}].it_energy_kwh")
            if comp.machine_it_energy_kwh is not None:
                _number(comp.machine_it_energy_kwh, f"components[{_show(name)}].machine_it_energy_kwh")
            if not isinstance(comp.method, str) or not all(isinstance(x, str) for x in (*comp.devices, *comp.sources)):
                raise _Bad(f"components[{_show(name)}] has a method, device or source that is not text")
        for e in report.epochs:
            for key in ("start_s", "end_s", "duration_s", "it_energy_kwh", "energy_kwh", "co2eq_g"):
                _number(getattr(e, key), f"epochs[{e.index}].{key}")
        for u in report.intensity.used:
            _number(u.energy_share, "intensity.used.energy_share")
            _number(u.mean_g_per_kwh, "intensity.used.mean_g_per_kwh")
            _number(u.max_age_s, "intensity.used.max_age_s")
            if not all(isinstance(x, str) for x in (u.provider, u.source, u.kind, u.zone)):
                raise _Bad("intensity.used has a provider, source, kind or zone that is not text")
        for k, v in report.intensity.signal_shares.items():
            _number(v, f"intensity.signal_shares[{_show(k)}]")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in report.tags.items()):
            raise _Bad("tags must map text to text")
        if not all(isinstance(w, str) for w in report.warnings):
            raise _Bad("warnings must be text")
    except _Bad as exc:
        return str(exc)
    return None


def _text_field(header: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    value = header.get(key, default)
    if not isinstance(value, str):
        raise RunLogError(f"{path}: the header's {key!r} must be text, got {_show(value)}")
    return value


def _check_header(header: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Check the fields a report needs; return the header with informational fields normalised."""
    from . import __version__

    schema = header.get("schema")
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise RunLogError(
            f"{path}: the header's \"schema\" must be a whole number >= 1 (carbonkit writes {SCHEMA_VERSION}), "
            f"got {_show(schema)}"
        )
    if schema > SCHEMA_VERSION:
        raise RunLogError(
            f"{path} has run-log schema {schema}; this carbonkit ({__version__}) reads "
            f"schema {SCHEMA_VERSION} and older: upgrade carbonkit"
        )
    out = dict(header)
    sources = header.get("sources")
    if not isinstance(sources, list):
        raise RunLogError(f"{path}: the header's \"sources\" must be a list of power sources, got {_show(sources)}")
    checked = []
    for i, s in enumerate(sources):
        where = f"{path}: the header's sources[{i}]"
        if not isinstance(s, dict):
            raise RunLogError(f"{where} must be an object, got {_show(s)}")
        for key in ("name", "component", "method"):
            if not isinstance(s.get(key), str) or not s.get(key):
                raise RunLogError(f"{where}.{key} must be non-empty text, got {_show(s.get(key))}")
        if s.get("kind") not in _SOURCE_KINDS:
            raise RunLogError(f"{where}.kind must be 'energy' or 'power', got {_show(s.get('kind'))}")
        devices = s.get("devices")
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise RunLogError(f"{where}.devices must be a list of device labels, got {_show(devices)}")
        info = s.get("info")
        checked.append({**s, "info": {str(k): str(v) for k, v in info.items()} if isinstance(info, dict) else {}})
    names = [s["name"] for s in checked]
    if len(set(names)) != len(names):
        raise RunLogError(f"{path}: the header names a source twice: {_show(names, 200)}")
    out["sources"] = checked
    start = _header_number(header, "start_unix", path)
    if not 0.0 <= start < _MAX_UNIX:
        raise RunLogError(f"{path}: the header's \"start_unix\" must be a unix time, got {_show(start)}")
    if not 0 < _header_number(header, "bucket_s", path, 60.0) <= 86400:
        raise RunLogError(
            f"{path}: the header's \"bucket_s\" must be a number of seconds > 0 and <= 86400, "
            f"got {_show(header.get('bucket_s'))}"
        )
    out["bucket_s"] = float(header.get("bucket_s", 60.0))
    if _header_number(header, "pue", path) <= 0:
        raise RunLogError(f"{path}: the header's \"pue\" must be > 0, got {_show(header.get('pue'))}")
    _text_field(header, "location", path)
    out["pue_source"] = _text_field(header, "pue_source", path, "not recorded")
    out["attribution"] = _text_field(header, "attribution", path, "machine")
    out["carbonkit_version"] = _text_field(header, "carbonkit_version", path, "unknown")
    epochs = header.get("epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0):
        raise RunLogError(f"{path}: the header's \"epochs\" must be a whole number >= 0 or null, got {_show(epochs)}")
    providers = header.get("providers")
    out["providers"] = [str(p) for p in providers] if isinstance(providers, list) else []
    tags = header.get("tags")
    out["tags"] = {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}
    plugins = header.get("plugins")
    out["plugins"] = {str(k): str(v) for k, v in plugins.items()} if isinstance(plugins, dict) else {}
    dropped = []
    entries = header.get("dropped")
    for d in entries if isinstance(entries, list) else ():
        try:
            dropped.append(DroppedSource.from_dict(d).to_dict())
        except (TypeError, ValueError, KeyError, AttributeError):
            continue  # what was not used only informs: a bad entry is left out
    out["dropped"] = dropped
    return out


def _header_number(header: Mapping[str, Any], key: str, path: str, default: float | None = None) -> float:
    value = header.get(key, default)
    try:
        return _number(value, key)
    except _Bad:
        raise RunLogError(f"{path}: the header's {key!r} must be a finite number, got {_show(value)}") from None


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a run log's header (its first line), without reading the rest.

    :returns: The header, its informational fields normalised (``tags``, ``plugins`` and each
        source's ``info`` map text to text; ``providers`` is a list of names).
    :raises RunLogError: naming the file and what is wrong: it cannot be opened, is empty, its
        first line is not a JSON object (not UTF-8, not JSON, a number that is not finite), it is
        another tool's JSON Lines (no ``header`` record first), its ``schema`` is not a whole
        number or newer than this carbonkit reads, or a field a report needs is missing or of
        the wrong type.
    """
    name = _name(path)
    reader = RunLogReader(path)
    records = reader.__iter__()
    try:
        first = next(records, None)
    finally:
        records.close()  # stop reading after the first record
    if reader.skipped:
        bad = reader.skipped[0]
        raise RunLogError(f"{name} is not a carbonkit run log: line {bad.line} is {bad.reason}")
    if first is None:
        raise RunLogError(f"{name} is not a carbonkit run log: it holds no records (an empty file)")
    number, header = first
    if header.get("type") != "header":
        keys = ", ".join(_show(k, 20) for k in list(header)[:6])
        raise RunLogError(
            f"{name} is not a carbonkit run log (its first line is not a header record: "
            f"\"type\" is {_show(header.get('type'))}; its keys: {keys})"
        )
    return _check_header(header, name)


def _data_end(fd: int, size: int, max_extents: int = 4096) -> int:
    """Where the last data of a sparse file ends (a hole after it reads as NUL bytes): found with
    ``SEEK_DATA``/``SEEK_HOLE`` without reading; ``size`` where those are not supported."""
    seek_data, seek_hole = getattr(os, "SEEK_DATA", None), getattr(os, "SEEK_HOLE", None)
    if seek_data is None or seek_hole is None:
        return size
    pos = 0
    try:
        for _ in range(max_extents):
            try:
                start = os.lseek(fd, pos, seek_data)
            except OSError:  # ENXIO: nothing but a hole after pos
                return pos
            pos = os.lseek(fd, start, seek_hole)
            if pos >= size:
                return size
    except OSError:
        pass
    return size


def _last_line(path: str | os.PathLike[str], max_line: int = MAX_LINE_BYTES) -> bytes | None:
    """The last line of a file that is not blank or NUL padding, read from the end (None when
    it is longer than ``max_line``)."""
    with open(path, "rb", buffering=0) as f:
        pos = _data_end(f.fileno(), f.seek(0, os.SEEK_END))
        zeros = bytes(CHUNK_BYTES)
        tail: list[bytes] = []
        size = 0
        while pos > 0:
            step = min(CHUNK_BYTES, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step)
            if not tail:
                if block == zeros[: len(block)]:
                    continue  # NUL padding: keep going back, holding nothing
                block = block.rstrip(b"\x00\r\n\t ")
                if not block:
                    continue  # padding only: keep going back, holding nothing
            cut = block.rfind(b"\n")
            if cut >= 0:
                tail.append(block[cut + 1 :])
                break
            tail.append(block)
            size += len(block)
            if size > max_line:
                return None
        return b"".join(reversed(tail))


def read_final_report(path: str | os.PathLike[str]) -> Report | None:
    """The report of the log's final ``report`` record, read from the end of the file, or None
    when the last line is not a complete, valid ``report`` record (the run did not stop)."""
    try:
        raw = _last_line(path)
    except OSError as exc:
        raise RunLogError(f"cannot read {_name(path)}: {exc.strerror or exc}") from exc
    if raw is None:
        return None
    record, _ = _parse(raw)
    if record is None or record.get("type") != "report":
        return None
    try:
        return _report(record.get("report"))
    except _Bad:
        return None


def iter_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the records of a run log, in order, as dicts.

    Lines that are not JSON objects (a torn last line, a broken line in the middle, NaN) are
    skipped; use :class:`RunLogReader` to count them, and :meth:`RunLogReader.checked` to have
    each record checked against the schema.

    :raises RunLogError: when the file cannot be opened.
    """
    for _, record in RunLogReader(path):
        yield record


def load_run(path: str | os.PathLike[str]) -> Report:
    """Read a run log back as a :class:`~carbonkit.Report`.

    A log whose last line is a valid ``report`` record returns that report. A log without one
    (the run was killed) is recomputed from its raw readings, epochs and intensity samples by
    the same engine as a live run, and returned with ``completed=False``; lines that could not
    be read are skipped and named (by line number) in the report's warnings. The file is read in
    two streaming passes, so memory does not grow with its length.

    :raises RunLogError: when the file cannot be read, is empty or is not a carbonkit run log,
        its schema is newer than this carbonkit reads, or its header lacks what a report needs.
    """
    header = read_header(path)
    final = read_final_report(path)
    if final is not None:
        return final
    return _recompute(path, header)


#: The first pass of a recovery parses only the lines that can be these records.
_FIRST_PASS = (b'"epoch"', b'"pause"', b'"report"')


def _header_signal(header: Mapping[str, Any]) -> str:
    """The signal a run asked for (logs written before signals existed: ``"average"``)."""
    signal = header.get("signal")
    return signal if signal in SIGNALS else "average"


def _header_lags(header: Mapping[str, Any]) -> dict[str, float]:
    """Each provider's declared publication lag, from the header's ``provider_details``."""
    lags: dict[str, float] = {}
    details = header.get("provider_details")
    for d in details if isinstance(details, list) else ():
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str):
            continue
        lag = d.get("max_lag_s")
        if isinstance(lag, (int, float)) and not isinstance(lag, bool) and math.isfinite(lag) and lag >= 0:
            lags[d["name"]] = float(lag)
    return lags
def _budget_of(header: Mapping[str, Any]) -> BudgetReport:
    """The budget a run log's header declares (an empty one for logs written without)."""
    data = header.get("budget")
    if not isinstance(data, Mapping):
        return BudgetReport()
    try:
        return BudgetReport(
            co2eq_g=data.get("co2eq_g"), energy_kwh=data.get("energy_kwh"), action=data.get("action", "warn")
        )
    except (TypeError, ValueError):
        return BudgetReport()


def _recompute(path: str | os.PathLike[str], header: Mapping[str, Any]) -> Report:
    from . import __version__

    sources = header["sources"]
    engine = Engine(
        accountant=Accountant.for_sources(sources, float(header["start_unix"]), header["bucket_s"]),
        location=header["location"],
        pue=float(header["pue"]),
        pue_source=header["pue_source"],
        provider=(header["providers"] or ["unknown"])[0],
        epochs_planned=header.get("epochs"),
        tags=header["tags"],
        dropped=[DroppedSource.from_dict(d) for d in header["dropped"]],
        attribution=header["attribution"],
        attribution_notes=_header_notes(header),
        source_info={s["name"]: s["info"] for s in sources},
        signal=_header_signal(header),
        provider_lags=_header_lags(header),
    )
    # First pass: epoch marks and pauses, so that each sample resolves the epochs it covers.
    # Only lines that can hold those records are parsed; a report found here is the answer.
    first = RunLogReader(path, wanted=_FIRST_PASS)
    for kind, value in first.checked(header):
        if kind == "pause":
            engine.add_pause(*value)
        elif kind == "epoch":
            engine.add_mark("start", value[0])  # paused time is inside, not training
            engine.add_mark("end", value[1])
        elif kind == "report":
            report: Report = value
            return report
    # Second pass: the readings, in order, with every record checked.
    reader = RunLogReader(path)
    shares: dict[str, float] | None = None
    last_t = 0.0
    for kind, value in reader.checked(header):
        if kind == "sample":
            t, readings = value
            engine.accountant.add(t, readings, shares)
            last_t = max(last_t, t)
        elif kind == "shares":
            shares = value
        elif kind == "intensity":
            engine.add_intensity(*value)
        elif kind == "fallback":
            engine.fallbacks.append(value)
        elif kind == "warning":
            engine.warn(value)
        elif kind == "prediction":
            engine.prediction = None  # a log holds one first prediction
            engine.add_prediction(value)
        elif kind == "prediction_update":
            engine.add_prediction(value)
        elif kind == "budget_exceeded":
            engine.budget = attrs.evolve(_budget_of(header), exceeded=value)
        elif kind == "budget_stop":
            engine.budget = attrs.evolve(engine.budget or _budget_of(header), stopped=True, stopped_at_epoch=value)
    if engine.budget is None and _budget_of(header) != BudgetReport():
        engine.budget = _budget_of(header)
    for line_problem in reader.problems():
        engine.warn(line_problem)
    engine.new_epochs()
    engine.warn(f"the run did not stop: recomputed from its log up to {last_t:.1f} s")
    report = engine.report(last_t, version=header["carbonkit_version"] or __version__, completed=False)
    how = header.get("location_source")
    if isinstance(how, str):
        report = attrs.evolve(report, location_source=printable(how, single_line=True)[:200])
    problem = _report_problem(report)
    if problem:  # cannot happen with the checks above; never hand out a NaN
        raise RunLogError(f"{_name(path)}: the recomputed report is not usable ({problem})")
    return report


def _header_notes(header: Mapping[str, Any]) -> dict[str, str]:
    """The header's ``attribution_notes`` (how each component's share was obtained), if any."""
    raw = header.get("attribution_notes")
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, str)}
