"""JSON errors for every 4xx/5xx: ``{"error": "<code>", "detail": ...}``, never a stack trace.

A handler that refuses a request raises ``ApiError`` (as flaskr's handlers ``abort``) rather than
returning an error response up through its helpers: the helpers then return plain values, and
the one handler registered here turns every refusal into the same JSON shape.
"""
from __future__ import annotations

import logging
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


HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request could not be read"),
    401: ("unauthorized", "credentials are missing or wrong"),
    403: ("forbidden", "this request is not allowed"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "this resource does not answer that method"),
    408: ("request_timeout", "the request did not arrive in time"),
    413: ("request_entity_too_large", "the request body is too large"),
    415: ("unsupported_media_type", "the body's content type is not accepted here"),
    429: ("too_many_requests", "too many requests; wait and try again"),
    431: ("request_header_fields_too_large", "the request's headers are too large"),
    500: ("internal_error", "the service hit an unexpected error; it is logged"),
    503: ("service_unavailable", "the service cannot answer now; try again"),
}
"""The service's own code and sentence for each HTTP error it answers outside a handler of its own (an
unknown path, a wrong method, a body over the limit…). Written here rather than derived from the web
framework's exception names and descriptions, so a new werkzeug release (413 is "Content Too Large" in
RFC 9110) cannot change what clients and their tooling match on."""


def http_error_body(status: int) -> tuple[str, str]:
    """``(code, detail)`` for an HTTP error status, the project's words; ``http_<status>`` if not listed."""
    return HTTP_ERRORS.get(status, (f"http_{status}", f"the request was answered {status}"))


def register_error_handlers(app: Flask) -> None:
    """JSON for every error the app raises: ``ApiError``, werkzeug's HTTP errors, and bugs (a logged 500)."""
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.detail, headers=exc.headers, reason=exc.reason)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Keep the exception's own headers (a 405's Allow, say), not its HTML content type.
        headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
        status = exc.code or 500
        return error_response(status, *http_error_body(status), headers=headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.error("unhandled error", exc_info=exc)
        return error_response(500, *http_error_body(500))
