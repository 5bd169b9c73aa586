"""The ``/_sandbox/*`` control routes (no auth): state, reset, tokens, callout config, faults."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import flask

from .common import CAT_INVALID, LOSE_MODES, RES_ACCOUNT, _is_int, _json_response, _to_decimal, parse_json
from .discounts import DEFAULT_BILLING_RULES, items_total
from .settlement import apply_payment

if TYPE_CHECKING:
    from .state import ZuoraSandbox


# ---------------------------------------------------------------------------------------------------
# /_sandbox
# ---------------------------------------------------------------------------------------------------

_CONFIG_KEYS = {"callout_url": "url", "callout_username": "username", "callout_password": "password",
                "callout_preemptive": "preemptive", "callout_hmac_secret": "hmac_secret",
                "callout_hmac_header": "hmac_header", "callout_hmac_algorithm": "hmac_algorithm",
                "callout_hmac_format": "hmac_format", "callout_retry_interval": "retry_interval",
                "callout_attempts": "attempts"}


def _sandbox_error(code: str, detail: str, status: int = 400) -> flask.Response:
    return _json_response({"error": code, "detail": detail}, status)


def _register_sandbox_routes(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.get("/_sandbox/state")
    def sandbox_state() -> flask.Response:
        return _json_response(sb.state())

    @app.post("/_sandbox/reset")
    def sandbox_reset() -> flask.Response:
        sb.reset()
        return _json_response({"reset": True})

    @app.post("/_sandbox/revoke-tokens")
    def sandbox_revoke() -> flask.Response:
        return _json_response({"revoked": sb.revoke_tokens()})

    @app.get("/_sandbox/config")
    def sandbox_config_get() -> flask.Response:
        with sb.lock:
            return _json_response(sb.callout.public())

    @app.post("/_sandbox/config")
    def sandbox_config_set() -> flask.Response:
        payload = flask.request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _sandbox_error("invalid_config", "body must be a JSON object")
        unknown = sorted(set(payload) - set(_CONFIG_KEYS))
        if unknown:
            return _sandbox_error("invalid_config", f"unknown setting(s): {', '.join(unknown)}")
        with sb.lock:
            try:
                sb.callout = replace(sb.callout, **{_CONFIG_KEYS[k]: v for k, v in payload.items()}).validate()
            except (ValueError, TypeError) as exc:
                return _sandbox_error("invalid_config", str(exc))
            return _json_response(sb.callout.public())

    @app.post("/_sandbox/callouts")
    def sandbox_resend() -> flask.Response:
        payload = flask.request.get_json(silent=True)
        account_id = payload.get("AccountId") if isinstance(payload, dict) else None
        if not isinstance(account_id, str) or not account_id:
            return _sandbox_error("invalid_request", "body must be {\"AccountId\": \"<id or number>\"}")
        account = sb.find_account(account_id)
        if account is None:
            return _sandbox_error("not_found", f"no account {account_id}", 404)
        notification_id = sb.queue_callout(account["id"], manual=True)
        if notification_id is None:
            return _sandbox_error("no_callout_url", "set callout_url with POST /_sandbox/config first", 409)
        return _json_response({"queued": True, "notification_id": notification_id})

    @app.post("/_sandbox/fail-next")
    def sandbox_fail_next() -> flask.Response:
        payload = flask.request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _sandbox_error("invalid_request", "body must be a JSON object")
        count = payload.get("count", 1)
        code = payload.get("code", RES_ACCOUNT * 100 + CAT_INVALID)
        message = payload.get("message", "Injected failure")
        if not _is_int(count) or not 0 <= count <= 10_000:
            return _sandbox_error("invalid_request", "count must be an integer 0..10000")
        if not (_is_int(code) and 10_000_000 <= code <= 99_999_999) and not (isinstance(code, str) and code):
            return _sandbox_error("invalid_request", "code must be an 8-digit integer or a non-empty string")
        if not isinstance(message, str) or not message:
            return _sandbox_error("invalid_request", "message must be a non-empty string")
        with sb.lock:
            sb.fail_next = {"count": count, "code": code, "message": message} if count else None
        return _json_response({"fail_next": sb.fail_next})

    @app.post("/_sandbox/invoice-items/<item_id>")
    def sandbox_change_item(item_id: str) -> flask.Response:
        """Change one stored invoice item's (or discount item's) amount, as a user editing it in Zuora
        would: how a test makes Zuora disagree with the billing platform (the totals report must name
        the difference). The invoice's amount, amount without tax and balance follow the items."""
        payload = flask.request.get_json(silent=True)
        amount = _to_decimal(payload.get("amount")) if isinstance(payload, dict) else None
        if amount is None or set(payload) != {"amount"}:
            return _sandbox_error("invalid_request", 'body must be {"amount": "<decimal>"}')
        with sb.lock:
            for invoice in sb.invoices.values():
                every = [entry for i in invoice["items"] for entry in (i, *i.get("discountItems", []))]
                item = next((i for i in every if i["id"] == item_id), None)
                if item is not None:
                    item["amount"] = amount
                    total = items_total(invoice["items"])
                    invoice.update(amount=total, amountWithoutTax=total, balance=total)
                    return _json_response({"invoice_id": invoice["id"], "item_id": item_id, "amount": amount})
        return _sandbox_error("not_found", f"no invoice item {item_id}", 404)

    @app.post("/_sandbox/invoices/<key>/payments")
    def sandbox_apply_payment(key: str) -> flask.Response:
        """Apply a payment to a posted invoice (``{"amount"}``, default its balance): what stops a reversal."""
        raw = flask.request.get_data()
        try:
            payload = parse_json(raw) if raw else {}
        except (ValueError, UnicodeDecodeError, RecursionError):
            payload = None  # refused by apply_payment as not an object
        with sb.lock:
            body, status = apply_payment(sb, key, payload)
        return _json_response(body, status)
    @app.get("/_sandbox/billing-rules")
    def sandbox_billing_rules_get() -> flask.Response:
        with sb.lock:
            return _json_response(dict(sb.billing_rules))

    @app.post("/_sandbox/billing-rules")
    def sandbox_billing_rules_set() -> flask.Response:
        """Model the tenant's billing rules (integration_sandbox.zuora.discounts): ``{"negative_invoice_items":
        false}`` makes it refuse invoice items with a negative amount, as a tenant whose settings forbid
        them does. A reset restores the defaults."""
        payload = flask.request.get_json(silent=True)
        if not isinstance(payload, dict) or not payload:
            return _sandbox_error("invalid_request", "body must be a non-empty JSON object")
        unknown = sorted(set(payload) - set(DEFAULT_BILLING_RULES))
        if unknown:
            return _sandbox_error("invalid_request", f"unknown rule(s): {', '.join(unknown)}")
        if not all(isinstance(v, bool) for v in payload.values()):
            return _sandbox_error("invalid_request", "every rule is true or false")
        with sb.lock:
            sb.billing_rules.update(payload)
            return _json_response(dict(sb.billing_rules))

    @app.post("/_sandbox/lose-next")
    def sandbox_lose_next() -> flask.Response:
        """Arm the lost-response fault: the next ``count`` writes to ``path`` take effect (and their
        result is stored under their Idempotency-Key, as Zuora stores it), then the client gets
        ``mode``: ``error`` (HTTP ``status``, 500/502/503/504), ``timeout`` (held ``hold_seconds``,
        then 504) or ``failure`` (HTTP 200 ``success: false`` with a business-rule reason)."""
        payload = flask.request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _sandbox_error("invalid_request", "body must be a JSON object")
        unknown = sorted(set(payload) - {"path", "count", "mode", "status", "hold_seconds", "message"})
        if unknown:
            return _sandbox_error("invalid_request", f"unknown setting(s): {', '.join(unknown)}")
        path, count = payload.get("path"), payload.get("count", 1)
        mode, status = payload.get("mode", "error"), payload.get("status", 500)
        hold, message = payload.get("hold_seconds", 5.0), payload.get("message", "Injected failure after the write")
        if not isinstance(path, str) or not path.startswith("/v1/"):
            return _sandbox_error("invalid_request", "path must be a /v1/ path such as /v1/invoices")
        if not _is_int(count) or not 0 <= count <= 10_000:
            return _sandbox_error("invalid_request", "count must be an integer 0..10000")
        if mode not in LOSE_MODES:
            return _sandbox_error("invalid_request", f"mode must be one of {', '.join(LOSE_MODES)}")
        if not _is_int(status) or status not in (500, 502, 503, 504):
            return _sandbox_error("invalid_request", "status must be 500, 502, 503 or 504")
        if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not 0 <= hold <= 600:
            return _sandbox_error("invalid_request", "hold_seconds must be a number 0..600")
        if not isinstance(message, str) or not message:
            return _sandbox_error("invalid_request", "message must be a non-empty string")
        with sb.lock:
            if count:
                sb.lose_next[path] = {"count": count, "mode": mode, "status": status,
                                      "hold_seconds": float(hold), "message": message}
            else:
                sb.lose_next.pop(path, None)
            return _json_response({"lose_next": {p: dict(v) for p, v in sb.lose_next.items()}})
