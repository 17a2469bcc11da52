"""What every local stand-in server of the tests shares: a ThreadingHTTPServer on 127.0.0.1.

A stand-in subclasses :class:`LocalServer`, builds its request handler (a :class:`QuietHandler`)
and calls :meth:`LocalServer.serve` in ``__init__``; ``with stand_in:`` then serves on a daemon
thread and shuts the server down on exit. :func:`send` writes a whole answer; :func:`send_head`
and :func:`trickle` write a slow one (the status and headers at once, then the body one byte at
a time, stopping as soon as the client hangs up or the stand-in closes).
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing."""

    def log_message(self, *args: object) -> None:
        pass


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port), serving while used as a context manager.

    ``closing`` is set when the stand-in closes, for answers still trickling out.
    """

    server: ThreadingHTTPServer
    thread: threading.Thread
    closing: threading.Event

    def serve(
        self, handler: type[BaseHTTPRequestHandler], *, daemon_threads: bool = False, poll_interval: float = 0.5
    ) -> None:
        """Bind the server (it serves from ``__enter__`` on)."""
        self.closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = daemon_threads
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
        )

    @property
    def root(self) -> str:
        """``http://127.0.0.1:{port}``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def send_head(
    handler: BaseHTTPRequestHandler,
    status: int,
    content_type: str,
    length: int,
    headers: Mapping[str, str] | None = None,
) -> None:
    """The status line and headers: Content-Type, Content-Length, then ``headers``."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(length))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    content_type: str,
    data: bytes,
    headers: Mapping[str, str] | None = None,
) -> None:
    """A whole answer at once."""
    send_head(handler, status, content_type, len(data), headers)
    handler.wfile.write(data)


def trickle(
    handler: BaseHTTPRequestHandler, data: bytes, byte_s: float, closing: threading.Event, done: threading.Event
) -> None:
    """Write ``data`` one byte every ``byte_s`` seconds, stopping when the client hangs up or
    ``closing`` is set; set ``done`` when it stops."""
    try:
        for i in range(len(data)):
            handler.wfile.write(data[i : i + 1])
            handler.wfile.flush()
            if closing.is_set() or _client_gone(handler.connection, byte_s):
                break
    except OSError:
        pass
    finally:
        done.set()


def _client_gone(connection: socket.socket, wait_s: float) -> bool:
    readable, _, _ = select.select([connection], [], [], wait_s)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True
