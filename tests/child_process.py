"""What the tests of ``carbonkit run`` share: a child ``carbonkit run`` in a new session (no
controlling terminal, as under a batch scheduler), its output read line by line with a bound,
and its final ``--json`` line.

:class:`Lines` reads a pipe on a thread, so that a test waits for a line (bounded by
:data:`TIMEOUT_S`) instead of for time to pass.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO

import pytest

#: Longest wait for a line, a process's end or a state: a bound for a hung test, never a timing.
TIMEOUT_S = 60.0


def run_env() -> dict[str, str]:
    """This environment without any ``CARBONKIT_*`` variable, plus a fixed zone and quiet output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env.update(CARBONKIT_LOCATION="SE-SE3", CARBONKIT_QUIET="1")
    return env


class Lines:
    """Lines of a pipe, read by a thread so that a test can wait for one with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line)
        self.queue.put(None)

    def next(self) -> str | None:
        """The next line (None at end of file); fails the test after TIMEOUT_S."""
        try:
            line = self.queue.get(timeout=TIMEOUT_S)
        except queue.Empty:
            pytest.fail(f"no line within {TIMEOUT_S} s; lines so far: {self.seen!r}")
        if line is not None:
            self.seen.append(line)
        return line

    def until(self, prefix: str) -> str:
        """Read until a line starting with ``prefix`` and return it."""
        while True:
            line = self.next()
            if line is None:
                pytest.fail(f"end of output before a line starting with {prefix!r}; lines: {self.seen!r}")
            if line.startswith(prefix):
                return line

    def rest(self) -> list[str]:
        """Every line up to the end of file."""
        while self.next() is not None:
            pass
        return self.seen


class CarbonkitRun:
    """A ``python -m carbonkit run ARGS`` process started in a new session, its stdout and
    stderr read line by line (``out`` and ``err``)."""

    def __init__(self, args: Sequence[str], stdin: int | None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "carbonkit", "run", *args],
            env=run_env(), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out = Lines(self.proc.stdout)
        self.err = Lines(self.proc.stderr)

    def finish(self) -> tuple[int, list[str], str]:
        """Wait for the end; return the exit status, stdout lines and stderr text."""
        status = self.proc.wait(timeout=TIMEOUT_S)
        return status, self.out.rest(), "".join(self.err.rest())

    def reap(self) -> None:
        """Wait for the process (once killed) and close its pipes."""
        self.proc.wait(timeout=TIMEOUT_S)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def report(lines: list[str]) -> dict[str, object]:
    """The ``--json`` report: the last line of stdout."""
    data = json.loads(lines[-1])
    assert isinstance(data, dict)
    return data
