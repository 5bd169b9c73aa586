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

Every action selects the events' IDs and then updates each one by ID with a condition that
re-checks it is still ``failed``, in one write transaction: an event a worker claimed or an
operator handled in between is left alone, on any engine.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from integration.domain.errors import MISSING_MAPPING
from integration.domain.kinds import ObjectType, values
from integration.domain.times import iso_moment, utcnow
from integration.store import cursors
from integration.store.db import Database
from integration.store.events import start_new_series
from integration.store.queries import failures as q
from integration.store.tx import Tx

OBJECT_TYPES = values(ObjectType)
MAX_IDS = 1000
"""Most event IDs one retry/delete request may name (keeps one transaction short)."""


@dataclass(frozen=True)
class Failure:
    """One row of the failure list, as ``GET /admin/failures`` shows it."""

    seq: int
    id: str
    object_type: str
    object_id: str
    source: str
    code: str | None
    message: str | None
    attempts: int
    first_failed_at: datetime | None
    last_failed_at: datetime | None

    def as_json(self) -> dict:
        """Exactly the CONTRACT §4 item fields, times as ISO-8601 UTC."""
        return {"id": self.id, "object_type": self.object_type, "object_id": self.object_id,
                "source": self.source, "code": self.code, "message": self.message,
                "attempts": self.attempts, "first_failed_at": iso_moment(self.first_failed_at),
                "last_failed_at": iso_moment(self.last_failed_at)}


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

    def failed_ids(self, tx: Tx) -> list[str]:
        """The IDs of the failed events this selector names."""
        if self.ids is not None:
            ids = list(self.ids)
            rows = [row for start in range(0, len(ids), 500)
                    for row in tx.rows(q.FAILED_BY_IDS, ids=ids[start:start + 500])]
        elif self.object_type is not None:
            rows = tx.rows(q.FAILED_BY_TYPE, object_type=self.object_type)
        else:
            rows = tx.rows(q.FAILED_ALL)
        return [row["id"] for row in rows]


# -- listing ------------------------------------------------------------------------------------

def encode_cursor(seq: int) -> str:
    return cursors.encode("f", seq)


def decode_cursor(cursor: str) -> int:
    """The position behind an opaque cursor; ValueError when it is not one of ours."""
    return cursors.decode("f", cursor)


def page(db: Database, *, object_type: str | None = None, code: str | None = None, limit: int = 100,
         after: int | None = None) -> tuple[list[Failure], str | None]:
    """One page of failed events in the order they were first recorded, and the next cursor.

    The cursor is the event's ``seq`` (insertion order), which never changes: a failure that is
    retried and fails again keeps its place, so paging never skips or repeats a row.
    """
    with db.read() as tx:
        rows = tx.rows(q.PAGE, object_type=object_type, code=code, after=after if after is not None else 0,
                       limit=limit + 1)
    items = [Failure(**row) for row in rows[:limit]]
    next_cursor = encode_cursor(items[-1].seq) if len(rows) > limit else None
    return items, next_cursor


# -- operator actions -----------------------------------------------------------------------------

def _usage_of(tx: Tx, ids: list[str]) -> list[str]:
    found: list[str] = []
    for start in range(0, len(ids), 500):
        found += [row["id"] for row in tx.rows(q.FAILED_USAGE_OF, ids=ids[start:start + 500])]
    return found


def retry(db: Database, selector: Selector, *, clock: Callable[[], datetime] = utcnow) -> int:
    """Make the selected failed events (and the failed usage of selected invoices) due now, each in a
    new attempt series: a fresh Idempotency-Key, so Zuora does not replay the stored failure of the
    last series, and a flow that looks the object up before it writes again.

    Returns how many events were put back in the queue. Events in any other status are left alone.
    """
    with db.transaction() as tx:
        selected = selector.failed_ids(tx)
        # Usage first, while the selected invoices are still 'failed' and so still selectable.
        usage = _usage_of(tx, selected)
        return start_new_series(tx, usage + selected, clock())


def delete(db: Database, selector: Selector, *, clock: Callable[[], datetime] = utcnow) -> int:
    """Mark the selected failed events ``deleted``: kept for audit, never claimed, off the list.

    Unlike retry, deleting an invoice does not touch its usage: each deletion is a deliberate
    decision to give up on one event, and the operator names what to give up on.
    """
    now = clock()
    with db.transaction() as tx:
        return tx.run_many(q.DELETE_ONE, [{"id": event_id, "now": now} for event_id in selector.failed_ids(tx)])


def retry_recent(tx: Tx, *, now: datetime, since: datetime, cap: int) -> int:
    """The scheduled retry's selection, inside the caller's transaction: failures whose last
    failure is at or after ``since``, oldest first, at most ``cap``, ``MISSING_MAPPING`` excluded
    (those are released by the link they wait for, not by the clock).

    Oldest first: those are the ones about to leave the 7-day window, and a retried event that
    fails again moves to the back of the line, so a backlog larger than ``cap`` rotates.
    """
    if cap <= 0:
        return 0
    rows = tx.rows(q.RECENT, missing=MISSING_MAPPING, since=since, cap=cap)
    return start_new_series(tx, [row["id"] for row in rows], now)


def counts_by_code(db: Database) -> dict[str, int]:
    """How many events are on the failure list per code (for the metrics scrape)."""
    with db.read() as tx:
        return {row["code"]: row["n"] for row in tx.rows(q.COUNTS_BY_CODE)}
