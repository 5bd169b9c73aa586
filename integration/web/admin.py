"""The admin API (CONTRACT §4): every route behind ``Authorization: Bearer $ADMIN_TOKEN``.

Request bodies are read as JSON whatever the ``Content-Type`` (operators type ``curl -d``), and
checked against the schemas in ``integration.web.schemas``: a malformed body is a 400
``invalid_payload`` naming each bad field, a bad query a 400 ``invalid_query``. The store being
locked is a 503 ``store_unavailable`` (try again), never a 500. Every refusal is raised as an
``ApiError`` (``integration.web.errors``), so the helpers below return plain values.
"""
from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from integration.actions import failures as failure_actions
from integration.actions import lookups
from integration.actions.documents import event_as_json
from integration.actions.sync import queue_syncs
from integration.domain.identifiers import printable_problem
from integration.store import failures, mappings, meters
from integration.store.tx import StoreUnavailable
from integration.web.errors import ApiError, error_response
from integration.web.payloads import parse_json_object, read_capped_body
from integration.web.queries import unknown_parameters
from integration.web.schemas import (
    FailureQuerySchema,
    FailureSelectorSchema,
    MappingQuerySchema,
    MeterSettingsInputSchema,
    SyncRequestSchema,
)
from integration.web.sign_in_limit import SignInLimiter, address_bucket

log = logging.getLogger("integration.admin")
bp = Blueprint("admin", __name__, url_prefix="/admin")


def _services():
    return current_app.extensions["integration"]


UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="admin"'}


@bp.before_request
def require_admin_token() -> None:
    """Constant-time bearer check before any admin handler runs; 401 JSON otherwise.

    A bearer token is a guess at ``ADMIN_TOKEN`` and goes through the same limit as the console's sign-in
    (integration.web.sign_in_limit), in the same per-address bucket: counted before it is checked, and
    once the address is over the limit refused with 429 and ``Retry-After`` without being looked at.
    A wrong token and a refusal are logged with the client address, never the token. A request with no
    bearer token at all guesses nothing: 401, neither counted nor logged."""
    services = _services()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "a valid admin bearer token is required", headers=UNAUTHORIZED)
    limiter: SignInLimiter = current_app.extensions["sign_in_limiter"]
    address = limiter.client_address(services.config.trust_proxy)
    who = {"client": address, "path": request.path[:200]}
    try:
        ticket = limiter.attempt(address_bucket(address))
        if ticket.wait:
            log.warning("admin request refused: too many wrong tokens", extra=who)
            raise ApiError(429, "too_many_attempts", f"too many wrong admin tokens from this address; "
                           f"try again in {ticket.wait} seconds", headers={"Retry-After": str(ticket.wait)})
        if not hmac.compare_digest(token.strip().encode(), services.config.admin_token.reveal().encode()):
            log.warning("admin request refused: wrong token", extra=who)
            raise ApiError(401, "unauthorized", "a valid admin bearer token is required", headers=UNAUTHORIZED)
        limiter.succeeded(ticket)
    except StoreUnavailable as exc:  # also reached from paths outside this blueprint: answer here
        log.error("store unavailable while checking an admin token", extra={"error": f"{type(exc).__name__}: {exc}"})
        raise ApiError(503, "store_unavailable", "the store is busy or unavailable; retry later") from exc


@bp.before_app_request
def guard_unknown_admin_paths() -> None:
    """A path under /admin that matches no admin route (a 404, or a 405 for a known path) still
    needs the token first: without it, a caller must not learn which admin paths exist."""
    path = request.path
    if request.blueprint != bp.name and (path == "/admin" or path.startswith("/admin/")):
        require_admin_token()


@bp.errorhandler(StoreUnavailable)
def store_unavailable(exc: Exception) -> ResponseReturnValue:
    """A locked, read-only or vanished store: the request may succeed if repeated, so say so."""
    log.error("store unavailable during an admin request", extra={"error": f"{type(exc).__name__}: {exc}"})
    return error_response(503, "store_unavailable", "the store is busy or unavailable; retry later")


def load_query(schema: Schema) -> dict:
    """The query's arguments, loaded by ``schema``; a 400 ``invalid_query`` naming each bad or unknown parameter."""
    if unknown := unknown_parameters(schema):
        raise ApiError(400, "invalid_query", unknown)
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as exc:
        raise ApiError(400, "invalid_query", exc.messages) from None


def read_cursor(query: dict, decode: Callable[[str], int]) -> int | None:
    """The position behind the ``after`` parameter (None: first page); a 400 for a foreign cursor."""
    if "after" not in query:
        return None
    try:
        return decode(query["after"])
    except ValueError:
        raise ApiError(400, "invalid_query", {"after": ["Not a cursor returned by this API."]}) from None


def check_path_id(name: str, value: str) -> None:
    """A 400 ``invalid_path`` naming ``name`` when a path ID is not printable (a NUL, a control, format
    or surrogate character). No record has such an ID, and some of them (a NUL) PostgreSQL cannot even
    be asked about: the query would fail, and a failed query reads as "store unavailable"."""
    if (problem := printable_problem(value)) is not None:
        raise ApiError(400, "invalid_path", {name: [problem]})


def load_body(schema: Schema) -> dict:
    """The JSON object body, loaded by ``schema``; a 400 ``invalid_payload`` or a 413 otherwise."""
    body = read_capped_body()
    if body is None:
        raise RequestEntityTooLarge()  # → 413 JSON, as every HTTP error
    return parse_json_object(body, schema)


# -- mappings -------------------------------------------------------------------------------------------

@bp.get("/mappings")
def list_mappings() -> ResponseReturnValue:
    """The ID-mapping table, filtered and paged with an opaque cursor."""
    query = load_query(MappingQuerySchema())
    after = read_cursor(query, mappings.decode_cursor)
    items, next_cursor = lookups.mappings_page(_services().db, type=query.get("type"), zuora_id=query.get("zuora_id"),
                                               billing_id=query.get("billing_id"), limit=query["limit"], after=after)
    return jsonify({"data": [m.as_json() for m in items], "next": next_cursor})


# -- events and failures ----------------------------------------------------------------------------------

@bp.get("/events/<event_id>")
def get_event(event_id: str) -> ResponseReturnValue:
    """One inbox event, whatever its status (a failed one's code and message included)."""
    check_path_id("event_id", event_id)
    event = lookups.find_event(_services().inbox, event_id)
    if event is None:
        raise ApiError(404, "not_found", {"event_id": ["No such event."]})
    return jsonify(event_as_json(event, _services().inbox.history(event.id)))


@bp.get("/failures")
def list_failures() -> ResponseReturnValue:
    """The failure list (failed events), filtered by object type and code, paged with a cursor."""
    query = load_query(FailureQuerySchema())
    after = read_cursor(query, failures.decode_cursor)
    items, next_cursor = lookups.failures_page(_services().db, object_type=query.get("object_type"),
                                               code=query.get("code"), limit=query["limit"], after=after)
    return jsonify({"data": [f.as_json() for f in items], "next": next_cursor})


def _selector() -> failures.Selector:
    data = load_body(FailureSelectorSchema())
    ids = tuple(data["ids"]) if "ids" in data else None
    return failures.Selector(ids=ids, object_type=data.get("object_type"), all=data.get("all", False))


@bp.post("/failures/retry")
def retry_failures() -> ResponseReturnValue:
    """Put the selected failed events back in the queue, due now (an invoice's usage with it)."""
    return jsonify(failure_actions.retry(_services().db, _selector(), via="admin").as_json("retried"))


@bp.delete("/failures")
def delete_failures() -> ResponseReturnValue:
    """Mark the selected failed events deleted: off the list, never run, kept for audit."""
    return jsonify(failure_actions.delete(_services().db, _selector(), via="admin").as_json("deleted"))


# -- meters ----------------------------------------------------------------------------------------------

@bp.get("/meters")
def list_meters() -> ResponseReturnValue:
    """Every usage-synced meter and where its usage goes in Zuora."""
    return jsonify({"data": [m.as_json() for m in meters.list_meters(_services().db)]})


@bp.put("/meters/<meter_id>")
def put_meter(meter_id: str) -> ResponseReturnValue:
    """Create (201) or replace (200) a meter's settings (the meter ID is checked by integration.store.meters)."""
    data = load_body(MeterSettingsInputSchema())
    try:
        settings, created = meters.put_meter(_services().db, meter_id, **data)
    except ValueError as exc:  # the store's own rules, "field: why"
        field, _, why = str(exc).partition(": ")
        raise ApiError(400, "invalid_payload", {field: [why or str(exc)]}) from None
    return jsonify(settings.as_json()), 201 if created else 200


# -- on-demand sync ------------------------------------------------------------------------------------------

@bp.post("/sync")
def sync_now() -> ResponseReturnValue:
    """Queue a sync of each named account, unless one of it is already pending or running."""
    data = load_body(SyncRequestSchema())
    return jsonify({"results": queue_syncs(_services().inbox, data, via="admin")})

