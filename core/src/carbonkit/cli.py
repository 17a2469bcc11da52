"""The ``carbonkit`` command line.

``carbonkit plugins [--json]`` lists the discovered plugins and what they offer on this machine;
``carbonkit run [options] -- CMD ARGS...`` measures a command from start to end and exits with
its exit code. With ``--json`` the last line of standard output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .errors import CarbonkitError, ConfigError

__all__ = ["main"]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, allow_nan=False) + "\n")
    sys.stdout.flush()


def _tags(values: Sequence[str]) -> dict[str, str]:
    tags = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag expects KEY=VALUE, got {item!r}")
        tags[key] = value
    return tags


# -- carbonkit plugins ------------------------------------------------------------------------


def plugins_data() -> dict[str, Any]:
    """Describe every plugin and what it offers on this machine (plain JSON types)."""
    from ._http import default_http_client
    from .config import Config
    from .plugins import (
        collect_intensity_providers,
        collect_power_sources,
        collect_predictors,
        collect_reporters,
        list_plugins,
        make_plugin_manager,
    )

    pm = make_plugin_manager()
    config = Config.from_env()
    rows = {
        p.name: {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "builtin": p.builtin,
            "hooks": list(p.hooks),
            "power_sources": [],
            "intensity_providers": [],
            "predictors": [],
            "reporters": [],
            "unavailable": [],
            "errors": [],
        }
        for p in list_plugins(pm)
    }

    def note(offers: Any, key: str, describe: Any) -> None:
        for obj in offers.objects:
            rows[offers.owners[obj.name]][key].append(describe(obj))
        for n in offers.notes:
            target = rows.get(n.plugin) or next(iter(rows.values()))
            target["unavailable"].append({"reason": n.reason, "hint": n.hint, "warn": n.warn})
        for plugin, err in offers.errors:
            rows[plugin]["errors"].append(err)

    with default_http_client() as client:
        sources = collect_power_sources(pm, config)
        note(
            sources,
            "power_sources",
            lambda s: {
                "name": s.name,
                "component": s.component,
                "method": s.method,
                "kind": s.kind,
                "devices": [str(d) for d in s.devices()],
            },
        )
        for s in sources.objects:
            try:
                s.close()
            except Exception:
                pass
        note(
            collect_intensity_providers(pm, config, client),
            "intensity_providers",
            lambda p: {
                "name": p.name,
                "priority": p.priority,
                "zones": sorted(p.zones) if len(p.zones) <= 20 else [f"{len(p.zones)} zones"],
            },
        )
        note(collect_predictors(pm, config), "predictors", lambda p: {"name": p.name})
        note(collect_reporters(pm, config), "reporters", lambda r: {"name": r.name})
    skipped = [
        {"name": s.name, "distribution": s.distribution, "reason": s.reason}
        for s in getattr(pm, "carbonkit_skipped", [])
    ]
    return {"carbonkit_version": __version__, "plugins": list(rows.values()), "skipped": skipped}


def _cmd_plugins(args: argparse.Namespace) -> int:
    data = plugins_data()
    if args.json:
        _print_json(data)
        return 0
    out = sys.stdout
    for p in data["plugins"]:
        label = "built in" if p["builtin"] else f"{p['distribution']} {p['version']}"
        out.write(f"{p['name']} ({label})\n")
        for s in p["power_sources"]:
            out.write(
                f"  power source {s['name']}: {s['component']}, {s['method']}, {s['kind']}, "
                f"{len(s['devices'])} device(s): {', '.join(s['devices'])}\n"
            )
        for i in p["intensity_providers"]:
            out.write(f"  intensity provider {i['name']} (priority {i['priority']}): zones {', '.join(i['zones'])}\n")
        for r in p["predictors"]:
            out.write(f"  predictor {r['name']}\n")
        for r in p["reporters"]:
            out.write(f"  reporter {r['name']}\n")
        for u in p["unavailable"]:
            hint = f" ({u['hint']})" if u["hint"] else ""
            out.write(f"  unavailable: {u['reason']}{hint}\n")
        for e in p["errors"]:
            out.write(f"  error: {e}\n")
    for s in data["skipped"]:
        out.write(f"skipped {s['name']} ({s['distribution']}): {s['reason']}\n")
    return 0


# -- carbonkit run ----------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ConfigError("carbonkit run needs a command after '--', e.g. carbonkit run -- python train.py")
    if args.start_within:
        from .scheduling import NoForecastError, plan_start_within, wait_for_best_start

        try:
            plan = plan_start_within(args.start_within, args.expected_duration, args.location)
        except NoForecastError as exc:
            sys.stderr.write(f"carbonkit: {exc}; starting now\n")
        else:
            sys.stderr.write(
                f"carbonkit: starting at {plan.start.isoformat()} in {plan.zone} "
                f"({100 * plan.saving:.1f}% less CO2eq than starting now, forecast by {plan.provider}); "
                "Ctrl-C cancels\n"
            )
            if wait_for_best_start(plan).cancelled:
                sys.stderr.write("carbonkit: cancelled while waiting; the command was not run\n")
                return 130
    from .tracker import Tracker

    tracker = Tracker(
        location=args.location,
        pue=args.pue,
        interval_s=args.interval,
        log_dir=args.log_dir,
        quiet=True if args.quiet else None,
        tags=_tags(args.tag) or None,
    )
    forwarded = {}

    def forward(signum: int, frame: Any) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)

    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = subprocess.Popen(command)
    except OSError as exc:
        tracker.stop()
        sys.stderr.write(f"carbonkit: cannot run {command[0]!r}: {exc.strerror or exc}\n")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    # Ctrl-C reaches the whole process group, the command included: let the command handle
    # it and report after it exits. SIGTERM and SIGHUP sent to carbonkit are passed on.
    forwarded[signal.SIGINT] = signal.signal(signal.SIGINT, lambda signum, frame: None)
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            forwarded[sig] = signal.signal(sig, forward)
    try:
        rc = proc.wait()
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
    report = tracker.stop()
    if args.json:
        data = report.to_dict()
        data["exit_code"] = rc
        data["command"] = command
        _print_json(data)
    return rc if rc >= 0 else 128 - rc


# -- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carbonkit", description="Measure, predict and report the energy and carbon footprint of compute."
    )
    parser.add_argument("--version", action="version", version=f"carbonkit {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("plugins", help="list plugins and what they offer on this machine")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_plugins)

    r = sub.add_parser(
        "run",
        help="measure a command: carbonkit run [options] -- CMD ARGS...",
        usage=(
            "carbonkit run [--location Z] [--pue X] [--interval S] [--log-dir D] [--tag K=V] [--json] "
            "[--start-within DURATION [--expected-duration DURATION]] -- CMD ARGS..."
        ),
    )
    r.add_argument("--location", help="zone code such as DK-DK2, GB, SE-SE3 (default: CARBONKIT_LOCATION)")
    r.add_argument("--pue", type=float, help="power usage effectiveness, >= 1 (default: CARBONKIT_PUE or 1.58)")
    r.add_argument("--interval", type=float, help="seconds between samples (default 1)")
    r.add_argument("--log-dir", help="write a JSON Lines run log in this folder")
    r.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="label the run (repeatable)")
    r.add_argument("--json", action="store_true", help="print the report as one JSON object, last on stdout")
    r.add_argument("--quiet", action="store_true", help="no console report")
    r.add_argument(
        "--start-within",
        metavar="DURATION",
        help="wait for the lowest-carbon start within DURATION (e.g. 12h), from the intensity forecast",
    )
    r.add_argument(
        "--expected-duration",
        metavar="DURATION",
        default="1h",
        help="how long the command is expected to run, for --start-within (default 1h)",
    )
    r.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    r.set_defaults(func=_cmd_run)

    # Further commands live next to what they drive; each module adds its own subparsers.
    from . import _cli_intensity, _cli_report, _cli_schedule

    for module in (_cli_intensity, _cli_report, _cli_schedule):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CarbonkitError as exc:
        sys.stderr.write(f"carbonkit: error: {exc}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
