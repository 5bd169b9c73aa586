"""The billing sandbox app: auth and request log, error handlers, the API routes, the factory."""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

import flask
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from integration_sandbox import faults as faults_module

from .bodies import _json_body, _logged_body
from .common import MAX_BODY_BYTES, ApiError, _system_clock, new_webhook_secret
from .controls import _register_control
from .invoices import DecimalJSONProvider, iso
from .schemas import ConfigSchema, _check_secret, _flatten
from .state import BillingSandbox

log = logging.getLogger(__name__)



def _register_errors(app: flask.Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return flask.jsonify({"message": exc.message}), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return flask.jsonify({"message": exc.name}), exc.code or 500

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.error("billing sandbox: unexpected error", exc_info=exc)
        return flask.jsonify({"message": "Internal server error"}), 500


def _register_auth_and_log(app: flask.Flask, sandbox: BillingSandbox) -> None:
    @app.before_request
    def _bearer_auth():
        if flask.request.path.startswith("/_sandbox"):
            return
        scheme, _, token = flask.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Missing bearer token")
        if not sandbox.token_matches(token.strip()):
            raise ApiError(401, "Invalid bearer token")
        return

    @app.after_request
    def _log(response: flask.Response) -> flask.Response:
        if not flask.request.path.startswith("/_sandbox"):
            sandbox.log_request({"at": iso(sandbox.now()), "method": flask.request.method,
                                 "path": flask.request.path, "query": flask.request.args.to_dict(),
                                 "status": response.status_code, "body": _logged_body()})
        return response


def _register_api(app: flask.Flask, sandbox: BillingSandbox) -> None:
    jsonify = flask.jsonify

    @app.post("/customers")
    def create_customer():
        return jsonify(sandbox.create_customer(_json_body())), 201

    @app.get("/customers/<customer_id>")
    def get_customer(customer_id: str):
        return jsonify(sandbox.get_customer(customer_id))

    @app.patch("/customers/<customer_id>")
    def update_customer(customer_id: str):
        return jsonify(sandbox.update_customer(customer_id, _json_body()))

    @app.post("/accounts")
    def create_account():
        return jsonify(sandbox.create_account(_json_body())), 201

    @app.get("/accounts/<account_id>")
    def get_account(account_id: str):
        return jsonify(sandbox.get_account(account_id))

    @app.patch("/accounts/<account_id>")
    def update_account(account_id: str):
        return jsonify(sandbox.update_account(account_id, _json_body()))

    @app.post("/settings")
    def create_setting():
        return jsonify(sandbox.create_setting(_json_body())), 201

    @app.get("/settings")
    def list_settings():
        return jsonify(sandbox.list_settings(flask.request.args))

    @app.get("/settings/<setting_id>")
    def get_setting(setting_id: str):
        return jsonify(sandbox.get_setting(setting_id))

    @app.patch("/settings/<setting_id>")
    def update_setting(setting_id: str):
        return jsonify(sandbox.update_setting(setting_id, _json_body())), 201

    @app.get("/customers")
    def list_customers():
        return jsonify(sandbox.list_customers(flask.request.args))

    @app.get("/accounts")
    def list_accounts():
        return jsonify(sandbox.list_accounts(flask.request.args))

    @app.get("/invoices")
    def list_invoices():
        return jsonify(sandbox.list_invoices(flask.request.args))

    @app.get("/invoices/<invoice_id>")
    def get_invoice(invoice_id: str):
        return jsonify(sandbox.get_invoice(invoice_id))

def create_billing_sandbox(*, api_token: str | None = None, webhook_url: str | None = None,
                           webhook_secret: str | None = None,
                           webhook_retry_schedule: Sequence[float] = (0.5, 1.0, 2.0),
                           rate_limit: int | None = None,
                           clock: Callable[[], datetime] | None = None) -> flask.Flask:
    """A Togai-compatible billing API app; its state is ``app.extensions["billing_sandbox"]``.

    ``api_token`` and ``webhook_secret`` (``whsec_`` + base64) are generated when not given.
    ``webhook_retry_schedule`` is the wait in seconds before each retry of a failed delivery
    (so ``1 + len(schedule)`` attempts in all). ``clock`` returns an aware UTC ``datetime`` and
    stamps createdAt/updatedAt, invoice dates and ``webhook-timestamp``.

    Control endpoints (no auth): ``POST /_sandbox/accounts``, ``PATCH /_sandbox/accounts/{id}``,
    ``POST /_sandbox/invoices``, ``POST /_sandbox/invoices/{id}/finalize``,
    ``POST /_sandbox/invoices/{id}/void``, ``GET|POST
    /_sandbox/config``, ``POST /_sandbox/events/resend``, ``GET /_sandbox/state``,
    ``POST /_sandbox/reset`` and ``GET|POST|DELETE /_sandbox/faults``.
    """
    secret = webhook_secret if webhook_secret is not None else new_webhook_secret()
    try:
        _check_secret(secret, "webhook_secret")
        ConfigSchema().load({"webhook_url": webhook_url,
                             "webhook_retry_schedule": [Decimal(str(s)) for s in webhook_retry_schedule]})
    except ValidationError as exc:
        raise ValueError("; ".join(_flatten(exc.messages))) from None
    sandbox = BillingSandbox(
        api_token=api_token or secrets.token_urlsafe(32), webhook_url=webhook_url,
        webhook_secret=secret, webhook_retry_schedule=webhook_retry_schedule,
        faults=faults_module.Faults(rate_limit=rate_limit), clock=clock or _system_clock)
    app = flask.Flask("integration_sandbox.billing")
    app.json = DecimalJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["billing_sandbox"] = sandbox
    # Faults first: their before_request (rate limit, 5xx, latency) runs ahead of authentication.
    faults_module.install(app, sandbox.faults, api_name="billing",
                          error_body=lambda status, message: {"message": message})
    _register_auth_and_log(app, sandbox)
    _register_errors(app)
    _register_api(app, sandbox)
    _register_control(app, sandbox)
    return app
