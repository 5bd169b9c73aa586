"""Response and request bodies: read capped, parsed with ``Decimal`` numbers, written without float.

Money crosses these bodies, so no number goes through ``float`` on the way in or out; and a body
comes from a remote, so it is never read past ``MAX_BODY_BYTES``.
"""
from __future__ import annotations

import decimal
import json
import math
from collections.abc import Mapping
from typing import Any

import requests

from integration.clients.answers import is_transient_status
from integration.clients.pacing import parse_number, wait_hint
from integration.domain.errors import (
    InvalidData,
    MalformedResponse,
    SyncError,
    TransientError,
)

MAX_BODY_BYTES = 10 * 1024 * 1024
"""Largest response body read from a remote (10 MiB, after any Content-Encoding is undone).

Our largest legitimate answers (a page of 99 accounts, a 50-setting page, an invoice with its
items) are a few hundred KiB; a body past this is a broken proxy, a runaway listing or a
compression bomb, and reading it whole would let one remote exhaust a worker's memory.
"""

_BODY_CHUNK_BYTES = 64 * 1024


def read_body(resp: requests.Response, where: str, *, limit: int = MAX_BODY_BYTES) -> None:
    """Read a streamed response's body into ``resp.content``, never holding more than ``limit`` bytes.

    The body is pulled in chunks (decoded, so a gzip bomb counts at its real size) and the read
    stops at the first byte past the cap; a ``Content-Length`` already past it is refused unread.
    Past the cap the answer is unusable, and the error says which call it was:

    - ``MalformedResponse`` (permanent, ``UNKNOWN`` on the failure list) as a rule. A repeat would
      fetch the same oversized body again — an Idempotency-Key replays a stored answer verbatim —
      and spend rate budget each time (Zuora counts every call), so retrying cannot help; an
      operator must look at what the remote sends.
    - ``TransientError`` when the status itself is transient (408, 429, 5xx): the status already
      says "try again" and carries the wait; the body would only have added a detail, and a
      gateway's outsized error page must not turn a passing outage into a permanent failure.

    ``requests`` offers no public way to hand a body read this way back to ``Response.content``,
    so it is stored where ``content`` keeps it (``_content``), as ``requests`` itself does.
    """
    declared = parse_number(resp.headers.get("Content-Length"))
    encoded = resp.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
    if declared is not None and not encoded and declared > limit:
        resp.close()
        raise _oversized(resp, where, limit)
    if resp.raw is None:  # a transport adapter that hands over a finished body (no stream to bound)
        if len(resp.content) > limit:
            raise _oversized(resp, where, limit)
        return
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(_BODY_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            resp.close()
            raise _oversized(resp, where, limit)
        chunks.append(chunk)
    resp._content = b"".join(chunks)
    resp._content_consumed = True


def _oversized(resp: requests.Response, where: str, limit: int) -> SyncError:
    message = f"{where}: response body larger than {limit} bytes; not read (HTTP {resp.status_code})"
    if is_transient_status(resp.status_code):
        return TransientError(message, retry_after=wait_hint(resp.headers))
    return MalformedResponse(message)


def parse_json(resp: requests.Response) -> Any:
    """The response body as JSON with every decimal number a ``Decimal`` (money never goes through float).

    Raises ``ValueError`` when the body is not JSON; callers decide whether that is malformed.
    """
    try:
        return json.loads(resp.content or b"", parse_float=decimal.Decimal)
    except RecursionError as exc:  # absurdly nested input is as useless as broken input
        raise ValueError("JSON nested too deeply") from exc


def json_or_none(resp: requests.Response) -> Any:
    """The body as JSON (decimals as ``Decimal``), or None when it is not JSON: error answers often aren't."""
    try:
        return parse_json(resp)
    except ValueError:
        return None


def dumps_json(value: Any) -> bytes:
    """JSON for a request body, writing ``Decimal`` as an exact JSON number.

    ``json.dumps`` refuses ``Decimal`` and converting to float would lose cents, so the few JSON
    types are written here by hand; NaN/Infinity are refused because no API accepts them.
    """
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if value is None or isinstance(value, (bool, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise InvalidData("body", f"{value} is not a number a remote API accepts")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidData("body", f"{value} is not a number a remote API accepts")
        return repr(value)
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidData("body", f"object key {key!r} is not a string")
            items.append(f"{json.dumps(key, ensure_ascii=False)}:{_encode(item)}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    raise InvalidData("body", f"a {type(value).__name__} cannot be sent as JSON")
