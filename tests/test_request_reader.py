"""Reading one request in memory as its bytes arrive (integration/web/request_reader.py): where the head
ends, where the body ends, the limits — and that gunicorn's own parser, run on the same bytes afterwards
as the request thread runs it, reads the same request."""
from __future__ import annotations

import random

import pytest
from gunicorn.config import Config
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader

from integration.web.request_reader import Refused, RequestReader

CFG = Config()
PEER = ("127.0.0.1", 40000)


def reader(data: bytes = b"") -> RequestReader:
    r = RequestReader(CFG, PEER, 1, max_head=32 * 1024, max_body=64 * 1024)
    r.add(data)
    return r


def fed(data: bytes, step: int = 1) -> tuple[RequestReader, int | None]:
    """``data`` fed ``step`` bytes at a time, asking after each piece as the worker does; (reader, end)."""
    r, end = reader(), None
    for i in range(0, len(data), step):
        r.add(data[i:i + step])
        if r.head() is not None and (end := r.end()) is not None:
            break
    return r, end


def gunicorn_body(request: bytes) -> bytes:
    """The body as the request thread's parser decodes it from ``request``."""
    parsed = Request(CFG, IterUnreader([request]), PEER, 1)
    return parsed.body.read(1 << 20)


def chunked(body: bytes, sizes: list[int], trailers: bytes = b"") -> bytes:
    out, i = b"", 0
    for size in sizes:
        piece, i = body[i:i + size], i + size
        if piece:
            out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n" + trailers + b"\r\n"


HEAD = b"POST /webhooks/zuora HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def test_a_content_length_body_ends_where_its_length_says_and_what_follows_is_kept():
    request = HEAD + b"Content-Length: 5\r\n\r\nhello"
    assert fed(request, step=3)[1] == len(request)
    r, end = fed(request + b"GET /healthz HTTP/1.1\r\n", step=4096)
    assert end == len(request) and r.head().content_length == 5 and not r.head().chunked
    assert bytes(r.buf[end:]).startswith(b"GET /healthz")  # the next request's start, kept for it
    assert gunicorn_body(bytes(r.buf[:end])) == b"hello"


def test_a_request_without_a_body_is_complete_with_its_head():
    r, end = fed(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", step=5)
    assert end is not None and r.head().method == "GET" and r.head().path == "/healthz"


@pytest.mark.parametrize("trailers", [b"", b"X-Checksum: abc\r\n"], ids=["no trailers", "a trailer"])
@pytest.mark.parametrize("step", [1, 7, 4096])
def test_a_chunked_body_ends_after_its_last_chunk_fed_any_way(trailers, step):
    body = bytes(random.Random(7).randrange(256) for _ in range(3000))
    encoded = chunked(body, [1, 17, 1000, 2000], trailers)
    request = HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + encoded
    r, end = fed(request + b"NEXT", step=step)
    assert r.head().chunked and end == len(request)
    assert gunicorn_body(request) == body  # the thread's parser reads exactly this body from these bytes


def test_chunk_extensions_are_delimited_as_gunicorn_reads_them():
    request = HEAD + b"Transfer-Encoding: chunked\r\n\r\n5 ;name=value\r\nhello\r\n0\r\n\r\n"
    assert fed(request)[1] == len(request)
    assert gunicorn_body(request) == b"hello"


@pytest.mark.parametrize("encoded", [b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n", b"\r\nhello\r\n",
                                     b"5;a\rb\r\nhello\r\n0\r\n\r\n", b"1" * 9000],
                         ids=["size not hex", "no CRLF after data", "empty size", "CR in extension",
                              "size line without end"])
def test_a_malformed_chunked_body_is_400(encoded):
    with pytest.raises(Refused) as refused:
        fed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + encoded, step=4096)
    assert (refused.value.status, refused.value.code) == (400, "bad_request")


def test_a_chunked_body_over_the_cap_is_413_as_soon_as_a_chunk_size_says_so():
    r = reader(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"8000\r\n" + b"x" * 100)
    r.head()
    assert r.end() is None  # 32 KiB announced: still under the cap, waiting
    r.add(b"x" * (0x8000 - 100) + b"\r\n8001\r\n")
    with pytest.raises(Refused) as refused:
        r.end()
    assert refused.value.status == 413


def test_a_declared_length_over_the_cap_is_413_before_any_body():
    r = reader(HEAD + b"Content-Length: 70000\r\n\r\n")
    assert r.head().content_length == 70000  # the pre-check sees the head first (a 401 outranks a 413)
    with pytest.raises(Refused) as refused:
        r.end()
    assert refused.value.status == 413


def test_a_head_over_the_limit_is_431_before_its_end():
    r = reader(b"GET / HTTP/1.1\r\nX-A: " + b"a" * 33_000)
    with pytest.raises(Refused) as refused:
        r.head()
    assert (refused.value.status, refused.value.code) == (431, "request_header_fields_too_large")


def test_an_incomplete_head_waits():
    r = reader(b"POST /webhooks/billing HTTP/1.1\r\nHost: x\r\n")
    assert r.head() is None and r.end() is None


def test_a_malformed_request_line_is_400_without_quoting_it():
    r = reader(b"GET /admin?token=credential-in-the-line HTTP/1.1 extra\r\nHost: x\r\n\r\n")
    with pytest.raises(Refused) as refused:
        r.head()
    assert (refused.value.status, refused.value.code) == (400, "bad_request")
    assert "credential" not in refused.value.detail


@pytest.mark.parametrize("head,status", [
    (b"GET / HTTP/1.1\nHost: x\n\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: zstd, chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417),
], ids=["bare LF", "two lengths", "length and chunked", "no chunked last", "unknown coding", "other expectation"])
def test_heads_gunicorn_refuses_are_refused_at_once(head, status):
    with pytest.raises(Refused) as refused:
        reader(head).head()
    assert refused.value.status == status


def test_headers_are_read_as_the_wsgi_environ_has_them():
    r = reader(b"POST /webhooks/zuora HTTP/1.1\r\nX-Zuora-Signature: a\r\nx-zuora-signature: b\r\n"
               b"Content-Type: text/plain\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n")
    head = r.head()
    assert head.headers["x-zuora-signature"] == "a,b" and head.headers["content-type"] == "text/plain"
    assert head.expects_continue
