"""JSON errors for every 4xx/5xx: ``{"error": "<code>", "detail": ...}``, never a stack trace."""
from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("integration.web")


def error_response(status: int, code: str, detail: Any = None, headers: dict | None = None):
    body = {"error": code}
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
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Keep the exception's own headers (a 405's Allow, say), not its HTML content type.
        headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
        return error_response(exc.code or 500, _code_for(exc), exc.description, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the service hit an unexpected error; it is logged")
