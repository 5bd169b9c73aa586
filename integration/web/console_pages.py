"""The console's pages (GET): overview, mappings (with the CSV download), failures, one event,
meters and on-demand sync. Each reads through the same store queries as the admin API, so a page
and ``curl`` always agree. The forms on these pages post to integration.web.console_actions."""
from __future__ import annotations

import io

from flask import Response, abort, current_app, flash, request

from integration.actions import lookups
from integration.actions.limits import ID_MAX
from integration.domain.errors import FAILURE_CODES
from integration.domain.identifiers import printable_problem
from integration.store import events_list, failures, mappings, meters
from integration.store.mapping_export import write_csv
from integration.web.console import bp, page
from integration.web.schemas import OBJECT_TYPES
from integration.web.ui_links import object_links

PAGE_SIZE = 50


def _services():
    return current_app.extensions["integration"]


def _choice(name: str, allowed) -> str | None:
    """A filter value from the query string, or None when absent or not one of ``allowed``."""
    value = request.args.get(name) or None
    return value if value in allowed else None


def _cursor(decode) -> int | None:
    try:
        return decode(request.args["after"]) if request.args.get("after") else None
    except ValueError:
        return None


@bp.get("/")
def overview():
    db = _services().db
    return page("overview.html", title="Overview", active="overview",
                statuses=events_list.counts_by_status(db), codes=failures.counts_by_code(db),
                depth=_services().inbox.depth(), last_sync=events_list.last_done_per_type(db))


def _not_printable(name: str, value: str) -> str | None:
    """The message for a search or ID that no record can match and the store may not even take (a NUL
    fails a PostgreSQL query, which would read as "store unavailable"), or None when it is fine."""
    problem = printable_problem(value)
    return f"{name} {problem}; nothing was looked up." if problem else None


def _too_long(name: str, value: str, limit: int) -> str | None:
    """The message for a search longer than any ID it could match (the admin API's and the commands'
    limit too: integration.actions.limits), or None."""
    return f"{name} is longer than {limit} characters; nothing was looked up." if len(value) > limit else None


@bp.get("/mappings")
def mappings_page():
    db = _services().db
    type_ = _choice("type", mappings.TYPES)
    search = (request.args.get("q") or "").strip()
    if refused := _not_printable("The search", search) or _too_long("The search", search, ID_MAX):
        flash(refused, "error")
        return page("mappings.html", title="Mappings", active="mappings", rows=[], type=type_, q="",
                    types=mappings.TYPES, next_cursor=None), 400
    next_cursor = None
    if search:
        found = {}
        for key in ({"zuora_id": search}, {"billing_id": search}):
            items, _ = lookups.mappings_page(db, type=type_, limit=PAGE_SIZE, **key)
            found.update({m.id: m for m in items})
        rows = [found[k] for k in sorted(found)]
    else:
        rows, next_cursor = lookups.mappings_page(db, type=type_, limit=PAGE_SIZE,
                                                  after=_cursor(mappings.decode_cursor))
    return page("mappings.html", title="Mappings", active="mappings", rows=rows, type=type_, q=search,
                types=mappings.TYPES, next_cursor=next_cursor)


@bp.get("/mappings.csv")
def mappings_csv():
    out = io.StringIO()
    write_csv(_services().db, out, _choice("type", mappings.TYPES))
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="mappings.csv"'})


@bp.get("/failures")
def failures_page():
    object_type, code = _choice("object_type", OBJECT_TYPES), _choice("code", FAILURE_CODES)
    rows, next_cursor = lookups.failures_page(_services().db, object_type=object_type, code=code, limit=PAGE_SIZE,
                                              after=_cursor(failures.decode_cursor))
    return page("failures.html", title="Failures", active="failures", rows=rows, object_type=object_type,
                code=code, object_types=OBJECT_TYPES, codes=FAILURE_CODES, next_cursor=next_cursor)


@bp.get("/events/<event_id>")
def event_page(event_id: str):
    if refused := _not_printable("The event ID in this address", event_id):
        return page("error.html", title="Not an event ID", message=refused), 400
    inbox = _services().inbox
    event = lookups.find_event(inbox, event_id)
    if event is None:
        abort(404)
    mapping = lookups.event_mapping(_services().db, event)
    return page("event.html", title=f"Event {event.id}", active="failures", event=event,
                history=inbox.history(event.id), mapping=mapping,
                links=object_links(_services().config, event, mapping))


@bp.get("/meters")
def meters_page():
    return page("meters.html", title="Meters", active="meters", rows=meters.list_meters(_services().db),
                modes=meters.MODES)


@bp.get("/sync")
def sync_page():
    return page("sync.html", title="Sync now", active="sync")
