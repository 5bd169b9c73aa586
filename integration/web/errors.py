"""JSON errors for every 4xx/5xx: ``{"error": "<code>", "detail": ...}``, never a stack trace.

A handler that refuses a request raises ``ApiError`` (as flaskr's handlers ``abort``) rather than
returning an error response up through its helpers: the helpers then return plain values, and
the one handler registered here turns every refusal into the same JSON shape.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("integration.web")


class ApiError(Exception):
    """A refused request: answered ``status`` with ``{"error": code, "detail": detail}`` and ``headers``;
    a refused webhook's 401 also names its cause, ``{"error", "reason", "detail"}`` (CONTRACT §11)."""

    def __init__(self, status: int, code: str, detail: Any = None, headers: Mapping[str, str] | None = None,
                 reason: str | None = None):
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.reason = reason


def error_response(status: int, code: str, detail: Any = None, headers: Mapping[str, str] | None = None,
                   reason: str | None = None):
    """The JSON error answer; ``ApiError``'s handler and the other error handlers all answer through it."""
    body = {"error": code}
    if reason is not None:
        body["reason"] = reason
    if detail is not None:
        body["detail"] = detail
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _code_for(exc: HTTPException) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")


def register_error_handlers(app: Flask) -> None:
    """JSON for every error the app raises: ``ApiError``, werkzeug's HTTP errors, and bugs (a logged 500)."""
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.detail, headers=exc.headers, reason=exc.reason)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Keep the exception's own headers (a 405's Allow, say), not its HTML content type.
        headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
        return error_response(exc.code or 500, _code_for(exc), exc.description, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "the service hit an unexpected error; it is logged")
