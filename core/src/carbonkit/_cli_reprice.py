"""``carbonkit reprice LOG... --zone Z [--at TIME | --series FILE] [--signal S]``: what a measured
run would have emitted in another zone or at another time, and what Flexible Start or Pause and
Resume would have saved for its own power profile. The work is in
:mod:`carbonkit.reports.reprice`; this module parses arguments and prints.

Exit status: 0 when every log was re-priced; 3 when some could not be read (each named on
standard error) and the others were; 2 for a usage error (an unknown zone, an intensity that
does not cover the run...) or when no log could be re-priced.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._text import printable
from .errors import ConfigError, RunLogError

__all__ = ["EXIT_SKIPPED", "register", "run"]

#: Some logs could not be read; the others were re-priced.
EXIT_SKIPPED = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``carbonkit reprice`` to the ``carbonkit`` parser."""
    p = sub.add_parser(
        "reprice",
        help="what if: a measured run priced in another zone or at another time (and what scheduling saves)",
        description=(
            "Replay each run's measured power profile against another zone's or time's intensity, interval "
            "by interval: a --series file, else a provider's history, else the zone's yearly average (said so)."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="LOG", help="run logs (*.jsonl) or folders holding them")
    p.add_argument("--zone", required=True, help="zone code such as FR, DK-DK2, US-CAL-CISO")
    p.add_argument("--at", metavar="ISO", help="move each run to start at this time (e.g. 2024-03-01T00:00:00Z)")
    p.add_argument("--series", metavar="FILE", help="CSV of time,g_per_kwh (as carbonkit schedule --series reads)")
    p.add_argument("--signal", choices=("average", "marginal"), default="average",
                   help="intensity signal (default average)")
    p.add_argument(
        "--flexible-start", metavar="WINDOW", help="also: what Flexible Start within WINDOW saves (24h, 100%%)"
    )
    p.add_argument("--pause-resume", metavar="WINDOW", help="also: what Pause and Resume within WINDOW saves")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="bound on the providers' history requests together (default 30)")
    p.add_argument("--json", action="store_true", help="print one JSON object, last on stdout")
    p.add_argument("--html", metavar="OUT.html", help="also write a self-contained HTML page")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``carbonkit reprice``; return the exit status."""
    from ._cli_schedule import _parse_time
    from .reports.aggregate import find_logs
    from .reports.reprice import reprice
    from .reports.reprice_output import render_text, to_json, write_html

    at = _parse_time(args.at, "--at") if args.at else None
    if not (args.timeout > 0):
        raise ConfigError(f"--timeout must be a number of seconds > 0, got {args.timeout!r}")
    results = []
    skipped = 0
    for path in find_logs(args.paths):
        try:
            results.append(
                reprice(
                    path, args.zone, at=at, series_file=args.series, signal=args.signal,
                    flexible_start_window=args.flexible_start, pause_resume_window=args.pause_resume,
                    timeout_s=args.timeout,
                )
            )
        except RunLogError as exc:
            skipped += 1
            sys.stderr.write(f"carbonkit: skipped {printable(str(path), single_line=True)}: "
                             f"{printable(str(exc), single_line=True)}\n")
    if not results:
        raise RunLogError("no run log could be re-priced")
    if args.html:
        try:
            write_html(results, args.html)
        except OSError as exc:
            raise ConfigError(f"cannot write --html {args.html!r}: {exc.strerror or exc}") from None
        sys.stderr.write(f"carbonkit: wrote {args.html}\n")
    if args.json:
        sys.stdout.write(json.dumps(to_json(results), allow_nan=False) + "\n")
    else:
        sys.stdout.write(render_text(results))
    return EXIT_SKIPPED if skipped else 0
