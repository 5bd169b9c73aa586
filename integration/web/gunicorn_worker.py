"""The gunicorn worker of ``integration serve``: gthread, but a request reaches a thread only once it is whole.

gunicorn's gthread worker hands a connection to a thread as soon as its first byte arrives; the thread
then reads the head and the body with blocking reads, and a socket timeout bounds only silence, never the
total. A client that drips its head, or its body, a byte every few seconds holds that thread for as long as
it likes: ten of them stopped every callout of ``integration serve`` (2 workers × 4 threads).

``HeadFirstWorker`` reads every request in the worker's event loop instead, non-blocking, next to gthread's
own kept-alive connections, and hands a connection to a thread only once the whole request — head and
body — is in memory:

1. **One deadline for the whole request.** Head and body must arrive within ``REQUEST_TIMEOUT`` seconds of
   the connection (or of the previous answer, on a kept-alive connection), or the client gets a JSON 408
   and the connection is closed. The head may be at most ``MAX_HEAD`` bytes (431), the body ``MAX_BODY``
   (413, decided from ``Content-Length`` before a byte of it is read, or as a chunked body grows).
2. **The pre-check before the body.** Once the head is complete the worker asks the application's
   ``FrontDoor`` (``app.extensions["integration.front_door"]``, the very checks the webhook views run)
   whether the head alone already refuses the request: missing or wrong Basic credentials, a missing or
   malformed signature header, a stale timestamp, a non-JSON type, a declared length over the cap. A
   refusal is answered from the loop, logged and counted like the view's, before the body is sent.
3. **The body in the loop.** ``Content-Length`` bytes, or a chunked body up to its last chunk
   (``request_reader``), answering ``Expect: 100-continue`` once the pre-check has passed. The thread then
   parses the same bytes with gunicorn's own parser, from memory: it never reads the socket, so no client
   can make it wait. Bytes the client sent after the request (pipelining) are kept for the next one.

So 50 or 500 slow clients cost 50 or 500 idle sockets (bounded by ``worker_connections``) and no thread.
A refusal is followed by a lingering close (the answer, then up to ``LINGER`` seconds of discarding what
the client still sends), so the client reads the answer instead of a connection reset.

Errors gunicorn's parser raises are answered as JSON ``{"error", "detail"}`` like every other error of
the service, with a sentence of ours: gunicorn's own messages (and its log line) quote the request line,
which can carry a credential.

This worker speaks plain HTTP/1.x, which is what runs behind a TLS-terminating proxy. With gunicorn's own
TLS or HTTP/2 cleartext configured it behaves as gthread does. It relies on gthread's internals of the
gunicorn series ``pyproject.toml`` pins (``accept(listener)``, ``murder_pending``, ``enqueue_req``,
``finish_request``, ``TConn``, ``keepalived_conns``).
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import selectors
import socket
import ssl
import time
from collections import deque
from collections.abc import Mapping
from functools import partial
from http import HTTPStatus
from typing import Any, Protocol

from gunicorn import util
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

from integration.web.payloads import MAX_BODY  # the service's cap on a body, decoded, for every route
from integration.web.request_reader import Refused, RequestReader, refused_for

# seconds for a whole request, head and body, to arrive; INTEGRATION_HEAD_TIMEOUT_SECONDS is its former name
REQUEST_TIMEOUT = float(os.environ.get("INTEGRATION_REQUEST_TIMEOUT_SECONDS")
                        or os.environ.get("INTEGRATION_HEAD_TIMEOUT_SECONDS") or "10")
IO_TIMEOUT = 15.0       # seconds of silence a thread waits for the client to take its answer
MAX_HEAD = 32 * 1024    # bytes of request line and headers, as nginx's default large_client_header_buffers
LINGER = 2.0            # seconds a refused connection is drained before it closes
LINGER_BYTES = 256 * 1024
RECV_SIZE = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Answer(Protocol):
    """A refusal the application decided (``integration.web.front_door.Refusal``)."""

    status: int
    headers: Mapping[str, str]

    def body(self) -> dict[str, Any]: ...


class PreCheck(Protocol):
    """What the worker asks the application before and instead of reading a body (``FrontDoor``)."""

    def before_body(self, method: str, path: str, headers: Mapping[str, str],
                    content_length: int | None) -> Answer | None: ...

    def refused_by_server(self, method: str, path: str, status: int, code: str, detail: str) -> Answer | None: ...


def response_bytes(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 answer with a JSON body; the connection closes after it."""
    payload = json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Connection: close",
             "Content-Type: application/json", f"Content-Length: {len(payload)}",
             *(f"{name}: {value}" for name, value in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def json_error_bytes(status: int, code: str, detail: str) -> bytes:
    """The service's JSON error ``{"error", "detail"}`` as a complete answer."""
    return response_bytes(status, {"error": code, "detail": detail})


class BufferedRequest(Request):
    """gunicorn's request, parsed in the thread from the bytes the loop read. The loop has answered
    ``Expect: 100-continue`` already (and refused any other expectation); gunicorn must not answer it again."""

    _policy_expect_continue = False


class HeadConn(TConn):
    """A connection whose requests are read whole by the event loop before a thread serves them."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.state = "new"           # reading → thread → (kept alive → reading …) | lingering → closed
        self.reader: RequestReader | None = None
        self.read_seq = -1           # which entry of the worker's deadline heap is this connection's
        self.deadline = 0.0
        self.requests = 0
        self.method, self.path = "", ""
        self.request: bytes | None = None  # the whole request, for the thread's parser
        self.carry = b""             # bytes the client sent after it: the start of its next request
        self.linger_until = 0.0
        self.lingered = 0

    def init(self) -> None:
        """Runs in the thread, with the socket just set blocking: the parser reads this request from memory,
        never from the socket; the socket's timeout bounds only the writing of the answer."""
        super().init()
        if self.request is not None:
            self.parser.unreader = IterUnreader([self.request])
            self.parser.mesg_class = BufferedRequest
            self.request = None
        self.sock.settimeout(IO_TIMEOUT)


class HeadFirstWorker(ThreadWorker):
    """gthread whose event loop reads whole requests, with one deadline, before a thread is involved."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: list[tuple[float, int, HeadConn]] = []  # a heap by deadline; stale entries skipped
        self.lingering: deque[HeadConn] = deque()             # in close order: every one gets LINGER
        self._seq = itertools.count()

    def _in_loop(self) -> bool:
        return not self.cfg.is_ssl and self.cfg.http2_cleartext in (None, "", "off", False)

    def _pre_check(self) -> PreCheck | None:
        extensions = getattr(self.wsgi, "extensions", None)
        return extensions.get("integration.front_door") if isinstance(extensions, dict) else None

    # -- connections in --------------------------------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        if not self._in_loop():
            super().accept(listener)
            return
        try:
            client_sock, client_addr = listener.accept()
        except (BlockingIOError, ConnectionAbortedError, InterruptedError):
            return
        self.nr_conns += 1
        self._await_request(HeadConn(self.cfg, client_sock, client_addr, listener.getsockname()), time.monotonic())

    def on_client_socket_readable(self, conn: HeadConn, client: socket.socket) -> None:
        """A kept-alive connection is sending its next request: read that one in the loop too. Its deadline
        counts from the previous answer (gthread set ``conn.timeout`` to that moment plus ``keepalive``)."""
        if not self._in_loop():
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_request(conn, min(time.monotonic(), conn.timeout - self.cfg.keepalive))

    def finish_request(self, conn: HeadConn, fs: Any) -> None:
        """A thread has answered: if the client already sent (part of) its next request, read it on."""
        carry, conn.carry = getattr(conn, "carry", b""), b""
        if (carry and self.alive and self._in_loop() and not fs.cancelled() and fs.exception() is None
                and fs.result() is True):
            conn.sock.setblocking(False)
            self._await_request(conn, time.monotonic(), carry)
            return
        super().finish_request(conn, fs)

    # -- reading a request ---------------------------------------------------------------------------

    def _await_request(self, conn: HeadConn, since: float, buffered: bytes = b"") -> None:
        conn.sock.setblocking(False)
        conn.requests += 1
        conn.state = "reading"
        conn.reader = RequestReader(self.cfg, conn.client, conn.requests, max_head=MAX_HEAD, max_body=MAX_BODY,
                                    buffered=buffered)
        conn.method = conn.path = ""
        conn.deadline = since + REQUEST_TIMEOUT
        conn.read_seq = next(self._seq)
        heapq.heappush(self.reading, (conn.deadline, conn.read_seq, conn))
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        if buffered:
            self._advance(conn)

    def _on_readable(self, conn: HeadConn, _sock: Any) -> None:
        data = _recv(conn)
        if data is None:
            return
        if not data or conn.reader is None:  # the client went away before its request was complete
            self._close(conn)
            return
        conn.reader.add(data)
        self._advance(conn)

    def _advance(self, conn: HeadConn) -> None:
        """Whatever the bytes read so far allow: the pre-check once the head is complete, the thread once
        the body is, a refusal as soon as one is due. A bug of ours here is this request's 500, never an
        exception out of the event loop, which would end the worker and every connection it holds."""
        try:
            self._step(conn)
        except Exception as exc:  # see the docstring; logged with its traceback
            self.log.error("Error reading a request in the event loop", exc_info=exc)
            self._answer_and_close(conn, json_error_bytes(500, "internal_error",
                                                          "the service hit an unexpected error; it is logged"))

    def _step(self, conn: HeadConn) -> None:
        reader = conn.reader
        if reader is None:
            return
        try:
            if reader.parsed is None:
                head = reader.head()
                if head is None:
                    return
                conn.method, conn.path = head.method, head.path
                pre_check = self._pre_check()
                refused = pre_check.before_body(head.method, head.path, head.headers, head.content_length) \
                    if pre_check else None
                if refused is not None:
                    self._answer_and_close(conn, response_bytes(refused.status, refused.body(), refused.headers))
                    return
                if head.expects_continue and reader.end() is None:
                    with contextlib.suppress(OSError):
                        conn.sock.send(CONTINUE)  # 25 bytes on an idle socket: never blocks the loop
            end = reader.end()
        except Refused as problem:
            self._refuse(conn, problem.status, problem.code, problem.detail)
            return
        if end is None:
            return
        self.poller.unregister(conn.sock)
        conn.state = "thread"
        conn.request, conn.carry = bytes(reader.buf[:end]), bytes(reader.buf[end:])
        conn.reader = None
        conn.data_ready = True
        self.enqueue_req(conn)

    def _refuse(self, conn: HeadConn, status: int, code: str, detail: str) -> None:
        """Answer a refusal the worker decided; a webhook's is the webhook's own (logged and counted)."""
        pre_check = self._pre_check()
        refused = pre_check.refused_by_server(conn.method, conn.path, status, code, detail) \
            if pre_check and conn.method else None
        self.log.warning("request refused before the application from ip=%s: %s %s", _ip(conn.client), status, code)
        if refused is not None:
            self._answer_and_close(conn, response_bytes(refused.status, refused.body(), refused.headers))
        else:
            self._answer_and_close(conn, json_error_bytes(status, code, detail))

    def murder_pending(self) -> None:
        """Once per loop turn (at least every second): refuse requests past their deadline, and close
        refused connections whose lingering time is over."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading and self.reading[0][0] <= now:
            _, seq, conn = heapq.heappop(self.reading)
            if conn.state == "reading" and conn.read_seq == seq:
                try:
                    self._refuse(conn, 408, "request_timeout",
                                 f"the request must arrive within {REQUEST_TIMEOUT:g} seconds")
                except Exception as exc:  # as in _advance: never out of the event loop
                    self.log.error("Error refusing a late request", exc_info=exc)
                    self._close(conn)
        while self.lingering and (self.lingering[0].state != "lingering" or self.lingering[0].linger_until <= now):
            conn = self.lingering.popleft()
            if conn.state == "lingering":
                self._close(conn)

    # -- connections out -------------------------------------------------------------------------------

    def _answer_and_close(self, conn: HeadConn, answer: bytes) -> None:
        """Send ``answer`` and close, lingering: what the client still sends is read and dropped for up to
        ``LINGER`` seconds, since closing a socket with unread bytes resets it, and a reset can destroy the
        answer before the client reads it."""
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        conn.reader = None
        with contextlib.suppress(OSError):
            conn.sock.send(answer)  # a few hundred bytes on an idle socket: never blocks the loop
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_WR)
        conn.state = "lingering"
        conn.linger_until, conn.lingered = time.monotonic() + LINGER, 0
        self.lingering.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_linger_readable, conn))

    def _on_linger_readable(self, conn: HeadConn, _sock: Any) -> None:
        data = _recv(conn)
        if data is None:
            return
        conn.lingered += len(data)
        if not data or conn.lingered > LINGER_BYTES:
            self._close(conn)

    def _close(self, conn: HeadConn) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        conn.state = "closed"
        conn.reader = None
        self.nr_conns -= 1
        conn.close()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """An error while a thread served a request, answered as JSON with a sentence of ours. gunicorn's own
        answer and log line quote the request line or header, which can carry a credential."""
        refused = refused_for(exc)
        if isinstance(exc, ssl.SSLError):
            refused = Refused(403, "forbidden", "the TLS handshake failed", "Forbidden")
        if refused is None:
            # no request line, no URI: only the traceback, which passes the masking filter (gunicorn_logging)
            self.log.error("Error handling request", exc_info=exc)
            answer = json_error_bytes(500, "internal_error", "the service hit an unexpected error; it is logged")
        else:
            self.log.warning("invalid request from ip=%s: %s (%s)", _ip(addr), refused.code, type(exc).__name__)
            answer = json_error_bytes(refused.status, refused.code, refused.detail)
        try:
            util.write_nonblock(client, answer)
        except Exception:  # noqa: BLE001 - the client may be gone; gunicorn ignores this too
            self.log.debug("Failed to send error message.")


def _recv(conn: HeadConn) -> bytes | None:
    """What a readable non-blocking socket has: b"" when the client closed it or it failed, None when
    the wake-up was spurious (nothing to read after all)."""
    try:
        return conn.sock.recv(RECV_SIZE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def _ip(client: Any) -> str:
    return str(client[0]) if isinstance(client, tuple) and client else str(client or "")
