"""Reading the inbox for operators: the event list (newest first), counts for the overview, and
which of a set of event IDs name nothing an operator can act on.

Kept apart from integration.store.inbox, which is the worker's write path: these are read-only
queries for the admin API, the console and the commands.
"""
from __future__ import annotations

import json

from integration.store import cursors
from integration.store.db import Database, iso

STATUSES = ("pending", "running", "done", "failed", "deleted")
SOURCES = ("zuora", "billing", "admin", "reconcile")


def encode_cursor(rowid: int) -> str:
    return cursors.encode("e", rowid)


def decode_cursor(cursor: str) -> int:
    """The position behind an opaque cursor; ValueError when it is not one of ours."""
    return cursors.decode("e", cursor)


def _item(row) -> dict:
    return {"id": row["id"], "source": row["source"], "type": row["type"], "object_type": row["object_type"],
            "object_id": row["object_id"], "status": row["status"], "attempts": row["attempts"],
            "code": row["error_code"], "last_error": row["last_error"],
            "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"])}


def page(db: Database, *, status: str | None = None, source: str | None = None, type: str | None = None,
         object_id: str | None = None, limit: int = 100, after: int | None = None) -> tuple[list[dict], str | None]:
    """One page of events, newest first (by insertion order, which never changes), and the next cursor."""
    where, params = ["1 = 1"], []
    for column, value in (("status", status), ("source", source), ("type", type), ("object_id", object_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if after is not None:
        where.append("rowid < ?")
        params.append(after)
    rows = db.query("SELECT rowid, id, source, type, object_type, object_id, status, attempts, error_code,"
                    f" last_error, created_at, updated_at FROM events WHERE {' AND '.join(where)}"
                    " ORDER BY rowid DESC LIMIT ?", (*params, limit + 1))
    items = [_item(r) for r in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1]["rowid"]) if len(rows) > limit else None
    return items, next_cursor


def counts_by_status(db: Database) -> dict[str, int]:
    """Events per status, every status present (zeros included), for the overview."""
    found = {r["status"]: r["n"] for r in db.query("SELECT status, COUNT(*) AS n FROM events GROUP BY status")}
    return {status: found.get(status, 0) for status in STATUSES}


def last_done_per_type(db: Database) -> dict[str, str | None]:
    """When an event of each type last completed (ISO-8601 UTC): "last sync per flow"."""
    rows = db.query("SELECT type, MAX(updated_at) AS at FROM events WHERE status = 'done' GROUP BY type ORDER BY type")
    return {r["type"]: iso(r["at"]) for r in rows}


def not_actionable(db: Database, ids: list[str] | tuple[str, ...]) -> list[str]:
    """Those of ``ids`` that name no event, or a deleted one, in the order given: what a retry or
    delete by ID reports as ``not_found`` instead of silently counting zero."""
    rows = db.query("SELECT value AS id FROM json_each(?) WHERE value NOT IN"
                    " (SELECT id FROM events WHERE status != 'deleted' AND id IN (SELECT value FROM json_each(?)))",
                    (json.dumps(list(ids)), json.dumps(list(ids))))
    missing = {r["id"] for r in rows}
    return [i for i in dict.fromkeys(ids) if i in missing]
