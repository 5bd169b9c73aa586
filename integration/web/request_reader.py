"""One HTTP/1.x request read into memory as its bytes arrive, without blocking: the head, then the body.

``HeadFirstWorker`` (``gunicorn_worker``) feeds a ``RequestReader`` whatever each non-blocking ``recv`` returned
and asks it, after each, whether the head is complete (``head()``) and then whether the body is
(``body_end()``). Nothing here touches a socket, so the framing rules can be tested on bytes alone.

The head is parsed by gunicorn's own ``Request`` class, the very parser the request thread runs on the same
bytes afterwards, so the worker and the thread cannot disagree on where a body starts or how long it is (a
disagreement is how request smuggling starts). The body is not parsed, only delimited: ``Content-Length``
bytes, or for ``Transfer-Encoding: chunked`` a small incremental scanner that follows chunk sizes to the last
chunk and its trailers. The thread's parser then decodes and checks it; a body the scanner accepts and
gunicorn does not is a 400 there, never a wait, since the thread only ever reads these bytes from memory.

Every limit is a refusal (``Refused``) with the status and the service's own JSON error code and sentence:
a head over ``max_head`` bytes (431), a body over ``max_body`` bytes (413), a malformed head or chunked
body (400, or what gunicorn's parser decides). A ``detail`` never echoes the request: a request line may
carry a credential in its query string.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gunicorn.http import errors as gerrors
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader

_HEX = frozenset(b"0123456789abcdefABCDEF")


class Refused(Exception):
    """The request cannot be served: answer ``status`` with ``{"error": code, "detail": detail}``, then close."""

    def __init__(self, status: int, code: str, detail: str, phrase: str):
        super().__init__(code)
        self.status, self.code, self.detail, self.phrase = status, code, detail, phrase


def too_large(max_body: int) -> Refused:
    """A body over the cap (werkzeug's code, as the admin API answers it; a webhook says payload_too_large)."""
    return Refused(413, "request_entity_too_large", f"the body may be at most {max_body} bytes", "Content Too Large")


# gunicorn's parse errors → (status, reason phrase, code, detail). The detail is ours: gunicorn's messages
# quote the offending request line or header, which may carry a credential.
_PARSE_ERRORS: list[tuple[tuple[type[BaseException], ...], int, str, str, str]] = [
    ((gerrors.LimitRequestLine,), 414, "URI Too Long", "uri_too_long", "the request line is too long"),
    ((gerrors.LimitRequestHeaders,), 431, "Request Header Fields Too Large", "request_header_fields_too_large",
     "the request has too many or too large header fields"),
    ((gerrors.ExpectationFailed,), 417, "Expectation Failed", "expectation_failed",
     "the only expectation the service meets is Expect: 100-continue"),
    ((gerrors.UnsupportedTransferCoding,), 501, "Not Implemented", "not_implemented",
     "the only transfer coding the service reads is chunked"),
    ((gerrors.ForbiddenProxyRequest,), 403, "Forbidden", "forbidden", "proxy protocol from an address not allowed"),
    ((gerrors.InvalidRequestLine, gerrors.InvalidRequestMethod, gerrors.InvalidHTTPVersion, gerrors.InvalidProxyLine,
      gerrors.InvalidProxyHeader), 400, "Bad Request", "bad_request", "the request line is malformed"),
    ((gerrors.InvalidHeader, gerrors.InvalidHeaderName, gerrors.ObsoleteFolding, gerrors.InvalidSchemeHeaders),
     400, "Bad Request", "bad_request", "a header field is malformed, repeated or not allowed"),
    ((gerrors.InvalidChunkSize, gerrors.ChunkMissingTerminator, gerrors.InvalidChunkExtension), 400, "Bad Request",
     "bad_request", "the chunked body is malformed"),
    ((gerrors.NoMoreData, StopIteration, gerrors.ParseException), 400, "Bad Request", "bad_request",
     "the request is malformed"),
]


def refused_for(exc: BaseException) -> Refused | None:
    """The answer to one of gunicorn's parse errors (None: not a client's error, a 500 of ours)."""
    for kinds, status, phrase, code, detail in _PARSE_ERRORS:
        if isinstance(exc, kinds) and not isinstance(exc, gerrors.ConfigurationProblem):
            return Refused(status, code, detail, phrase)
    return None


@dataclass(frozen=True)
class Head:
    """A complete, parsed request head."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names, repeated fields joined with "," (as gunicorn's WSGI environ)
    content_length: int | None
    chunked: bool
    expects_continue: bool
    size: int                # bytes of the request line and headers, blank line included


def _environ_headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in headers and key not in ("content-type", "content-length"):
            headers[key] = f"{headers[key]},{value}"
        else:  # Content-Type: the last one wins in the environ too; a repeated Content-Length is refused
            headers[key] = value
    return headers


class ChunkScanner:
    """Finds where a chunked body ends, as its bytes arrive, and how large it is decoded (RFC 9112 §7.1).

    It delimits and does not decode: each call resumes where the last one stopped, so a body dripped a byte
    at a time costs one pass over it, not one per byte.
    """

    def __init__(self, start: int, max_body: int, max_line: int, max_trailers: int):
        self.pos = start           # the next byte of the buffer not yet scanned
        self.state = "size"        # size line → data → CRLF → … → the last chunk's trailers
        self.remaining = 0         # bytes of the current chunk's data still to come
        self.size = 0              # decoded bytes so far
        self.max_body, self.max_line, self.max_trailers = max_body, max_line, max_trailers
        self._searched = start     # where the current search for a line end may resume

    def _find(self, buf: bytearray, needle: bytes, limit: int) -> int | None:
        idx = buf.find(needle, max(self.pos, self._searched))
        if idx >= 0:
            return idx
        if len(buf) - self.pos > limit:
            raise Refused(400, "bad_request", "the chunked body is malformed", "Bad Request")
        self._searched = max(self.pos, len(buf) - len(needle) + 1)
        return None

    def end(self, buf: bytearray) -> int | None:
        """The offset just past the body in ``buf`` once it is all there, else None; ``Refused`` if it is
        malformed or decodes to more than ``max_body`` bytes."""
        while True:
            if self.state == "size":
                idx = self._find(buf, b"\r\n", self.max_line)
                if idx is None:
                    return None
                line, self.pos = bytes(buf[self.pos:idx]), idx + 2
                digits, semicolon, extension = line.partition(b";")
                if semicolon:
                    digits = digits.rstrip(b" \t")
                if not digits or not set(digits) <= _HEX or b"\r" in extension or b"\n" in extension:
                    raise Refused(400, "bad_request", "the chunked body is malformed", "Bad Request")
                self.remaining = int(digits, 16)
                self.size += self.remaining
                if self.size > self.max_body:
                    raise too_large(self.max_body)
                self.state = "data" if self.remaining else "trailers"
            elif self.state == "data":
                taken = min(self.remaining, len(buf) - self.pos)
                self.pos += taken
                self.remaining -= taken
                if self.remaining:
                    return None
                self.state = "crlf"
            elif self.state == "crlf":
                if len(buf) - self.pos < 2:
                    return None
                if buf[self.pos:self.pos + 2] != b"\r\n":
                    raise Refused(400, "bad_request", "the chunked body is malformed", "Bad Request")
                self.pos += 2
                self.state = "size"
            else:  # trailers: none (one CRLF) or header lines up to a blank line
                if len(buf) - self.pos < 2:
                    return None
                if buf[self.pos:self.pos + 2] == b"\r\n":
                    return self.pos + 2
                idx = self._find(buf, b"\r\n\r\n", self.max_trailers)
                return None if idx is None else idx + 4


class RequestReader:
    """The bytes of one request as they arrive; says when its head, then its body, is complete."""

    def __init__(self, cfg: Any, peer: Any, number: int, *, max_head: int, max_body: int,
                 buffered: bytes = b""):
        self.cfg, self.peer, self.number = cfg, peer, number
        self.max_head, self.max_body = max_head, max_body
        self.buf = bytearray(buffered)
        self.parsed: Head | None = None
        self._searched = 0  # where the search for the end of the head may resume
        self._chunks: ChunkScanner | None = None

    def add(self, data: bytes) -> None:
        self.buf += data

    def head(self) -> Head | None:
        """The parsed head once its blank line has arrived (else None); ``Refused`` if it is malformed or
        longer than ``max_head`` bytes."""
        if self.parsed is not None:
            return self.parsed
        # A bare LF ends a head too, as far as waiting goes: gunicorn's parser then refuses it (400) at once.
        ends = [i for i in (self.buf.find(b"\r\n\r\n", self._searched), self.buf.find(b"\n\n", self._searched),
                            self.buf.find(b"\n\r\n", self._searched)) if i >= 0]
        if not ends:
            if len(self.buf) > self.max_head:
                raise Refused(431, "request_header_fields_too_large",
                              f"the request line and headers may be at most {self.max_head} bytes",
                              "Request Header Fields Too Large")
            self._searched = max(0, len(self.buf) - 3)
            return None
        first = min(ends)
        size = first + (4 if self.buf[first:first + 4] == b"\r\n\r\n" else
                        2 if self.buf[first:first + 2] == b"\n\n" else 3)
        if size > self.max_head:
            raise Refused(431, "request_header_fields_too_large",
                          f"the request line and headers may be at most {self.max_head} bytes",
                          "Request Header Fields Too Large")
        try:
            request = Request(self.cfg, IterUnreader([bytes(self.buf[:size])]), self.peer, self.number)
        except Exception as exc:  # every parse error is the client's; refused_for sorts them
            refused = refused_for(exc)
            if refused is None:
                raise
            raise refused from None
        reader = request.body.reader if request.body is not None else None
        self.parsed = Head(method=request.method or "", path=request.path or "",
                           headers=_environ_headers(request.headers),
                           content_length=reader.length if isinstance(reader, LengthReader) else None,
                           chunked=isinstance(reader, ChunkedReader),
                           expects_continue=bool(request._expected_100_continue),
                           size=size)
        if self.parsed.chunked:
            limit = int(getattr(self.cfg, "limit_request_field_size", 0) or 8190)
            self._chunks = ChunkScanner(size, self.max_body, max_line=limit, max_trailers=self.max_head)
        return self.parsed

    def body_started(self) -> bool:
        return self.parsed is not None and len(self.buf) > self.parsed.size

    def end(self) -> int | None:
        """After ``head()``: the length of the whole request (head and body) once it is all in ``buf``,
        else None; ``Refused`` for a malformed or oversized chunked body. Bytes past it belong to the
        next request on the connection."""
        head = self.parsed
        if head is None:
            return None
        if head.content_length is not None and head.content_length > self.max_body:
            raise too_large(self.max_body)
        if self._chunks is not None:
            return self._chunks.end(self.buf)
        total = head.size + (head.content_length or 0)
        return total if len(self.buf) >= total else None
