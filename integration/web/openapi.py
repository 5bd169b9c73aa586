"""``/openapi.json``: the service's HTTP API, generated from the marshmallow schemas with apispec.

The request and response bodies are the very schemas the handlers validate with, so the
document cannot drift from the checks. The operations are listed here, one entry per route;
``tests/test_openapi.py`` fails if a route of the Flask app is missing, so a new endpoint cannot
ship undocumented (nor, since the admin auth test is driven by this document, unauthenticated).
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from integration.actions.limits import EVENT_ID_MAX, METER_ID_MAX, SELECTOR_MAX_IDS, SYNC_MAX_IDS
from integration.billing.factory import webhook_envelope_schema
from integration.domain.kinds import METER_ID_PATTERN
from integration.web.schemas import (
    AcceptedSchema,
    DeletedSchema,
    ErrorSchema,
    EventSchema,
    FailurePageSchema,
    FailureQuerySchema,
    FailureSelectorSchema,
    HealthSchema,
    MappingPageSchema,
    MappingQuerySchema,
    MeterListSchema,
    MeterSchema,
    MeterSettingsInputSchema,
    RetriedSchema,
    SyncRequestSchema,
    SyncResponseSchema,
    ZuoraCalloutSchema,
)
from integration.web.schemas_extra import (
    EventPageSchema,
    EventQuerySchema,
    LinkRequestSchema,
    LinkResultSchema,
    TotalsQuerySchema,
    TotalsReportSchema,
)

TITLE = "Zuora ↔ billing-platform integration"
VERSION = "0.1.0"
ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]


def _json(schema, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(ErrorSchema, description)


def _body(schema, description: str = "") -> dict:
    body = {"required": True, "content": {"application/json": {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def _admin(summary: str, ok: dict, *, status: str = "200", body=None, query=None, path_params=(),
           extra: dict | None = None, description: str = "") -> dict:
    """An admin operation: bearer auth, JSON errors for bad input and a busy store."""
    operation: dict[str, Any] = {"summary": summary, "tags": ["admin"], "security": ADMIN,
                 "responses": {status: ok, "401": {"$ref": "#/components/responses/Unauthorized"},
                               "429": _error("too many wrong admin tokens from this address (`too_many_attempts`);"
                                             " wait `Retry-After` seconds"),
                               "503": _error("the store is busy or unavailable; retry")}}
    if description:
        operation["description"] = description
    parameters = list(path_params)
    if query is not None:
        parameters.append({"in": "query", "schema": query})
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = _body(body)
    if body is not None or query is not None or path_params:
        operation["responses"]["400"] = _error("invalid query or body; `detail` names each bad field")
    operation["responses"].update(extra or {})
    return operation


WEBHOOK_ERRORS = {
    "400": _error("malformed body (`invalid_payload`, naming the field) or header"),
    "401": _error("missing or wrong credentials or signature; `reason` names the cause (missing_credentials, "
                  "wrong_credentials, missing_signature, malformed_signature_header, timestamp_out_of_tolerance, "
                  "unsupported_algorithm, signature_mismatch, …)"),
    "413": _error("body larger than 64 KiB"),
    "415": _error("the body is not application/json"),
    "503": _error("the event could not be stored; the sender should retry"),
}

SELECTOR_HELP = (f"Exactly one selector: `{{\"ids\": [...]}}` (1–{SELECTOR_MAX_IDS:,} event IDs), "
                 "`{\"object_type\": \"...\"}` or `{\"all\": true}`. Only failed events are affected.")


def _paths() -> dict[str, dict]:
    meter_id = {"in": "path", "name": "meter_id", "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": METER_ID_MAX,
                           "pattern": METER_ID_PATTERN},
                "description": "the billing platform's usage-meter ID"}
    event_id = {"in": "path", "name": "event_id", "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": EVENT_ID_MAX}}
    return {
        "/webhooks/zuora": {"post": {
            "summary": "Zuora notification callout", "tags": ["webhooks"],
            "description": "Queues a sync of the named Zuora account (flow 1). Answered 200 only once the "
                           "event is durably stored. Basic auth and/or an HMAC of the raw body, as configured.",
            "security": [{"zuoraCalloutBasic": []}, {"zuoraCalloutHmac": []}],
            "parameters": [{"in": "header", "name": "Zuora-Notification-Id", "required": False,
                            "schema": {"type": "string", "maxLength": 255},
                            "description": "the same on every retry of one notification: a repeat creates no work"}],
            "requestBody": _body(ZuoraCalloutSchema),
            "responses": {"200": _json(AcceptedSchema, "stored (or a repeat of a stored event)"),
                          **WEBHOOK_ERRORS}}},
        "/webhooks/billing": {"post": {
            "summary": "Billing-platform event (Standard Webhooks)", "tags": ["webhooks"],
            "description": "Queues a fetch-and-sync of the billing object the event points at. "
                           "An unknown `type` is answered `{\"accepted\": false, \"ignored\": type}`.",
            "parameters": [
                {"in": "header", "name": name, "required": True, "schema": {"type": "string"}, "description": why}
                for name, why in (("webhook-id", "dedupe key"),
                                  ("webhook-timestamp", "unix seconds, within ±5 minutes"),
                                  ("webhook-signature", "space-separated `v1,<base64 HMAC-SHA256>` values"))],
            "requestBody": _body(webhook_envelope_schema()),
            "responses": {"200": _json(AcceptedSchema, "stored, a repeat, or an ignored type"),
                          **WEBHOOK_ERRORS}}},
        "/admin/mappings": {"get": _admin(
            "The ID-mapping table", _json(MappingPageSchema, "one page; `next` is the cursor of the next"),
            query=MappingQuerySchema)},
        "/admin/events/{event_id}": {"get": _admin(
            "One inbox event", _json(EventSchema, "the event"), path_params=[event_id],
            extra={"404": _error("no such event")})},
        "/admin/failures": {
            "get": _admin("The failure list", _json(FailurePageSchema, "one page of failed events"),
                          query=FailureQuerySchema),
            "delete": _admin("Delete failures (kept, marked `deleted`, for audit)",
                             _json(DeletedSchema, "how many were marked deleted"), body=FailureSelectorSchema,
                             description=SELECTOR_HELP)},
        "/admin/failures/retry": {"post": _admin(
            "Retry failures now", _json(RetriedSchema, "how many events were put back in the queue"),
            body=FailureSelectorSchema,
            description=SELECTOR_HELP + " Retrying an invoice also retries the failed usage of that invoice "
                                        "(counted in `retried`).")},
        "/admin/meters": {"get": _admin("Usage-meter settings", _json(MeterListSchema, "every meter with settings"))},
        "/admin/meters/{meter_id}": {"put": _admin(
            "Create or replace a meter's settings", _json(MeterSchema, "replaced"), body=MeterSettingsInputSchema,
            path_params=[meter_id], extra={"201": _json(MeterSchema, "created")}),
            "delete": _admin("Remove a meter's settings", {"description": "removed; its usage is invoiced as"
                                                                         " ordinary lines from now on"},
                             status="204", path_params=[meter_id], extra={"404": _error("no settings for it")})},
        "/admin/events": {"get": _admin(
            "The event list, newest first", _json(EventPageSchema, "one page; `next` is the cursor of the next"),
            query=EventQuerySchema)},
        "/admin/links": {"post": _admin(
            "Link two existing accounts",
            {**_json(LinkResultSchema, "queued: the `account.link` event; follow it at `Location`"),
             "headers": {"Location": {"description": "the event's address, `/admin/events/{event_id}`",
                                      "schema": {"type": "string"}}}},
            status="202", body=LinkRequestSchema,
            description="Decided at once, in one store transaction, without calling either remote API: 409 when "
                        "the mapping table links either account elsewhere (nothing is queued); otherwise an "
                        "`account.link` event is queued and the answer is 202 with it. A worker then checks both "
                        "accounts exist and that no remote link field names a third account, writes the Zuora "
                        "link field and the billing account's `zuora` settings, and records the mapping with "
                        "origin `linked`. The event says how it ended: `done` is linked; `failed` is refused "
                        "(`code` INVALID_DATA when an account is linked elsewhere, ZUORA_REJECTED or "
                        "BILLING_REJECTED when it does not exist; the reason in `last_error`), and stays on the "
                        "failure list until deleted or retried. The request never waits for the worker.",
            extra={"409": _error("either account is already linked elsewhere in the mapping table; nothing was "
                                 "queued")})},
        "/admin/reports/totals": {"get": _admin(
            "Totals, billing vs Zuora, per linked account for one month",
            _json(TotalsReportSchema, "every linked account, mismatches first; `mismatches` counts those that differ"),
            query=TotalsQuerySchema,
            description="For each linked account: its finalized billing invoices dated in the month against what "
                        "Zuora holds for them (the linked invoice's items, plus usage records at the meter's "
                        "per-unit amount), exact decimals, one row per account and currency. An invoice differs "
                        "when the two totals differ by half a minor unit or more. Reads both remote APIs.",
            extra={"502": _error("a remote API failed; `detail.code` is the failure code")})},
        "/admin/sync": {"post": _admin(
            "On-demand sync of accounts", _json(SyncResponseSchema, "one result per ID"), body=SyncRequestSchema,
            description=f"At most {SYNC_MAX_IDS} IDs in all. Each ID is `queued` (a new event, `event_id`) or "
                        "`already_in_progress` (an event of that account is pending or running; its ID is "
                        "given and nothing new is started). Zuora IDs run flow 1, billing IDs flow 2 "
                        "(`account.updated`). Example: `{\"results\": [{\"system\": \"zuora\", \"id\": "
                        "\"8ad0...\", \"status\": \"queued\", \"event_id\": \"evt_...\"}]}`.")},
        "/healthz": {"get": {"summary": "Liveness", "tags": ["ops"],
                             "responses": {"200": _json(HealthSchema, "the process is up")}}},
        "/readyz": {"get": {"summary": "Readiness", "tags": ["ops"],
                            "responses": {"200": _json(HealthSchema, "store reachable and migrated"),
                                          "503": _error("store unreachable or migrations pending")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "tags": ["ops"], "responses": {"200": {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "tags": ["ops"], "responses": {"200": {
            "description": "OpenAPI 3.0 document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    }


@lru_cache(maxsize=1)
def _build() -> dict:
    spec = APISpec(title=TITLE, version=VERSION, openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
                   info={"description": "Keeps a Zuora tenant and a Togai-compatible usage-billing platform in "
                                        "step. Every 4xx/5xx body is `{\"error\": code, \"detail\": ...}`."})
    spec.components.security_scheme("adminToken", {"type": "http", "scheme": "bearer",
                                                   "description": "`Authorization: Bearer $ADMIN_TOKEN`"})
    spec.components.security_scheme("zuoraCalloutBasic", {"type": "http", "scheme": "basic",
                                                          "description": "ZUORA_CALLOUT_USERNAME/PASSWORD"})
    spec.components.security_scheme("zuoraCalloutHmac", {"type": "apiKey", "in": "header",
                                                         "name": "X-Zuora-Signature",
                                                         "description": "HMAC of the raw body "
                                                                        "(header name: ZUORA_CALLOUT_HMAC_HEADER)"})
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.response("Unauthorized", _error("missing or wrong admin bearer token"))
    for path, operations in _paths().items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def build_spec() -> dict:
    """The OpenAPI 3.0 document (a fresh copy; building it is done once per process)."""
    return copy.deepcopy(_build())
