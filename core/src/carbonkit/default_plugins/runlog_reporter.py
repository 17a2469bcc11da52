"""The run-log writer, on when ``log_dir`` (or ``CARBONKIT_LOG_DIR``) is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl
from ..runlog import RunLogWriter

if TYPE_CHECKING:
    from ..config import Config


@hookimpl(trylast=True)
def register_reporters(config: Config) -> list[RunLogWriter]:
    return [] if config.log_dir is None else [RunLogWriter(config.log_dir)]
