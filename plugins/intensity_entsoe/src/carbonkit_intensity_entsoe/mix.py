"""From generation series to a timeline of generation mixes, and which of them are complete.

Production types of one zone may come at different resolutions (hourly and quarter-hourly in
one response, or a zone switching from ``PT60M`` to ``PT15M`` inside a window), so the timeline
is cut at every point boundary of every series: each interval holds, per production type, the
quantity of the point covering it.

**Complete.** Production types are published separately and late, so the newest intervals
often lack some of them; a mix missing its gas or coal would look clean. An interval is
complete when every production type that has a point starting in the six hours before it also
covers it: a type that is late blocks the intervals after its last point (the newest complete
interval is then the last one it covers), and a type that stopped reporting more than six
hours earlier no longer does.

Negative quantities (a few TSOs report a plant's own consumption as negative generation) count
as zero. Where two series of one production type overlap, the later one in the document wins,
so nothing is counted twice.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from attrs import frozen

from .documents import Point, Series

__all__ = ["MixInterval", "timeline"]

#: How far back a production type's last point makes it expected in an interval.
EXPECTED_WITHIN = timedelta(hours=6)


@frozen
class MixInterval:
    """The generation of one interval ``[start, end)``.

    :param by_type: MW per production type (``"B04"``; ``""`` for a series without one).
    :param complete: Whether every production type expected here reported (module text).
    """

    start: datetime
    end: datetime
    by_type: Mapping[str, float]
    complete: bool

    def by_fuel(self, fuel_of: Callable[[str | None], str]) -> dict[str, float]:
        """MW per fuel, production types summed by ``fuel_of``."""
        out: dict[str, float] = {}
        for psr_type, mw in self.by_type.items():
            fuel = fuel_of(psr_type or None)
            out[fuel] = out.get(fuel, 0.0) + mw
        return out


class _Track:
    """One production type's points, merged across its series (later series win overlaps)."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.starts: list[datetime] = []

    def add(self, points: Sequence[Point]) -> None:
        merged = [p for p in self.points if not any(q.start < p.end and p.start < q.end for q in points)]
        self.points = sorted([*merged, *points], key=lambda p: p.start)
        self.starts = [p.start for p in self.points]

    def at(self, t: datetime) -> Point | None:
        i = bisect.bisect_right(self.starts, t) - 1
        if i >= 0 and self.points[i].start <= t < self.points[i].end:
            return self.points[i]
        return None

    def started_within(self, begin: datetime, end: datetime) -> bool:
        i = bisect.bisect_left(self.starts, begin)
        return i < len(self.starts) and self.starts[i] < end


def timeline(series: Sequence[Series]) -> list[MixInterval]:
    """The generation intervals of ``series`` (consumption series left out), oldest first;
    intervals where no series has a point are skipped."""
    tracks: dict[str, _Track] = {}
    for s in series:
        if s.consumption or not s.points:
            continue
        tracks.setdefault(s.psr_type or "", _Track()).add(list(s.points))
    points = [p for t in tracks.values() for p in t.points]
    bounds = sorted({p.start for p in points} | {p.end for p in points})
    out: list[MixInterval] = []
    for begin, end in zip(bounds, bounds[1:]):
        by_type: dict[str, float] = {}
        for psr_type, track in tracks.items():
            point = track.at(begin)
            if point is not None:
                by_type[psr_type] = max(point.quantity, 0.0)
        if not by_type:
            continue
        expected = {k for k, t in tracks.items() if t.started_within(begin - EXPECTED_WITHIN, begin)}
        out.append(MixInterval(begin, end, by_type, complete=expected <= set(by_type)))
    return out
