"""Local stand-ins of the Electricity Maps and WattTime APIs, on 127.0.0.1.

They answer what the real services answer, in their shapes (cited in each plugin's README):

- Electricity Maps v3: ``/carbon-intensity/{latest,history,past-range,forecast}`` behind the
  ``auth-token`` header; 401 ``{"error": "Invalid auth-token", "message": ...}`` for a missing
  or unknown token (the help centre's two bodies), 403 ``Access denied`` (plain text, as
  captured) for a zone or endpoint outside the token's plan, and ``unknown_zone_status`` (400
  or 404, JSON ``{"error": ...}``) for a zone the service does not know.
- WattTime v3: ``/login`` with HTTP Basic auth giving ``{"token": ...}``, then ``/v3/forecast``,
  ``/v3/historical``, ``/v3/region-from-loc`` and ``/v3/signal-index`` with ``Authorization:
  Bearer``; the nginx ``403 Forbidden`` HTML page for bad credentials, an expired token answered
  with ``expired_status`` (401, or 403 with the same HTML page), and 403 ``{"error": "Invalid
  query parameters", "message": "Invalid scope. ..."}`` for a region outside the plan.

Values follow known curves built around the current time, so tests can compute what they must
get. Every request is recorded (path and headers). ``slow_byte_s`` makes either stand-in send
its body one byte at a time, stopping when the client hangs up or the stand-in closes.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

from localserver import LocalServer, QuietHandler, send, send_head, trickle

NGINX_403 = (
    "<html>\n  <head><title>403 Forbidden</title></head>\n  <body>\n    <center><h1>403 Forbidden</h1></center>\n"
    "    <hr><center>nginx</center>\n  </body>\n</html>\n"
)
NGINX_401 = (
    "<html>\n<head><title>401 Authorization Required</title></head>\n<body>\n"
    "<center><h1>401 Authorization Required</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n"
)
EM_MISSING_TOKEN = {
    "error": "Invalid auth-token",
    "message": "Please provide a valid authentication header. See "
    "https://portal.electricitymaps.com/docs/getting-started#authorization for details",
}
EM_BAD_TOKEN = {
    "error": "Invalid auth-token",
    "message": "The provided token is invalid. If this token used to work, please visit "
    "https://help.electricitymaps.com to get support",
}
WT_INVALID_SCOPE = {
    "error": "Invalid query parameters",
    "message": "Invalid scope. You do not have sufficient access to this resource. See https://api.watttime.org/plans/ "
    "for more information or email contact@watttime.org for pricing. Please note that all users are allowed free "
    "access to CAISO_NORTH.",
}


def _ms(t: datetime) -> str:
    """Electricity Maps' time format: ``2024-11-28T15:00:00.000Z``."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _wt(t: datetime) -> str:
    """WattTime's time format: ``2022-07-15T00:00:00+00:00``."""
    return t.astimezone(timezone.utc).isoformat(timespec="seconds")


def _floor(t: datetime, minutes: int) -> datetime:
    return t.replace(minute=t.minute - t.minute % minutes, second=0, microsecond=0)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def em_value(zone: str, when: datetime, factor: str = "lifecycle") -> int:
    """The stand-in's gCO2eq/kWh for a zone's hour: 300 + 7 x hour for DE, 50 + hour elsewhere;
    direct factors are 40 lower."""
    base = 300 + 7 * when.hour if zone == "DE" else 50 + when.hour
    return base - (40 if factor == "direct" else 0)


def wt_value(when: datetime) -> float:
    """The stand-in's MOER, lbs/MWh, for the 5-minute point at ``when``: 800 + minute of the day / 5."""
    return 800.0 + (when.hour * 60 + when.minute) / 5


class _Server(LocalServer):
    """A ThreadingHTTPServer whose handler calls ``self.answer(method, url, headers)``."""

    def __init__(self, slow_byte_s: float | None = None) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.slow_byte_s = slow_byte_s
        self.slow_done = threading.Event()
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.requests.append((self.path, headers))
                status, content_type, body = owner.answer(self.path, headers)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                if owner.slow_byte_s is None:
                    send(self, status, content_type, data)
                    return
                send_head(self, status, content_type, len(data))
                trickle(self, data, owner.slow_byte_s, owner.closing, owner.slow_done)

        self.serve(Handler)

    @property
    def url(self) -> str:
        return self.root

    def paths(self) -> list[str]:
        return [urlparse(p).path for p, _ in self.requests]

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, str, object]:
        raise NotImplementedError


class ElectricityMapsStandIn(_Server):
    """Electricity Maps v3 under ``{url}/v3``. ``plan_zones``: zones the token may ask;
    ``forecast_in_plan``: whether ``/forecast`` and ``/past-range`` are in the plan."""

    TOKEN = "em-T0ken-abcdef123456"

    def __init__(
        self,
        *,
        known_zones: tuple[str, ...] = ("DE", "FR", "US-CAL-CISO"),
        plan_zones: tuple[str, ...] = ("DE", "FR", "US-CAL-CISO"),
        forecast_in_plan: bool = True,
        unknown_zone_status: int = 404,
        html_200: bool = False,
        slow_byte_s: float | None = None,
    ) -> None:
        super().__init__(slow_byte_s)
        self.known_zones = known_zones
        self.plan_zones = plan_zones
        self.forecast_in_plan = forecast_in_plan
        self.unknown_zone_status = unknown_zone_status
        self.html_200 = html_200

    def entry(self, zone: str, when: datetime, factor: str, now: datetime, *, granularity: bool) -> dict[str, object]:
        estimated = when + timedelta(hours=1) > now - timedelta(hours=1)  # the last two hours are estimates
        row: dict[str, object] = {
            "zone": zone,
            "carbonIntensity": em_value(zone, when, factor),
            "datetime": _ms(when),
            "updatedAt": _ms(min(now, when + timedelta(hours=1)) - timedelta(minutes=13, seconds=10, microseconds=767000)),
            "createdAt": _ms(when - timedelta(days=3) + timedelta(minutes=43, microseconds=481000)),
            "emissionFactorType": factor,
            "isEstimated": estimated,
            "estimationMethod": "TIME_SLICER_AVERAGE" if estimated else None,
        }
        if granularity:
            row["temporalGranularity"] = "hourly"
        return row

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, str, object]:
        url = urlparse(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if "auth-token" not in headers:
            return 401, "application/json", EM_MISSING_TOKEN
        if headers["auth-token"] != self.TOKEN:
            return 401, "application/json", EM_BAD_TOKEN
        if self.html_200:
            return 200, "text/html", "<!DOCTYPE html><html><body>Maintenance</body></html>"
        parts = [p for p in url.path.split("/") if p]
        if parts[:2] != ["v3", "carbon-intensity"] or len(parts) != 3:
            return 404, "application/json", {"message": "no Route matched with those values"}
        endpoint, zone = parts[2], query.get("zone", "")
        factor = query.get("emissionFactorType", "lifecycle")
        if factor not in ("lifecycle", "direct"):
            return 400, "application/json", {"error": f"Invalid emissionFactorType {factor}"}
        if zone not in self.known_zones:
            return self.unknown_zone_status, "application/json", {"error": f"Zone '{zone}' does not exist."}
        if zone not in self.plan_zones or (endpoint in ("forecast", "past-range") and not self.forecast_in_plan):
            return 403, "text/plain", "Access denied"
        now = datetime.now(timezone.utc)
        hour = _floor(now, 60)
        if endpoint == "latest":
            return 200, "application/json", self.entry(zone, hour, factor, now, granularity=True)
        if endpoint == "history":
            rows = [self.entry(zone, hour - timedelta(hours=23 - i), factor, now, granularity=False) for i in range(24)]
            return 200, "application/json", {"zone": zone, "history": rows}
        if endpoint == "past-range":
            start, end = _floor(_parse(query["start"]), 60), _parse(query["end"])
            rows, t = [], start
            while t < end:
                rows.append(self.entry(zone, t, factor, now, granularity=False))
                t += timedelta(hours=1)
            return 200, "application/json", {"zone": zone, "data": rows}
        if endpoint == "forecast":
            rows = [{"carbonIntensity": em_value(zone, hour + timedelta(hours=i), factor), "datetime": _ms(hour + timedelta(hours=i))} for i in range(25)]
            return 200, "application/json", {"zone": zone, "forecast": rows, "updatedAt": _ms(now - timedelta(minutes=9))}
        return 404, "application/json", {"message": "no Route matched with those values"}


class WattTimeStandIn(_Server):
    """WattTime v3. ``plan_regions``: regions the account may ask for MOER values;
    ``expired_status``: what an expired token gets (401, or 403 with nginx's page);
    ``always_expire``: every token is refused (a broken server); ``units``: the unit declared."""

    USERNAME = "ada-lovelace"
    PASSWORD = "S3cret:pa55 word!"

    def __init__(
        self,
        *,
        plan_regions: tuple[str, ...] = ("CAISO_NORTH",),
        expired_status: int = 401,
        always_expire: bool = False,
        units: str = "lbs_co2_per_mwh",
        fixed_value: float | None = None,
        slow_byte_s: float | None = None,
    ) -> None:
        super().__init__(slow_byte_s)
        self.plan_regions = plan_regions
        self.expired_status = expired_status
        self.always_expire = always_expire
        self.units = units
        self.fixed_value = fixed_value
        self.valid_tokens: set[str] = set()
        self.issued = 0

    def expire_tokens(self) -> None:
        """Every token issued so far expires (as after 30 minutes)."""
        self.valid_tokens.clear()

    def _expired(self) -> tuple[int, str, object]:
        if self.expired_status == 401:
            return 401, "text/html", NGINX_401
        return 403, "text/html", NGINX_403

    def value(self, when: datetime) -> float:
        return self.fixed_value if self.fixed_value is not None else wt_value(when)

    def envelope(self, region: str, points: list[datetime], *, forecast: bool, now: datetime) -> dict[str, object]:
        meta: dict[str, object] = {
            "data_point_period_seconds": 300,
            "region": region,
            "warnings": [],
            "signal_type": "co2_moer",
            "model": {"date": "2023-03-01"} if forecast else {"type": "binned_regression", "date": "2023-03-01"},
            "units": self.units,
        }
        if forecast:
            meta["generated_at_period_seconds"] = 300
            meta["generated_at"] = _wt(_floor(now, 5))
        return {"data": [{"point_time": _wt(t), "value": self.value(t)} for t in points], "meta": meta}

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, str, object]:
        url = urlparse(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        auth = headers.get("authorization", "")
        if url.path == "/login":
            expected = base64.b64encode(f"{self.USERNAME}:{self.PASSWORD}".encode()).decode()
            if auth != f"Basic {expected}":
                return 403, "text/html", NGINX_403
            self.issued += 1
            token = f"eyJhbGciOiJSUzI1NiJ9.wt-token-{self.issued:04d}.sig"
            self.valid_tokens.add(token)
            return 200, "application/json", {"token": token}
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self.valid_tokens or self.always_expire:
            return self._expired()
        now = datetime.now(timezone.utc)
        if url.path == "/v3/region-from-loc":
            lat, lon = float(query["latitude"]), float(query["longitude"])
            if 36 <= lat <= 42 and -124.5 <= lon <= -119:
                return 200, "application/json", {"region": "CAISO_NORTH", "region_full_name": "California ISO Northern", "signal_type": "co2_moer"}
            if 37 <= lat <= 41 and -109 <= lon <= -102:
                return 200, "application/json", {"region": "PSCO", "region_full_name": "Public Service Co of Colorado", "signal_type": "co2_moer"}
            return 404, "application/json", {"error": "No coverage available for these coordinates and signal_type", "latitude": query["latitude"], "longitude": query["longitude"], "signal_type": "co2_moer"}
        region = query.get("region", "")
        if query.get("signal_type") != "co2_moer":
            return 400, "application/json", {"error": "Invalid query parameters", "message": "signal_type is required"}
        if url.path == "/v3/signal-index":
            return 200, "application/json", {"data": [{"point_time": _wt(_floor(now, 5)), "value": 96.0}], "meta": {"data_point_period_seconds": 300, "region": region, "signal_type": "co2_moer", "units": "percentile", "warnings": [], "model": {"date": "2022-10-01"}}}
        if region not in self.plan_regions:
            return 403, "application/json", WT_INVALID_SCOPE
        if url.path == "/v3/forecast":
            hours = int(query.get("horizon_hours", "24"))
            count = max(1, hours * 12)
            first = _floor(now, 5)
            return 200, "application/json", self.envelope(region, [first + timedelta(minutes=5 * i) for i in range(count)], forecast=True, now=now)
        if url.path == "/v3/historical":
            start, end = _parse(query["start"]), _parse(query["end"])
            t = _floor(start, 5) if _floor(start, 5) == start else _floor(start, 5) + timedelta(minutes=5)
            points = []
            while t <= end and t <= now:
                points.append(t)
                t += timedelta(minutes=5)
            return 200, "application/json", self.envelope(region, points, forecast=False, now=now)
        return 404, "application/json", {"detail": "Not Found"}
