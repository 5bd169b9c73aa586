"""Inbound events: Zuora notification callouts and signed billing-platform events.

Accept fast, work later: authenticate, validate, write one inbox row in one transaction, answer.
No remote API is ever called here. 200 means the event is committed; when the store cannot
commit we answer 503 so the sender retries (Zuora retries on 5xx, never on other 4xx).
"""
from __future__ import annotations

import logging
from typing import Any, NoReturn

from flask import Blueprint, current_app, jsonify, request

from integration import metrics
from integration.domain import work
from integration.domain.deliveries import BILLING_DELIVERY_WINDOW, ZUORA_DELIVERY_WINDOW
from integration.domain.identifiers import identifier_problem
from integration.store.tx import StoreUnavailable
from integration.web.errors import ApiError
from integration.web.front_door import (
    BILLING_ROUTE,
    ZUORA_ROUTE,
    FrontDoor,
    Refusal,
    record_refusal,
    refusal,
    too_large,
)
from integration.web.payloads import MAX_BODY, parse_json_object, read_capped_body
from integration.web.schemas import ZuoraCalloutSchema

log = logging.getLogger("integration.web")
bp = Blueprint("webhooks", __name__)

BILLING_EVENT_TYPES = {kind.type: kind for kind in (
    # the kinds of work a billing webhook may queue (integration.domain.work), by internal event type: the
    # platform's adapter maps its own webhook types onto these (integration/billing/togai/webhooks.py).
    work.ACCOUNT_CREATED, work.ACCOUNT_UPDATED, work.INVOICE_FINALIZED,
    work.INVOICE_VOIDED, work.INVOICE_UPDATED,  # CONTRACT §12 voids
)}


def _services():
    return current_app.extensions["integration"]


def front_door() -> FrontDoor:
    """The webhook checks for this app's configuration (``integration.web.front_door``)."""
    return current_app.extensions["integration.front_door"]


def refuse_with(refused: Refusal) -> NoReturn:
    """Refuse the webhook (``ApiError``, answered as JSON), logged with its reason and counted in
    ``integration_webhook_refused_total{route, reason}`` (``record_refusal``)."""
    route = request.url_rule.rule if request.url_rule is not None else request.path
    record_refusal(route, refused, sorted(refused.detail) if isinstance(refused.detail, dict) else None)
    raise ApiError(refused.status, refused.error, refused.detail, refused.headers,
                   reason=refused.reason if refused.status == 401 else None)


def refuse(status: int, code: str, detail: Any) -> NoReturn:
    """Refuse for a cause that is its own code (400, 413, 415, 503): ``error`` and ``reason`` are ``code``."""
    refuse_with(refusal(status, code, detail))


def _headers() -> dict[str, str]:
    """The request's headers, names in lower case (as ``FrontDoor`` reads them)."""
    return {name.lower(): value for name, value in request.headers.items()}


def _checked_body(route: str) -> bytes:
    """The raw body of a webhook whose head and signature pass ``FrontDoor``'s checks; a refusal otherwise.

    ``check_head`` runs here even though ``integration serve`` has already run it before reading the body:
    under any other server (or the test client) this is its only run, and it is cheap.
    """
    headers = _headers()
    if refused := front_door().check_head(route, headers, request.content_length):
        refuse_with(refused)
    body = read_capped_body(MAX_BODY)
    if body is None:
        refuse_with(too_large())
    if refused := front_door().check_body(route, headers, body):
        refuse_with(refused)
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

@bp.post(ZUORA_ROUTE)
def zuora_callout():
    """A Zuora notification callout: queue a sync of the account it names."""
    body = _checked_body(ZUORA_ROUTE)
    try:
        data = parse_json_object(body, ZuoraCalloutSchema())
    except ApiError as exc:  # refused through refuse(), which counts and logs webhook refusals
        refuse(exc.status, exc.code, exc.detail)
    notification_id = _header_id("Zuora-Notification-Id")
    account_id = data["AccountId"]
    # "success" lets Zuora's "confirm success by parsing response content" option read the answer.
    return _record({"success": True}, source="zuora", **work.ACCOUNT_CALLOUT.event(account_id),
                   dedupe_key=work.delivery_key("zuora", notification_id) if notification_id else None,
                   remember_for=ZUORA_DELIVERY_WINDOW if notification_id else None,
                   payload={"notification_id": notification_id or None})


# -- billing ------------------------------------------------------------------------------------------

@bp.post(BILLING_ROUTE)
def billing_event():
    """A Standard-Webhooks-signed billing event: queue a fetch-and-sync of the object it points at."""
    body = _checked_body(BILLING_ROUTE)
    platform = _services().billing
    webhook_id = _header_id(platform.webhook_delivery_header)
    try:
        data = parse_json_object(body, platform.webhook_schema())  # the adapter's envelope
    except ApiError as exc:  # refused through refuse(), which counts and logs webhook refusals
        refuse(exc.status, exc.code, exc.detail)
    event = platform.webhook_event(data, webhook_id)  # the adapter reads its platform's envelope
    kind = BILLING_EVENT_TYPES.get(event.type)
    if kind is None:
        log.info("billing event type ignored", extra={"event_type": event.type})
        return jsonify({"accepted": False, "ignored": event.type})
    return _record(source="billing", **kind.event(event.object_id),
                   dedupe_key=work.delivery_key("billing", event.delivery_id),
                   remember_for=BILLING_DELIVERY_WINDOW, payload=dict(event.payload))
