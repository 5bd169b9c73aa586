"""Reading the inbox for operators: the event list (newest first), counts for the overview, and
which of a set of event IDs name nothing an operator can act on.

Kept apart from integration.store.inbox, which is the worker's write path: these are read-only
queries for the admin API, the console and the commands.
"""
from __future__ import annotations

from integration.domain.times import iso_moment
from integration.store import cursors
from integration.store.db import Database
from integration.store.queries import operators as q

STATUSES = ("pending", "running", "done", "failed", "deleted")
SOURCES = ("zuora", "billing", "admin", "reconcile")


def encode_cursor(seq: int) -> str:
    return cursors.encode("e", seq)


def decode_cursor(cursor: str) -> int:
    """The position behind an opaque cursor; ValueError when it is not one of ours."""
    return cursors.decode("e", cursor)


def _item(row: dict) -> dict:
    return {"id": row["id"], "source": row["source"], "type": row["type"], "object_type": row["object_type"],
            "object_id": row["object_id"], "status": row["status"], "attempts": row["attempts"],
            "code": row["error_code"], "last_error": row["last_error"],
            "created_at": iso_moment(row["created_at"]), "updated_at": iso_moment(row["updated_at"])}


def page(db: Database, *, status: str | None = None, source: str | None = None, type: str | None = None,
         object_id: str | None = None, limit: int = 100, after: int | None = None) -> tuple[list[dict], str | None]:
    """One page of events, newest first (by ``seq``, which never changes), and the next cursor."""
    with db.read() as tx:
        rows = tx.rows(q.EVENTS_PAGE, status=status, source=source, type=type, object_id=object_id,
                       before=after if after is not None else 2**62, limit=limit + 1)
    items = [_item(r) for r in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1]["seq"]) if len(rows) > limit else None
    return items, next_cursor


def counts_by_status(db: Database) -> dict[str, int]:
    """Events per status, every status present (zeros included), for the overview."""
    with db.read() as tx:
        found = {r["status"]: r["n"] for r in tx.rows(q.COUNTS_BY_STATUS)}
    return {status: found.get(status, 0) for status in STATUSES}


def last_done_per_type(db: Database) -> dict[str, str | None]:
    """When an event of each type last completed (ISO-8601 UTC): "last sync per flow"."""
    with db.read() as tx:
        return {r["type"]: iso_moment(r["at"]) for r in tx.rows(q.LAST_DONE_PER_TYPE)}


def not_actionable(db: Database, ids: list[str] | tuple[str, ...]) -> list[str]:
    """Those of ``ids`` that name no event, or a deleted one, in the order given: what a retry or
    delete by ID reports as ``not_found`` instead of silently counting zero."""
    wanted = list(dict.fromkeys(ids))
    found: set[str] = set()
    with db.read() as tx:
        for start in range(0, len(wanted), 500):
            found.update(r["id"] for r in tx.rows(q.ACTIONABLE_AMONG, ids=wanted[start:start + 500]))
    return [i for i in wanted if i not in found]
