"""Admin routes added for the console and the commands (CONTRACT §4), on the admin blueprint (so
the bearer check and the error handlers of integration.web.admin apply): the event list, removing a
meter's settings, and linking two existing accounts (answered at once: no request here waits on the store)."""
from __future__ import annotations

from flask import current_app, jsonify, url_for
from flask.typing import ResponseReturnValue

from integration.actions import links, lookups
from integration.actions.meters import remove_meter as remove_meter_settings
from integration.store import events_list
from integration.web.admin import bp, check_path_id, load_body, load_query, read_cursor
from integration.web.errors import ApiError
from integration.web.schemas_extra import EventQuerySchema, LinkRequestSchema


def _services():
    return current_app.extensions["integration"]


@bp.get("/events")
def list_events() -> ResponseReturnValue:
    """Every inbox event, newest first, filtered by status, source, type and object ID."""
    query = load_query(EventQuerySchema())
    after = read_cursor(query, events_list.decode_cursor)
    items, next_cursor = lookups.events_page(_services().db, status=query.get("status"), source=query.get("source"),
                                             type=query.get("type"), object_id=query.get("object_id"),
                                             limit=query["limit"], after=after)
    return jsonify({"data": items, "next": next_cursor})


@bp.delete("/meters/<meter_id>")
def remove_meter(meter_id: str) -> ResponseReturnValue:
    """Remove a meter's settings (204); its usage is invoiced as ordinary lines from then on."""
    check_path_id("meter_id", meter_id)
    if not remove_meter_settings(_services().db, meter_id, via="admin"):
        raise ApiError(404, "not_found", {"meter_id": ["No settings for this meter."]})
    return "", 204


@bp.post("/links")
def link_accounts() -> ResponseReturnValue:
    """Link two existing accounts: 409 at once when the mapping table links either elsewhere (nothing
    queued), else 202 with the queued ``account.link`` event and its address (``Location``). The worker
    writes both sides and records the mapping; ``GET /admin/events/<id>`` says how it ended (``done``:
    linked; ``failed``: refused, the reason in ``last_error``). Deciding more would take the remote APIs,
    which the web does not call, and waiting for the worker would hold a web thread on the store."""
    data = load_body(LinkRequestSchema())
    result = links.request(_services().inbox, data["zuora_account_id"], data["billing_account_id"], via="admin")
    if result.status == "refused":
        raise ApiError(409, "conflict", result.message)
    location = url_for("admin.get_event", event_id=result.event_id)
    body = {"status": result.status, "event_id": result.event_id, "message": result.message, "event": location}
    return jsonify(body), 202, {"Location": location}
