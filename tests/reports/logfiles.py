"""Write small run logs for tests, line by line, in the documented schema (docs/run-log.md).

The records are those :class:`carbonkit.runlog.RunLogWriter` writes (``header`` first, then
``intensity``, ``sample``... and ``report`` last when the run stopped); the header carries the
fields the tracker writes (``Tracker._header`` in core/src/carbonkit/tracker.py) that a reader
needs. A steady source (constant watts) makes every figure easy to state: energy = watts x
seconds, CO2eq = energy x PUE x the intensity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

START = 1741597200.0  # 2025-03-10T09:00:00Z


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def source(name: str = "test:cpu", component: str = "cpu", method: str = "measured", kind: str = "power",
           devices: Sequence[str] = ("package-0",)) -> dict[str, Any]:
    return {"name": name, "component": component, "method": method, "kind": kind, "devices": list(devices), "info": {}}


def header(*, sources: Sequence[Mapping[str, Any]] | None = None, start: float = START, location: str = "SE-SE3",
           pue: float = 1.0, tags: Mapping[str, str] | None = None, host: str = "node-1", pid: int = 4000,
           **extra: Any) -> dict[str, Any]:
    record = {
        "type": "header", "schema": 1, "carbonkit_version": "0.1.0", "plugins": {}, "host": host, "pid": pid,
        "python": "3.11.7", "platform": "Linux", "start_time": iso(start), "start_unix": start, "bucket_s": 60.0,
        "interval_s": 10.0, "location": location, "pue": pue, "pue_source": "test", "epochs": None,
        "predict_after": 1, "attribution": "machine", "tags": dict(tags or {}), "config": {},
        "sources": [dict(s) for s in (sources or [source()])], "dropped": [], "unavailable": [],
        "providers": ["test:grid"],
    }
    record.update(extra)
    return record


def intensity(g_per_kwh: float = 100.0, *, zone: str = "SE-SE3", start: float = START) -> dict[str, Any]:
    return {"type": "intensity", "provider": "test:grid", "time": iso(start), "g_per_kwh": g_per_kwh, "zone": zone,
            "source": "test yearly average", "kind": "average", "period_s": None, "year": 2024}


def samples(watts: Sequence[float], seconds: float, step: float = 10.0, name: str = "test:cpu") -> list[dict[str, Any]]:
    """Samples of a power source drawing ``watts`` (one per device) from t = 0 to ``seconds``."""
    n = int(round(seconds / step))
    return [{"type": "sample", "t": k * step, "r": {name: list(watts)}} for k in range(n + 1)]


def write(path: Path, items: Iterable[Mapping[str, Any] | str | bytes]) -> Path:
    """Write records (dicts as compact JSON lines) and raw lines (str or bytes, as given)."""
    with open(path, "wb") as f:
        for item in items:
            if isinstance(item, bytes):
                f.write(item)
            elif isinstance(item, str):
                f.write(item.encode("utf-8"))
            else:
                f.write(json.dumps(item, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n")
    return path


def steady_log(path: Path, *, watts: float = 100.0, seconds: float = 600.0, g_per_kwh: float = 100.0,
               stopped: bool = False, **header_args: Any) -> Path:
    """A run of one power source at ``watts`` for ``seconds``; with ``stopped``, ended by the report
    carbonkit itself computes from it (what a stopped run's log ends with)."""
    import carbonkit

    records: list[Mapping[str, Any]] = [header(**header_args), intensity(g_per_kwh)]
    sources = records[0]["sources"]
    for rec in samples([watts] * len(sources[0]["devices"]), seconds, name=sources[0]["name"]):
        rec["r"] = {s["name"]: [watts] * len(s["devices"]) for s in sources}
        records.append(rec)
    write(path, records)
    if stopped:
        report = carbonkit.load_run(path)
        import attrs

        report = attrs.evolve(report, completed=True, warnings=())
        write(path, [*records, {"type": "report", "report": report.to_dict()}])
    return path


def kwh(watts: float, seconds: float) -> float:
    return watts * seconds / 3.6e6
