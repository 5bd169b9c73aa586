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

from flask import Blueprint, current_app, jsonify, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .. import metrics
from ..config import HMAC_ALGORITHMS
from ..db import StoreUnavailable
from ..schemas import BillingEventSchema, ZuoraCalloutSchema
from .errors import error_response
from .payloads import load_json_object

log = logging.getLogger("integration.web")
bp = Blueprint("webhooks", __name__)

MAX_BODY = 64 * 1024
BASIC_CHALLENGE = 'Basic realm="zuora-callouts"'
BILLING_EVENT_TYPES = {
    # type -> (object_type, object_key prefix)
    "account.created": ("account", "billing-account"),
    "account.updated": ("account", "billing-account"),
    "invoice.finalized": ("invoice", "billing-invoice"),
}


def _services():
    return current_app.extensions["integration"]


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _read_body():
    """The raw body, or an error response for an oversized or non-JSON request."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None, error_response(413, "payload_too_large", f"the body may be at most {MAX_BODY} bytes")
    if not _is_json(request.mimetype):
        return None, error_response(415, "unsupported_media_type", "the body must be application/json")
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return None, error_response(413, "payload_too_large", f"the body may be at most {MAX_BODY} bytes")
    return body, None


def _record(**event):
    try:
        recorded = _services().inbox.record(**event)
    except StoreUnavailable as exc:
        log.error("store unavailable; asking the sender to retry", extra={"error": str(exc)})
        return error_response(503, "store_unavailable", "the event could not be stored; retry later")
    if recorded.created:
        metrics.EVENTS_RECEIVED.labels(source=event["source"], type=event["type"]).inc()
    log.info("event accepted", extra={"event_id": recorded.event_id, "source": event["source"],
                                      "event_type": event["type"], "object_id": event["object_id"],
                                      "duplicate": not recorded.created, "coalesced": recorded.coalesced})
    return jsonify({"accepted": True, "event_id": recorded.event_id})


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
        return error_response(401, "unauthorized", "valid Basic credentials are required",
                              headers={"WWW-Authenticate": BASIC_CHALLENGE})
    body, problem = _read_body()
    if problem:
        return problem
    if config.zuora_callout_hmac_secret and not _hmac_ok(config, body):
        return error_response(401, "invalid_signature",
                              f"missing or wrong {config.zuora_callout_hmac_header} signature")
    data, problem = load_json_object(body, ZuoraCalloutSchema())
    if problem:
        return problem
    notification_id = request.headers.get("Zuora-Notification-Id", "").strip()
    if len(notification_id) > 255:
        return error_response(400, "invalid_header", {"Zuora-Notification-Id": ["Longer than 255 characters."]})
    account_id = data["AccountId"]
    return _record(source="zuora", type="account.callout", object_type="account", object_id=account_id,
                   object_key=f"zuora-account:{account_id}",
                   dedupe_key=f"zuora:{notification_id}" if notification_id else None,
                   payload={"notification_id": notification_id or None})


# -- billing ------------------------------------------------------------------------------------------

@bp.post("/webhooks/billing")
def billing_event():
    """A Standard-Webhooks-signed billing event: queue a fetch-and-sync of the object it points at."""
    config = _services().config
    body, problem = _read_body()
    if problem:
        return problem
    headers = {name: request.headers.get(name, "") for name in
               ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        Webhook(config.billing_webhook_secret.reveal()).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError, binascii.Error) as exc:
        reason = str(exc) if isinstance(exc, WebhookVerificationError) else "Malformed signature headers"
        return error_response(401, "invalid_signature", reason)
    if len(headers["webhook-id"]) > 255:
        return error_response(400, "invalid_header", {"webhook-id": ["Longer than 255 characters."]})
    data, problem = load_json_object(body, BillingEventSchema())
    if problem:
        return problem
    kind = BILLING_EVENT_TYPES.get(data["type"])
    if kind is None:
        log.info("billing event type ignored", extra={"event_type": data["type"]})
        return jsonify({"accepted": False, "ignored": data["type"]})
    object_type, key_prefix = kind
    object_id = data["data"]["id"]
    return _record(source="billing", type=data["type"], object_type=object_type, object_id=object_id,
                   object_key=f"{key_prefix}:{object_id}", dedupe_key=f"billing:{headers['webhook-id']}",
                   payload={"webhook_id": headers["webhook-id"]})
