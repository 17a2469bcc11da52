"""A local stand-in of the ENTSO-E Transparency Platform RESTful API, on 127.0.0.1.

It answers ``GET /api?documentType=...&processType=...&in_Domain=...&periodStart=...&periodEnd=...
&securityToken=...`` as the real service does, in the real shapes:

- ``GL_MarketDocument`` (namespace ``...:generationloaddocument:3:0``) with one ``TimeSeries`` per
  production type, ``Period``/``timeInterval``/``resolution``/``Point``; curveType A01 or A03 (A03
  leaves out positions that repeat the previous quantity); pumped-storage consumption as a
  series with ``outBiddingZone_Domain.mRID``;
- ``Acknowledgement_MarketDocument`` (namespace ``...:acknowledgementdocument:7:0``) with reason
  999 and HTTP 200 when there is no data;
- the 401 HTML page ("Unauthorized. Missing or invalid security token") for a bad token;
- HTTP 400 with an acknowledgement (reason 999, "... is not valid") for a missing parameter.

Data are built around the current time, with a publication lag, so a provider asking for "now"
gets data. What each zone holds:

- ``DE`` (``10Y1001A1001A83F``): A75 with hourly lignite (B02), gas (B04) and hard coal (B05), the
  coal one hour later than the rest; quarter-hourly solar (B16, A01) and wind onshore (B19, A03,
  20 000 MW until the coal's last hour ends, 30 000 MW after it); pumped storage generation
  (B10, 1 000 MW) and pumping (B10, ``outBiddingZone``, 2 000 MW). A69 solar and wind, A71
  total 50 000 MW per hour plus a scheduled-consumption series (``outBiddingZone``) of 3 000 MW.
- ``SE-SE3``: A75 hourly hydro (B12) and nuclear (B14); A69 answers 999; A71 hourly.
- ``FR``: 999 for everything.

Every request is recorded in ``requests`` (its query as a dict).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

from localserver import LocalServer, QuietHandler, send

TOKEN = "b5b8c0a2-6f0e-4c1e-9a52-3f1d2e4c5a6b"
GL_NS = "urn:iec62325.351:tc57wg16:451-6:generationloaddocument:3:0"
ACK_NS = "urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0"
DE, SE3, FR = "10Y1001A1001A83F", "10Y1001A1001A46L", "10YFR-RTE------C"

UNAUTHORIZED_HTML = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.0 Transitional//EN" "http://www.w3.org/TR/REC-html40/loose.dtd">\n'
    "<html>\n<head>\n"
    '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n'
    "<title>Error</title>\n</head>\n"
    "<body>Unauthorized. Missing or invalid security token</body>\n</html>\n"
)

HOUR = timedelta(hours=1)
QUARTER = timedelta(minutes=15)


def floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    return epoch + ((t - epoch) // step) * step


def entsoe_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%MZ")


def solar_forecast_mw(t: datetime) -> float:
    """The stand-in's day-ahead solar forecast (A69, B16) for the quarter hour starting at ``t``."""
    return float(1000 * (t.hour % 12))


WIND_FORECAST_MW = 15000.0
TOTAL_FORECAST_MW = 50000.0


def ack(text: str, code: str = "999") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Acknowledgement_MarketDocument xmlns="{ACK_NS}">\n'
        "\t<mRID>8f4e2c10-5d3b-4a53-b1a7-0c2f7d6e9b21</mRID>\n"
        "\t<createdDateTime>2026-12-02T09:33:21Z</createdDateTime>\n"
        '\t<sender_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450</sender_MarketParticipant.mRID>\n'
        "\t<sender_MarketParticipant.marketRole.type>A32</sender_MarketParticipant.marketRole.type>\n"
        '\t<receiver_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450</receiver_MarketParticipant.mRID>\n'
        "\t<receiver_MarketParticipant.marketRole.type>A39</receiver_MarketParticipant.marketRole.type>\n"
        "\t<received_MarketDocument.createdDateTime>2026-12-02T09:33:21Z</received_MarketDocument.createdDateTime>\n"
        f"\t<Reason>\n\t\t<code>{code}</code>\n\t\t<text>{escape(text)}</text>\n\t</Reason>\n"
        "</Acknowledgement_MarketDocument>\n"
    )


class Curve:
    """One TimeSeries: its psrType (or None), domain side, curve type, and Periods of
    ``(start, end, resolution, value_at(t))``."""

    def __init__(
        self,
        psr_type: str | None,
        periods: Sequence[tuple[datetime, datetime, timedelta, Callable[[datetime], float]]],
        *,
        curve_type: str = "A01",
        consumption: bool = False,
        business_type: str = "A01",
    ) -> None:
        self.psr_type = psr_type
        self.periods = periods
        self.curve_type = curve_type
        self.consumption = consumption
        self.business_type = business_type

    def xml(self, eic: str, index: int) -> str:
        domain = "outBiddingZone_Domain.mRID" if self.consumption else "inBiddingZone_Domain.mRID"
        out = [
            "\t<TimeSeries>",
            f"\t\t<mRID>{index}</mRID>",
            f"\t\t<businessType>{self.business_type}</businessType>",
            f"\t\t<objectAggregation>{'A08' if self.psr_type else 'A01'}</objectAggregation>",
            f'\t\t<{domain} codingScheme="A01">{eic}</{domain}>',
            "\t\t<quantity_Measure_Unit.name>MAW</quantity_Measure_Unit.name>",
            f"\t\t<curveType>{self.curve_type}</curveType>",
        ]
        if self.psr_type:
            out.append(f"\t\t<MktPSRType>\n\t\t\t<psrType>{self.psr_type}</psrType>\n\t\t</MktPSRType>")
        for start, end, step, value_at in self.periods:
            if end <= start:
                continue
            minutes = int(step.total_seconds() // 60)
            out.append("\t\t<Period>")
            out.append(f"\t\t\t<timeInterval>\n\t\t\t\t<start>{entsoe_time(start)}</start>\n"
                       f"\t\t\t\t<end>{entsoe_time(end)}</end>\n\t\t\t</timeInterval>")
            out.append(f"\t\t\t<resolution>PT{minutes}M</resolution>")
            previous = None
            position, t = 1, start
            while t < end:
                value = value_at(t)
                if self.curve_type != "A03" or value != previous:
                    out.append(f"\t\t\t<Point>\n\t\t\t\t<position>{position}</position>\n"
                               f"\t\t\t\t<quantity>{value:g}</quantity>\n\t\t\t</Point>")
                previous = value
                position += 1
                t += step
            out.append("\t\t</Period>")
        out.append("\t</TimeSeries>")
        return "\n".join(out)


def document(doc_type: str, process: str, eic: str, start: datetime, end: datetime, curves: Sequence[Curve]) -> str:
    body = "\n".join(c.xml(eic, i + 1) for i, c in enumerate(curves))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<GL_MarketDocument xmlns="{GL_NS}">\n'
        "\t<mRID>3a1c9e0b7d5f4e2a8c6b</mRID>\n\t<revisionNumber>1</revisionNumber>\n"
        f"\t<type>{doc_type}</type>\n\t<process.processType>{process}</process.processType>\n"
        '\t<sender_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450</sender_MarketParticipant.mRID>\n'
        "\t<sender_MarketParticipant.marketRole.type>A32</sender_MarketParticipant.marketRole.type>\n"
        '\t<receiver_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450</receiver_MarketParticipant.mRID>\n'
        "\t<receiver_MarketParticipant.marketRole.type>A33</receiver_MarketParticipant.marketRole.type>\n"
        "\t<createdDateTime>2026-12-02T12:10:31Z</createdDateTime>\n"
        f"\t<time_Period.timeInterval>\n\t\t<start>{entsoe_time(start)}</start>\n"
        f"\t\t<end>{entsoe_time(end)}</end>\n\t</time_Period.timeInterval>\n"
        f"{body}\n</GL_MarketDocument>\n"
    )


def parse_period(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d%H%M").replace(tzinfo=timezone.utc)


class EntsoeStandIn(LocalServer):
    """The stand-in server. ``now`` is its clock (default: the system's); ``switch_at``, when
    set, makes DE's A75 switch from PT60M to PT15M for every type at that time (two Periods in
    one TimeSeries)."""

    def __init__(self, now: Callable[[], datetime] | None = None, switch_at: datetime | None = None) -> None:
        self.requests: list[dict[str, str]] = []
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.switch_at = switch_at
        stand_in = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                stand_in.requests.append(query)
                status, content_type, body = stand_in.answer(url.path, query)
                send(self, status, content_type, body.encode())

        self.serve(Handler)

    @property
    def url(self) -> str:
        return f"{self.root}/api"

    # -- the data -------------------------------------------------------------------------------

    def lag_end(self) -> datetime:
        """End of the quarter-hourly actual data: 30 minutes behind the clock."""
        return floor(self.now(), QUARTER) - 2 * QUARTER

    def coal_end(self) -> datetime:
        """End of the (late) hourly hard-coal data: one hour before the other hourly types."""
        return floor(self.lag_end(), HOUR) - HOUR

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, str, str]:
        xml = "text/xml"
        if query.get("securityToken") != TOKEN:
            return 401, "text/html", UNAUTHORIZED_HTML
        if path != "/api":
            return 404, "text/plain", "404 page not found"
        missing = [k for k in ("documentType", "in_Domain", "periodStart", "periodEnd") if k not in query]
        if missing:
            return 400, xml, ack(f"Mandatory parameter {missing[0]} is missing", code="999")
        doc, eic = query["documentType"], query["in_Domain"]
        start, end = parse_period(query["periodStart"]), parse_period(query["periodEnd"])
        label = {"A75": "Actual Generation per Production Type [16.1.B&C]",
                 "A71": "Generation Forecast - Day Ahead [14.1.C]",
                 "A69": "Generation Forecasts for Wind and Solar [14.1.D]"}.get(doc, doc)
        no_data = ack(
            f"No matching data found for Data item {label} ({eic}) and interval "
            f"{start.strftime('%Y-%m-%dT%H:%M:00.000Z')}/{end.strftime('%Y-%m-%dT%H:%M:00.000Z')}."
        )
        curves = self.curves(doc, query.get("processType", ""), eic, start, end)
        if not curves:
            return 200, xml, no_data
        return 200, xml, document(doc, query.get("processType", ""), eic, start, end, curves)

    def curves(self, doc: str, process: str, eic: str, start: datetime, end: datetime) -> list[Curve]:
        if eic == DE and doc == "A75" and process == "A16":
            return self.de_actual(start, end)
        if eic == DE and doc == "A69" and process == "A01":
            return [
                Curve("B16", [(start, end, QUARTER, solar_forecast_mw)], business_type="A94"),
                Curve("B19", [(start, end, QUARTER, lambda t: WIND_FORECAST_MW)], curve_type="A03",
                      business_type="A93"),
            ]
        if eic in (DE, SE3) and doc == "A71" and process == "A01":
            days = []
            day = floor(start, timedelta(days=1))
            while day < end:
                days.append(Curve(None, [(max(day, start), min(day + timedelta(days=1), end), HOUR,
                                          lambda t: TOTAL_FORECAST_MW)]))
                day += timedelta(days=1)
            return [*days, Curve(None, [(start, end, HOUR, lambda t: 3000.0)], consumption=True)]
        if eic == SE3 and doc == "A75" and process == "A16":
            stop = min(end, floor(self.lag_end(), HOUR))
            return [
                Curve("B12", [(start, stop, HOUR, lambda t: 6000.0)]),
                Curve("B14", [(start, stop, HOUR, lambda t: 4000.0)]),
            ]
        return []

    def de_actual(self, start: datetime, end: datetime) -> list[Curve]:
        quarter_end = min(end, self.lag_end())
        hour_end = min(end, floor(self.lag_end(), HOUR))
        coal_end = min(end, self.coal_end())
        wind = lambda t: 20000.0 if t < self.coal_end() else 30000.0  # noqa: E731
        if self.switch_at is None:
            return [
                Curve("B02", [(start, hour_end, HOUR, lambda t: 5000.0)]),
                Curve("B04", [(start, hour_end, HOUR, lambda t: 10000.0)]),
                Curve("B05", [(start, coal_end, HOUR, lambda t: 3000.0)]),
                Curve("B10", [(start, quarter_end, QUARTER, lambda t: 1000.0)]),
                Curve("B10", [(start, quarter_end, QUARTER, lambda t: 2000.0)], consumption=True),
                Curve("B16", [(start, quarter_end, QUARTER, lambda t: 5000.0)]),
                Curve("B19", [(start, quarter_end, QUARTER, wind)], curve_type="A03"),
            ]
        # History across a resolution switch: every type hourly before, quarter-hourly after.
        switch = max(min(self.switch_at, end), start)

        def two(value: Callable[[datetime], float], stop: datetime) -> list[tuple[datetime, datetime, timedelta,
                                                                                  Callable[[datetime], float]]]:
            return [(start, min(switch, stop), HOUR, value), (switch, stop, QUARTER, value)]

        stop = min(end, self.lag_end())
        return [
            Curve("B04", two(lambda t: 10000.0 if t < self.switch_at else 12000.0, stop)),  # type: ignore[operator]
            Curve("B19", two(lambda t: 20000.0, stop), curve_type="A03"),
        ]
