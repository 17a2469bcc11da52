"""Which GPUs to measure: NVML's device list filtered as ``CUDA_VISIBLE_DEVICES`` filters CUDA's.

CUDA's rules, as the CUDA C Programming Guide ("CUDA Environment Variables") documents them and
as ``torch.cuda`` (``_parse_visible_devices``, ``_transform_uuid_to_ordinals``) reproduces them:

- unset: every GPU; set but empty: no GPU;
- a comma-separated list, enumerated in the order given, of integer indices, of ``GPU-`` UUIDs
  (a prefix is enough when it matches exactly one GPU), or of ``MIG-`` UUIDs. The first entry
  decides which of the three kinds the list holds;
- the first invalid entry ends the list: a negative or out-of-range index, an entry of another
  kind, an unknown or ambiguous UUID. The entries before it are used (``0,2,-1,1`` gives 0 and 2);
- an index is read like C's ``strtoul`` after trimming spaces (``"1gpu"`` is 1);
- the same GPU listed twice hides every GPU.

CUDA numbers GPUs ``FASTEST_FIRST`` unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; NVML (and
``nvidia-smi``) number them by PCI bus id. Indices are read as NVML indices; they name the same
GPUs as CUDA's when ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` or when every GPU is the same model.

In a Slurm job where ``CUDA_VISIBLE_DEVICES`` is unset (Slurm sets it for job steps with GPUs,
but a script may unset it), ``SLURM_JOB_GPUS`` chooses: see :func:`_slurm`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from attrs import field, frozen

_logger = logging.getLogger(__name__)

_INDEX = re.compile(r"[+-]?\d+")


def text(value: str | bytes) -> str:
    """Return an NVML string as ``str`` (older nvidia-ml-py releases return ``bytes``)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@frozen(kw_only=True)
class Gpu:
    """One physical GPU as NVML lists it.

    ``label`` is ``"gpu<NVML index> <name> (<first 12 characters of the UUID>)"``, e.g.
    ``"gpu0 NVIDIA H100 80GB HBM3 (GPU-8932f937)"``: the index is NVML's (``nvidia-smi``'s),
    not the CUDA ordinal inside this process.
    """

    index: int
    uuid: str
    name: str
    handle: Any = field(eq=False, repr=False)
    #: MIG device handles named in ``CUDA_VISIBLE_DEVICES`` (for the process filter).
    mig_handles: tuple[Any, ...] = field(default=(), eq=False, repr=False)

    @property
    def label(self) -> str:
        return f"gpu{self.index} {self.name} ({self.uuid[:12]})"


@frozen(kw_only=True)
class Selection:
    """The GPUs chosen, in order, and what to tell the user about the choice.

    When ``gpus`` is empty, ``reason``/``hint``/``warn`` say why, for an ``Unavailable`` note.
    """

    gpus: tuple[Gpu, ...]
    warnings: tuple[str, ...] = ()
    reason: str = ""
    hint: str = ""
    warn: bool = False


def list_gpus(nvml: ModuleType) -> tuple[list[Gpu], dict[int, str]]:
    """Return the readable GPUs in NVML order, and why each unreadable index cannot be read.

    :raises nvml.NVMLError: when NVML cannot count the GPUs.
    """
    gpus: list[Gpu] = []
    unreadable: dict[int, str] = {}
    for index in range(int(nvml.nvmlDeviceGetCount())):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            uuid = text(nvml.nvmlDeviceGetUUID(handle))
            name = text(nvml.nvmlDeviceGetName(handle))
        except nvml.NVMLError as err:
            unreadable[index] = f"NVML: {err}"
            continue
        gpus.append(Gpu(index=index, uuid=uuid, name=name, handle=handle))
    return gpus, unreadable


def select(
    gpus: Sequence[Gpu], unreadable: Mapping[int, str], nvml: ModuleType, environ: Mapping[str, str]
) -> Selection:
    """Apply ``CUDA_VISIBLE_DEVICES`` (from ``environ``) to NVML's GPUs."""
    raw = environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        notes = [f"gpu{i} cannot be read ({why}); it is not measured" for i, why in unreadable.items()]
        slurm = environ.get("SLURM_JOB_GPUS")
        if slurm is not None and slurm.strip():
            return _slurm(gpus, unreadable, slurm, notes)
        return Selection(gpus=tuple(gpus), warnings=tuple(notes))
    if not raw.strip():
        return Selection(
            gpus=(),
            reason="CUDA_VISIBLE_DEVICES is set but empty, so CUDA shows this process no GPU",
            hint="unset CUDA_VISIBLE_DEVICES, or list the GPUs this process uses, to measure them",
        )
    return _Parser(gpus=gpus, unreadable=unreadable, nvml=nvml, environ=environ, raw=raw).run()


def _slurm(gpus: Sequence[Gpu], unreadable: Mapping[int, str], raw: str, notes: list[str]) -> Selection:
    """The GPUs of a Slurm allocation when ``CUDA_VISIBLE_DEVICES`` is unset: ``SLURM_JOB_GPUS``
    lists the job's GPUs by their index on the node. Where the job's device cgroup hides the
    others (``ConstrainDevices=yes``), NVML sees exactly that many GPUs: all of them are the job's.
    Otherwise the indices are read as NVML indices (PCI bus order, as Slurm's ``AutoDetect=nvml``
    numbers them)."""
    ids: list[int] = []
    for entry in raw.split(","):
        entry = entry.strip()
        if not entry.isdigit():
            return Selection(gpus=tuple(gpus), warnings=(
                *notes, f"SLURM_JOB_GPUS={raw!r} is not a list of GPU indices; every GPU is measured"))
        ids.append(int(entry))
    if len(gpus) + len(unreadable) == len(ids):
        return Selection(gpus=tuple(gpus), warnings=tuple(notes))
    by_index = {g.index: g for g in gpus}
    chosen = tuple(by_index[i] for i in ids if i in by_index)
    missing = [i for i in ids if i not in by_index]
    if missing:
        notes = [*notes, f"SLURM_JOB_GPUS={raw!r} names GPU indices {missing} that NVML cannot read; not measured"]
    if not chosen:
        return Selection(gpus=(), warnings=tuple(notes), reason=f"none of SLURM_JOB_GPUS={raw!r} is a readable GPU",
                         hint="check that nvidia-smi lists the job's GPUs", warn=True)
    return Selection(gpus=chosen, warnings=tuple(notes))


class _Stop(Exception):
    """The entry being read is invalid: CUDA ignores it and every entry after it."""

    def __init__(self, why: str, *, quiet: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.quiet = quiet


class _Duplicate(Exception):
    """The entry names a GPU already listed: CUDA then shows no GPU at all."""


class _Parser:
    def __init__(
        self,
        *,
        gpus: Sequence[Gpu],
        unreadable: Mapping[int, str],
        nvml: ModuleType,
        environ: Mapping[str, str],
        raw: str,
    ) -> None:
        self.gpus = list(gpus)
        self.unreadable = unreadable
        self.nvml = nvml
        self.environ = environ
        self.raw = raw
        self.count = len(gpus) + len(unreadable)
        self.chosen: list[Gpu] = []
        self.mig: dict[int, list[Any]] = {}  # NVML index of a parent GPU -> its MIG handles
        self.notes: list[str] = []
        self.kind = "index"

    def run(self) -> Selection:
        entries = [entry.strip() for entry in self.raw.split(",")]
        first = entries[0]
        self.kind = "uuid" if first.startswith("GPU-") else "mig" if first.startswith("MIG-") else "index"
        read = {"uuid": self._uuid, "mig": self._mig, "index": self._index}[self.kind]
        seen: list[str] = []
        for position, entry in enumerate(entries):
            try:
                read(entry, seen)
            except _Duplicate as dup:
                return Selection(
                    gpus=(),
                    reason=f"CUDA_VISIBLE_DEVICES={self.raw!r} lists {dup} twice, so CUDA shows this "
                    "process no GPU",
                    hint="list each GPU once in CUDA_VISIBLE_DEVICES",
                    warn=True,
                )
            except _Stop as stop:
                return self._stopped(entries, position, stop)
        return self._done()

    # -- one reader per kind of list ------------------------------------------------------

    def _index(self, entry: str, seen: list[str]) -> None:
        match = _INDEX.match(entry)
        if match is None:
            if not seen:
                raise _Stop("is neither a GPU index nor a GPU-/MIG- UUID")
            raise _Stop("is not a GPU index (the list started with an index)")
        index = int(match.group())
        if index < 0:
            raise _Stop("is negative", quiet=True)  # the usual way to hide GPUs on purpose
        if index >= self.count:
            raise _Stop(f"is not a GPU index: this machine has {self.count} GPU(s)")
        if str(index) in seen:
            raise _Duplicate(f"GPU {index}")
        seen.append(str(index))
        if index in self.unreadable:
            self.notes.append(f"gpu{index} cannot be read ({self.unreadable[index]}); it is not measured")
            return
        self.chosen.append(next(g for g in self.gpus if g.index == index))

    def _uuid(self, entry: str, seen: list[str]) -> None:
        if not entry.startswith("GPU-"):
            raise _Stop("is not a GPU- UUID (the list started with one)")
        matches = [g for g in self.gpus if g.uuid.lower().startswith(entry.lower())]
        if not matches:
            raise _Stop("matches no GPU's UUID")
        if len(matches) > 1:
            names = ", ".join(g.uuid for g in matches)
            raise _Stop(f"is a prefix of {len(matches)} GPUs' UUIDs ({names})")
        gpu = matches[0]
        if gpu.uuid in seen:
            raise _Duplicate(gpu.uuid)
        seen.append(gpu.uuid)
        self.chosen.append(gpu)

    def _mig(self, entry: str, seen: list[str]) -> None:
        if not entry.startswith("MIG-"):
            raise _Stop("is not a MIG- UUID (the list started with one)")
        if entry in seen:
            raise _Duplicate(entry)
        seen.append(entry)
        handle = None
        if entry.startswith("MIG-GPU-"):
            # The format before driver R470: MIG-<parent GPU UUID>/<GPU instance>/<compute instance>.
            parent_uuid = entry[len("MIG-") :].split("/", 1)[0]
        else:
            try:
                handle = self.nvml.nvmlDeviceGetHandleByUUID(entry)
                parent = self.nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
                parent_uuid = text(self.nvml.nvmlDeviceGetUUID(parent))
            except self.nvml.NVMLError as err:
                raise _Stop(f"is not a MIG device NVML knows (NVML: {err})") from None
        gpu = next((g for g in self.gpus if g.uuid.lower() == parent_uuid.lower()), None)
        if gpu is None:
            raise _Stop(f"names a MIG device of an unknown GPU ({parent_uuid})")
        handles = self.mig.setdefault(gpu.index, [])
        if handle is not None:
            handles.append(handle)
        if all(g.index != gpu.index for g in self.chosen):
            self.chosen.append(gpu)  # two slices of one GPU: its energy is counted once

    # -- outcome --------------------------------------------------------------------------

    def _stopped(self, entries: list[str], position: int, stop: _Stop) -> Selection:
        ignored = ",".join(entries[position:])
        message = (
            f"CUDA_VISIBLE_DEVICES={self.raw!r}: entry {entries[position]!r} {stop.why}; CUDA stops "
            f"at the first invalid entry, so {ignored!r} is ignored"
        )
        if not self.chosen and stop.quiet:
            return Selection(
                gpus=(),
                reason=f"CUDA_VISIBLE_DEVICES={self.raw!r} starts with a negative index, which hides every GPU "
                "from CUDA",
                hint="unset CUDA_VISIBLE_DEVICES, or list the GPUs this process uses, to measure them",
            )
        if not self.chosen:
            return Selection(
                gpus=(),
                reason=f"{message}, which leaves no GPU",
                hint="fix CUDA_VISIBLE_DEVICES, or unset it to measure every GPU",
                warn=True,
            )
        if not stop.quiet:
            self.notes.append(message)
        return self._done()

    def _done(self) -> Selection:
        gpus = [
            Gpu(index=g.index, uuid=g.uuid, name=g.name, handle=g.handle, mig_handles=tuple(self.mig[g.index]))
            if g.index in self.mig
            else g
            for g in self.chosen
        ]
        if self.mig:
            labels = ", ".join(g.label for g in gpus if g.index in self.mig)
            self.notes.append(
                f"CUDA_VISIBLE_DEVICES names MIG devices; NVML measures the energy of the whole GPU "
                f"({labels}), shared by every MIG slice on it, including other users' work"
            )
        if self._order_may_differ(gpus):
            self.notes.append(
                f"CUDA_VISIBLE_DEVICES={self.raw!r} uses indices on a machine with different GPU models "
                f"({', '.join(sorted({g.name for g in self.gpus}))}): CUDA numbers GPUs fastest first "
                "unless CUDA_DEVICE_ORDER=PCI_BUS_ID, NVML by PCI bus id, so the GPUs measured "
                f"({', '.join(g.label for g in gpus)}) may not be the ones this process uses; "
                "set CUDA_DEVICE_ORDER=PCI_BUS_ID or list GPU UUIDs"
            )
        return Selection(gpus=tuple(gpus), warnings=tuple(self.notes))

    def _order_may_differ(self, chosen: Sequence[Gpu]) -> bool:
        if not chosen or self.kind != "index":
            return False
        if self.environ.get("CUDA_DEVICE_ORDER", "").strip() == "PCI_BUS_ID":
            return False
        if len({g.name for g in self.gpus}) < 2:
            return False  # one model: nothing to order by speed (observed: CUDA keeps PCI order)
        return {g.index for g in chosen} != {g.index for g in self.gpus}  # all of them: same set
