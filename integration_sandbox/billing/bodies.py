"""Reading request bodies: JSON with exact Decimals; 415/400 in Togai's ``{"message"}`` shape."""
from __future__ import annotations

from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from .common import ApiError
from .invoices import json_loads


def _json_body() -> Any:
    """The request's JSON, numbers as Decimal; 415 for another content type, 400 when malformed."""
    if not flask.request.is_json:
        raise ApiError(415, "Content-Type must be application/json")
    try:
        return json_loads(flask.request.get_data(cache=True))
    except (ValueError, RecursionError):
        raise ApiError(400, "Malformed JSON body") from None


def _json_object() -> dict:
    body = _json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body


def _optional_json_body() -> Any:
    return _json_body() if flask.request.get_data(cache=True) else None


def _logged_body() -> Any:
    try:
        raw = flask.request.get_data(cache=True)
    except HTTPException:
        return None
    if not raw:
        return None
    try:
        return json_loads(raw)
    except (ValueError, RecursionError):
        return raw[:2000].decode("utf-8", "replace")
