"""The ``/_sandbox/*`` control routes (no auth)."""
from __future__ import annotations

import flask

from .bodies import _json_body, _json_object, _optional_json_body
from .common import ApiError
from .state import BillingSandbox
from .webhooks import silenced


def _quiet() -> bool:
    """``?webhook=false``: make the change without emitting its event (a lost webhook)."""
    raw = flask.request.args.get("webhook", "true")
    if raw not in ("true", "false"):
        raise ApiError(400, "webhook must be true or false")
    return raw == "false"


def _register_control(app: flask.Flask, sandbox: BillingSandbox) -> None:
    jsonify = flask.jsonify

    @app.post("/_sandbox/accounts")
    def sandbox_create_account():
        with silenced(_quiet()):
            return jsonify(sandbox.sandbox_accounts(_json_body())), 201

    @app.patch("/_sandbox/accounts/<account_id>")
    def sandbox_update_account(account_id: str):
        with silenced(_quiet()):
            return jsonify(sandbox.update_account(account_id, _json_body(), via_api=False))

    @app.post("/_sandbox/invoices")
    def sandbox_create_invoice():
        with silenced(_quiet()):
            return jsonify(sandbox.create_invoice(_json_body())), 201

    @app.post("/_sandbox/invoices/<invoice_id>/finalize")
    def sandbox_finalize_invoice(invoice_id: str):
        with silenced(_quiet()):
            return jsonify(sandbox.finalize_invoice(invoice_id, _optional_json_body()))

    @app.post("/_sandbox/invoices/<invoice_id>/void")
    def sandbox_void_invoice(invoice_id: str):
        with silenced(_quiet()):
            return jsonify(sandbox.void_invoice(invoice_id, _optional_json_body()))

    @app.get("/_sandbox/config")
    def sandbox_get_config():
        return jsonify(sandbox.config_view())

    @app.post("/_sandbox/config")
    def sandbox_config():
        return jsonify(sandbox.configure(**_json_object()))

    @app.post("/_sandbox/events/resend")
    def sandbox_resend():
        return jsonify(sandbox.resend(_json_body())), 202

    @app.get("/_sandbox/state")
    def sandbox_state():
        return jsonify(sandbox.state())

    @app.post("/_sandbox/reset")
    def sandbox_reset():
        sandbox.reset()
        return jsonify({"reset": True})
