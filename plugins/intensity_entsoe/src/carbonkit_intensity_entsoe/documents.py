"""Parsing the Transparency Platform's XML answers: generation documents and acknowledgements.

Two document kinds come back from ``GET /api``:

- ``GL_MarketDocument`` (actual generation A75, generation forecast A71, wind and solar
  forecast A69): one ``TimeSeries`` per production type (``MktPSRType/psrType``; absent in
  A71), each with one or more ``Period`` elements (``timeInterval/start``, ``end``,
  ``resolution`` ``PT15M``/``PT30M``/``PT60M``, and ``Point/position``, ``quantity`` in MW).
- ``Acknowledgement_MarketDocument``: the answer when nothing matches, ``Reason/code`` ``999``
  and ``Reason/text`` "No matching data found for ...", sent with HTTP 200 (or, in older
  versions of the service, a 4xx).

Rules applied here:

- **Namespaces vary** between document versions (``...:generationloaddocument:3:0``, ``...:7:0``
  for acknowledgements), so elements are matched on their local names only.
- **curveType A03** ("variable sized block") leaves out positions whose quantity repeats the
  previous one: a missing position takes the last quantity given, up to the end of the
  ``Period``. Under A01 (or no curveType) every position is given; a missing one stays missing.
- A point covers ``[start + (position - 1) x resolution, start + position x resolution)``.
- A series with ``outBiddingZone_Domain.mRID`` and no ``inBiddingZone_Domain.mRID`` is
  consumption (pumped-storage pumping in A75, scheduled consumption in A71): it is marked
  :attr:`Series.consumption` and never counted as generation.
- The body is refused, before parsing, when it declares a DOCTYPE or entities (no answer of the
  service does; this keeps entity expansion out of the parser). Its size is bounded by
  :func:`carbonkit.http.get_bytes` before it gets here.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone

from attrs import frozen

__all__ = ["NoData", "Point", "Series", "local_name", "parse_document", "parse_resolution"]

_RESOLUTION = re.compile(r"^P(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?|(?P<d>\d+)D)$")


class NoData(Exception):
    """The service answered an acknowledgement with reason 999: no data for the query.

    :param text: The acknowledgement's ``Reason/text``.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@frozen
class Point:
    """One value of a series: ``quantity`` MW over ``[start, end)`` (UTC)."""

    start: datetime
    end: datetime
    quantity: float


@frozen
class Series:
    """One ``TimeSeries``: its production type, whether it is consumption, and its points.

    :param psr_type: ``MktPSRType/psrType`` (``"B16"``), None when absent (A71 totals).
    :param business_type: ``businessType`` (``"A01"`` production, ``"A93"`` wind...).
    :param consumption: The series carries ``outBiddingZone_Domain`` instead of
        ``inBiddingZone_Domain``: energy taken from the grid, not generation.
    :param points: Points in time order, A03 gaps filled.
    """

    psr_type: str | None
    business_type: str | None
    consumption: bool
    points: tuple[Point, ...]


def local_name(tag: str) -> str:
    """``{urn:...}TimeSeries`` -> ``TimeSeries``."""
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if local_name(child.tag) == name:
            return child
    return None


def _children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return (child for child in element if local_name(child.tag) == name)


def _text(element: ET.Element | None, *path: str) -> str | None:
    for name in path:
        if element is None:
            return None
        element = _child(element, name)
    if element is None or element.text is None:
        return None
    return element.text.strip()


def parse_time(text: str) -> datetime:
    """``2025-10-21T12:00Z`` (or with seconds) -> an aware UTC datetime.

    :raises ValueError: not such a time.
    """
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_resolution(text: str) -> timedelta:
    """``PT15M``, ``PT30M``, ``PT60M``, ``PT1H``, ``P1D`` -> a timedelta.

    :raises ValueError: another form, or zero.
    """
    match = _RESOLUTION.match(text.strip())
    if not match or not any(match.group(g) for g in ("h", "m", "d")):
        raise ValueError(f"unsupported resolution {text!r} (expected e.g. PT15M or PT60M)")
    value = timedelta(
        days=int(match["d"] or 0), hours=int(match["h"] or 0), minutes=int(match["m"] or 0)
    )
    if value <= timedelta(0):
        raise ValueError(f"resolution {text!r} is zero")
    return value


def _quantity(text: str | None, where: str) -> float | None:
    if text is None:
        raise ValueError(f"{where}: Point without quantity")
    value = float(text)
    return value if math.isfinite(value) else None


def _period_points(period: ET.Element, curve_type: str, where: str) -> list[Point]:
    start_text = _text(period, "timeInterval", "start")
    end_text = _text(period, "timeInterval", "end")
    resolution_text = _text(period, "resolution")
    if start_text is None or end_text is None or resolution_text is None:
        raise ValueError(f"{where}: Period lacks timeInterval/start, end or resolution")
    start, end = parse_time(start_text), parse_time(end_text)
    step = parse_resolution(resolution_text)
    if end <= start:
        raise ValueError(f"{where}: Period ends ({end_text}) before it starts ({start_text})")
    slots = round((end - start) / step)
    given: dict[int, float | None] = {}
    for point in _children(period, "Point"):
        position_text = _text(point, "position")
        if position_text is None:
            raise ValueError(f"{where}: Point without position")
        position = int(position_text)
        if 1 <= position <= slots:
            given[position] = _quantity(_text(point, "quantity"), where)
    points: list[Point] = []
    last: float | None = None
    for position in range(1, slots + 1):
        if position in given:
            value = given[position]
            last = value
        elif curve_type == "A03":
            value = last
        else:
            continue
        if value is None:
            continue
        begin = start + (position - 1) * step
        points.append(Point(begin, min(begin + step, end), value))
    return points


def parse_document(content: bytes) -> list[Series]:
    """Parse a ``GL_MarketDocument`` into its series.

    :raises NoData: the body is an acknowledgement with reason 999 (no matching data).
    :raises ValueError: the body is not XML, declares a DOCTYPE or entities, is another
        acknowledgement (its reason is in the message), or has the wrong shape.
    """
    head = content[:4096].lstrip().lower()
    if b"<!doctype" in content[:4096].lower() or b"<!entity" in content.lower():
        kind = "an HTML page" if b"<html" in head or b"<!doctype html" in head else "a DOCTYPE"
        raise ValueError(f"the body is {kind}, not a Transparency Platform document")
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise ValueError(f"the body is not XML ({exc})") from None
    kind = local_name(root.tag)
    if kind == "Acknowledgement_MarketDocument":
        reasons = list(_children(root, "Reason"))
        codes = [_text(r, "code") or "" for r in reasons]
        texts = [_text(r, "text") or "" for r in reasons]
        message = "; ".join(t for t in texts if t) or "no reason text"
        if "999" in codes or "No matching data found" in message:
            raise NoData(message)
        raise ValueError(f"acknowledgement (reason {', '.join(c for c in codes if c) or 'none'}): {message}")
    if not kind.endswith("MarketDocument"):
        raise ValueError(f"unexpected document {kind!r}")
    series: list[Series] = []
    for index, element in enumerate(_children(root, "TimeSeries")):
        where = f"TimeSeries[{index}]"
        has_in = _child(element, "inBiddingZone_Domain.mRID") is not None
        has_out = _child(element, "outBiddingZone_Domain.mRID") is not None
        curve_type = _text(element, "curveType") or "A01"
        points: list[Point] = []
        for period in _children(element, "Period"):
            points.extend(_period_points(period, curve_type, where))
        series.append(
            Series(
                psr_type=_text(element, "MktPSRType", "psrType"),
                business_type=_text(element, "businessType"),
                consumption=has_out and not has_in,
                points=tuple(sorted(points, key=lambda p: p.start)),
            )
        )
    return series


def generation(series: Sequence[Series]) -> list[Series]:
    """The series that are generation (consumption series left out)."""
    return [s for s in series if not s.consumption]
