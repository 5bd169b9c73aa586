"""Reading a request body, capped, and checking it against a marshmallow schema, the same way on every route."""
from __future__ import annotations

import json

from flask import request
from marshmallow import Schema, ValidationError

from integration.web.errors import ApiError

MAX_BODY = 64 * 1024
# What werkzeug lets the request stream yield: one byte past MAX_BODY, so that a body without a
# Content-Length (chunked) that is longer than MAX_BODY can be told from one of exactly MAX_BODY
# bytes. At MAX_BODY itself werkzeug ends such a stream silently at the limit, and the body was cut.
STREAM_LIMIT = MAX_BODY + 1


def read_capped_body(limit: int = MAX_BODY) -> bytes | None:
    """The whole raw body, or None when it is longer than ``limit`` bytes, with or without a
    Content-Length. Never reads more than ``limit + 1`` bytes from the client."""
    if request.content_length is not None and request.content_length > limit:
        return None
    parts, total = [], 0
    while total <= limit:
        chunk = request.stream.read(limit + 1 - total)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return None if total > limit else b"".join(parts)


def parse_json_object(raw: bytes, schema: Schema) -> dict:
    """The body loaded by ``schema``, or ``ApiError`` 400 ``invalid_payload`` naming each bad field."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "invalid_payload", {"body": ["Not valid JSON."]}) from None
    if not isinstance(document, dict):
        raise ApiError(400, "invalid_payload", {"body": ["Must be a JSON object."]})
    try:
        return schema.load(document)
    except ValidationError as exc:
        raise ApiError(400, "invalid_payload", exc.messages) from None
