"""Reading a JSON request body against a marshmallow schema, the same way on every route."""
from __future__ import annotations

import json

from marshmallow import Schema, ValidationError

from .errors import error_response


def load_json_object(raw: bytes, schema: Schema):
    """(data, None) for a valid JSON object, else (None, a 400 ``invalid_payload`` naming the field)."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, error_response(400, "invalid_payload", {"body": ["Not valid JSON."]})
    if not isinstance(document, dict):
        return None, error_response(400, "invalid_payload", {"body": ["Must be a JSON object."]})
    try:
        return schema.load(document), None
    except ValidationError as exc:
        return None, error_response(400, "invalid_payload", exc.messages)
