"""The failure list: events that ended in a CONTRACT §5 code, and what an operator does with them.

A failure is an inbox event with ``status = 'failed'``. Nothing here deletes a row: "delete" marks
the event ``deleted`` so the audit trail (code, message, attempts, failure times) survives, and
the inbox never claims it again. "Retry" puts the event back to ``pending``, due now, in a new
attempt series (integration.store.inbox.start_new_series: a fresh Idempotency-Key, the attempt count
reset, so it gets the full backoff budget again); its ``error_code``, ``last_error``
and failure times stay on the row as history until the event succeeds (the worker clears them
then) or fails again (``last_failed_at`` moves, ``first_failed_at`` stays).

Retrying an invoice also retries the failed usage of that invoice (``object_type = 'usage'`` with
the same ``object_id``): usage is derived from the invoice, and an operator who fixed the cause
of one expects both to go again.

Every function takes the ``Database`` and runs in one ``BEGIN IMMEDIATE`` transaction, so a
selection and its update cannot interleave with a worker failing or claiming the same events.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from integration.domain.errors import MISSING_MAPPING
from integration.store import cursors
from integration.store.db import Database, iso, to_db_time, utcnow
from integration.store.inbox import start_new_series

OBJECT_TYPES = ("account", "invoice", "usage")
MAX_IDS = 1000
"""Most event IDs one retry/delete request may name (keeps one transaction short)."""


@dataclass(frozen=True)
class Failure:
    """One row of the failure list, as ``GET /admin/failures`` shows it."""

    rowid: int
    id: str
    object_type: str
    object_id: str
    source: str
    code: str | None
    message: str | None
    attempts: int
    first_failed_at: str | None
    last_failed_at: str | None

    def as_json(self) -> dict:
        """Exactly the CONTRACT §4 item fields, times as ISO-8601 UTC."""
        return {"id": self.id, "object_type": self.object_type, "object_id": self.object_id,
                "source": self.source, "code": self.code, "message": self.message,
                "attempts": self.attempts, "first_failed_at": iso(self.first_failed_at),
                "last_failed_at": iso(self.last_failed_at)}


@dataclass(frozen=True)
class Selector:
    """Which failed events a retry or delete applies to: exactly one of the three is set."""

    ids: tuple[str, ...] | None = None
    object_type: str | None = None
    all: bool = False

    def __post_init__(self) -> None:
        given = sum([self.ids is not None, self.object_type is not None, self.all])
        if given != 1:
            raise ValueError("give exactly one of ids, object_type or all")
        if self.ids is not None and len(self.ids) > MAX_IDS:
            raise ValueError(f"at most {MAX_IDS} ids")
        if self.object_type is not None and self.object_type not in OBJECT_TYPES:
            raise ValueError(f"object_type must be one of {', '.join(OBJECT_TYPES)}")

    def where(self, alias: str = "") -> tuple[str, dict]:
        """SQL condition (on the events table, optionally aliased) and its named parameters."""
        prefix = f"{alias}." if alias else ""
        if self.ids is not None:
            # json_each keeps 1,000 IDs in one bound parameter (SQLite caps the number of them).
            return f"{prefix}id IN (SELECT value FROM json_each(:ids))", {"ids": json.dumps(list(self.ids))}
        if self.object_type is not None:
            return f"{prefix}object_type = :object_type", {"object_type": self.object_type}
        return "1 = 1", {}


# -- listing ------------------------------------------------------------------------------------

def encode_cursor(rowid: int) -> str:
    return cursors.encode("f", rowid)


def decode_cursor(cursor: str) -> int:
    """The position behind an opaque cursor; ValueError when it is not one of ours."""
    return cursors.decode("f", cursor)


def page(db: Database, *, object_type: str | None = None, code: str | None = None, limit: int = 100,
         after: int | None = None) -> tuple[list[Failure], str | None]:
    """One page of failed events in the order they were first recorded, and the next cursor.

    The cursor is the event's rowid (insertion order), which never changes: a failure that is
    retried and fails again keeps its place, so paging never skips or repeats a row.
    """
    where, params = ["status = 'failed'"], []
    if object_type is not None:
        where.append("object_type = ?")
        params.append(object_type)
    if code is not None:
        where.append("error_code = ?")
        params.append(code)
    if after is not None:
        where.append("rowid > ?")
        params.append(after)
    rows = db.query(
        "SELECT rowid, id, object_type, object_id, source, error_code AS code, last_error AS message, attempts,"
        f" first_failed_at, last_failed_at FROM events WHERE {' AND '.join(where)} ORDER BY rowid LIMIT ?",
        (*params, limit + 1))
    items = [Failure(**dict(r)) for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1].rowid) if len(rows) > limit else None
    return items, next_cursor


# -- operator actions -----------------------------------------------------------------------------

def retry(db: Database, selector: Selector, *, clock: Callable[[], datetime] = utcnow) -> int:
    """Make the selected failed events (and the failed usage of selected invoices) due now, each in a
    new attempt series: a fresh Idempotency-Key, so Zuora does not replay the stored failure of the
    last series, and a flow that looks the object up before it writes again.

    Returns how many events were put back in the queue. Events in any other status are left alone.
    """
    condition, params = selector.where("inv")
    params["now"] = to_db_time(clock())
    with db.transaction() as conn:
        # Usage first, while the selected invoices are still 'failed' and so still selectable.
        usage = start_new_series(
            conn, "status = 'failed' AND object_type = 'usage' AND object_id IN (SELECT inv.object_id FROM events"
                  f" inv WHERE inv.status = 'failed' AND inv.object_type = 'invoice' AND {condition})", params)
        condition, _ = selector.where()
        direct = start_new_series(conn, f"status = 'failed' AND {condition}", params)
    return usage + direct


def delete(db: Database, selector: Selector, *, clock: Callable[[], datetime] = utcnow) -> int:
    """Mark the selected failed events ``deleted``: kept for audit, never claimed, off the list.

    Unlike retry, deleting an invoice does not touch its usage: each deletion is a deliberate
    decision to give up on one event, and the operator names what to give up on.
    """
    condition, params = selector.where()
    params["now"] = to_db_time(clock())
    with db.transaction() as conn:
        return conn.execute(f"UPDATE events SET status = 'deleted', lease_owner = NULL, lease_expires_at = NULL,"
                            f" updated_at = :now WHERE status = 'failed' AND {condition}", params).rowcount


def retry_recent(conn: sqlite3.Connection, *, now: datetime, since: datetime, cap: int) -> int:
    """The scheduled retry's selection, inside the caller's transaction: failures whose last
    failure is at or after ``since``, oldest first, at most ``cap``, ``MISSING_MAPPING`` excluded
    (those are released by the link they wait for, not by the clock).

    Oldest first: those are the ones about to leave the 7-day window, and a retried event that
    fails again moves to the back of the line, so a backlog larger than ``cap`` rotates.
    """
    if cap <= 0:
        return 0
    return start_new_series(
        conn, "id IN (SELECT id FROM events WHERE status = 'failed'"
              " AND (error_code IS NULL OR error_code != :missing) AND waiting_for IS NULL"
              " AND last_failed_at >= :since ORDER BY last_failed_at, rowid LIMIT :cap)",
        {"now": to_db_time(now), "since": to_db_time(since), "cap": cap, "missing": MISSING_MAPPING})


def counts_by_code(db: Database) -> dict[str, int]:
    """How many events are on the failure list per code (for the metrics scrape)."""
    rows = db.query("SELECT COALESCE(error_code, 'UNKNOWN') AS code, COUNT(*) AS n FROM events"
                    " WHERE status = 'failed' GROUP BY 1")
    return {row["code"]: row["n"] for row in rows}
