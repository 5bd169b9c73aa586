"""The Zuora sandbox app: the factory, request hooks and error handlers."""
from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from integration_sandbox import faults as faults_mod

from .accounts import _register_account_routes
from .callouts import CalloutSettings
from .common import (
    CAT_CONCURRENCY,
    CAT_INVALID,
    CUSTOM_FIELD_RE,
    MAX_USAGE_FILE_BYTES,
    RES_GET,
    TRACK_ID_RE,
    Clock,
    _DecimalJSONProvider,
    _is_int,
    _json_response,
    _utc_iso,
    common_error,
    reason,
)
from .controls import _register_sandbox_routes
from .invoices import _register_invoice_routes
from .oauth import _register_auth_routes
from .settlement import _register_settlement_routes
from .state import ZuoraSandbox
from .usage import _register_usage_routes

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------------------

def _error_body_for_faults(status: int, message: str) -> dict:
    """Zuora shapes for injected faults and limits."""
    if status == 429:
        return common_error([reason(RES_GET, CAT_CONCURRENCY, f"Request exceeded limit: {message}")])
    if status >= 500:
        return {"reasons": [{"code": "SystemError", "message": message}]}
    return {"message": message}


def create_zuora_sandbox(*, client_id: str | None = None, client_secret: str | None = None,
                         token_lifetime: int = 3599, custom_fields: Iterable[str] = ("BillingAccountId__c",),
                         invoice_custom_fields: Iterable[str] = ("BillingInvoiceId__c",),
                         callout_url: str | None = None, callout_username: str | None = None,
                         callout_password: str | None = None, callout_preemptive: bool = False,
                         callout_hmac_secret: str | None = None, callout_hmac_header: str = "X-Zuora-Signature",
                         callout_hmac_algorithm: str = "SHA-256", callout_hmac_format: str = "BASE64",
                         callout_retry_interval: float = 1.0, callout_attempts: int = 3,
                         rate_limit: int | None = None, concurrency_limit: int | None = 40,
                         clock: Clock | None = None) -> flask.Flask:
    """Build the sandbox app. ``clock`` (epoch seconds) drives token expiry, idempotency TTL and the
    rate window; credentials are generated when not given (read them from ``app.extensions``)."""
    fields = set(custom_fields)
    invoice_fields = set(invoice_custom_fields)
    for name in fields | invoice_fields:
        if not CUSTOM_FIELD_RE.match(name):
            raise ValueError(f"custom field {name!r} must look like Name__c")
    if not _is_int(token_lifetime) or token_lifetime < 1:
        raise ValueError("token_lifetime must be a positive integer")
    callout = CalloutSettings(callout_url, callout_username, callout_password, callout_preemptive,
                              callout_hmac_secret, callout_hmac_header, callout_hmac_algorithm,
                              callout_hmac_format, callout_retry_interval, callout_attempts).validate()
    faults = faults_mod.Faults(rate_limit=rate_limit, concurrency_limit=concurrency_limit,
                               **({"clock": clock} if clock is not None else {}))
    sb = ZuoraSandbox(client_id=client_id or str(uuid.uuid4()),
                      client_secret=client_secret or secrets.token_urlsafe(30),
                      token_lifetime=token_lifetime, custom_fields=fields, callout=callout,
                      clock=clock or time.time, faults=faults, invoice_custom_fields=invoice_fields)

    app = flask.Flask(__name__)
    app.json = _DecimalJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_USAGE_FILE_BYTES + 256 * 1024
    app.config["SANDBOX_ERROR_BODY"] = _error_body_for_faults
    app.extensions["zuora_sandbox"] = sb
    faults_mod.install(app, faults, api_name="zuora", exempt_prefixes=("/_sandbox", "/oauth/token"))
    _register_hooks(app, sb)
    _register_auth_routes(app, sb)
    _register_account_routes(app, sb)
    _register_invoice_routes(app, sb)
    _register_settlement_routes(app, sb)
    _register_usage_routes(app, sb)
    _register_sandbox_routes(app, sb)
    return app

def _track_id_ok(track: str | None) -> bool:
    """Zuora-Track-Id: at most 64 US-ASCII characters, none of ``: ; " '``."""
    return track is not None and bool(TRACK_ID_RE.match(track)) and not any(c in track for c in ':;"\'')


def _register_hooks(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.before_request
    def _check_track_id() -> flask.Response | None:
        track = flask.request.headers.get("Zuora-Track-Id")
        if track is not None and not flask.request.path.startswith("/_sandbox") and not _track_id_ok(track):
            return _json_response(common_error([reason(RES_GET, CAT_INVALID,
                                                       "Zuora-Track-Id must be at most 64 US-ASCII characters "
                                                       "without : ; \" or '")]), 400)
        return None

    @app.after_request
    def _stamp_and_log(response: flask.Response) -> flask.Response:
        req = flask.request
        if req.path.startswith("/_sandbox"):
            return response
        request_id = str(uuid.uuid4())
        response.headers["Zuora-Request-Id"] = request_id
        track = req.headers.get("Zuora-Track-Id")
        if _track_id_ok(track):
            response.headers["Zuora-Track-Id"] = track
        if req.path.startswith("/v1/"):
            high_volume = req.method == "POST" and req.path == "/v1/accounts"
            response.headers["Concurrency-Limit-Type"] = "high-volume" if high_volume else "default"
        idem = req.headers.get("Idempotency-Key") if req.method in ("POST", "PATCH") else None
        with sb.lock:
            sb.requests.append({"method": req.method, "path": req.path, "query": req.query_string.decode("latin-1"),
                                "status": response.status_code,
                                "idempotency_key": idem, "track_id": track,
                                "entity_ids": req.headers.get("Zuora-Entity-Ids"), "request_id": request_id,
                                "at": _utc_iso(sb.now())})
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> flask.Response:
        if exc.code == 404:
            body: Any = {"message": "no Route matched with those values"}
        elif exc.code == 413:
            body = {"message": "Request size limit exceeded"}
        else:
            body = {"message": exc.name}
        return _json_response(body, exc.code or 500)

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> flask.Response:
        log.error("zuora sandbox: unhandled error", exc_info=exc)
        return _json_response({"reasons": [{"code": "SystemError", "message": "internal server error"}]}, 500)
