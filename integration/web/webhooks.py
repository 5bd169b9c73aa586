"""Inbound events: Zuora notification callouts and signed billing-platform events.

Accept fast, work later: authenticate, validate, write one inbox row in one transaction, answer.
No remote API is ever called here. 200 means the event is committed; when the store cannot
commit we answer 503 so the sender retries (Zuora retries on 5xx, never on other 4xx).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from typing import NoReturn

from flask import Blueprint, current_app, jsonify, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integration import metrics
from integration.config import HMAC_ALGORITHMS
from integration.domain.identifiers import identifier_problem
from integration.store.tx import StoreUnavailable
from integration.web.errors import ApiError
from integration.web.payloads import MAX_BODY, parse_json_object, read_capped_body
from integration.web.schemas import BillingEventSchema, ZuoraCalloutSchema

log = logging.getLogger("integration.web")
bp = Blueprint("webhooks", __name__)

BASIC_CHALLENGE = 'Basic realm="zuora-callouts"'
BILLING_EVENT_TYPES = {
    # type -> (object_type, object_key prefix)
    "account.created": ("account", "billing-account"),
    "account.updated": ("account", "billing-account"),
    "invoice.finalized": ("invoice", "billing-invoice"),
    # CONTRACT §12 voids. The invoice's own key: a void never runs beside a push of the same invoice.
    "invoice.voided": ("invoice", "billing-invoice"),
    "invoice.updated": ("invoice", "billing-invoice"),
}


def _services():
    return current_app.extensions["integration"]


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def refuse(status: int, code: str, detail, headers: dict | None = None) -> NoReturn:
    """Refuse the webhook (``ApiError``, answered as JSON), logged with its reason and counted in
    ``integration_webhook_refused_total{route, reason}``. The log line names the fields that were
    wrong, never their values, the body or a credential (the detail strings carry none either)."""
    route = request.url_rule.rule if request.url_rule is not None else request.path
    metrics.WEBHOOK_REFUSED.labels(route=route, reason=code).inc()
    fields = sorted(detail) if isinstance(detail, dict) else None
    log.warning("webhook refused", extra={"route": route, "status": status, "reason": code,
                                          **({"fields": fields} if fields else {})})
    raise ApiError(status, code, detail, headers)


def _read_body() -> bytes:
    """The raw body; a refusal for a non-JSON or oversized request (chunked or not)."""
    if not _is_json(request.mimetype):
        refuse(415, "unsupported_media_type", "the body must be application/json")
    body = read_capped_body(MAX_BODY)
    if body is None:
        refuse(413, "payload_too_large", f"the body may be at most {MAX_BODY} bytes")
    return body


def _header_id(name: str) -> str:
    """The identifier in header ``name``, stripped ("" when absent); a 400 naming the header otherwise."""
    value = request.headers.get(name, "").strip(" \t")  # HTTP optional whitespace only
    if len(value) > 255:
        refuse(400, "invalid_header", {name: ["Longer than 255 characters."]})
    problem = identifier_problem(value)
    if problem is not None:
        refuse(400, "invalid_header", {name: [problem]})
    return value


def _record(answer: dict | None = None, **event):
    """Commit the event and answer 200, or 503 when the store cannot commit for any reason
    (locked, full, read-only, gone, an I/O error), so that the sender retries (Zuora retries 5xx)."""
    try:
        recorded = _services().inbox.record(**event)
    except StoreUnavailable as exc:
        log.error("store unavailable; asking the sender to retry",
                  extra={"error": f"{type(exc).__name__}: {exc}"})
        refuse(503, "store_unavailable", "the event could not be stored; retry later")
    if recorded.created:
        metrics.EVENTS_RECEIVED.labels(source=event["source"], type=event["type"]).inc()
    log.info("event accepted", extra={"event_id": recorded.event_id, "source": event["source"],
                                      "event_type": event["type"], "object_id": event["object_id"],
                                      "duplicate": not recorded.created, "coalesced": recorded.coalesced})
    return jsonify({**(answer or {}), "accepted": True, "event_id": recorded.event_id})


# -- Zuora ------------------------------------------------------------------------------------------

def _basic_auth_ok(config) -> bool:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return False
    user_ok = hmac.compare_digest((auth.username or "").encode(), config.zuora_callout_username.encode())
    password_ok = hmac.compare_digest((auth.password or "").encode(),
                                      config.zuora_callout_password.reveal().encode())
    return user_ok and password_ok


def callout_signature(config, body: bytes) -> str:
    """The HMAC Zuora puts in the configured header, in the configured format."""
    digest = hmac.new(config.zuora_callout_hmac_secret.reveal().encode(), body,
                      getattr(hashlib, HMAC_ALGORITHMS[config.zuora_callout_hmac_algorithm])).digest()
    if config.zuora_callout_hmac_format == "HEX":
        return digest.hex()
    return base64.b64encode(digest).decode()


def _hmac_ok(config, body: bytes) -> bool:
    given = request.headers.get(config.zuora_callout_hmac_header, "").strip()
    expected = callout_signature(config, body)
    if config.zuora_callout_hmac_format == "HEX":
        given = given.lower()
    return hmac.compare_digest(given.encode(), expected.encode())


@bp.post("/webhooks/zuora")
def zuora_callout():
    """A Zuora notification callout: queue a sync of the account it names."""
    config = _services().config
    if config.callout_basic_auth and not _basic_auth_ok(config):
        refuse(401, "unauthorized", "valid Basic credentials are required",
               headers={"WWW-Authenticate": BASIC_CHALLENGE})
    body = _read_body()
    if config.zuora_callout_hmac_secret and not _hmac_ok(config, body):
        refuse(401, "invalid_signature", f"missing or wrong {config.zuora_callout_hmac_header} signature")
    try:
        data = parse_json_object(body, ZuoraCalloutSchema())
    except ApiError as exc:  # refused through refuse(), which counts and logs webhook refusals
        refuse(exc.status, exc.code, exc.detail)
    notification_id = _header_id("Zuora-Notification-Id")
    account_id = data["AccountId"]
    # "success" lets Zuora's "confirm success by parsing response content" option read the answer.
    return _record({"success": True}, source="zuora", type="account.callout", object_type="account",
                   object_id=account_id,
                   object_key=f"zuora-account:{account_id}",
                   dedupe_key=f"zuora:{notification_id}" if notification_id else None,
                   payload={"notification_id": notification_id or None})


# -- billing ------------------------------------------------------------------------------------------

@bp.post("/webhooks/billing")
def billing_event():
    """A Standard-Webhooks-signed billing event: queue a fetch-and-sync of the object it points at."""
    config = _services().config
    body = _read_body()
    headers = {name: request.headers.get(name, "") for name in
               ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        Webhook(config.billing_webhook_secret.reveal()).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError, binascii.Error) as exc:
        reason = str(exc) if isinstance(exc, WebhookVerificationError) else "Malformed signature headers"
        refuse(401, "invalid_signature", reason)
    webhook_id = _header_id("webhook-id")
    try:
        data = parse_json_object(body, BillingEventSchema())
    except ApiError as exc:  # refused through refuse(), which counts and logs webhook refusals
        refuse(exc.status, exc.code, exc.detail)
    kind = BILLING_EVENT_TYPES.get(data["type"])
    if kind is None:
        log.info("billing event type ignored", extra={"event_type": data["type"]})
        return jsonify({"accepted": False, "ignored": data["type"]})
    object_type, key_prefix = kind
    object_id = data["data"]["id"]
    return _record(source="billing", type=data["type"], object_type=object_type, object_id=object_id,
                   object_key=f"{key_prefix}:{object_id}", dedupe_key=f"billing:{webhook_id}",
                   payload={"webhook_id": webhook_id})
