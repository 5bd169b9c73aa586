"""The gunicorn worker of ``integration serve``: gthread, but a slow client costs a socket, not a thread.

gunicorn's gthread worker hands a connection to a thread as soon as its first byte arrives, and the
thread then reads the request head with blocking reads and no deadline. A client that drips its
headers a byte at a time holds that thread for as long as it likes; with 2 workers × 4 threads,
seven or eight such clients stop every callout from being served (a slowloris).

``HeadFirstWorker`` reads the request head in the worker's event loop instead, non-blocking, next to
gthread's own kept-alive connections: a connection reaches a thread only once its head is complete
(the blank line after the headers has arrived). A head must be complete within ``HEAD_TIMEOUT``
seconds of the connection (or of its previous answer, on a kept-alive connection) and fit in
``MAX_HEAD`` bytes; otherwise the client gets a JSON 408 or 431 and the connection is closed. Once a
thread has the request, every read and write on the socket times out after ``IO_TIMEOUT`` seconds of
silence, so a body that stalls frees its thread too (werkzeug reports it as a 400). So 50 or 500
slow clients cost 50 or 500 idle sockets (bounded by ``worker_connections``) and no thread.

Errors gunicorn answers itself, before the application sees the request (a malformed request line,
an oversized header), are JSON ``{"error", "detail"}`` like every other error of the service,
instead of gunicorn's HTML page: ``handle_error`` lets gunicorn decide the status, as it always
does, and writes the body as JSON.

This worker speaks plain HTTP/1.x, which is what runs behind a TLS-terminating proxy. With
gunicorn's own TLS or HTTP/2 cleartext configured it reads heads the way gthread does.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import time
from collections import deque
from functools import partial

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

# seconds for a whole request head to arrive (nginx's client_header_timeout is 60 by default)
HEAD_TIMEOUT = float(os.environ.get("INTEGRATION_HEAD_TIMEOUT_SECONDS", "10"))
IO_TIMEOUT = 15.0     # seconds of silence allowed on a request's body (and our answer's write)
MAX_HEAD = 32 * 1024  # bytes of request line and headers, as nginx's default large_client_header_buffers
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def json_error_bytes(status: int, reason: str, code: str, detail: str) -> bytes:
    """A complete HTTP/1.1 error response with the service's JSON error body; the connection closes."""
    body = json.dumps({"error": code, "detail": detail}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def _code(reason: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_") or "error"


class _StatusCapture:
    """Stands in for the client socket while gunicorn's ``handle_error`` writes its HTML page, so
    that its choice of status line is kept and the page itself is not sent."""

    def __init__(self, sock):
        self._sock = sock
        self.written = b""

    def gettimeout(self) -> float:
        return 0.0  # "non-blocking already": gunicorn's write_nonblock then just calls sendall

    def setblocking(self, flag) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.written += data

    def __getattr__(self, name):
        return getattr(self._sock, name)


class HeadConn(TConn):
    """A connection whose request head may already have been read by the event loop."""

    def __init__(self, cfg, sock, client, server):
        super().__init__(cfg, sock, client, server)
        self.head = bytearray()
        self.head_deadline = 0.0

    def init(self) -> None:
        """Runs in the thread, with the socket just set blocking: hand the head read so far to the
        parser (before any byte still on the socket), and bound every further read and write."""
        super().init()
        if self.head:
            self.parser.unreader.unread(bytes(self.head))
            self.head.clear()
        self.sock.settimeout(IO_TIMEOUT)


class HeadFirstWorker(ThreadWorker):
    """gthread whose event loop reads request heads, with a deadline, before a thread is involved."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading_heads: deque[HeadConn] = deque()  # in deadline order: every head gets HEAD_TIMEOUT

    def _heads_in_loop(self) -> bool:
        return not self.cfg.is_ssl and self.cfg.http2_cleartext in (None, "", "off", False)

    def accept(self, listener) -> None:
        if not self._heads_in_loop():
            super().accept(listener)
            return
        try:
            client_sock, client_addr = listener.accept()
        except BlockingIOError:
            return
        except ConnectionAbortedError:
            return
        self.nr_conns += 1
        self._await_head(HeadConn(self.cfg, client_sock, client_addr, listener.getsockname()))

    def on_client_socket_readable(self, conn, client) -> None:
        """A kept-alive connection is sending its next request: read that head in the loop too."""
        if not self._heads_in_loop():
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_head(conn)

    def _await_head(self, conn: HeadConn) -> None:
        conn.sock.setblocking(False)
        conn.head_deadline = time.monotonic() + HEAD_TIMEOUT
        self.reading_heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _on_head_readable(self, conn: HeadConn, sock) -> None:
        try:
            data = conn.sock.recv(8192)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before finishing its head
            self._drop_head(conn)
            return
        conn.head += data
        if _HEAD_END.search(conn.head):
            self.poller.unregister(conn.sock)
            self.reading_heads.remove(conn)
            conn.data_ready = True
            self.enqueue_req(conn)
        elif len(conn.head) > MAX_HEAD:
            self._drop_head(conn, json_error_bytes(431, "Request Header Fields Too Large",
                                                   "request_header_fields_too_large",
                                                   f"the request line and headers may be at most {MAX_HEAD} bytes"))

    def _drop_head(self, conn: HeadConn, answer: bytes | None = None) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self.reading_heads.remove(conn)
        self.nr_conns -= 1
        if answer:
            with contextlib.suppress(OSError):
                conn.sock.send(answer)  # best effort, never blocks the loop
        conn.close()

    def murder_pending(self) -> None:
        """Once per loop turn (at least every second): also close connections whose head is late."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading_heads and self.reading_heads[0].head_deadline <= now:
            conn = self.reading_heads[0]
            self.log.warning("request head not complete within %ss from ip=%s; closing", HEAD_TIMEOUT,
                             conn.client[0] if isinstance(conn.client, tuple) else conn.client)
            self._drop_head(conn, json_error_bytes(408, "Request Timeout", "request_timeout",
                                                   f"the request head must arrive within {HEAD_TIMEOUT:g} seconds"))

    def handle_error(self, req, client, addr, exc) -> None:
        """gunicorn's own error answers (400 bad request line, 431 header too large, …) as JSON."""
        capture = _StatusCapture(client)
        super().handle_error(req, capture, addr, exc)
        status_line = capture.written.split(b"\r\n", 1)[0].decode("latin-1")
        match = re.match(r"HTTP/\d\.\d (\d{3}) ?(.*)", status_line)
        status, reason = (int(match.group(1)), match.group(2)) if match else (500, "Internal Server Error")
        if status >= 500:
            code, detail = "internal_error", "the service hit an unexpected error; it is logged"
        else:
            code, detail = _code(reason), str(exc)[:200] or reason
        try:
            util.write_nonblock(client, json_error_bytes(status, reason, code, detail))
        except Exception:  # noqa: BLE001 - the client may be gone; gunicorn ignores this too
            self.log.debug("Failed to send error message.")
