"""Add run logs up: one row per run, totals, groups, and each device counted once.

Reading: :func:`find_logs` expands folders to the ``*.jsonl`` files under them; :func:`read_run`
reads and checks a log's header (:func:`carbonkit.runlog.read_header`) and its report from the
final ``report`` record (read from the end of the file, so a long log is not parsed line by
line), or with :func:`carbonkit.load_run` when the run never stopped (recomputed from its raw
readings, ``completed=False``). :func:`read_runs` reads many: a log that cannot be read (not a
run log, a damaged header, a newer schema, unreadable) is skipped and named with the reason,
and the others are read.

Job and rank: a log belongs to a job when its header has ``job`` (what the tracker records from
``tags["job"]``, ``SLURM_JOB_ID`` or ``TORCHELASTIC_RUN_ID``), else when its tags have ``job``.
Its rank is the header's ``rank``, else the tag ``rank``.

**Counting each device once.** Several processes of one job on one host (the ranks of a
distributed run, each with its own tracker) all read the machine-level counters: every rank's
log holds the whole CPU package and, unless ``CUDA_VISIBLE_DEVICES`` narrowed it, every GPU.
Adding those logs up would count the same joules once per rank. So, for each job and host, the
logs are taken in order of preference and each *device* (component and device label) is
counted from the first log that measured it:

1. the log covering the longest time first (it measured the most of the job on those devices:
   a rank that started late, stopped early or was restarted covers less),
2. then the lowest rank (rank 0 usually lives for the whole job), then the file name.

A log's component is counted when none of its devices was counted before by a log that ran at
the same time (a requeued job keeps its id, and its second attempt measured new joules); it is left out
(``duplicate``) when all were; a partial overlap cannot be split (a report sums its devices), so
it is left out and said so. Ranks that each measured their own GPU (``CUDA_VISIBLE_DEVICES``
set per rank) therefore all count their GPU while the shared CPU is counted once. Components
charged by the process tree's share (``attribution="process"``: CPU and DRAM, and GPUs their
source split between processes) are never duplicates: each rank's share is its own. Runs with
``attribution="cgroup"`` charge their cgroup: two ranks of one job in one cgroup hold the same
share, and are deduplicated like machine-level devices. When part of a log is left out, its CO2eq is scaled
by the share of its energy that is counted (the intensity in force is the same for every
component of one run; the split over time may differ slightly, and the note says so).

A log whose header says ``"role": "observer"`` (a process of a multi-process job that let
another process on its host measure, see ``docs/distributed.md``) has no components: it adds
nothing, not even its duration.

Runs without a job id are never merged. When two of them ran on one host at the same time and
both counted a machine-level device, each holds the whole machine's energy for the overlap: a
note says so (use ``attribution="process"`` or ``"cgroup"``, or a ``job`` tag, to avoid it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from attrs import field, frozen

from .._redact import redact_mapping
from ..errors import ConfigError, RunLogError
from ..records import Report, _Record, dict_of, tuple_of
from ..runlog import load_run, read_final_report, read_header
from ._car import CarFactor, car_factor

__all__ = [
    "Aggregate",
    "Contribution",
    "Group",
    "RunLog",
    "RunsRead",
    "SkippedLog",
    "Totals",
    "aggregate",
    "find_logs",
    "load_runs",
    "read_run",
    "read_runs",
]

#: Components a process-attributed run charges by its own share (see carbonkit.attribution).
PROCESS_SHARED = ("cpu", "dram")
#: At most this many overlap notes are listed one by one.
MAX_OVERLAP_NOTES = 10


# -- reading --------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


@frozen(kw_only=True)
class RunLog:
    """One run log: its report and what its header says about where and how it ran.

    :param file: The path as found (as given, or under a given folder).
    :param report: The final report, or one recomputed from the raw readings
        (``completed=False``).
    :param host: The host name in the header.
    :param pid: The tracking process id in the header.
    :param job: The job id (header ``job``, else the tag ``job``), None when unknown.
    :param rank: The process rank (header ``rank``, else the tag ``rank``), None when unknown.
    :param header: The whole header record.
    """

    file: str
    report: Report
    host: str
    pid: int | None = None
    job: str | None = None
    rank: int | None = None
    header: Mapping[str, Any] = field(factory=dict, eq=False, repr=False)

    @property
    def tags(self) -> dict[str, str]:
        """The run's tags (from the report, else the header), secret-looking values redacted
        (``token``, ``password``, ``api_key``...: see :mod:`carbonkit._redact`), so that no
        report prints them."""
        tags = self.report.tags or self.header.get("tags") or {}
        return {str(k): str(v) for k, v in redact_mapping(tags).items()}

    @property
    def name(self) -> str:
        """The file's base name."""
        return os.path.basename(self.file)


def find_logs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand ``paths`` into run-log files: a file as is, a folder to its ``*.jsonl`` files.

    Folders are searched recursively; each file appears once (the first spelling wins), in the
    order given, folders sorted by path.

    :raises ConfigError: when a path does not exist, or nothing at all is found.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    given = list(paths)
    if not given:
        raise ConfigError("give at least one run log (*.jsonl) or folder of run logs")
    for raw in given:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
        elif path.is_file():
            candidates = [path]
        else:
            raise ConfigError(f"{str(raw)!r} does not exist: give run logs (*.jsonl) or folders holding them")
        for p in candidates:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                found.append(p)
    if not found:
        raise ConfigError(
            f"no run logs (*.jsonl) under {', '.join(repr(str(p)) for p in given)}; "
            "runs write them with log_dir= or CARBONKIT_LOG_DIR"
        )
    return found


def read_run(path: str | os.PathLike[str]) -> RunLog:
    """Read one run log: its header and its report.

    :raises RunLogError: when the file cannot be read, is not a carbonkit run log, has a newer
        schema or a header that lacks what a report needs (the message says which).
    """
    p = Path(path)
    header = read_header(p)
    report = read_final_report(p)
    if report is None:
        report = load_run(p)
    tags = header.get("tags") or {}
    job = _text(header.get("job")) or _text(tags.get("job"))
    rank = _int(header.get("rank"))
    if rank is None:
        rank = _int(tags.get("rank"))
    return RunLog(
        file=str(path),
        report=report,
        host=str(header.get("host") or "unknown"),
        pid=_int(header.get("pid")),
        job=job,
        rank=rank,
        header=header,
    )


@frozen(kw_only=True)
class SkippedLog:
    """A file that was not read, and why (the message of the error that stopped it)."""

    file: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """Plain JSON types."""
        return {"file": self.file, "reason": self.reason}


@frozen(kw_only=True)
class RunsRead:
    """What :func:`read_runs` found: the runs read, sorted by start time then file, and the
    files skipped."""

    runs: tuple[RunLog, ...] = field(converter=tuple_of)
    skipped: tuple[SkippedLog, ...] = field(converter=tuple_of, default=())

    @property
    def notes(self) -> list[str]:
        """One note per file skipped."""
        return [f"skipped {s.file}: {s.reason}" for s in self.skipped]


#: Files named one by one in the error raised when no log at all could be read.
MAX_SKIPPED_LISTED = 10


def read_runs(paths: Iterable[str | os.PathLike[str]], *, strict: bool = False) -> RunsRead:
    """Read every run log under ``paths`` (files, or folders searched for ``*.jsonl``).

    A file that cannot be read as a run log (another tool's JSON Lines, a damaged header, a newer
    schema, a file that cannot be opened) is skipped and kept in :attr:`RunsRead.skipped` with
    the reason; damaged lines inside a readable log are not a reason (the log's report names
    them). Files named explicitly are treated like those found in folders.

    :param strict: Raise at the first file that cannot be read instead of skipping it.
    :raises ConfigError: when a path does not exist or no ``*.jsonl`` file is found.
    :raises RunLogError: when no file at all could be read (each is named, with its reason), or
        with ``strict`` at the first that cannot.
    """
    runs: list[RunLog] = []
    skipped: list[SkippedLog] = []
    for path in find_logs(paths):
        try:
            runs.append(read_run(path))
        except (RunLogError, OSError) as exc:
            if strict:
                raise
            reason = str(exc) if isinstance(exc, RunLogError) else f"cannot read it: {exc.strerror or exc}"
            skipped.append(SkippedLog(file=str(path), reason=reason))
    if not runs:
        listed = "; ".join(s.reason for s in skipped[:MAX_SKIPPED_LISTED])
        more = len(skipped) - MAX_SKIPPED_LISTED
        raise RunLogError(
            f"no carbonkit run log could be read ({len(skipped)} file{'s' if len(skipped) != 1 else ''}): {listed}"
            + (f"; and {more} more" if more > 0 else "")
        )
    runs.sort(key=lambda r: (r.report.start_time, r.file))
    return RunsRead(runs=runs, skipped=skipped)


def load_runs(
    paths: Iterable[str | os.PathLike[str]], *, skip_foreign: bool = True
) -> tuple[list[RunLog], list[str]]:
    """Read every run log under ``paths``, sorted by start time then file (see :func:`read_runs`).

    :param skip_foreign: Skip files that cannot be read as run logs (a note names each and
        says why); False raises at the first.
    :returns: The runs and the notes about skipped files.
    :raises RunLogError: when no file could be read, or (``skip_foreign=False``) one cannot.
    """
    found = read_runs(paths, strict=not skip_foreign)
    return list(found.runs), found.notes


# -- counting -------------------------------------------------------------------------------


@frozen(kw_only=True)
class Contribution(_Record):
    """What one run adds to the totals after each device is counted once.

    :param file: The run log.
    :param counted: ``"all"``, ``"part"`` (some components were counted from another log) or
        ``"none"`` (another log of the same job and host measured all its devices).
    :param components: The components counted.
    :param excluded: Component to why it was left out.
    :param duplicate_of: The logs that measured the left-out devices.
    :param it_energy_kwh: IT energy counted.
    :param energy_kwh: Energy counted, after PUE.
    :param co2eq_g: CO2eq counted (the run's, scaled by the share of its energy counted).
    :param duration_s: The run's duration (counted whenever any component is).
    :param device_hours: Devices times hours, per counted component.
    """

    file: str
    counted: str
    components: tuple[str, ...] = field(converter=tuple_of, default=())
    excluded: Mapping[str, str] = field(converter=dict_of, factory=dict)
    duplicate_of: tuple[str, ...] = field(converter=tuple_of, default=())
    it_energy_kwh: float = 0.0
    energy_kwh: float = 0.0
    co2eq_g: float = 0.0
    duration_s: float = 0.0
    device_hours: Mapping[str, float] = field(converter=dict_of, factory=dict)


def _devices(name: str, comp: Any) -> frozenset[str]:
    devices = tuple(getattr(comp, "devices", ()) or ())
    return frozenset(devices) if devices else frozenset({name})


def _process_share(run: RunLog, component: str) -> bool:
    """Whether ``run`` charged ``component`` by its own process tree's share (never a duplicate):
    CPU and DRAM with ``attribution="process"``, and a GPU whose source split it between
    processes (its ``info`` has a ``process share`` entry, shown in the component's details)."""
    if run.report.attribution != "process":
        return False
    if component in PROCESS_SHARED:
        return True
    comp = run.report.components.get(component)
    return any(": process share " in d or "; process share " in d for d in getattr(comp, "details", ()))


def _own_cgroup(run: RunLog) -> bool:
    """Whether ``run`` charged its own cgroup (a container or job), not the whole machine."""
    return run.report.attribution == "cgroup"


def _rank_key(run: RunLog) -> tuple[float, int, int, str]:
    rank = run.rank
    return (-run.report.duration_s, 0 if rank is not None else 1, rank if rank is not None else 0, run.file)


def _contribution(
    run: RunLog, counted: Sequence[str], excluded: Mapping[str, str], dups: Sequence[str]
) -> Contribution:
    report = run.report
    hours = report.duration_s / 3600.0
    comps = report.components
    device_hours = {c: len(_devices(c, comps[c])) * hours for c in counted}
    if not excluded:
        return Contribution(
            file=run.file,
            counted="all",
            components=list(counted),
            it_energy_kwh=report.it_energy_kwh,
            energy_kwh=report.energy_kwh,
            co2eq_g=report.co2eq_g,
            duration_s=report.duration_s if counted else 0.0,  # an observer's run measured nothing
            device_hours=device_hours,
        )
    if not counted:
        return Contribution(file=run.file, counted="none", excluded=excluded, duplicate_of=sorted(set(dups)))
    it_kwh = sum(comps[c].it_energy_kwh for c in counted)
    kwh = sum(comps[c].energy_kwh for c in counted)
    share = kwh / report.energy_kwh if report.energy_kwh > 0 else 0.0
    return Contribution(
        file=run.file,
        counted="part",
        components=list(counted),
        excluded=excluded,
        duplicate_of=sorted(set(dups)),
        it_energy_kwh=it_kwh,
        energy_kwh=kwh,
        co2eq_g=report.co2eq_g * share,
        duration_s=report.duration_s,
        device_hours=device_hours,
    )


def count_once(runs: Sequence[RunLog]) -> tuple[list[Contribution], list[str]]:
    """Decide what each run adds to the totals (the rule is in the module docstring).

    :returns: One contribution per run, in the order of ``runs``, and notes.
    """
    by_file: dict[str, Contribution] = {}
    notes: list[str] = []
    groups: dict[tuple[str, str], list[RunLog]] = {}
    for run in runs:
        if run.job is None:
            by_file[run.file] = _contribution(run, list(run.report.components), {}, [])
        else:
            groups.setdefault((run.job, run.host), []).append(run)
    for (job, host), members in groups.items():
        # component -> device -> the logs that counted it, with their time spans
        seen: dict[str, dict[str, list[tuple[str, datetime, datetime]]]] = {}
        merged = 0
        for run in sorted(members, key=_rank_key):
            counted: list[str] = []
            excluded: dict[str, str] = {}
            dups: list[str] = []
            start, end = run.report.start_time, run.report.end_time
            for name, comp in run.report.components.items():
                if _process_share(run, name):
                    counted.append(name)
                    continue
                devices = _devices(name, comp)
                owners = seen.setdefault(name, {})
                holders = {
                    d: [f for f, s, e in owners.get(d, ()) if s < end and start < e] for d in devices
                }  # only logs that ran at the same time measured the same joules (a requeued job reuses its id)
                overlap = frozenset(d for d, files in holders.items() if files)
                if not overlap:
                    counted.append(name)
                    for d in devices:
                        owners.setdefault(d, []).append((run.file, start, end))
                    continue
                others = sorted({f for d in overlap for f in holders[d]})
                dups += others
                if overlap == devices:
                    excluded[name] = "duplicate: measured by " + ", ".join(os.path.basename(o) for o in others)
                else:
                    missing = sorted(devices - overlap)
                    excluded[name] = (
                        "partly measured by " + ", ".join(os.path.basename(o) for o in others)
                        + f"; not counted, so {', '.join(missing)} of this log are missing from the totals"
                    )
                    notes.append(
                        f"job {job} on {host}: {run.name} measured {name} devices that overlap only partly with "
                        f"{', '.join(os.path.basename(o) for o in others)}; its {name} energy is left out "
                        f"(devices not counted anywhere: {', '.join(missing)})"
                    )
            contribution = _contribution(run, counted, excluded, dups)
            if contribution.counted != "all":
                merged += 1
            if contribution.counted == "part":
                notes.append(
                    f"{run.name}: {', '.join(sorted(excluded))} counted from another log of job {job} on {host}; "
                    "its CO2eq is scaled by the share of its energy counted"
                )
            by_file[run.file] = contribution
        if merged:
            notes.append(
                f"job {job} on {host}: {len(members)} logs; each device counted once "
                f"({merged} of them left out wholly or in part: their devices were already counted)"
            )
    notes += _overlap_notes(runs, by_file)
    return [by_file[r.file] for r in runs], notes


def _overlap_notes(runs: Sequence[RunLog], by_file: Mapping[str, Contribution]) -> list[str]:
    """Runs of no common job that ran on one host at once and both counted a machine device."""
    notes: list[str] = []
    hosts: dict[str, list[RunLog]] = {}
    for run in runs:
        hosts.setdefault(run.host, []).append(run)
    found = 0
    for host, members in hosts.items():
        members = sorted(members, key=lambda r: r.report.start_time)
        active: list[RunLog] = []
        for run in members:
            start = run.report.start_time
            active = [a for a in active if a.report.end_time > start]
            for other in active:
                if run.job is not None and run.job == other.job:
                    continue
                if _own_cgroup(run) and _own_cgroup(other):
                    continue  # each charged its own container or job, not the machine
                shared = sorted(
                    name
                    for name in by_file[run.file].components
                    if name in by_file[other.file].components
                    and not _process_share(run, name)
                    and not _process_share(other, name)
                    and _devices(name, run.report.components[name]) & _devices(name, other.report.components[name])
                )
                if not shared:
                    continue
                found += 1
                if found <= MAX_OVERLAP_NOTES:
                    seconds = (min(run.report.end_time, other.report.end_time) - start).total_seconds()
                    notes.append(
                        f"{other.name} and {run.name} ran on {host} at the same time for {seconds:.0f} s and both "
                        f"measured the whole machine's {', '.join(shared)}: that energy is in both "
                        "(use attribution='process' or a common job tag to avoid it)"
                    )
            active.append(run)
    if found > MAX_OVERLAP_NOTES:
        notes.append(f"... and {found - MAX_OVERLAP_NOTES} more pairs of runs that overlapped on one host")
    return notes


# -- totals and groups ----------------------------------------------------------------------


@frozen(kw_only=True)
class Totals(_Record):
    """The runs counted, added up. Figures use the :class:`~carbonkit.Report` names.

    :param runs: Run logs in this total.
    :param runs_counted: Logs that added something (not wholly duplicates).
    :param incomplete: Logs of runs that did not stop (``completed=False``): they count what
        they logged.
    :param hosts: Distinct hosts.
    :param duration_s: Run time summed over the logs counted (runs in parallel add up).
    :param wall_clock_s: From the earliest start to the latest end.
    :param it_energy_kwh: Energy of the devices, before PUE.
    :param energy_kwh: After PUE.
    :param co2eq_g: Grams CO2eq.
    :param intensity_g_per_kwh: ``co2eq_g / energy_kwh``.
    :param device_hours: Devices times hours, per component.
    :param components: Energy after PUE per component (kWh).
    :param intensity_sources: Each intensity source used and the energy (kWh, after PUE) it
        priced, largest first.
    """

    runs: int
    runs_counted: int
    incomplete: int
    hosts: int
    duration_s: float
    wall_clock_s: float
    it_energy_kwh: float
    energy_kwh: float
    co2eq_g: float
    intensity_g_per_kwh: float
    device_hours: Mapping[str, float] = field(converter=dict_of, factory=dict)
    components: Mapping[str, float] = field(converter=dict_of, factory=dict)
    intensity_sources: tuple[Mapping[str, Any], ...] = field(converter=tuple_of, default=())
    start_time: datetime | None = None
    end_time: datetime | None = None
    car_km: float = 0.0
    car_g_per_km: float = 0.0
    car_year: int | None = None
    car_source: str = ""
    car_url: str = ""


def _intensity_key(use: Any) -> tuple[Any, ...]:
    return (use.provider, use.source, use.kind, use.zone, use.year, getattr(use, "signal", "average"))


def totals(runs: Sequence[RunLog], contributions: Sequence[Contribution], car: CarFactor | None = None) -> Totals:
    """Add up ``contributions`` (of ``runs``, in the same order).

    :param car: The car factor for the equivalent (default: the latest year shipped).
    """
    car = car or car_factor()
    it_kwh = kwh = grams = duration = 0.0
    device_hours: dict[str, float] = {}
    components: dict[str, float] = {}
    sources: dict[tuple[Any, ...], float] = {}
    counted = 0
    for run, c in zip(runs, contributions):
        if c.counted == "none":
            continue
        counted += 1
        it_kwh += c.it_energy_kwh
        kwh += c.energy_kwh
        grams += c.co2eq_g
        duration += c.duration_s
        for name, h in c.device_hours.items():
            device_hours[name] = device_hours.get(name, 0.0) + h
        for name in c.components:
            components[name] = components.get(name, 0.0) + run.report.components[name].energy_kwh
        for use in run.report.intensity.used:
            key = _intensity_key(use)
            sources[key] = sources.get(key, 0.0) + c.energy_kwh * use.energy_share
    starts = [r.report.start_time for r in runs]
    ends = [r.report.end_time for r in runs]
    intensity_sources = [
        {"provider": k[0], "source": k[1], "kind": k[2], "zone": k[3], "year": k[4], "signal": k[5], "energy_kwh": v}
        for k, v in sorted(sources.items(), key=lambda kv: (-kv[1], str(kv[0])))
    ]
    return Totals(
        runs=len(runs),
        runs_counted=counted,
        incomplete=sum(1 for r in runs if not r.report.completed),
        hosts=len({r.host for r in runs}),
        duration_s=duration,
        wall_clock_s=(max(ends) - min(starts)).total_seconds() if runs else 0.0,
        it_energy_kwh=it_kwh,
        energy_kwh=kwh,
        co2eq_g=grams,
        intensity_g_per_kwh=grams / kwh if kwh > 0 else 0.0,
        device_hours=dict(sorted(device_hours.items())),
        components=dict(sorted(components.items())),
        intensity_sources=intensity_sources,
        start_time=min(starts) if runs else None,
        end_time=max(ends) if runs else None,
        car_km=grams / car.g_per_km,
        car_g_per_km=car.g_per_km,
        car_year=car.year,
        car_source=car.citation(),
        car_url=car.url,
    )


@frozen(kw_only=True)
class Group(_Record):
    """The runs sharing one value of a grouping key (``tag:KEY``, ``host`` or ``job``)."""

    key: str
    value: str | None
    files: tuple[str, ...] = field(converter=tuple_of)
    total: Totals


GROUP_KEYS = ("host", "job", "tag:KEY")


def check_group_by(key: str) -> str:
    """Validate a grouping key.

    :raises ConfigError: for anything but ``host``, ``job`` or ``tag:KEY``.
    """
    if key in ("host", "job") or (key.startswith("tag:") and len(key) > 4):
        return key
    raise ConfigError(f"--group-by must be 'host', 'job' or 'tag:KEY' (e.g. tag:project), got {key!r}")


def group_value(run: RunLog, key: str) -> str | None:
    """The value of grouping ``key`` for ``run`` (None when the run has none)."""
    if key == "host":
        return run.host
    if key == "job":
        return run.job
    return run.tags.get(key[4:])


@frozen(kw_only=True)
class Aggregate:
    """Runs read from logs, what each adds, the totals, the groups and notes.

    :meth:`to_dict` is the ``--json`` object: ``runs`` (each ``Report.to_dict()`` plus ``file``,
    ``tags``, ``host``, ``pid``, ``job``, ``rank`` and ``counted``), ``total``, ``groups``,
    ``notes`` and ``skipped`` (each file not read: ``file`` and ``reason``). Secret-looking
    values (a tag named ``token``, a password in a URL in a warning) are redacted in it.
    """

    runs: tuple[RunLog, ...] = field(converter=tuple_of)
    contributions: tuple[Contribution, ...] = field(converter=tuple_of)
    total: Totals
    groups: tuple[Group, ...] = field(converter=tuple_of, default=())
    notes: tuple[str, ...] = field(converter=tuple_of, default=())
    skipped: tuple[SkippedLog, ...] = field(converter=tuple_of, default=())

    def contribution(self, run: RunLog) -> Contribution:
        """What ``run`` adds to the totals."""
        return self.contributions[self.runs.index(run)]

    def run_dict(self, run: RunLog) -> dict[str, Any]:
        """One run as plain JSON: its report plus where it ran and what was counted."""
        data = run.report.to_dict()
        data.update(
            file=run.file,
            tags=run.tags,
            host=run.host,
            pid=run.pid,
            job=run.job,
            rank=run.rank,
            counted=self.contribution(run).to_dict(),
        )
        return data

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, secrets redacted."""
        return redact_mapping(
            {
                "runs": [self.run_dict(r) for r in self.runs],
                "total": self.total.to_dict(),
                "groups": [g.to_dict() for g in self.groups],
                "notes": list(self.notes),
                "skipped": [s.to_dict() for s in self.skipped],
            }
        )


def aggregate(
    runs: Sequence[RunLog],
    *,
    group_by: Sequence[str] = (),
    car: CarFactor | None = None,
    notes: Sequence[str] = (),
    skipped: Sequence[SkippedLog] = (),
) -> Aggregate:
    """Count each device once, add the runs up and group them.

    :param runs: Runs from :func:`load_runs` (or :func:`read_run`).
    :param group_by: Grouping keys: ``host``, ``job``, ``tag:KEY``.
    :param car: The car factor for the equivalent (default: the latest year shipped).
    :param notes: Notes to keep (e.g. files skipped while reading).
    :param skipped: The files that could not be read (:attr:`RunsRead.skipped`).
    """
    keys = [check_group_by(k) for k in group_by]
    car = car or car_factor()
    runs = list(runs)
    contributions, count_notes = count_once(runs)
    total = totals(runs, contributions, car)
    groups = []
    for key in keys:
        values: dict[str | None, list[int]] = {}
        for i, run in enumerate(runs):
            values.setdefault(group_value(run, key), []).append(i)
        for value in sorted(values, key=lambda v: (v is None, v or "")):
            idx = values[value]
            groups.append(
                Group(
                    key=key,
                    value=value,
                    files=[runs[i].file for i in idx],
                    total=totals([runs[i] for i in idx], [contributions[i] for i in idx], car),
                )
            )
    return Aggregate(
        runs=runs,
        contributions=contributions,
        total=total,
        groups=groups,
        notes=[*notes, *count_notes],
        skipped=skipped,
    )
