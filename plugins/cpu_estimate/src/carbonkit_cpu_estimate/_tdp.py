"""Processor model names: reading them, normalising them, and looking up their TDP.

The table ``data/cpu-tdp.csv`` (columns ``Name,TDP``; watts per processor package) was compiled
from vendor specification pages by the codecarbon project (MIT licence); see ``data/README.md``.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import math
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path

from attrs import field, frozen

__all__ = ["CpuInfo", "TdpMatch", "TdpTable", "normalise_model"]

_logger = logging.getLogger(__name__)

_MARKS = re.compile(r"\((?:r|tm|c)\)|®|™")
_AT_FREQUENCY = re.compile(r"@.*$")
_FREQUENCY = re.compile(r"\b\d+(?:\.\d+)?\s*[gm]hz\b")
# "with Radeon Graphics", "w/ Radeon 780M Graphics", "Radeon R7, 12 Compute Cores 4C+8G"
_GRAPHICS = re.compile(r"\s(?:(?:with|w/)\s|radeon\b).*$")
_CORE_COUNT = re.compile(r"\b(?:\d+|dual|triple|quad|six|eight|ten|twelve|sixteen)[- ]core\b")
_GENERATION = re.compile(r"\b\d+(?:st|nd|rd|th) gen\b")
_PARENTHESES = re.compile(r"\([^)]*\)")
_CORE2 = re.compile(r"\bcore2\b")
_SEPARATORS = re.compile(r"[\s,\-_/]+")
# "0": Intel names first-generation Xeon E5/E7 parts "E5-2680 0"; no table row uses a lone 0.
_NOISE_WORDS = frozenset({"cpu", "processor", "apu", "0"})

#: Words a model string may carry that its table entry lacks, without naming another chip:
#: vendor names, AMD family names (table rows such as ``6238`` are AMD Opteron model numbers)
#: and core-count words. Any other extra word rejects a fuzzy match.
_FAMILY_WORDS = frozenset(
    {
        "amd",
        "intel",
        "apple",
        "genuine",
        "opteron",
        "phenom",
        "athlon",
        "sempron",
        "turion",
        "ii",
        "dual",
        "triple",
        "quad",
        "core",
        "black",
        "edition",
    }
)
_CORE_COUNT_MARK = re.compile(r"x\d{1,2}")  # "X4" in "Phenom II X4 965": cores, not a model


def normalise_model(name: str) -> str:
    """Return a processor name reduced to the words that identify the model.

    Lower-cases; drops trademark marks, the clock frequency, integrated-graphics suffixes,
    core counts ("64-Core"), generation prefixes ("12th Gen"), parenthesised notes, the words
    "CPU", "Processor" and "APU" and a lone "0"; turns hyphens into spaces.

    >>> normalise_model("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz")
    'intel xeon e5 2686 v4'
    """
    text = name.lower()
    text = _MARKS.sub(" ", text)
    text = _AT_FREQUENCY.sub("", text)
    text = _FREQUENCY.sub(" ", text)
    text = _GRAPHICS.sub("", text)
    text = _CORE_COUNT.sub(" ", text)
    text = _GENERATION.sub(" ", text)
    text = _PARENTHESES.sub(" ", text)
    text = _CORE2.sub("core 2", text)
    words = [word for word in _SEPARATORS.split(text) if word and word not in _NOISE_WORDS]
    return " ".join(words)


def _vendor(words: Iterable[str], *, table: bool) -> str | None:
    words = set(words)
    for vendor in ("intel", "amd", "apple"):
        if vendor in words:
            return vendor
    if any(word.startswith("armv") for word in words):
        return "arm"
    # Table rows without a vendor word are all AMD parts (Opteron, Phenom, Athlon, A-series).
    return "amd" if table else None


def _has_digit(word: str) -> bool:
    return any(char.isdigit() for char in word)


def _model_numbers(words: Iterable[str]) -> frozenset[str]:
    return frozenset(w for w in words if _has_digit(w) and not _CORE_COUNT_MARK.fullmatch(w))


@frozen(kw_only=True)
class TdpMatch:
    """A table row matched to a processor name.

    :param name: The row's name as the table spells it.
    :param tdp_w: Its thermal design power, watts per processor package.
    :param exact: True when the normalised names are equal, False for a token match.
    """

    name: str
    tdp_w: float
    exact: bool


@frozen
class _Row:
    name: str
    tdp_w: float
    words: frozenset[str]
    numbers: frozenset[str]
    vendor: str | None


@frozen(kw_only=True)
class TdpTable:
    """Thermal design power by processor model name, matched conservatively.

    Build it with :meth:`load` (the shipped table) or :meth:`from_rows`.

    Matching, in order:

    1. exact: the normalised names are equal (see :func:`normalise_model`);
    2. token match: same vendor, the same set of model-number words (words with a digit:
       ``7b13`` never matches ``7b12``, ``e5 2686 v4`` never matches ``e5 2686``), every word of
       the row present in the name, and the name's other words only vendor, family or
       core-count words. Of several such rows the one with most words wins; a tie between
       different TDPs is no match.

    Rows whose TDP is not a positive number, rows naming an architecture rather than a model
    ("ARMv8 Processor"), and names that normalise alike with different TDPs are left out.
    """

    rows: tuple[_Row, ...] = field(repr=False)
    exact: Mapping[str, _Row] = field(repr=False)
    skipped: tuple[str, ...] = ()

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]]) -> TdpTable:
        """Build a table from ``(name, tdp)`` text pairs."""
        by_key: dict[str, list[_Row]] = {}
        skipped: list[str] = []
        for name, tdp_text in rows:
            try:
                tdp_w = float(tdp_text)
            except ValueError:
                skipped.append(f"{name} (TDP {tdp_text!r} is not a number)")
                continue
            if not (math.isfinite(tdp_w) and tdp_w > 0):
                skipped.append(f"{name} (TDP {tdp_text!r} is not positive)")
                continue
            key = normalise_model(name)
            words = key.split()
            row = _Row(name, tdp_w, frozenset(words), _model_numbers(words), _vendor(words, table=True))
            if row.vendor == "arm":
                skipped.append(f"{name} (an architecture, not a processor model)")
                continue
            by_key.setdefault(key, []).append(row)
        kept: dict[str, _Row] = {}
        for key, candidates in by_key.items():
            if len({row.tdp_w for row in candidates}) > 1:
                names = ", ".join(f"{row.name} ({row.tdp_w:g} W)" for row in candidates)
                skipped.append(f"{names} (same normalised name, different TDP)")
                continue
            kept[key] = candidates[0]
        return cls(rows=tuple(kept.values()), exact=kept, skipped=tuple(skipped))

    @classmethod
    def load(cls) -> TdpTable:
        """Return the shipped table (parsed once per process)."""
        return _shipped_table()

    @classmethod
    def for_model(cls, model_name: str) -> TdpTable:
        """Return the part of the shipped table that could match ``model_name``, built quickly.

        Normalising all ~4,900 shipped names costs ~80 ms, paid by every run's start. A row can
        only match by tokens if it has the name's model-number words, and exactly if it has all
        of the name's words; each such word is then a substring of the row's raw lower-cased
        name (normalising only lower-cases, removes text or splits words). So only the rows
        holding them are normalised. ``lookup`` gives the same answer as on :meth:`load`'s
        table (tested).
        """
        words = normalise_model(model_name).split() if model_name else []
        if not words:
            return cls.from_rows([])
        needed = _model_numbers(words) or frozenset(words)  # no model number: only an exact match
        rows = [(name, tdp) for name, tdp, lower in _shipped_rows() if all(n in lower for n in needed)]
        return cls.from_rows(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, model_name: str) -> TdpMatch | None:
        """Return the row matching ``model_name``, or None when none matches safely."""
        key = normalise_model(model_name)
        if not key:
            return None
        row = self.exact.get(key)
        if row is not None:
            return TdpMatch(name=row.name, tdp_w=row.tdp_w, exact=True)
        words = frozenset(key.split())
        numbers = _model_numbers(words)
        vendor = _vendor(words, table=False)
        if not numbers or vendor is None:
            return None
        candidates = [
            row
            for row in self.rows
            if row.numbers == numbers
            and row.vendor == vendor
            and row.words <= words
            and all(w in _FAMILY_WORDS or _CORE_COUNT_MARK.fullmatch(w) for w in words - row.words)
        ]
        if not candidates:
            return None
        best = max(len(row.words) for row in candidates)
        top = [row for row in candidates if len(row.words) == best]
        if len({row.tdp_w for row in top}) > 1:
            _logger.debug("%r matches several TDPs: %s", model_name, [(r.name, r.tdp_w) for r in top])
            return None
        return TdpMatch(name=top[0].name, tdp_w=top[0].tdp_w, exact=False)


@functools.lru_cache(maxsize=1)
def _shipped_rows() -> tuple[tuple[str, str, str], ...]:
    """The shipped rows as (name, TDP text, lower-cased name), parsed once."""
    text = resources.files(__package__).joinpath("data").joinpath("cpu-tdp.csv").read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    if [h.strip() for h in header] != ["Name", "TDP"]:
        raise ValueError(f"data/cpu-tdp.csv: expected the header Name,TDP, got {header!r}")
    return tuple((row[0], row[1], row[0].lower()) for row in reader if len(row) == 2)


@functools.lru_cache(maxsize=1)
def _shipped_table() -> TdpTable:
    return TdpTable.from_rows((name, tdp) for name, tdp, _ in _shipped_rows())


@frozen(kw_only=True)
class CpuInfo:
    """What the estimate needs to know about this machine's processors.

    Build it with :meth:`detect`.

    :param model_name: The processor's name as the system reports it ("" when unknown).
    :param sockets: Processor packages (distinct ``physical id`` values on Linux; 1 elsewhere).
    :param physical_cores: Physical cores over all packages.
    :param logical_cpus: Logical CPUs (hardware threads) over all packages.
    :param virtual_machine: True when the processor reports running under a hypervisor
        (the ``hypervisor`` flag in ``/proc/cpuinfo``).
    """

    model_name: str
    sockets: int = 1
    physical_cores: int = 1
    logical_cpus: int = 1
    virtual_machine: bool = False

    @classmethod
    def detect(
        cls,
        *,
        cpuinfo: Path = Path("/proc/cpuinfo"),
        system: str | None = None,
        cpu_count: Callable[..., int | None] | None = None,
    ) -> CpuInfo:
        """Read the processor's name, sockets, cores and threads from the system.

        Linux: ``/proc/cpuinfo`` ("model name", "physical id", "flags"). macOS: ``sysctl -n
        machdep.cpu.brand_string``. Windows: the registry's ``ProcessorNameString``. Elsewhere,
        or when these fail, :func:`platform.processor`. Cores come from ``psutil.cpu_count``.

        :param cpuinfo: The cpuinfo file (tests pass a copy of a real one).
        :param system: The OS name as :func:`platform.system` gives it (default: this one's).
        :param cpu_count: ``psutil.cpu_count`` or a stand-in.
        """
        if cpu_count is None:
            import psutil

            cpu_count = psutil.cpu_count
        system = platform.system() if system is None else system
        model_name, sockets, virtual_machine = "", 1, False
        if system == "Linux":
            model_name, sockets, virtual_machine = _parse_cpuinfo(cpuinfo)
        elif system == "Darwin":
            model_name = _macos_brand()
        elif system == "Windows":
            model_name = _windows_brand()
        if not model_name:
            model_name = platform.processor().strip()
        logical = cpu_count(logical=True) or 1
        physical = cpu_count(logical=False) or logical
        return cls(
            model_name=model_name,
            sockets=max(1, sockets),
            physical_cores=physical,
            logical_cpus=logical,
            virtual_machine=virtual_machine,
        )


def _parse_cpuinfo(path: Path) -> tuple[str, int, bool]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        _logger.debug("cannot read %s: %s", path, exc)
        return "", 1, False
    model_name = ""
    sockets: set[str] = set()
    virtual_machine = False
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "model name" and not model_name:
            model_name = value
        elif key == "physical id":
            sockets.add(value)
        elif key == "flags" and "hypervisor" in value.split():
            virtual_machine = True
    return model_name, len(sockets) or 1, virtual_machine


def _macos_brand() -> str:
    try:
        completed = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return completed.stdout.strip() if completed.returncode == 0 else ""


def _windows_brand() -> str:
    if sys.platform != "win32":
        return ""
    import winreg

    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0")
        with key:
            value, _ = winreg.QueryValueEx(key, "ProcessorNameString")
    except OSError:
        return ""
    return str(value).strip()
