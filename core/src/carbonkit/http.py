"""One bounded HTTP GET for every carbon-intensity provider: :func:`get_json` and :func:`get_bytes`.

A provider plugin calls a web API a few times an hour from the tracker's intensity thread, or
once from ``carbonkit intensity``. Whatever the server does, the call must end soon, cost little
memory, say clearly what went wrong, and never print a credential. These functions do the
checks every provider would otherwise repeat, and raise :class:`~carbonkit.IntensityUnavailable`
(the core then falls back to the next provider and records why)::

    from carbonkit.http import Backoff, get_json

    class MyProvider:
        name = "myplugin:api"

        def __init__(self, client):
            self.client = client        # the httpx.Client the core passed to the hook
            self.backoff = Backoff()    # one per API (share it between providers of one API)

        def current(self, zone):
            payload = get_json(
                self.client, "https://api.example.org/v1/latest",
                params={"zone": zone}, headers={"auth-token": TOKEN},
                provider=self.name, zone=zone, what="Example API /v1/latest",
                backoff=self.backoff,
            )
            ...  # parse payload; raise IntensityUnavailable for a wrong shape

What each call does, in order:

1. **Ban memory.** With a :class:`Backoff`, no request is sent while an earlier HTTP 429 (or a
   503 with ``Retry-After``) still holds: the call raises at once, saying until when. The ban
   lasts as ``Retry-After`` says, in seconds (``120``) or as an HTTP date
   (``Wed, 21 Oct 2026 07:28:00 GMT``), at most :data:`MAX_BAN_S`; a 429 without a usable
   ``Retry-After`` bans for ``default_ban_s`` (:data:`DEFAULT_BAN_S`, 5 minutes); a 503 without
   one bans nothing (an outage, not a request to slow down). Each ban is logged once, as a
   warning on the ``carbonkit.http`` logger. Without a :class:`Backoff` nothing is remembered
   and the error only says what the server asked. ``now`` (an aware datetime) is the clock for
   bans, so tests can inject one.
2. **Deadline.** The whole call, connection, redirects and body included, gets ``deadline_s``
   seconds (:data:`DEFAULT_DEADLINE_S`, 20 s). Each connect, read and write timeout of the
   client is capped at the deadline; a watchdog closes the connection's socket when the
   deadline passes (so a server that sends one byte every few seconds, in the headers or the
   body, is cut off on time); and the deadline is checked between chunks of the body. The
   call then raises ``no complete answer within 20 s``. Inside ``with overall_deadline(30):``
   every call also stops at that outer deadline, and once it has passed no request is sent
   (``carbonkit intensity --timeout`` uses it). Name resolution (DNS) is the one step no
   socket timeout bounds.
3. **Size limit after decompression.** The body is read raw, in chunks, and decompressed here
   (``gzip`` or ``deflate``, the encodings the request offers) in pieces of at most 64 KiB, so
   a body over ``max_bytes`` (:data:`DEFAULT_MAX_BYTES`, 4 MiB) is refused after reading a
   little more than ``max_bytes``: a gzip bomb (1 GB of zeros sent as 1 MB) or a 200 MB body
   costs a few MB of memory, not its size. httpx's own ``iter_bytes()`` decompresses each
   network chunk whole (64 KiB of gzip can be 64 MB), which is why it is not used. A
   ``Content-Length`` over the limit is refused before reading. Error bodies are read up to
   64 KiB only, for the message.
4. **Status.** Redirects are followed as the client is set to (at most 5 hops, each bounded
   the same way). A status outside 200-299 raises, with what the body was:
   ``HTTP 500 with an HTML body: '<!DOCTYPE html>...'``, ``HTTP 403 with a text body: '...'``,
   ``HTTP 502 with an empty body``, or, for a JSON error object
   (``{"error": {"code": ..., "message": ...}}``, ``{"error": "..."}``, ``{"message": "..."}``),
   ``HTTP 400: 400 Bad Request: No postcode match can be found.`` The cause is an
   ``httpx.HTTPStatusError``.
5. **Content** (:func:`get_json` only). An empty body raises ``HTTP 200 with an empty body``;
   an HTML page (a captive portal, a maintenance page) raises
   ``HTTP 200 with an HTML body, not JSON: '...'``; anything else must parse as JSON, else
   ``body is not JSON (...): '...'``. A body with no ``Content-Type`` is tried as JSON.
   :func:`get_bytes` stops after step 4 and returns the :class:`Body` (for XML services).
6. **No secrets in text.** Messages and log lines go through
   :func:`carbonkit._redact.redact_text`, and every value the call was given under a
   secret-looking name (a query parameter such as ``securityToken``, a header such as
   ``auth-token`` or ``Authorization``, a URL password) is replaced by ``***`` wherever it
   appears, also when the server echoes it in an error body. The chained
   ``HTTPStatusError`` carries the same redacted text.

:func:`put_bytes` does steps 1 to 4 for a PUT with an empty body (a session-token request,
such as the AWS instance metadata service's), following no redirect.

Every failure is an :class:`~carbonkit.IntensityUnavailable` whose message starts with
``what`` (default: ``GET`` and the URL without its query) and whose ``provider`` and ``zone``
are the ones given. Transport failures read ``request timed out (ReadTimeout: ...)`` and
``request failed (ConnectError: ...)``, chained to the httpx exception.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import math
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from attrs import define, field, frozen

from ._http import TIMEOUT_S, default_http_client, user_agent
from ._redact import REDACTED, install_log_filter, is_secret_name, redact_text, register_secret
from .errors import ConfigError, IntensityUnavailable

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_BAN_S",
    "DEFAULT_DEADLINE_S",
    "DEFAULT_MAX_BYTES",
    "MAX_BAN_S",
    "TIMEOUT_S",
    "Backoff",
    "Body",
    "check_deadline",
    "check_max_bytes",
    "default_http_client",
    "error_message",
    "get_bytes",
    "get_json",
    "http_status",
    "overall_deadline",
    "register_secret",
    "put_bytes",
    "user_agent",
]

_logger = logging.getLogger("carbonkit.http")
install_log_filter()  # httpx logs each request's URL, query included: no token may reach a log

MIB = 1 << 20
#: Largest body (after decompression) a call accepts unless the provider sets ``max_bytes``.
DEFAULT_MAX_BYTES = 4 * MIB
#: Seconds a whole call may take unless the provider sets ``deadline_s``.
DEFAULT_DEADLINE_S = 20.0
#: Ban after an HTTP 429 without a usable ``Retry-After`` (Energi Data Service's own ban is 5 min).
DEFAULT_BAN_S = 300.0
#: Longest ban a ``Retry-After`` can impose; a longer one is cut to this.
MAX_BAN_S = 24 * 3600.0
#: Redirect hops followed at most (when the client follows redirects).
MAX_REDIRECTS = 5
_ERROR_BODY_BYTES = 64 * 1024
_DECODE_PIECE = 64 * 1024
_PREVIEW_CHARS = 200
_ACCEPT_ENCODING = "gzip, deflate"


# -------------------------------------------------------------------------------------------
# Public records
# -------------------------------------------------------------------------------------------


@define
class Backoff:
    """Until when an API must not be called, after it answered HTTP 429 (or 503 with
    ``Retry-After``). Keep one per API and pass it to every call to that API; providers of
    the same API share one instance. Thread-safe.

    :param until: End of the ban (aware, UTC), or None when not banned.
    :param reason: What caused it, e.g. ``"rate limited (HTTP 429 with an empty body)"``.
    """

    until: datetime | None = None
    reason: str = ""
    lock: threading.Lock = field(factory=threading.Lock, repr=False, eq=False)

    def active(self, now: datetime) -> tuple[datetime, str] | None:
        """Return ``(until, reason)`` while a ban holds at ``now``; clear an expired ban."""
        with self.lock:
            if self.until is not None and now < self.until:
                return self.until, self.reason
            self.until, self.reason = None, ""
            return None

    def ban(self, until: datetime, reason: str) -> None:
        """Ban calls until ``until`` (keeps a later ban already in place)."""
        with self.lock:
            if self.until is None or until > self.until:
                self.until, self.reason = until, reason


@frozen
class Body:
    """A successful (2xx) answer read within the bounds.

    :param status: The HTTP status code.
    :param headers: The response headers (case-insensitive mapping).
    :param content: The body, decompressed, at most ``max_bytes`` long.
    :param url: The final URL, after redirects (it may hold credentials: do not print it).
    """

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case (``"application/json"``), or ``""``."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


# -------------------------------------------------------------------------------------------
# Overall deadline
# -------------------------------------------------------------------------------------------


@frozen
class _Outer:
    end: float  # time.monotonic()
    what: str


_OUTER: contextvars.ContextVar[_Outer | None] = contextvars.ContextVar("carbonkit_http_deadline", default=None)


@contextlib.contextmanager
def overall_deadline(seconds: float, what: str | None = None) -> Iterator[None]:
    """Bound every :func:`get_json` / :func:`get_bytes` call made inside the block (in this
    thread or context) by one deadline ``seconds`` from now, on top of each call's own.

    Once it has passed, calls raise at once without a request. Nested blocks keep the
    earlier deadline.

    :param seconds: A number > 0.
    :param what: How messages name it, e.g. ``"--timeout 30"`` (default
        ``"the overall deadline of 30 s"``).
    :raises ConfigError: ``seconds`` is not a number > 0.
    """
    seconds = _positive(seconds, "overall_deadline seconds")
    end = time.monotonic() + seconds
    outer = _OUTER.get()
    if outer is not None and outer.end <= end:
        token = _OUTER.set(outer)
    else:
        token = _OUTER.set(_Outer(end=end, what=what or f"the overall deadline of {seconds:g} s"))
    try:
        yield
    finally:
        _OUTER.reset(token)


# -------------------------------------------------------------------------------------------
# Validators for providers' own bounds (attrs field validators)
# -------------------------------------------------------------------------------------------


def check_max_bytes(instance: Any, attribute: Any, value: int) -> None:
    """attrs validator: a provider's ``max_bytes`` is a whole number of bytes >= 1024."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
        raise ConfigError(f"{attribute.name} must be a whole number of bytes >= 1024, got {value!r}")


def check_deadline(instance: Any, attribute: Any, value: float) -> None:
    """attrs validator: a provider's ``deadline_s`` is a number of seconds > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{attribute.name} must be a number of seconds > 0, got {value!r}")


# -------------------------------------------------------------------------------------------
# The calls
# -------------------------------------------------------------------------------------------


def get_json(
    client: httpx.Client,
    url: str,
    *,
    provider: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    zone: str | None = None,
    what: str | None = None,
    backoff: Backoff | None = None,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_s: float = DEFAULT_DEADLINE_S,
    default_ban_s: float = DEFAULT_BAN_S,
) -> Any:
    """GET ``url`` within the bounds and return its body decoded as JSON.

    :param client: The ``httpx.Client`` the core passed to the hook (its timeouts are capped
        at the deadline; redirects followed as it is set to).
    :param url: The URL; ``params`` are added to its query.
    :param provider: The provider's name, for the exception's ``provider``.
    :param params: Query parameters. Values under secret-looking names never appear in text.
    :param headers: Extra request headers (same rule for secret-looking names).
    :param zone: The zone asked for, for the exception's ``zone``.
    :param what: How messages name the call, e.g. ``"Energi Data Service CO2Emis"``.
    :param backoff: Ban memory for this API (see :class:`Backoff`); None: no memory.
    :param now: Current time, aware (default: the system clock), for bans only.
    :param max_bytes: Largest body accepted, after decompression.
    :param deadline_s: Seconds the whole call may take.
    :param default_ban_s: Ban after a 429 without a usable ``Retry-After``.
    :returns: The decoded JSON value.
    :raises IntensityUnavailable: banned, timed out, over the limit, bad status, empty,
        HTML or not JSON (the message says which).
    :raises ConfigError: ``max_bytes``, ``deadline_s`` or ``default_ban_s`` is not > 0, or
        ``now`` is naive.
    """
    call = _Call(url, provider=provider, zone=zone, what=what, params=params, headers=headers)
    body = call.fetch(
        client,
        accept="application/json",
        backoff=backoff,
        now=now,
        max_bytes=max_bytes,
        deadline_s=deadline_s,
        default_ban_s=default_ban_s,
    )
    if not body.content.strip():
        raise call.fail(f"HTTP {body.status} with an empty body")
    kind = _body_kind(body.content_type, body.content)
    if kind in ("an HTML", "an XML"):
        raise call.fail(f"HTTP {body.status} with {kind} body, not JSON: {_preview(body.content)}")
    try:
        return json.loads(body.content)
    except RecursionError as exc:
        raise call.fail(f"body is not JSON (nested too deeply): {_preview(body.content)}", exc) from exc
    except ValueError as exc:
        raise call.fail(f"body is not JSON ({exc}): {_preview(body.content)}", exc) from exc


def get_bytes(
    client: httpx.Client,
    url: str,
    *,
    provider: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    zone: str | None = None,
    what: str | None = None,
    backoff: Backoff | None = None,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_s: float = DEFAULT_DEADLINE_S,
    default_ban_s: float = DEFAULT_BAN_S,
) -> Body:
    """GET ``url`` within the bounds and return the successful answer (steps 1 to 4 of the
    module's description; for services that answer XML or CSV). Arguments as :func:`get_json`.

    :returns: The :class:`Body` of a 2xx answer (possibly empty).
    :raises IntensityUnavailable: banned, timed out, over the limit or a bad status.
    """
    call = _Call(url, provider=provider, zone=zone, what=what, params=params, headers=headers)
    return call.fetch(
        client,
        accept=None,
        backoff=backoff,
        now=now,
        max_bytes=max_bytes,
        deadline_s=deadline_s,
        default_ban_s=default_ban_s,
    )


def put_bytes(
    client: httpx.Client,
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    zone: str | None = None,
    what: str | None = None,
    backoff: Backoff | None = None,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_s: float = DEFAULT_DEADLINE_S,
    default_ban_s: float = DEFAULT_BAN_S,
) -> Body:
    """PUT ``url`` with an empty body, within the same bounds as :func:`get_bytes`, and return
    the successful answer. For the few services that hand out a session token this way (the
    AWS instance metadata service's ``/latest/api/token``). Arguments as :func:`get_json`;
    redirects are not followed (the client would turn a 303 into a GET).

    :returns: The :class:`Body` of a 2xx answer (possibly empty).
    :raises IntensityUnavailable: banned, timed out, over the limit or a bad status.
    """
    call = _Call(url, provider=provider, zone=zone, what=what, params=None, headers=headers, method="PUT")
    return call.fetch(
        client,
        accept=None,
        backoff=backoff,
        now=now,
        max_bytes=max_bytes,
        deadline_s=deadline_s,
        default_ban_s=default_ban_s,
    )


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind an :class:`IntensityUnavailable` raised by :func:`get_json` or
    :func:`get_bytes`, if any (None for a timeout, a refused connection...)."""
    response = getattr(exc.__cause__, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def error_message(payload: Any) -> str | None:
    """Return the message of a JSON error object, or None when ``payload`` is not one.

    ``{"error": {"code": "400 Bad Request", "message": "No postcode match"}}`` gives
    ``"400 Bad Request: No postcode match"``; ``{"error": "..."}``, ``{"message": "..."}`` and
    ``{"detail": "..."}`` give their text.
    """
    if not isinstance(payload, Mapping):
        return None
    error = payload.get("error")
    if isinstance(error, Mapping):
        code, message = error.get("code"), error.get("message")
        if code and message:
            return f"{code}: {message}"
        if message or code:
            return str(message or code)
    if isinstance(error, str) and error.strip():
        return error
    for key in ("message", "detail"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


# -------------------------------------------------------------------------------------------
# Implementation
# -------------------------------------------------------------------------------------------


class _Expired(Exception):
    """The deadline passed between two chunks."""


class _OverLimit(Exception):
    """The body grew past the limit."""


class _Call:
    """One call's label, secrets and error construction."""

    def __init__(
        self,
        url: str,
        *,
        provider: str,
        zone: str | None,
        what: str | None,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        method: str = "GET",
    ) -> None:
        self.method = method
        self.url = url
        self.provider = provider
        self.zone = zone
        self.params = params
        self.headers = dict(headers or {})
        self.secrets = _secrets(url, params, self.headers)
        self.what = self.scrub(what or f"{method} {url.split('?', 1)[0]}")

    def scrub(self, text: str) -> str:
        out = redact_text(text)
        for secret in self.secrets:
            out = out.replace(secret, REDACTED)
        return out

    def fail(self, message: str, cause: BaseException | None = None) -> IntensityUnavailable:
        exc = IntensityUnavailable(self.scrub(f"{self.what}: {message}"), provider=self.provider, zone=self.zone)
        if cause is not None:
            _scrub_exception(cause, self.scrub)
            exc.__cause__ = cause
        return exc

    def fetch(
        self,
        client: httpx.Client,
        *,
        accept: str | None,
        backoff: Backoff | None,
        now: datetime | None,
        max_bytes: int,
        deadline_s: float,
        default_ban_s: float,
    ) -> Body:
        import httpx

        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ConfigError(f"max_bytes must be a whole number of bytes > 0, got {max_bytes!r}")
        deadline_s = _positive(deadline_s, "deadline_s")
        default_ban_s = _positive(default_ban_s, "default_ban_s")
        now = _aware_now(now)

        if backoff is not None:
            held = backoff.active(now)
            if held is not None:
                until, reason = held
                raise self.fail(f"{reason}; not calling again until {_iso(until)}")

        started = time.monotonic()
        budget, note = deadline_s, ""
        outer = _OUTER.get()
        if outer is not None:
            left = outer.end - started
            if left <= 0:
                raise self.fail(f"not called: no time left of {outer.what}")
            if left < budget:
                budget, note = left, f" (the time left of {outer.what})"
        end = started + budget

        def expired(cause: BaseException | None = None) -> IntensityUnavailable:
            return self.fail(f"no complete answer within {budget:.2g} s{note}", cause)

        request_headers = {"Accept-Encoding": _ACCEPT_ENCODING, **self.headers}
        if accept is not None:
            request_headers.setdefault("Accept", accept)
        watchdog = _Watchdog(budget)
        try:
            request = client.build_request(
                self.method,
                self.url,
                params=self.params,
                headers=request_headers,
                timeout=_capped_timeout(client.timeout, budget),
                extensions={"trace": watchdog.trace},
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError, ValueError) as exc:
            raise self.fail(f"invalid request ({type(exc).__name__}: {exc})", exc) from exc
        watchdog.start()
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                response = client.send(request, stream=True, follow_redirects=False)
                try:
                    watchdog.attach(response.extensions.get("network_stream"))
                    if response.next_request is not None and client.follow_redirects and self.method == "GET":
                        request = response.next_request
                        continue
                    ok = 200 <= response.status_code < 300
                    if ok:
                        self._check_length(response, max_bytes)
                        content, cut = _read(response, max_bytes, end, watchdog)
                    else:
                        try:
                            content, cut = _read(response, min(max_bytes, _ERROR_BODY_BYTES), end, watchdog)
                        except _Decoding:
                            content, cut = b"", True  # the status says enough
                    if ok and cut:
                        limit = _size(max_bytes)
                        raise self.fail(f"body over the limit of {limit} (after decompression); stopped reading")
                finally:
                    response.close()
                if ok:
                    return Body(
                        status=response.status_code, headers=response.headers, content=content, url=str(response.url)
                    )
                raise self._status_error(response, content, cut, now, backoff, default_ban_s)
            raise self.fail(f"more than {MAX_REDIRECTS} redirects")
        except _Expired:
            raise expired() from None
        except _Decoding as exc:
            raise self.fail(f"body could not be decompressed ({exc})") from None
        except httpx.HTTPError as exc:
            if watchdog.fired or time.monotonic() >= end:
                raise expired(exc) from exc
            if isinstance(exc, httpx.TimeoutException):
                raise self.fail(f"request timed out ({type(exc).__name__}: {exc})", exc) from exc
            raise self.fail(f"request failed ({type(exc).__name__}: {exc})", exc) from exc
        finally:
            watchdog.stop()

    def _check_length(self, response: httpx.Response, max_bytes: int) -> None:
        if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
            return  # the compressed length says nothing certain about the decompressed one
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > max_bytes:
            raise self.fail(
                f"body over the limit of {_size(max_bytes)} (Content-Length says {_size(int(declared))}); not read"
            )

    def _status_error(
        self,
        response: httpx.Response,
        content: bytes,
        cut: bool,
        now: datetime,
        backoff: Backoff | None,
        default_ban_s: float,
    ) -> IntensityUnavailable:
        import httpx

        status = self.scrub(_describe_status(response, content, cut))
        cause = httpx.HTTPStatusError(f"{status} for {self.what}", request=response.request, response=response)
        code = response.status_code
        if code in (429, 503):
            wait = _retry_after(response.headers.get("retry-after"), now)
            if wait is None and code == 429:
                wait = timedelta(seconds=default_ban_s)
            if wait is not None:
                reason = f"{'rate limited' if code == 429 else 'service unavailable'} ({status})"
                until = now + wait
                if backoff is None:  # nothing remembers the ban: say what the server asked
                    return self.fail(f"{reason}; the server asks for no request until {_iso(until)}", cause)
                backoff.ban(until, reason)
                _logger.warning("%s", self.scrub(f"{self.what}: {reason}; no request until {_iso(until)}"))
                return self.fail(f"{reason}; not calling again until {_iso(until)}", cause)
        return self.fail(status, cause)


class _Watchdog:
    """Closes the request's socket when the deadline passes, so a blocked read returns."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = False
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension: learn the socket as soon as it is connected."""
        if event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            self.attach(info.get("return_value"))

    def attach(self, stream: Any) -> None:
        try:
            sock = stream.get_extra_info("socket") if stream is not None else None
        except Exception:  # a transport without sockets (MockTransport) or an odd stream
            sock = None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._done:
                return
            self._sockets.append(sock)
            if self.fired:
                _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the TLS object under a
    # read running in the other thread; this only wakes that read (it sees end of stream).
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Decoding(Exception):
    """The body's Content-Encoding is not accepted or its data is corrupt."""


class _Decoder:
    """Decompress ``gzip``/``deflate`` in pieces of at most 64 KiB, stopping at a limit."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding in ("gzip", "x-gzip"):
            self._obj: Any = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._obj = zlib.decompressobj()
        elif encoding in ("", "identity"):
            self._obj = None
        else:
            raise _Decoding(f"Content-Encoding {encoding!r} was not asked for; accepted: gzip, deflate or none")
        self._first = True

    def feed(self, data: bytes, sink: bytearray, limit: int) -> bool:
        """Append the decoded ``data`` to ``sink``; return True when the limit was passed."""
        if self._obj is None:
            room = limit - len(sink)
            sink += data[: room + 1]
            return len(sink) > limit
        pending = data
        while pending:
            try:
                piece = self._obj.decompress(pending, _DECODE_PIECE)
            except zlib.error as exc:
                if self.encoding == "deflate" and self._first:  # deflate sent without its zlib header
                    self._obj, self._first = zlib.decompressobj(-zlib.MAX_WBITS), False
                    continue
                raise _Decoding(f"{self.encoding}: {exc}") from None
            self._first = False
            sink += piece
            if len(sink) > limit:
                return True
            pending = self._obj.unconsumed_tail
            if self._obj.eof:
                pending = self._obj.unused_data
                if pending and self.encoding != "deflate":  # another gzip member follows
                    self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16)
                else:
                    break
        return False


def _read(response: httpx.Response, limit: int, end: float, watchdog: _Watchdog) -> tuple[bytes, bool]:
    """Read and decode the body up to ``limit`` bytes; return it and whether more was there
    (then the body read so far is returned only when ``limit`` is small: it is an error body)."""
    if response.is_stream_consumed:  # loaded already: an httpx.Response(content=...) of a MockTransport
        content = response.content
        if len(content) > limit:
            return (content[:limit] if limit <= _ERROR_BODY_BYTES else b""), True
        return content, False
    encoding = response.headers.get("content-encoding", "").strip().lower()
    decoder = _Decoder(encoding)
    sink = bytearray()
    for raw in response.iter_raw():
        if watchdog.fired or time.monotonic() > end:
            raise _Expired
        if decoder.feed(raw, sink, limit):
            return (bytes(sink[:limit]) if limit <= _ERROR_BODY_BYTES else b""), True
    if watchdog.fired:
        raise _Expired
    return bytes(sink), False


def _describe_status(response: httpx.Response, content: bytes, cut: bool) -> str:
    code = response.status_code
    if not content.strip():
        return f"HTTP {code} with an undecodable body" if cut else f"HTTP {code} with an empty body"
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    kind = _body_kind(content_type, content)
    if kind == "a JSON" and not cut:
        try:
            detail = error_message(json.loads(content))
        except (ValueError, RecursionError):
            detail = None
        if detail:
            return f"HTTP {code}: {_one_line(detail)}"
    return f"HTTP {code} with {kind} body: {_preview(content, cut)}"


def _body_kind(content_type: str, content: bytes) -> str:
    head = content[:256].lstrip().lower()
    if "html" in content_type or head.startswith((b"<!doctype html", b"<html")):
        return "an HTML"
    if "xml" in content_type or head.startswith(b"<?xml"):
        return "an XML"
    if "json" in content_type or head.startswith((b"{", b"[")):
        return "a JSON"
    try:
        content[: _PREVIEW_CHARS * 4].decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < _PREVIEW_CHARS:  # not a character cut in half at the end
            return "a binary"
    return "a text"


def _preview(content: bytes, cut: bool = False) -> str:
    text = content[: _PREVIEW_CHARS * 4].decode("utf-8", errors="replace")
    more = cut or len(text) > _PREVIEW_CHARS or len(content) > _PREVIEW_CHARS * 4
    return repr(text[:_PREVIEW_CHARS]) + ("..." if more else "")


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    """The wait a ``Retry-After`` header asks for (seconds or HTTP date), at most
    :data:`MAX_BAN_S` and at least 1 s; None when absent, unreadable or already past."""
    raw = (value or "").strip()
    if not raw:
        return None
    if raw.isdigit():
        seconds = float(raw)
    else:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
        if seconds <= 0:
            return None
    return timedelta(seconds=min(max(seconds, 1.0), MAX_BAN_S))


def _capped_timeout(timeout: httpx.Timeout, budget: float) -> httpx.Timeout:
    import httpx

    def cap(value: float | None) -> float:
        return budget if value is None else min(value, budget)

    return httpx.Timeout(
        connect=cap(timeout.connect), read=cap(timeout.read), write=cap(timeout.write), pool=cap(timeout.pool)
    )


def _secrets(url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str]) -> list[str]:
    found: set[str] = set()
    parts = urlsplit(url)
    if parts.password:
        found.add(parts.password)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if is_secret_name(name):
            found.add(value)
    for name, value in (params or {}).items():
        if is_secret_name(str(name)):
            values = value if isinstance(value, (list, tuple)) else [value]
            found.update(str(v) for v in values)
    for name, value in headers.items():
        if is_secret_name(name):
            found.add(str(value))
            found.update(str(value).split())  # "Bearer abc": the token alone too
    found = {s for s in found if len(s) >= 4 and s.lower() not in ("bearer", "basic")}
    variants = found | {quote(s, safe="") for s in found} | {quote_plus(s, safe="") for s in found}
    return sorted(variants, key=len, reverse=True)


def _scrub_exception(exc: BaseException, scrub: Callable[[str], str]) -> None:
    """Redact the text of a chained exception (its message may hold the URL)."""
    try:
        exc.args = tuple(scrub(a) if isinstance(a, str) else a for a in exc.args)
    except Exception:  # an exception type with read-only args: leave it
        pass


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


def _aware_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ConfigError(f"now must be a timezone-aware datetime, got {now!r}")
    return now.astimezone(timezone.utc)


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(n: int) -> str:
    """``4 MiB`` for a whole number of a unit, else the exact count (``1025 bytes``)."""
    for unit, size in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"
