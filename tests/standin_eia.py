"""A local stand-in of the US EIA Open Data API v2 route ``electricity/rto/fuel-type-data``, on 127.0.0.1.

It answers ``GET /v2/electricity/rto/fuel-type-data/data/?api_key=...&frequency=hourly&data[0]=value
&facets[respondent][]=CISO&start=YYYY-MM-DDTHH&end=...&sort[0][column]=period
&sort[0][direction]=desc&offset=N&length=N`` in the real envelope::

    {"response": {"total": "96", "dateFormat": "YYYY-MM-DD\\"T\\"HH24", "frequency": "hourly",
                  "data": [{"period", "respondent", "respondent-name", "fueltype", "type-name",
                            "value" (a string, or null), "value-units": "megawatthours"}],
                  "description": "..."},
     "request": {"command": "/v2/electricity/rto/fuel-type-data/data/", "params": {... echoing api_key}},
     "apiVersion": "2.1.8", "ExcelAddInVersion": "2.1.0"}

``start`` and ``end`` are inclusive hour-ending periods; at most ``page_cap`` rows come per page
(the real cap is 5000), with ``total`` counting all of them. A bad key gets HTTP 403 with the
API-Umbrella error object ``{"error": {"code": "API_KEY_INVALID", "message": ...}}``; a missing
``frequency`` an HTTP 400 ``{"error": "...", "code": 400}``.

Data for ``CISO``: the newest published hour ends one hour before the current hour. Every hour
has the mix of :data:`CISO_MIX` (values as strings; BAT charging at -500; a null COL row), except
the newest one, where only NG and SUN have arrived (incomplete). Every request is recorded in
``requests``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlparse

from localserver import LocalServer, QuietHandler, send

KEY = "Xq8m2vT4kLp0ZsR7nW1yB6cD9eF3gH5jK0aS2dF4"
HOUR = timedelta(hours=1)
NAMES = {
    "COL": "Coal", "NG": "Natural Gas", "NUC": "Nuclear", "OIL": "Petroleum", "WAT": "Hydro", "SUN": "Solar",
    "WND": "Wind", "OTH": "Other", "BAT": "Battery storage", "GEO": "Geothermal",
}
#: MWh per energy source in every complete CISO hour (None: a null value).
CISO_MIX: dict[str, str | None] = {
    "NG": "4000", "NUC": "2000", "WAT": "1000", "SUN": "6000", "WND": "3000", "OTH": "200", "OIL": "0",
    "BAT": "-500", "COL": None,
}
#: The newest hour: only these arrived so far.
CISO_LATE: dict[str, str | None] = {"NG": "3900", "SUN": "5000"}


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def period(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H")


class EiaStandIn(LocalServer):
    """The stand-in server. ``now`` is its clock; ``page_cap`` the most rows per page."""

    def __init__(self, now: Callable[[], datetime] | None = None, page_cap: int = 5000) -> None:
        self.requests: list[dict[str, list[str]]] = []
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.page_cap = page_cap
        stand_in = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                query = parse_qs(url.query)
                stand_in.requests.append(query)
                status, body = stand_in.answer(url.path, query)
                send(self, status, "application/json", json.dumps(body).encode())

        self.serve(Handler)

    @property
    def url(self) -> str:
        return f"{self.root}/v2"

    def newest_period(self) -> datetime:
        """Hour-ending time of the newest published hour."""
        return floor_hour(self.now()) - HOUR

    def rows(self, respondent: str) -> list[dict[str, Any]]:
        if respondent != "CISO":
            return []
        newest = self.newest_period()
        out = []
        for k in range(0, 72):
            end = newest - k * HOUR
            mix = CISO_LATE if k == 0 else CISO_MIX
            for code, value in mix.items():
                out.append({
                    "period": period(end), "respondent": "CISO",
                    "respondent-name": "California Independent System Operator",
                    "fueltype": code, "type-name": NAMES[code], "value": value, "value-units": "megawatthours",
                })
        return out

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        one = {k: v[0] for k, v in query.items()}
        if one.get("api_key") != KEY:
            return 403, {"error": {"code": "API_KEY_INVALID",
                                   "message": "An invalid api_key was supplied. Get one at https://api.eia.gov:443"}}
        if path.rstrip("/") != "/v2/electricity/rto/fuel-type-data/data":
            return 404, {"error": "Not found.", "code": 404}
        if one.get("frequency") != "hourly":
            return 400, {"error": "Invalid frequency provided. The valid frequencies are: hourly, local-hourly.",
                         "code": 400}
        rows = []
        for respondent in query.get("facets[respondent][]", []):
            rows.extend(self.rows(respondent))
        if "start" in one:
            rows = [r for r in rows if r["period"] >= one["start"]]
        if "end" in one:
            rows = [r for r in rows if r["period"] <= one["end"]]
        rows.sort(key=lambda r: (r["period"], r["fueltype"]), reverse=one.get("sort[0][direction]") == "desc")
        offset, length = int(one.get("offset", "0")), min(int(one.get("length", "5000")), self.page_cap)
        page = rows[offset:offset + length]
        params = {k: (v if len(v) > 1 else v[0]) for k, v in query.items()}
        warnings = []
        if offset + length < len(rows):
            warnings = [{"warning": "incomplete return",
                         "description": f"The API can only return {self.page_cap} rows in JSON format.  Please consider "
                                        "constraining your request with facet, start, or end, or using offset to "
                                        "paginate results."}]
        return 200, {
            "response": {
                **({"warnings": warnings} if warnings else {}),
                "total": str(len(rows)),
                "dateFormat": 'YYYY-MM-DD"T"HH24',
                "frequency": "hourly",
                "data": page,
                "description": "Hourly net generation by balancing authority and energy source.  \n"
                               "    Source: Form EIA-930\n    Product: Hourly Electric Grid Monitor",
            },
            "request": {"command": "/v2/electricity/rto/fuel-type-data/data/", "params": params},
            "apiVersion": "2.1.8",
            "ExcelAddInVersion": "2.1.0",
        }
