"""``carbonkit setup rapl [--group G] [--dry-run] [--undo]``: give one group read access to the
RAPL energy counters, across reboots and driver reloads (see :mod:`carbonkit.rapl_access` and
``docs/rapl-access.md``). Run once as root; exits 0 when done or when nothing needed doing,
2 when refused (not root) or when a step failed.
"""

from __future__ import annotations

import argparse

from .rapl_access import DEFAULT_GROUP, RaplAccess

__all__ = ["register", "run_rapl"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``carbonkit setup`` to the ``carbonkit`` parser."""
    p = sub.add_parser("setup", help="one-off system setup (as root): carbonkit setup rapl")
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    r = what.add_parser(
        "rapl",
        help="let a group read the RAPL energy counters, for good (as root)",
        description="Create a group that may read the RAPL energy counters (energy_uj) and a udev rule that "
        "keeps it so across reboots and driver reloads, and apply it now. Energy counters are a power side "
        "channel (PLATYPUS, CVE-2020-8694/8695): add only trusted users to the group.",
    )
    r.add_argument("--group", default=DEFAULT_GROUP, help=f"the group that may read them (default {DEFAULT_GROUP})")
    r.add_argument("--dry-run", action="store_true", help="print what would be done; change nothing")
    r.add_argument("--undo", action="store_true", help="remove what an earlier run installed")
    r.add_argument(
        "--etc-root", help="the system configuration directory (default CARBONKIT_ETC_ROOT, else /etc)"
    )
    r.set_defaults(func=run_rapl)


def run_rapl(args: argparse.Namespace) -> int:
    from pathlib import Path

    access = RaplAccess(
        group=args.group,
        dry_run=args.dry_run,
        etc_root=Path(args.etc_root) if args.etc_root else None,
        say=lambda line: print(line, flush=True),
    )
    if args.undo:
        access.undo()
    else:
        access.install()
    return 0
