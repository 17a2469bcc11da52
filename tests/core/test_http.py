"""carbonkit.http against a real HTTP server on 127.0.0.1: size limits, deadlines, bans, error texts.

The server is ``http.server`` in a thread, on a port the system picks. Each test gives it the
answer to send as a small function of the request handler, so the bytes on the wire are exactly
what a misbehaving service would send: a gzip bomb, a 200 MB body, one byte every 2 s, a 429
with ``Retry-After`` in both of its forms (RFC 9110, section 10.2.3: delay-seconds or an
HTTP-date), an HTML error page, an empty or truncated body. Nothing waits on a sleep: slow
senders pace themselves with ``select`` on the client's socket, which also tells them at once
when the client has gone.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import select
import socket
import struct
import threading
import time
import traceback
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from carbonkit import ConfigError, IntensityUnavailable
from carbonkit._http import TIMEOUT_S, default_http_client, user_agent
from carbonkit.http import Backoff, Body, error_message, get_bytes, get_json, overall_deadline

NOW = datetime(2024, 11, 5, 13, 27, 30, tzinfo=timezone.utc)
MIB = 1 << 20

Answer = Callable[[BaseHTTPRequestHandler], None]


class Server:
    """A local HTTP server answering every GET with ``answers[path]`` (else 404), counting requests."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.finished = threading.Event()  # set when an answer function returns
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.paths.append(self.path)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                answer = server.answers.get(self.path.split("?")[0])
                try:
                    if answer is None:
                        send(self, 404, b"not found", "text/plain")
                    else:
                        answer(self)
                except OSError:  # the client went away mid-answer: that is what some tests want
                    pass
                finally:
                    server.finished.set()

            def log_message(self, *args: object) -> None:
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up is not a server error here

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str | None, **headers: str) -> None:
    handler.send_response(status)
    if content_type:
        handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def client_gone(handler: BaseHTTPRequestHandler, wait_s: float) -> bool:
    """Wait up to ``wait_s`` for the client to close its end; True when it did."""
    conn: socket.socket = handler.connection
    readable, _, _ = select.select([conn], [], [], wait_s)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def trickle(handler: BaseHTTPRequestHandler, data: bytes, every_s: float, sent: list[int]) -> None:
    """Send ``data`` one byte every ``every_s`` seconds; stop as soon as the client is gone."""
    for i in range(len(data)):
        handler.wfile.write(data[i : i + 1])
        handler.wfile.flush()
        sent.append(1)
        if client_gone(handler, every_s):
            return


def gzip_bomb(mib: int) -> bytes:
    """A valid gzip stream of ``mib`` MiB of zeros, about 1 KB per MiB.

    Each MiB is one deflate segment ended by a full flush (so it stands alone and can be
    repeated), then a final empty block and the gzip trailer (CRC-32 and length, RFC 1952).
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = c.compress(bytes(MIB)) + c.flush(zlib.Z_FULL_FLUSH)
    final = c.flush()
    crc, zeros = 0, bytes(MIB)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + segment * mib + final + struct.pack("<II", crc, (mib * MIB) & 0xFFFFFFFF)


def raw_deflate(data: bytes) -> bytes:
    """Deflate without the zlib header, as some servers send 'deflate' (RFC 9110 wants zlib)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(1024)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with default_http_client() as c:
        yield c


def call(client: httpx.Client, url: str, **kwargs: Any) -> Any:
    kwargs.setdefault("provider", "test:provider")
    kwargs.setdefault("what", "Test API")
    return get_json(client, url, **kwargs)


def peak_mib(fn: Callable[[], object]) -> tuple[float, object]:
    """Run ``fn`` under tracemalloc; return the peak of traced memory (MiB) and what it raised or returned."""
    tracemalloc.start()
    try:
        try:
            result: object = fn()
        except Exception as exc:
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MIB, result


# -- happy paths ---------------------------------------------------------------------------


def test_json_body_plain_gzip_and_deflate(client: httpx.Client) -> None:
    """A JSON body is returned decoded, whether sent plain, gzip- or deflate-encoded; the request
    offers exactly the encodings the helper decodes within its limit."""
    payload = {"records": [{"CO2Emission": 147.0}]}
    raw = json.dumps(payload).encode()
    answers: dict[str, Answer] = {
        "/plain": lambda h: send(h, 200, raw, "application/json"),
        "/gzip": lambda h: send(h, 200, gzip.compress(raw), "application/json", Content_Encoding="gzip"),
        "/deflate": lambda h: send(h, 200, zlib.compress(raw), "application/json", Content_Encoding="deflate"),
        "/rawdeflate": lambda h: send(
            h, 200, raw_deflate(raw), "application/json", Content_Encoding="deflate"
        ),
    }
    with Server(answers) as s:
        for path in answers:
            assert call(client, s.url + path, params={"a": "1"}) == payload
    assert {h["accept-encoding"] for h in s.headers} == {"gzip, deflate"}
    assert {h["user-agent"] for h in s.headers} == {user_agent()}
    assert s.paths[0] == "/plain?a=1"


def test_get_bytes_returns_the_body_for_non_json_services(client: httpx.Client) -> None:
    """get_bytes hands back status, headers and content (an XML service parses them itself)."""
    xml = b"<?xml version='1.0'?><Publication_MarketDocument/>"
    with Server({"/x": lambda h: send(h, 200, xml, "text/xml")}) as s:
        body = get_bytes(client, s.url + "/x", provider="test:xml")
    assert isinstance(body, Body)
    assert (body.status, body.content, body.content_type) == (200, xml, "text/xml")


def test_redirects_are_followed_within_the_same_bounds(client: httpx.Client) -> None:
    """The default client follows a redirect; the answer at its end is read and checked."""
    answers: dict[str, Answer] = {
        "/old": lambda h: send(h, 302, b"", None, Location="/new"),
        "/new": lambda h: send(h, 200, b'{"ok": true}', "application/json"),
    }
    with Server(answers) as s:
        assert call(client, s.url + "/old") == {"ok": True}
    assert s.paths == ["/old", "/new"]


def test_default_http_client_keeps_its_timeouts_and_user_agent() -> None:
    """default_http_client() is as it was: explicit timeouts, carbonkit's User-Agent, redirects on."""
    with default_http_client() as c:
        assert c.timeout == httpx.Timeout(**TIMEOUT_S)
        assert c.headers["User-Agent"].startswith("carbonkit/")
        assert c.follow_redirects is True


# -- size limit ----------------------------------------------------------------------------


def test_gzip_bomb_is_refused_after_a_few_mib(client: httpx.Client, bomb: bytes) -> None:
    """1 GiB of zeros sent as about 1 MB of gzip: refused as over the limit, and the client's
    memory stays small (httpx's iter_bytes() would inflate each 64 KiB network chunk whole)."""
    assert len(bomb) < 2 * MIB
    answers: dict[str, Answer] = {
        "/bomb": lambda h: send(h, 200, bomb, "application/json", Content_Encoding="gzip"),
    }
    with Server(answers) as s:
        peak, result = peak_mib(lambda: call(client, s.url + "/bomb"))
    assert isinstance(result, IntensityUnavailable)
    assert str(result) == "Test API: body over the limit of 4 MiB (after decompression); stopped reading"
    assert peak < 20, f"peak traced memory {peak:.1f} MiB"


def test_the_limit_is_the_providers_own(client: httpx.Client, bomb: bytes) -> None:
    """max_bytes sets the limit; a body at the limit passes, one byte more does not."""
    body = b'"' + b"x" * 1022 + b'"'  # 1024 bytes of valid JSON
    answers: dict[str, Answer] = {
        "/at": lambda h: send(h, 200, body, "application/json"),
        "/over": lambda h: send(h, 200, body + b" ", "application/json"),
    }
    with Server(answers) as s:
        assert call(client, s.url + "/at", max_bytes=1024) == "x" * 1022
        expected = r"body over the limit of 1 KiB \(Content-Length says 1025 bytes\)"
        with pytest.raises(IntensityUnavailable, match=expected):
            call(client, s.url + "/over", max_bytes=1024)


def test_200_mb_streamed_body_is_refused_without_reading_it_all(client: httpx.Client) -> None:
    """A 200 MB body without Content-Length (ended by closing) is cut at the limit: the client
    stops reading, hangs up, and its memory stays small; the server sees the hang-up."""
    chunk = bytes(64 * 1024)
    sent: list[int] = []

    def stream(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.end_headers()
        for _ in range(200 * MIB // len(chunk)):
            h.wfile.write(chunk)
            sent.append(len(chunk))

    with Server({"/big": stream}) as s:
        peak, result = peak_mib(lambda: call(client, s.url + "/big"))
        assert s.finished.wait(30), "the server kept sending after the client left"
    assert isinstance(result, IntensityUnavailable)
    assert "body over the limit of 4 MiB" in str(result)
    assert peak < 20, f"peak traced memory {peak:.1f} MiB"
    assert sum(sent) < 200 * MIB  # it stopped early: the client closed the connection


def test_error_bodies_are_read_only_for_their_first_bytes(client: httpx.Client, bomb: bytes) -> None:
    """A 500 whose body is a gzip bomb costs a preview, not the bomb."""
    answers: dict[str, Answer] = {
        "/e": lambda h: send(h, 500, bomb, "text/plain", Content_Encoding="gzip"),
    }
    with Server(answers) as s:
        peak, result = peak_mib(lambda: call(client, s.url + "/e"))
    assert isinstance(result, IntensityUnavailable)
    assert str(result).startswith("Test API: HTTP 500 with a text body: '\\x00\\x00")
    assert str(result).endswith("...")
    assert peak < 20


def test_unrequested_content_encoding_is_refused(client: httpx.Client) -> None:
    """An encoding the request did not offer (br) is refused, naming it."""
    with Server({"/br": lambda h: send(h, 200, b"\x0b\x02\x80{}\x03", "application/json", Content_Encoding="br")}) as s:
        with pytest.raises(IntensityUnavailable, match=r"Content-Encoding 'br' was not asked for"):
            call(client, s.url + "/br")


# -- deadline ------------------------------------------------------------------------------


def test_slow_sender_is_cut_at_the_deadline(client: httpx.Client) -> None:
    """Headers at once, then one byte every 2 s (a 100-byte body would take 200 s): the call ends
    at the 1 s deadline, well within deadline + one read timeout, and the server sees the hang-up."""
    sent: list[int] = []

    def slow(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "100")
        h.end_headers()
        trickle(h, b" " * 99 + b"1", 2.0, sent)

    with Server({"/slow": slow}) as s:
        started = time.monotonic()
        with pytest.raises(IntensityUnavailable) as info:
            call(client, s.url + "/slow", deadline_s=1.0)
        elapsed = time.monotonic() - started
        assert s.finished.wait(30), "the server did not notice the client leaving"
    assert str(info.value) == "Test API: no complete answer within 1 s"
    assert isinstance(info.value.__cause__, httpx.HTTPError)
    assert elapsed < 1.0 + TIMEOUT_S["read"], f"took {elapsed:.1f} s"
    assert len(sent) < 10


def test_slow_headers_are_cut_at_the_deadline(client: httpx.Client) -> None:
    """A server that trickles even its status line (no chunk ever reaches the body loop) is cut
    off at the deadline too: the socket is closed under the read."""
    sent: list[int] = []

    def slow(h: BaseHTTPRequestHandler) -> None:
        trickle(h, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 2.0, sent)

    with Server({"/slow": slow}) as s:
        started = time.monotonic()
        with pytest.raises(IntensityUnavailable, match="no complete answer within 1 s"):
            call(client, s.url + "/slow", deadline_s=1.0)
        elapsed = time.monotonic() - started
        assert s.finished.wait(30)
    assert elapsed < 1.0 + TIMEOUT_S["read"], f"took {elapsed:.1f} s"


def test_overall_deadline_bounds_every_call_and_then_stops_calling(client: httpx.Client) -> None:
    """Inside overall_deadline(1), a call with a 20 s deadline of its own ends at the outer one,
    saying so; once it has passed, no request is sent at all."""
    sent: list[int] = []

    def slow(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "10")
        h.end_headers()
        trickle(h, b"0123456789", 2.0, sent)

    with Server({"/slow": slow}) as s, overall_deadline(1.0, "--timeout 1"):
        started = time.monotonic()
        # The outer deadline began just before the call: what is left of it is 1 s or a hair less.
        expected = r"no complete answer within (1|0\.9\d*) s \(the time left of --timeout 1\)"
        with pytest.raises(IntensityUnavailable, match=expected):
            call(client, s.url + "/slow")
        assert time.monotonic() - started < 1.0 + TIMEOUT_S["read"]
        # The call ended at the outer deadline (its watchdog fires no earlier), so none is left.
        with pytest.raises(IntensityUnavailable, match="Test API: not called: no time left of --timeout 1"):
            call(client, s.url + "/slow")
    assert s.paths == ["/slow"]


def test_overall_deadline_rejects_a_bad_value() -> None:
    """overall_deadline wants a number of seconds > 0 and names what it got."""
    for bad in (0, -1, float("nan"), float("inf"), "30"):
        with pytest.raises(ConfigError, match="must be a number of seconds > 0, got"), overall_deadline(bad):  # type: ignore[arg-type]
            pass


# -- status, bans --------------------------------------------------------------------------


def test_429_retry_after_seconds_bans_without_a_request(client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    """429 with 'Retry-After: 120': no request until NOW + 120 s, one warning; then it calls again."""
    state = {"status": 429}

    def limited(h: BaseHTTPRequestHandler) -> None:
        if state["status"] == 429:
            send(h, 429, b"Too Many Requests", "text/plain", Retry_After="120")
        else:
            send(h, 200, b"{}", "application/json")

    backoff = Backoff()
    with Server({"/x": limited}) as s:
        with caplog.at_level(logging.WARNING, logger="carbonkit.http"):
            with pytest.raises(IntensityUnavailable) as info:
                call(client, s.url + "/x", backoff=backoff, now=NOW)
        assert str(info.value) == (
            "Test API: rate limited (HTTP 429 with a text body: 'Too Many Requests'); "
            "not calling again until 2024-11-05T13:29:30Z"
        )
        assert isinstance(info.value.__cause__, httpx.HTTPStatusError)
        assert backoff.until == NOW + timedelta(seconds=120)
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        with pytest.raises(IntensityUnavailable, match=r"rate limited .*until 2024-11-05T13:29:30Z"):
            call(client, s.url + "/x", backoff=backoff, now=NOW + timedelta(seconds=119))
        assert len(s.paths) == 1
        state["status"] = 200
        assert call(client, s.url + "/x", backoff=backoff, now=NOW + timedelta(seconds=120)) == {}
        assert len(s.paths) == 2
        assert backoff.until is None


def test_429_retry_after_http_date(client: httpx.Client) -> None:
    """'Retry-After: <HTTP-date>' bans until that date."""
    when = email.utils.format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    backoff = Backoff()
    with Server({"/x": lambda h: send(h, 429, b"", None, Retry_After=when)}) as s:
        expected = r"rate limited \(HTTP 429 with an empty body\); not calling again until 2024-11-05T13:29:00Z"
        with pytest.raises(IntensityUnavailable, match=expected):
            call(client, s.url + "/x", backoff=backoff, now=NOW)
    assert backoff.until == NOW + timedelta(seconds=90)


def test_429_without_retry_after_uses_the_default_ban_and_a_huge_one_is_capped(client: httpx.Client) -> None:
    """No Retry-After: default_ban_s; an absurd Retry-After: one day at most."""
    answers: dict[str, Answer] = {
        "/none": lambda h: send(h, 429, b"", None),
        "/huge": lambda h: send(h, 429, b"", None, Retry_After="999999999"),
    }
    with Server(answers) as s:
        a, b = Backoff(), Backoff()
        with pytest.raises(IntensityUnavailable):
            call(client, s.url + "/none", backoff=a, now=NOW, default_ban_s=60)
        with pytest.raises(IntensityUnavailable):
            call(client, s.url + "/huge", backoff=b, now=NOW)
    assert a.until == NOW + timedelta(seconds=60)
    assert b.until == NOW + timedelta(days=1)


def test_429_without_a_backoff_says_what_the_server_asked(client: httpx.Client) -> None:
    """With no Backoff to remember it, the error does not promise a ban it cannot keep."""
    with Server({"/x": lambda h: send(h, 429, b"", None, Retry_After="60")}) as s:
        with pytest.raises(IntensityUnavailable, match=r"the server asks for no request until 2024-11-05T13:28:30Z$"):
            call(client, s.url + "/x", now=NOW)


def test_503_bans_only_with_retry_after(client: httpx.Client) -> None:
    """A 503 with Retry-After bans for that long; a 503 without one is an outage and bans nothing."""
    answers: dict[str, Answer] = {
        "/wait": lambda h: send(h, 503, b"maintenance", "text/plain", Retry_After="30"),
        "/down": lambda h: send(h, 503, b"", None),
    }
    with Server(answers) as s:
        a, b = Backoff(), Backoff()
        expected = r"service unavailable \(HTTP 503 with a text body: 'maintenance'\)"
        with pytest.raises(IntensityUnavailable, match=expected):
            call(client, s.url + "/wait", backoff=a, now=NOW)
        with pytest.raises(IntensityUnavailable, match=r"^Test API: HTTP 503 with an empty body$"):
            call(client, s.url + "/down", backoff=b, now=NOW)
        with pytest.raises(IntensityUnavailable):
            call(client, s.url + "/down", backoff=b, now=NOW)
    assert a.until == NOW + timedelta(seconds=30)
    assert b.until is None
    assert s.paths == ["/wait", "/down", "/down"]


def test_html_500(client: httpx.Client) -> None:
    """An HTML error page is named as such, with its first characters."""
    page = b"<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head><body></body></html>"
    with Server({"/x": lambda h: send(h, 500, page, "text/html; charset=utf-8")}) as s:
        with pytest.raises(IntensityUnavailable) as info:
            call(client, s.url + "/x")
    assert str(info.value).startswith("Test API: HTTP 500 with an HTML body: '<!DOCTYPE html>\\n<html><head><title>500")
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)


def test_json_error_object_gives_its_message(client: httpx.Client) -> None:
    """{"error": {"code", "message"}} (the GB API's shape) becomes 'HTTP 400: code: message'."""
    body = b'{"error":{"code":"400 Bad Request","message":"No postcode match can be found."}}'
    with Server({"/x": lambda h: send(h, 400, body, "application/json")}) as s:
        expected = r"^Test API: HTTP 400: 400 Bad Request: No postcode match can be found\.$"
        with pytest.raises(IntensityUnavailable, match=expected):
            call(client, s.url + "/x")
    assert error_message({"message": "No recent data"}) == "No recent data"
    assert error_message({"error": "A problem occurred"}) == "A problem occurred"
    assert error_message({"data": []}) is None


def test_empty_body(client: httpx.Client) -> None:
    """A 200 with nothing in it is no answer."""
    with Server({"/x": lambda h: send(h, 200, b"", "application/json")}) as s:
        with pytest.raises(IntensityUnavailable, match=r"^Test API: HTTP 200 with an empty body$"):
            call(client, s.url + "/x")


def test_malformed_json(client: httpx.Client) -> None:
    """A truncated JSON body is not JSON; the message quotes its start, the cause is the decode error."""
    with Server({"/x": lambda h: send(h, 200, b'{"total": 3, "records": [{"Minutes5UTC"', "application/json")}) as s:
        with pytest.raises(IntensityUnavailable, match=r"body is not JSON \(.*\): '\{\"total\": 3") as info:
            call(client, s.url + "/x")
    assert isinstance(info.value.__cause__, ValueError)


def test_deeply_nested_json_is_refused_cleanly(client: httpx.Client) -> None:
    """A body of a million '[' is refused as JSON, not a RecursionError escaping the provider."""
    with Server({"/x": lambda h: send(h, 200, b"[" * 1_000_000, "application/json")}) as s:
        with pytest.raises(IntensityUnavailable, match="nested too deeply"):
            call(client, s.url + "/x")


def test_html_200_is_not_json(client: httpx.Client) -> None:
    """A captive portal's 200 HTML page is refused as HTML, not parsed."""
    with Server({"/x": lambda h: send(h, 200, b"<html><body>Log in to the Wi-Fi</body></html>", "text/html")}) as s:
        with pytest.raises(IntensityUnavailable, match=r"HTTP 200 with an HTML body, not JSON: '<html>"):
            call(client, s.url + "/x")


def test_connection_refused_and_timeout_texts(client: httpx.Client) -> None:
    """A closed port gives 'request failed (ConnectError...)', chained."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(IntensityUnavailable, match=r"^Test API: request failed \(ConnectError: ") as info:
        call(client, f"http://127.0.0.1:{port}/x")
    assert isinstance(info.value.__cause__, httpx.ConnectError)


# -- secrets -------------------------------------------------------------------------------

TOKEN = "s3cr3t-T0KEN-4711"
KEY = "k3y-0815-abcdef"


def full_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


@pytest.mark.parametrize("case", ["echo 500", "429", "not json", "refused", "slow"])
def test_secrets_never_reach_error_text(client: httpx.Client, case: str, caplog: pytest.LogCaptureFixture) -> None:
    """A token in the query string and a key in a header appear in no message, cause, traceback
    or log line, even when the server echoes the request back in its error body."""

    def echo(h: BaseHTTPRequestHandler, status: int) -> None:
        text = f"bad request {h.path} auth-token: {h.headers.get('auth-token')} token {TOKEN}"
        send(h, status, text.encode(), "text/plain")

    def slow(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "5")
        h.end_headers()
        trickle(h, b"12345", 2.0, [])

    answers: dict[str, Answer] = {
        "/echo": lambda h: echo(h, 500),
        "/limited": lambda h: echo(h, 429),
        "/notjson": lambda h: send(h, 200, f"token={TOKEN}".encode(), "application/json"),
        "/slow": slow,
    }
    path = {"echo 500": "/echo", "429": "/limited", "not json": "/notjson", "slow": "/slow"}.get(case, "/x")
    with Server(answers) as s:
        base = s.url
        if case == "refused":
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with caplog.at_level(logging.DEBUG, logger="carbonkit"), pytest.raises(IntensityUnavailable) as info:
            get_json(
                client,
                f"{base}{path}?securityToken={TOKEN}&documentType=A75",
                params={"api_key": KEY},
                headers={"auth-token": KEY},
                provider="test:secret",
                deadline_s=1.0,
                backoff=Backoff(),
                now=NOW,
            )
    text = full_text(info.value) + caplog.text
    assert TOKEN not in text
    assert KEY not in text
    assert "***" in str(info.value) or case in ("refused", "slow", "not json")
    assert str(info.value).startswith(f"GET {base}{path}: ")


# -- arguments -----------------------------------------------------------------------------


def test_bad_arguments_are_config_errors_naming_the_value(client: httpx.Client) -> None:
    """max_bytes, deadline_s and now are checked before any request."""
    with pytest.raises(ConfigError, match="max_bytes must be a whole number of bytes > 0, got 0"):
        call(client, "http://127.0.0.1:9/", max_bytes=0)
    with pytest.raises(ConfigError, match=r"deadline_s must be a number of seconds > 0, got -1"):
        call(client, "http://127.0.0.1:9/", deadline_s=-1)
    with pytest.raises(ConfigError, match="now must be a timezone-aware datetime"):
        call(client, "http://127.0.0.1:9/", now=datetime(2024, 11, 5, 13, 0))


def test_mock_transport_bodies_are_checked_too() -> None:
    """A MockTransport answer (its body already loaded by httpx) goes through the same checks."""
    payload = b'{"a": 1}'
    c = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=payload)))
    assert call(c, "https://api.test/x") == {"a": 1}
    big = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"1" * 2048)))
    with pytest.raises(IntensityUnavailable, match="body over the limit of 1 KiB"):
        call(big, "https://api.test/x", max_bytes=1024)
