"""Local stand-ins of the Danish and British intensity APIs, on 127.0.0.1.

They answer the requests the real services answer, with bodies in the real shapes
(Energi Data Service ``/dataset/{CO2Emis,CO2EmisProg}``; the GB Carbon Intensity API's
``/intensity``, ``/intensity/{from}/fw48h`` and the regional envelopes), built around the current
time so that a provider asking for "now" gets data. Values follow a known daily curve, so tests
can check what they got. Every request is recorded in ``requests``.

``StandIn(slow_byte_s=2.0)`` is a slow server: it sends the status and headers at once, then
the body one byte every 2 s (a DK live window, about 6 KB, would take hours), and stops as soon
as the client hangs up (``select`` on the connection) or the stand-in is closed.
"""

from __future__ import annotations

import json
import math
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote, urlparse

from localserver import LocalServer, QuietHandler, send, send_head, trickle


def dk_value(area: str, when: datetime) -> float:
    """The stand-in's g/kWh for a price area at a UTC time: a daily curve (DK1 dirtier)."""
    base = 150.0 if area == "DK1" else 100.0
    return round(base + 40.0 * math.sin(2 * math.pi * (when.hour * 60 + when.minute) / 1440.0), 1)


def gb_value(when: datetime) -> int:
    """The stand-in's national forecast, g/kWh, for the half hour starting at ``when``: low at 03:00 UTC."""
    return int(200 + 80 * math.sin(2 * math.pi * ((when.hour + when.minute / 60) - 9) / 24))


def _floor(t: datetime, minutes: int) -> datetime:
    return t.replace(minute=t.minute - t.minute % minutes, second=0, microsecond=0)


def _gb_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%MZ")


def _gb_parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%MZ").replace(tzinfo=timezone.utc)


class StandIn(LocalServer):
    """Both stand-ins behind one server: ``/dk/...`` and ``/gb/...``."""

    def __init__(
        self, dk_horizon_h: float = 9.0, gb_horizon_h: float = 48.0, gb_curve=None, slow_byte_s: float | None = None
    ) -> None:
        self.requests: list[str] = []
        self.slow_byte_s = slow_byte_s
        self.slow_done = threading.Event()  # a slow answer ended (client gone or stand-in closed)
        self.gb_curve = gb_curve or gb_value
        self.dk_horizon_h = dk_horizon_h
        self.gb_horizon_h = gb_horizon_h
        stand_in = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                stand_in.requests.append(self.path)
                status, body = stand_in.answer(self.path)
                data = json.dumps(body).encode()
                if stand_in.slow_byte_s is None:
                    send(self, status, "application/json", data)
                    return
                send_head(self, status, "application/json", len(data))
                trickle(self, data, stand_in.slow_byte_s, stand_in.closing, stand_in.slow_done)

        self.serve(Handler)

    @property
    def url(self) -> str:
        return self.root

    # -- routing --------------------------------------------------------------------------

    def answer(self, path: str) -> tuple[int, object]:
        url = urlparse(path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        now = datetime.now(timezone.utc)
        if parts[:2] == ["dk", "dataset"] and len(parts) == 3:
            return self.dk(parts[2], query, now)
        if parts and parts[0] == "gb":
            return self.gb(parts[1:], now)
        return 404, {"error": {"code": "404", "message": "Please enter a valid path e.g. /intensity/"}}

    # -- Energi Data Service ----------------------------------------------------------------

    def dk(self, dataset: str, query: dict[str, str], now: datetime) -> tuple[int, object]:
        if dataset not in ("CO2Emis", "CO2EmisProg"):
            return 400, {"error": f"unknown dataset {dataset}"}
        areas = ["DK1", "DK2"]
        if "filter" in query:
            wanted = json.loads(query["filter"]).get("PriceArea", areas)
            areas = [wanted] if isinstance(wanted, str) else list(wanted)
        latest = _floor(now, 5) - timedelta(minutes=5)  # live data lags a few minutes
        if dataset == "CO2Emis":
            first, last = latest - timedelta(days=2), latest
        else:
            first, last = _floor(now, 5) - timedelta(hours=1), _floor(now, 5) + timedelta(hours=self.dk_horizon_h)
        if "start" in query:
            if query.get("timezone", "").upper() != "UTC":
                return 400, {"error": "stand-in: send timezone=UTC"}
            start = datetime.strptime(query["start"], "%Y-%m-%dT%H:%M").replace(tzinfo=timezone.utc)
            end = datetime.strptime(query["end"], "%Y-%m-%dT%H:%M").replace(tzinfo=timezone.utc) if "end" in query else last + timedelta(minutes=5)
            first, last = max(first, start), min(last, end - timedelta(minutes=5))
        records = []
        t = first
        while t <= last:
            for area in areas:
                local = t + timedelta(hours=1)  # Copenhagen in winter; tests never read it
                records.append(
                    {
                        "Minutes5UTC": t.strftime("%Y-%m-%dT%H:%M:%S"),
                        "Minutes5DK": local.strftime("%Y-%m-%dT%H:%M:%S"),
                        "PriceArea": area,
                        "CO2Emission": dk_value(area, t),
                    }
                )
            t += timedelta(minutes=5)
        sort = query.get("sort", "")
        if "asc" not in sort.lower():
            records.reverse()  # newest first unless asked otherwise
        total = len(records)
        body: dict[str, object] = {"total": total, "dataset": dataset}
        if "limit" in query:
            limit = int(query["limit"])
            body["limit"] = limit
            records = records[:limit] if limit else records
        body["records"] = records
        return 200, body

    # -- GB Carbon Intensity API -------------------------------------------------------------

    def _slots(self, start: datetime, count: int, now: datetime, regional: bool) -> list[dict[str, object]]:
        out = []
        for i in range(count):
            a = start + timedelta(minutes=30 * i)
            if a >= now + timedelta(hours=self.gb_horizon_h):
                break
            intensity: dict[str, object] = {"forecast": self.gb_curve(a), "index": "moderate"}
            if not regional:
                intensity["actual"] = self.gb_curve(a) - 3 if a + timedelta(minutes=30) <= now else None
                intensity = {"forecast": intensity["forecast"], "actual": intensity["actual"], "index": "moderate"}
            slot: dict[str, object] = {"from": _gb_time(a), "to": _gb_time(a + timedelta(minutes=30)), "intensity": intensity}
            if regional:
                slot["generationmix"] = [{"fuel": "gas", "perc": 40.0}, {"fuel": "wind", "perc": 60.0}]
            out.append(slot)
        return out

    def gb(self, parts: list[str], now: datetime) -> tuple[int, object]:
        completed = _floor(now, 30) - timedelta(minutes=30)
        region = {"regionid": 12, "dnoregion": "SSE South", "shortname": "South England"}
        if parts == ["intensity"]:
            return 200, {"data": self._slots(completed, 1, now, regional=False)}
        if len(parts) == 3 and parts[0] == "intensity" and parts[2] in ("fw24h", "fw48h"):
            start = _floor(_gb_parse(parts[1]), 30)
            if start == _gb_parse(parts[1]):
                start -= timedelta(minutes=30)  # a slot counts when its end is >= from
            return 200, {"data": self._slots(start, 48 if parts[2] == "fw24h" else 96, now, regional=False)}
        if len(parts) == 3 and parts[:2] == ["regional", "postcode"]:
            inner = {**region, "postcode": parts[2], "data": self._slots(_floor(now, 30), 1, now, regional=True)}
            return 200, {"data": [inner]}
        if len(parts) == 3 and parts[:2] == ["regional", "regionid"]:
            inner = {**region, "regionid": int(parts[2]), "data": self._slots(_floor(now, 30), 1, now, regional=True)}
            return 200, {"data": [inner]}
        if len(parts) == 6 and parts[0] == "regional" and parts[1] == "intensity":
            start = _floor(_gb_parse(parts[2]), 30)
            inner = dict(region)
            if parts[4] == "postcode":
                inner["postcode"] = parts[5]
            else:
                inner["regionid"] = int(parts[5])
            inner["data"] = self._slots(start, 96, now, regional=True)
            return 200, {"data": inner}
        return 400, {"error": {"code": "400 Bad Request", "message": "Please enter a valid path e.g. /intensity/"}}
