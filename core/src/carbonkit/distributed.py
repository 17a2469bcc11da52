"""Multi-process jobs: one measurer per host, and the job's total on global rank 0.

**Who measures.** In a job started by a launcher (torchrun, Slurm ``srun``, Open MPI ``mpirun``,
MPICH/Intel MPI, or anything that sets the usual rank variables, see :func:`detect`), every
process that creates a :class:`~carbonkit.Tracker` first tries to take an exclusive lock on a
file named after its host and job, in a folder local to the host (:func:`lock_dir`). The first
process to take it is the host's **measurer**: it reads the host's machine-wide devices (CPU
packages, DRAM, GPUs) for as long as its tracker runs. Every other process of the job on that
host is an **observer**: it records its epochs and measures nothing. The lock is held with
``fcntl.flock`` on an open file: the kernel releases it when the measurer's tracker stops or
its process dies, however it dies. No daemon is needed and the choice does not depend on which
rank starts first: a job whose local rank 0 never creates a tracker is still measured once.

**The job's total.** When ``torch.distributed`` is initialised, ``stop()`` on global rank 0
returns the whole job's report (:func:`combine`): each host's figures come from its measurer,
priced with that host's own location and intensity, and are added up; the epochs are rank 0's.
The figures travel through the key-value store of the job's default process group (the store
every rank already used to find the others): each process running a tracker counts itself
there once, each rank writes one key at ``stop()`` without waiting for anyone, and rank 0 waits
for the keys of the processes counted until its ``stop()`` deadline. No
collective operation is issued, so the job's own collectives are never interleaved with ours,
nothing stays pending on the job's process group, and a rank that never reaches ``stop()``
costs rank 0 one bounded wait. Without ``torch.distributed``, or when a rank did not answer in
time, rank 0 makes the same total from the run logs in a shared ``log_dir`` (as ``carbonkit
report --group-by job`` does); without a ``log_dir`` it returns its own host's report and a
warning. ``Report.job_total`` says which way it was made.

Importing this module never imports torch; torch is used only when the program has already
imported it (``"torch" in sys.modules``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from .errors import ConfigError
from .records import METHODS, ComponentReport, EpochRecord, HostReport, IntensityProvenance, IntensityUse, Report

__all__ = [
    "HOST_VARIABLE",
    "LOCK_DIR_VARIABLE",
    "ROLE_VARIABLE",
    "HostLock",
    "JobContext",
    "combine",
    "detect",
    "job_from_logs",
    "lock_dir",
]

#: Overrides the host name as the host's identity (containers that share one host).
HOST_VARIABLE = "CARBONKIT_HOST"
#: The folder where the per-(host, job) lock files live; it must be shared by the processes of
#: one host (and by no other host).
LOCK_DIR_VARIABLE = "CARBONKIT_LOCK_DIR"
#: ``measurer``, ``observer`` or ``auto`` (the default): force this process's role.
ROLE_VARIABLE = "CARBONKIT_ROLE"

ROLES = ("measurer", "observer")
#: Prefix of the store keys carbonkit writes in the job's process-group store.
STORE_PREFIX = "carbonkit"
#: How often rank 0 looks for the other ranks' run logs while it waits for them.
LOG_POLL_S = 0.05


def _int(env: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        value = (env.get(name) or "").strip()
        if value.isdigit():
            return int(value)
    return None


@frozen(kw_only=True)
class JobContext:
    """Where this process stands in a multi-process job, as its launcher describes it.

    :param launcher: ``"torchrun"``, ``"slurm"``, ``"openmpi"``, ``"pmi"`` or None.
    :param job: The job id (the ``job`` tag, ``SLURM_JOB_ID``, ``TORCHELASTIC_RUN_ID`` unless
        ``"none"``, ``MASTER_ADDR:MASTER_PORT``, ``PMIX_NAMESPACE``), None when unknown.
    :param rank: Global rank; ``local_rank``: rank on this host.
    :param world_size: Number of processes in the job; ``local_world_size`` on this host.
    :param host: This host's identity: ``CARBONKIT_HOST``, else the host name.
    :param host_source: ``"CARBONKIT_HOST"`` or ``"host name"``.
    :param lock_key: What the host lock is named after: the job id (with the Slurm step), else
        the launcher's per-host process (the parent of every rank on the host).
    """

    launcher: str | None
    job: str | None
    rank: int | None
    local_rank: int | None
    world_size: int | None
    local_world_size: int | None
    host: str
    host_source: str
    lock_key: str

    @property
    def multi_process(self) -> bool:
        """Whether the launcher started more than one process for this job."""
        return (self.world_size or 1) > 1

    def header(self) -> dict[str, Any]:
        """The fields the run-log header records."""
        return {
            "job": self.job,
            "rank": self.rank,
            "local_rank": self.local_rank,
            "world_size": self.world_size,
        }


def detect(tags: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None) -> JobContext:
    """Read the job, ranks and host identity from the launcher's variables.

    torchrun: ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``,
    ``TORCHELASTIC_RUN_ID`` (its default ``"none"`` is no id: then ``MASTER_ADDR:MASTER_PORT``).
    Slurm: ``SLURM_JOB_ID``, ``SLURM_STEP_ID``, ``SLURM_PROCID``, ``SLURM_LOCALID``,
    ``SLURM_NTASKS``. Open MPI: ``OMPI_COMM_WORLD_RANK``, ``_LOCAL_RANK``, ``_SIZE``,
    ``_LOCAL_SIZE``, ``PMIX_NAMESPACE``. MPICH, Intel MPI and other PMI launchers: ``PMI_RANK``,
    ``PMI_SIZE``, ``MPI_LOCALRANKID``, ``MPI_LOCALNRANKS``.

    :raises ConfigError: when ``CARBONKIT_HOST`` is set but blank.
    """
    env = os.environ if environ is None else environ
    tags = tags or {}
    launcher: str | None = None
    if "TORCHELASTIC_RUN_ID" in env or ("RANK" in env and "WORLD_SIZE" in env):
        launcher = "torchrun"
    elif "OMPI_COMM_WORLD_RANK" in env:
        launcher = "openmpi"
    elif "SLURM_PROCID" in env and "SLURM_JOB_ID" in env:
        launcher = "slurm"
    elif "PMI_RANK" in env:
        launcher = "pmi"
    job = (tags.get("job") or "").strip() or (env.get("SLURM_JOB_ID") or "").strip() or None
    if job is None:
        run_id = (env.get("TORCHELASTIC_RUN_ID") or "").strip()
        if run_id and run_id != "none":
            job = run_id
        elif env.get("MASTER_ADDR") and env.get("MASTER_PORT") and launcher == "torchrun":
            job = f"{env['MASTER_ADDR']}:{env['MASTER_PORT']}"
        elif env.get("PMIX_NAMESPACE"):
            job = env["PMIX_NAMESPACE"].strip() or None
    rank = _int(env, "RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "PMI_RANK")
    local_rank = _int(env, "LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID")
    world = _int(env, "WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS", "PMI_SIZE")
    local_world = _int(env, "LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")
    raw_host = env.get(HOST_VARIABLE)
    if raw_host is not None:
        host = raw_host.strip()
        if not host or any(c in host for c in "\n\r\t"):
            raise ConfigError(
                f"{HOST_VARIABLE}={raw_host!r} is not a host name: set it to the name every process of one "
                "host shares (for containers on one machine), or unset it to use the host name"
            )
        host_source = HOST_VARIABLE
    else:
        host, host_source = socket.gethostname(), "host name"
    step = (env.get("SLURM_STEP_ID") or "").strip()
    if job is not None:
        lock_key = f"{job}.{step}" if step and job == (env.get("SLURM_JOB_ID") or "").strip() else job
    else:
        lock_key = f"ppid-{os.getppid()}"  # every rank of a host is a child of one launcher process
    return JobContext(
        launcher=launcher,
        job=job,
        rank=rank,
        local_rank=local_rank,
        world_size=world,
        local_world_size=local_world,
        host=host,
        host_source=host_source,
        lock_key=lock_key,
    )


def lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of the host locks: ``CARBONKIT_LOCK_DIR``, else ``$XDG_RUNTIME_DIR/carbonkit``,
    else ``carbonkit-locks-<uid>`` in the temporary folder (``/tmp``)."""
    env = os.environ if environ is None else environ
    given = (env.get(LOCK_DIR_VARIABLE) or "").strip()
    if given:
        return Path(given)
    runtime = (env.get("XDG_RUNTIME_DIR") or "").strip()
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return Path(runtime) / "carbonkit"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"carbonkit-locks-{uid}"


class HostLock:
    """The measurer's lock for one (host, job): taken or not, never waited for."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def try_take(cls, folder: Path, host: str, key: str) -> HostLock:
        """Try once to take the lock; :attr:`held` says whether this process got it.

        :raises OSError: when the folder cannot be created or the file cannot be opened.
        """
        import fcntl

        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{host}-{key}")[:80]
        digest = hashlib.sha256(f"{host}\0{key}".encode()).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{readable}-{digest}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return cls(path, None)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Let the lock go (the file stays: removing it could race with a process taking it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock


def choose_role(ctx: JobContext, environ: Mapping[str, str] | None = None) -> tuple[str | None, HostLock | None, str]:
    """Decide this process's role: ``(role, lock, why)``; role None outside a multi-process job.

    :raises ConfigError: for a ``CARBONKIT_ROLE`` other than ``measurer``, ``observer``, ``auto``.
    """
    env = os.environ if environ is None else environ
    forced = (env.get(ROLE_VARIABLE) or "").strip().lower()
    if forced not in ("", "auto", *ROLES):
        raise ConfigError(f"{ROLE_VARIABLE}={env.get(ROLE_VARIABLE)!r}: use 'measurer', 'observer' or 'auto'")
    if forced in ROLES:
        return forced, None, f"{ROLE_VARIABLE}={forced}"
    if not ctx.multi_process:
        return None, None, "one process"
    folder = lock_dir(env)
    try:
        lock = HostLock.try_take(folder, ctx.host, ctx.lock_key)
    except (OSError, ImportError) as exc:  # ImportError: no fcntl (Windows)
        return "measurer", None, (
            f"the host lock in {folder} could not be used ({getattr(exc, 'strerror', None) or exc}): this process "
            "measures, and "
            f"other processes of the job on {ctx.host} may too; set {LOCK_DIR_VARIABLE} to a writable folder"
        )
    if lock.held:
        return "measurer", lock, "the first of the job's processes on this host to take the host lock"
    return "observer", None, "another process of the job on this host holds the host lock"


# -- the exchange through the process group's store ------------------------------------------------


def torch_group() -> tuple[int, int, Any] | None:
    """``(rank, world_size, store)`` of an initialised default process group, else None.

    torch is looked up in ``sys.modules`` only: a program that did not import it pays nothing.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()):
            return None
        store = dist.distributed_c10d._get_default_store()
        return int(dist.get_rank()), int(dist.get_world_size()), store
    except Exception:
        return None


def _attempt(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return f"{STORE_PREFIX}/{env.get('TORCHELASTIC_RESTART_COUNT', '0')}"


class _Registration:
    """Whether this process has told the store that it runs trackers (once per process)."""

    done: set[str] = set()
    lock = threading.Lock()


def register(store: Any, environ: Mapping[str, str] | None = None) -> bool:
    """Count this process among the job's processes that run trackers (once; blocking: call it
    off the training thread). Rank 0 waits only for the figures of processes counted here, so a
    job that tracks on rank 0 alone never makes it wait. Returns whether it counted now."""
    root = _attempt(environ)
    with _Registration.lock:
        if root in _Registration.done:
            return False
        _Registration.done.add(root)
    store.add(f"{root}/active", 1)
    return True


def registered(environ: Mapping[str, str] | None = None) -> bool:
    with _Registration.lock:
        return _attempt(environ) in _Registration.done


class StoreExchange:
    """Every rank's part of the job report, through the store of the job's process group.

    Keys are under ``carbonkit/<attempt>/<n>/``: ``attempt`` is torchrun's restart count, ``n``
    counts the trackers this process stopped in the job (each rank stops its trackers in the same
    order), so two trackers or a restarted job never read each other's figures. Each rank takes a
    number from the counter ``<n>/count`` and writes its part as ``<n>/part/<number>``; rank 0
    waits for as many parts as ``carbonkit/<attempt>/active`` counts processes running trackers
    (itself excluded).
    """

    _counter = 0
    _counter_lock = threading.Lock()

    def __init__(self, store: Any, rank: int, world_size: int, environ: Mapping[str, str] | None = None) -> None:
        with StoreExchange._counter_lock:
            StoreExchange._counter += 1
            n = StoreExchange._counter
        self.store = store
        self.rank = rank
        self.world_size = world_size
        self.environ = environ
        self.root = _attempt(environ)
        self.prefix = f"{self.root}/{n}"

    def post(self, part: Mapping[str, Any]) -> None:
        """Write this rank's part (returns at once; the store holds it for rank 0)."""
        register(self.store, self.environ)
        number = int(self.store.add(f"{self.prefix}/count", 1))
        self.store.set(f"{self.prefix}/part/{number}", json.dumps(part, allow_nan=False))

    def collect(
        self, deadline: float, clock: Callable[[], float] = time.monotonic
    ) -> tuple[dict[int, dict[str, Any]], int]:
        """Rank 0: wait until ``deadline`` for the part of every other process that runs trackers;
        return the parts that came, by rank, and how many were expected."""
        active = int(self.store.add(f"{self.root}/active", 0))
        expected = max(active - (1 if registered(self.environ) else 0), 0)
        keys = [f"{self.prefix}/part/{i}" for i in range(1, expected + 1)]
        left = deadline - clock()
        if keys and left > 0:
            try:
                self.store.wait(keys, timedelta(seconds=left))
            except Exception:  # noqa: S110 - a timeout: take what came
                pass
        # Parts beyond those expected (a process that registered late) are read too.
        posted = int(self.store.add(f"{self.prefix}/count", 0))
        parts: dict[int, dict[str, Any]] = {}
        for i in range(1, max(expected, posted) + 1):
            key = f"{self.prefix}/part/{i}"
            try:
                if not self.store.check([key]):
                    continue
                part = json.loads(self.store.get(key))
                parts[int(part["rank"])] = part
            except Exception:  # noqa: S112 - a part that cannot be read is a missing rank
                continue
            try:
                self.store.delete_key(key)
            except Exception:  # noqa: S110 - leaving a key behind harms nobody
                pass
        return parts, expected


def part_of(report: Report, ctx: JobContext, role: str | None, rank: int, units: float = 0.0) -> dict[str, Any]:
    """What one rank sends rank 0: where it ran, its role, its report when it measured, and the
    functional units it counted."""
    return {
        "rank": rank,
        "host": ctx.host,
        "role": role,
        "report": report.to_dict() if role != "observer" else None,
        "units": units,
    }


def job_units(own_units: float, parts: Mapping[int, Mapping[str, Any]]) -> float:
    """The job's functional units: every rank's count added up."""
    total = own_units
    for part in parts.values():
        value = part.get("units")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            total += float(value)
    return total


# -- adding hosts up ---------------------------------------------------------------------------


def host_report(report: Report, host: str, rank: int | None, ranks: Sequence[int]) -> HostReport:
    """One host's figures from the report of the process that measured it."""
    return HostReport(
        host=host,
        rank=rank,
        ranks=sorted(set(ranks)),
        start_time=report.start_time,
        end_time=report.end_time,
        duration_s=report.duration_s,
        it_energy_kwh=report.it_energy_kwh,
        energy_kwh=report.energy_kwh,
        co2eq_g=report.co2eq_g,
        pue=report.pue,
        intensity_g_per_kwh=report.intensity_g_per_kwh,
        location=report.location,
        intensity=report.intensity,
        components=report.components,
        completed=report.completed,
    )


def _epoch_energy(host: HostReport, epochs: Sequence[EpochRecord], host_epochs: Sequence[EpochRecord] | None,
                  start_wall: float) -> tuple[list[float], bool]:
    """This host's IT kWh in each of rank 0's epochs, and whether it was measured per epoch.

    The host's measurer marks the same epochs as rank 0 in a data-parallel job: when it recorded
    as many, epoch ``i`` is its epoch ``i`` (measured). Otherwise the host's energy is spread
    evenly over its run and each epoch gets the part of its span it covers (estimated).
    """
    if host_epochs is not None and len(host_epochs) == len(epochs):
        return [e.it_energy_kwh for e in host_epochs], True
    h0 = host.start_time.timestamp()
    h1 = host.end_time.timestamp()
    span = h1 - h0
    out = []
    for e in epochs:
        a, b = start_wall + e.start_s, start_wall + e.end_s
        overlap = max(0.0, min(b, h1) - max(a, h0))
        out.append(host.it_energy_kwh * overlap / span if span > 0 else 0.0)
    return out, False


def combine(
    own: Report,
    hosts: Sequence[tuple[HostReport, Sequence[EpochRecord] | None]],
    *,
    made_by: str,
    job: str | None,
    warnings: Sequence[str] = (),
) -> Report:
    """The job's report on rank 0: its own report (epochs, tags, prediction settings) with every
    host's figures added up.

    Each host is priced with its own intensity (its measurer's report already is); energy, CO2eq
    and components are summed, device labels prefixed with the host (``"a/gpu0 ..."``), and the
    epochs are rank 0's, each with the energy of every host in it. ``sci`` is left to the
    caller (it needs every rank's units).
    """
    notes = list(warnings)
    it_kwh = sum(h.it_energy_kwh for h, _ in hosts)
    kwh = sum(h.energy_kwh for h, _ in hosts)
    grams = sum(h.co2eq_g for h, _ in hosts)
    components: dict[str, ComponentReport] = {}
    for h, _ in hosts:
        for name, c in h.components.items():
            prefixed = [f"{h.host}/{d}" for d in c.devices]
            prev = components.get(name)
            if prev is None:
                components[name] = attrs.evolve(c, devices=prefixed, details=[f"{h.host}: {d}" for d in c.details])
                continue
            method = max(prev.method, c.method, key=METHODS.index)
            machine = None
            if prev.machine_it_energy_kwh is not None and c.machine_it_energy_kwh is not None:
                machine = prev.machine_it_energy_kwh + c.machine_it_energy_kwh
            components[name] = ComponentReport(
                energy_kwh=prev.energy_kwh + c.energy_kwh,
                it_energy_kwh=prev.it_energy_kwh + c.it_energy_kwh,
                devices=[*prev.devices, *prefixed],
                method=method,
                sources=sorted({*prev.sources, *c.sources}),
                machine_it_energy_kwh=machine,
                details=[*prev.details, *(f"{h.host}: {d}" for d in c.details)],
            )
    # Intensity provenance: every source used on any host, weighted by the energy it priced.
    uses: dict[tuple[Any, ...], list[float]] = {}
    for h, _ in hosts:
        for u in h.intensity.used:
            key = (u.provider, u.source, u.kind, u.zone, u.year)
            acc = uses.setdefault(key, [0.0, 0.0])
            acc[0] += u.energy_share * h.energy_kwh
            acc[1] += u.energy_share * h.energy_kwh * u.mean_g_per_kwh
    used = [
        IntensityUse(provider=k[0], source=k[1], kind=k[2], zone=k[3], year=k[4],
                     energy_share=v[0] / kwh if kwh > 0 else 0.0, mean_g_per_kwh=v[1] / v[0] if v[0] > 0 else 0.0)
        for k, v in sorted(uses.items(), key=lambda kv: -kv[1][0])
    ]
    zones = sorted({h.location for h, _ in hosts}) or [own.location]
    location = zones[0] if len(zones) == 1 else ",".join(zones)
    fallbacks = [f for h, _ in hosts for f in h.intensity.fallbacks]
    intensity = IntensityProvenance(zone=location, provider=own.intensity.provider, used=used, fallbacks=fallbacks)
    # Epochs: rank 0's times, every host's energy.
    start_wall = own.start_time.timestamp()
    epochs = list(own.epochs)
    if epochs and hosts:
        per_host = [_epoch_energy(h, epochs, he, start_wall) for h, he in hosts]
        estimated = [h.host for (h, _), (_, measured) in zip(hosts, per_host) if not measured]
        if estimated:
            notes.append(
                f"epoch energy of {', '.join(estimated)}: its measurer did not mark the same epochs as rank 0, so "
                "its energy is spread evenly over its run (estimated)"
            )
        new = []
        for i, e in enumerate(epochs):
            e_it = sum(ph[0][i] for ph in per_host)
            e_kwh = sum(ph[0][i] * h.pue for (h, _), ph in zip(hosts, per_host))
            e_g = sum(ph[0][i] * h.pue * h.intensity_g_per_kwh for (h, _), ph in zip(hosts, per_host))
            new.append(attrs.evolve(e, it_energy_kwh=e_it, energy_kwh=e_kwh, co2eq_g=e_g))
        epochs = new
    prediction = own.prediction
    if prediction is not None and epochs and prediction.based_on > 0:
        base = epochs[: prediction.based_on]
        mean_it = sum(e.it_energy_kwh for e in base) / len(base)
        p_it = mean_it * prediction.epochs
        ratio = kwh / it_kwh if it_kwh > 0 else own.pue
        g = grams / kwh if kwh > 0 else 0.0
        prediction = attrs.evolve(prediction, it_energy_kwh=p_it, energy_kwh=p_it * ratio, co2eq_g=p_it * ratio * g,
                                  intensity_g_per_kwh=g)
    starts = [own.start_time, *(h.start_time for h, _ in hosts)]
    ends = [own.end_time, *(h.end_time for h, _ in hosts)]
    pues = sorted({h.pue for h, _ in hosts})
    pue = pues[0] if len(pues) == 1 else (kwh / it_kwh if it_kwh > 0 else own.pue)
    pue_source = own.pue_source if len(pues) <= 1 else "per host: " + ", ".join(f"{h.host} {h.pue:g}" for h, _ in hosts)
    car_g = own.car_g_per_km
    all_warnings = list(own.warnings)
    for h_warn in notes:
        if h_warn not in all_warnings:
            all_warnings.append(h_warn)
    return attrs.evolve(
        own,
        start_time=min(starts),
        end_time=max(ends),
        duration_s=(max(ends) - min(starts)).total_seconds(),
        it_energy_kwh=it_kwh,
        energy_kwh=kwh,
        co2eq_g=grams,
        pue=pue,
        pue_source=pue_source,
        intensity_g_per_kwh=grams / kwh if kwh > 0 else 0.0,
        location=location,
        intensity=intensity,
        components=components,
        epochs=epochs,
        prediction=prediction,
        warnings=all_warnings,
        completed=own.completed and all(h.completed for h, _ in hosts),
        car_km=grams / car_g if car_g > 0 else 0.0,
        hosts=[h for h, _ in hosts],
        job_total=made_by,
        job=job,
        sci=None,
    )


def from_parts(own: Report, ctx: JobContext, own_role: str | None, own_rank: int,
               parts: Mapping[int, Mapping[str, Any]], world_size: int) -> Report:
    """Rank 0: the job report from every rank's part (its own included)."""
    everyone: dict[int, Mapping[str, Any]] = dict(parts)
    everyone[own_rank] = {"rank": own_rank, "host": ctx.host, "role": own_role, "report": None}
    by_host: dict[str, list[int]] = {}
    measured: dict[str, tuple[int, Report]] = {}
    notes: list[str] = []
    for r in sorted(everyone):
        part = everyone[r]
        host = str(part.get("host"))
        by_host.setdefault(host, []).append(r)
        if part.get("role") == "observer":
            continue
        report = own if r == own_rank else Report.from_dict(part["report"])
        if report.attribution == "process":  # each process measured its own share: all count
            host = f"{host} (rank {r})"
            by_host.setdefault(host, []).append(r)
        if host in measured:  # two measurers on one host: forced roles or an unusable lock
            notes.append(f"ranks {measured[host][0]} and {r} both measured {host}: only rank {measured[host][0]} "
                         "is counted")
            continue
        measured[host] = (r, report)
    unmeasured = [h for h in by_host if h not in measured]
    hosts = [
        (host_report(rep, host, rank, by_host[host]), rep.epochs)
        for host, (rank, rep) in sorted(measured.items())
    ]
    if unmeasured:
        notes.append(f"no rank of the job measured {', '.join(sorted(unmeasured))} (its measurer is not a rank of "
                     "the process group, or its tracker was not running at stop())")
    silent = world_size - len(everyone)
    if silent > 0:
        notes.append(f"{silent} of the job's {world_size} processes run no tracker: a host is counted only when "
                     "one of its processes does")
    return combine(own, hosts, made_by="process group", job=ctx.job, warnings=notes)


def own_host_only(own: Report, ctx: JobContext, own_rank: int, parts: Mapping[int, Mapping[str, Any]],
                  why: str) -> Report:
    """Rank 0's own host's report (its measurer's figures when another rank measured it)."""
    source: tuple[int, Report] | None = (own_rank, own) if own.role != "observer" else None
    ranks = [own_rank]
    for r, part in parts.items():
        if part.get("host") != ctx.host:
            continue
        ranks.append(r)
        if source is None and part.get("role") != "observer" and part.get("report"):
            source = (r, Report.from_dict(part["report"]))
    hosts = [] if source is None else [(host_report(source[1], ctx.host, source[0], ranks), source[1].epochs)]
    notes = [why]
    if source is None:
        notes.append(f"the measurer of {ctx.host} did not answer either: the report has no energy")
    return combine(own, hosts, made_by="this host only", job=ctx.job, warnings=notes)


# -- the total from run logs -------------------------------------------------------------------


def job_from_logs(own: Report, ctx: JobContext, log_dir: Path, deadline: float, *, own_log: Path | None = None,
                  clock: Callable[[], float] = time.monotonic, why: str = "") -> Report | None:
    """Rank 0: the job report from the run logs of this job in ``log_dir``; None when none found.

    Waits (until ``deadline``) for the logs of ``world_size`` processes of this job to hold their
    final report; a log still without one then counts what it recorded (``completed=False``),
    as ``carbonkit report`` does. Each host's figures come from the log that measured it.
    """
    from .reports.aggregate import count_once, read_runs

    if ctx.job is None:
        return None
    want = ctx.world_size or 1
    wait = threading.Event()
    runs: list[Any] = []
    while True:
        try:
            found = read_runs([log_dir])
            runs = [r for r in found.runs if r.job == ctx.job and r.report.start_time <= own.end_time
                    and r.report.end_time >= own.start_time - timedelta(days=1)]
        except Exception:
            runs = []
        done = [r for r in runs if r.report.completed]
        if len(done) >= want or clock() >= deadline:
            break
        wait.wait(min(LOG_POLL_S, max(deadline - clock(), 0.0)))
    if not runs:
        return None
    notes = [why] if why else []
    incomplete = [r for r in runs if not r.report.completed]
    if incomplete:
        notes.append(f"{len(incomplete)} of the job's run logs had no final report by rank 0's stop(): they count "
                     "what they recorded")
    if len(runs) < want:
        notes.append(f"{len(runs)} run logs of job {ctx.job} in the log folder for {want} processes")
    contributions, count_notes = count_once(runs)
    notes += count_notes
    by_host: dict[str, list[tuple[Any, Any]]] = {}
    for run, c in zip(runs, contributions):
        by_host.setdefault(run.host, []).append((run, c))
    hosts = []
    for host, members in sorted(by_host.items()):
        counted = [(run, c) for run, c in members if c.counted != "none" and run.report.components]
        if not counted:
            continue
        counted.sort(key=lambda rc: (rc[0].rank if rc[0].rank is not None else 1 << 30))
        main, _ = counted[0]
        rep = main.report
        if len(counted) > 1:
            # Several logs measured parts of this host (process attribution, or no lock): add them up.
            comps: dict[str, ComponentReport] = {}
            for run, c in counted:
                for name in c.components:
                    comp = run.report.components[name]
                    prev = comps.get(name)
                    comps[name] = comp if prev is None else attrs.evolve(
                        prev, energy_kwh=prev.energy_kwh + comp.energy_kwh,
                        it_energy_kwh=prev.it_energy_kwh + comp.it_energy_kwh,
                        devices=[*prev.devices, *comp.devices], sources=sorted({*prev.sources, *comp.sources}))
            rep = attrs.evolve(
                rep, components=comps,
                it_energy_kwh=sum(c.it_energy_kwh for _, c in counted),
                energy_kwh=sum(c.energy_kwh for _, c in counted),
                co2eq_g=sum(c.co2eq_g for _, c in counted),
                epochs=(),
            )
        ranks = [r.rank for r, _ in members if r.rank is not None]
        hosts.append((host_report(rep, host, main.rank, ranks), rep.epochs if len(counted) == 1 else None))
    if own_log is not None and not any(str(own_log) == r.file for r in runs):
        notes.append("rank 0's own run log was not among them")
    return combine(own, hosts, made_by="run logs", job=ctx.job, warnings=notes)

