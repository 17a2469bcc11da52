"""carbonkit plugin ``powermetrics``: CPU, GPU and Neural Engine power of Apple silicon Macs.

Two readers, found on ``PATH``; the first that can run is used:

1. ``macmon`` (https://github.com/vladkens/macmon), which reads the same counters as
   ``powermetrics`` through a macOS API that needs no root. ``macmon pipe -i <ms>`` prints one
   JSON object per sample, one per line, with ``cpu_power``, ``gpu_power`` and ``ane_power`` in
   watts (its README, "Piping").
2. ``powermetrics`` (macOS's own tool, ``man powermetrics``), which needs root:
   ``powermetrics --samplers cpu_power,gpu_power,ane_power -i <ms>`` prints, per sample, a
   header ``*** Sampled system activity (<date>) (<n>ms elapsed) ***`` and the lines
   ``CPU Power: <n> mW``, ``GPU Power: <n> mW``, ``ANE Power: <n> mW`` and
   ``Combined Power (CPU + GPU + ANE): <n> mW``; the ``gpu_power`` sampler prints a second
   ``GPU Power`` line in its own section, which is not used (the first, from the SoC energy
   model, is the one the combined line adds up).

Without root and without ``macmon``, the hook returns a clear ``Unavailable`` note.

The reader runs as one child process for the whole run, sampling every :data:`SAMPLE_MS`
milliseconds; a daemon thread parses its output and keeps the latest sample, so ``read()``
returns at once (it waits, bounded by :data:`FIRST_SAMPLE_TIMEOUT_S`, only for the very first
sample). Sources ``powermetrics:cpu``, ``powermetrics:gpu`` and ``powermetrics:ane`` (component
``ane``): kind ``"power"`` (watts), method ``"measured"``, ``max_power_w`` :data:`MAX_POWER_W`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING

from carbonkit import MeasurementError, Unavailable, hookimpl

if TYPE_CHECKING:
    from carbonkit import Config

__all__ = [
    "COMPONENTS",
    "FIRST_SAMPLE_TIMEOUT_S",
    "MAX_POWER_W",
    "SAMPLE_MS",
    "AppleSiliconSource",
    "PowerStream",
    "command_for",
    "parse_macmon_line",
    "probe",
    "register_power_sources",
]

_logger = logging.getLogger(__name__)

PLUGIN = "powermetrics"
#: The sampling period asked of the reader, in milliseconds.
SAMPLE_MS = 500
#: The longest the first ``read()`` waits for the reader's first sample.
FIRST_SAMPLE_TIMEOUT_S = 1.5
#: The longest the hook waits for the first sample (the core gives a hook 2 s).
HOOK_WAIT_S = 1.0
#: A sample older than this many periods means the reader has stopped.
STALE_PERIODS = 10
#: The components offered, in this order.
COMPONENTS = ("cpu", "gpu", "ane")
#: The most power one component can draw: above the CPU or GPU of an M-series Ultra (about
#: 100 W each under full load).
MAX_POWER_W = 200.0

_HEADER = re.compile(r"^\*\*\* Sampled system activity")
_POWER = re.compile(r"^(CPU|GPU|ANE) Power:\s*([0-9]+(?:\.[0-9]+)?)\s*(mW|W)\s*$")
_COMBINED = re.compile(r"^Combined Power \(CPU \+ GPU \+ ANE\):")


def command_for(tool: str, path: str) -> list[str]:
    """The command line that streams samples from ``tool`` (``"macmon"`` or ``"powermetrics"``)."""
    if tool == "macmon":
        return [path, "pipe", "-i", str(SAMPLE_MS)]
    return [path, "--samplers", "cpu_power,gpu_power,ane_power", "-i", str(SAMPLE_MS)]


def parse_macmon_line(line: str) -> dict[str, float] | None:
    """One ``macmon pipe`` line to watts by component, or None when it holds no power figures."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    watts = {}
    for component in COMPONENTS:
        value = data.get(f"{component}_power")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            watts[component] = float(value)
    return watts or None


class _PowermetricsParser:
    """Feeds ``powermetrics`` text lines; returns a sample when one is complete.

    A sample is complete at its ``Combined Power`` line (macOS 13 and later), else at the next
    sample's header or the end of the output. Power lines after the combined line (the GPU
    section's own ``GPU Power``) belong to no sample and are ignored.
    """

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self.complete = False

    def feed(self, line: str) -> dict[str, float] | None:
        text = line.strip()
        if _HEADER.match(text):
            sample = self._flush()
            self.complete = False
            return sample
        if self.complete:
            return None
        match = _POWER.match(text)
        if match:
            component = match.group(1).lower()
            value = float(match.group(2)) / (1000.0 if match.group(3) == "mW" else 1.0)
            self.current.setdefault(component, value)  # the first GPU line, not the GPU section's
            return None
        if _COMBINED.match(text):
            sample = self._flush()
            self.complete = True
            return sample
        return None

    def end(self) -> dict[str, float] | None:
        return self._flush()

    def _flush(self) -> dict[str, float] | None:
        sample, self.current = self.current, {}
        return sample or None


class PowerStream:
    """One reader process, its output parsed on a daemon thread that keeps the latest sample.

    A reader that ends normally (status 0) after giving samples (one started with a sample
    count, like ``powermetrics -n 1``) is started again by the same thread after one sampling
    period; one that fails or gives nothing is not.

    :param tool: ``"macmon"`` or ``"powermetrics"``.
    :param command: The command line (see :func:`command_for`).
    :param popen: Starts the process (``subprocess.Popen`` signature), for tests.
    :param stale_s: A latest sample older than this means the reader stopped sampling.
    """

    def __init__(
        self,
        tool: str,
        command: Sequence[str],
        *,
        popen: Callable[..., subprocess.Popen[str]] = subprocess.Popen,
        stale_s: float = STALE_PERIODS * SAMPLE_MS / 1000,
    ) -> None:
        self.tool = tool
        self.command = list(command)
        self.stale_s = stale_s
        self.runs = 0
        self._popen = popen
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._latest: dict[str, float] | None = None
        self._latest_at = 0.0
        self._samples = 0
        self._users = 0
        self._ended = False
        self._error = ""
        self._process = self._spawn()
        self._thread = threading.Thread(target=self._pump, name=f"carbonkit-{tool}", daemon=True)
        self._thread.start()

    def acquire(self) -> None:
        self._users += 1

    def release(self) -> None:
        self._users -= 1
        if self._users <= 0:
            self.stop()

    def latest(self) -> dict[str, float]:
        """Return the latest sample, waiting for the first one at most :data:`FIRST_SAMPLE_TIMEOUT_S`.

        :raises MeasurementError: when the reader failed or stopped, or gave nothing in time.
        """
        with self._cond:
            if self._latest is None and not self._ended:
                self._cond.wait_for(lambda: self._latest is not None or self._ended, FIRST_SAMPLE_TIMEOUT_S)
            if self._latest is None:
                raise MeasurementError(self._why("gave no sample"))
            if self._ended or time.monotonic() - self._latest_at > self.stale_s:
                raise MeasurementError(self._why("stopped sampling"))
            return dict(self._latest)

    def wait_samples(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` samples were parsed (for tests and diagnostics)."""
        with self._cond:
            self._cond.wait_for(lambda: self._samples >= count or self._ended, timeout)
            return self._samples >= count

    def stop(self) -> None:
        """End the reader process and its thread. Safe to call more than once."""
        self._stop.set()
        with self._cond:
            process = self._process
        self._end(process)
        self._thread.join(timeout=5.0)
        with self._cond:
            process = self._process  # a run started just before the stop
        self._end(process)

    def _spawn(self) -> subprocess.Popen[str]:
        self.runs += 1
        return self._popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    @staticmethod
    def _end(process: subprocess.Popen[str]) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=2.0)

    @property
    def ended(self) -> bool:
        """Whether the reader has stopped for good (failed, gave nothing, or was stopped)."""
        with self._cond:
            return self._ended

    def describe(self, what: str) -> str:
        """``"<plugin>: <tool> <what> (exited with status <n>: <its message>)"``."""
        return self._why(what)

    def _why(self, what: str) -> str:
        code = self._process.poll()
        detail = f" (exited with status {code}{': ' + self._error if self._error else ''})" if code is not None else ""
        return f"{PLUGIN}: {self.tool} {what}{detail}"

    def _pump(self) -> None:
        try:
            while True:
                process = self._process
                produced = self._drain(process)
                if self._stop.is_set() or process.returncode != 0 or produced == 0:
                    return
                # It ended normally after sampling: run it again one sampling period later.
                if self._stop.wait(SAMPLE_MS / 1000):
                    return
                with self._cond:
                    if self._stop.is_set():
                        return
                    try:
                        self._process = self._spawn()
                    except OSError as exc:
                        self._error = str(exc)
                        return
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _drain(self, process: subprocess.Popen[str]) -> int:
        """Parse one run's output until it ends; return how many samples it gave."""
        produced = 0
        parser = _PowermetricsParser() if self.tool == "powermetrics" else None
        out: IO[str] | None = process.stdout
        try:
            if out is not None:
                for line in out:
                    sample = parser.feed(line) if parser is not None else parse_macmon_line(line)
                    if sample:
                        self._publish(sample)
                        produced += 1
                if parser is not None:
                    sample = parser.end()
                    if sample:
                        self._publish(sample)
                        produced += 1
        except (OSError, ValueError):
            pass
        try:
            process.wait(timeout=2.0)  # its output ended: it is exiting
        except subprocess.TimeoutExpired:
            self._end(process)
        err = process.stderr
        if err is not None:
            try:
                self._error = " ".join(err.read(500).split())
            except (OSError, ValueError):
                pass
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        return produced

    def _publish(self, sample: dict[str, float]) -> None:
        with self._cond:
            merged = dict(self._latest or {})
            merged.update(sample)
            self._latest = merged
            self._latest_at = time.monotonic()
            self._samples += 1
            self._cond.notify_all()


class AppleSiliconSource:
    """The power of one component (``cpu``, ``gpu`` or ``ane``), in watts, from a shared stream."""

    method = "measured"
    kind = "power"
    max_power_w = MAX_POWER_W

    def __init__(self, component: str, stream: PowerStream) -> None:
        if component not in COMPONENTS:
            raise ValueError(f"component={component!r} is not valid: expected one of {', '.join(COMPONENTS)}")
        self.component = component
        self.name = f"{PLUGIN}:{component}"
        self._stream = stream
        self._closed = False
        stream.acquire()
        label = {"cpu": "CPU", "gpu": "GPU", "ane": "ANE"}[component]
        how = "macmon pipe (no root)" if stream.tool == "macmon" else "powermetrics (root)"
        self.info = {"reader": f"{how}, {label} power every {SAMPLE_MS} ms"}

    def devices(self) -> list[str]:
        return [{"cpu": "CPU", "gpu": "GPU", "ane": "Neural Engine"}[self.component]]

    def read(self) -> list[float]:
        """The component's power in the reader's latest sample, in watts.

        :raises MeasurementError: when the reader stopped or never sampled.
        """
        sample = self._stream.latest()
        if self.component not in sample:
            raise MeasurementError(f"{self.name}: {self._stream.tool} gives no {self.component} power")
        return [sample[self.component]]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._stream.release()


def probe(
    *,
    which: Callable[[str], str | None] = shutil.which,
    is_root: Callable[[], bool] | None = None,
    popen: Callable[..., subprocess.Popen[str]] = subprocess.Popen,
    wait_s: float = HOOK_WAIT_S,
) -> list[AppleSiliconSource | Unavailable]:
    """Return the CPU, GPU and ANE sources, or a note saying why there are none.

    :param wait_s: How long to wait for the reader's first sample, so that a reader failing
        at once becomes a note (with its message) rather than sources that fail.
    """
    root = is_root() if is_root is not None else (hasattr(os, "geteuid") and os.geteuid() == 0)
    macmon = which("macmon")
    powermetrics = which("powermetrics")
    if macmon:
        tool, path = "macmon", macmon
    elif powermetrics and root:
        tool, path = "powermetrics", powermetrics
    elif powermetrics:
        return [
            Unavailable(
                plugin=PLUGIN,
                reason="powermetrics needs root and this process is not root, and no unprivileged reader "
                "(macmon) is on PATH: Apple silicon CPU, GPU and Neural Engine power is not measured",
                hint="install macmon (brew install macmon), which reads the same counters without root, or run "
                "as root; carbonkit-cpu-estimate estimates the CPU meanwhile",
                warn=True,
            )
        ]
    else:
        return [Unavailable(plugin=PLUGIN, reason="neither macmon nor powermetrics is on PATH (macOS only)")]
    try:
        stream = PowerStream(tool, command_for(tool, path), popen=popen)
    except OSError as exc:
        return [Unavailable(plugin=PLUGIN, reason=f"{tool} cannot be started: {exc}", warn=True)]
    # A reader that fails at once (not root after all, an unsupported Mac) becomes a note now,
    # with its message, rather than a source that fails on its first read.
    if not stream.wait_samples(1, timeout=wait_s) and stream.ended:
        stream.stop()
        return [Unavailable(plugin=PLUGIN, reason=stream.describe("gave no sample"), warn=True)]
    return [AppleSiliconSource(component, stream) for component in COMPONENTS]


@hookimpl
def register_power_sources(config: Config) -> list[AppleSiliconSource | Unavailable]:
    return probe()
