"""The failure-alert digest's state (CONTRACT §8): which slot was claimed by whom, and up to which
failure time the last *delivered* digest reached (the watermark of "new since the last digest").

A slot is claimed by inserting its key (primary key): the one insert that lands sends the digest,
every other process's meets the row and does nothing. Sending happens outside any transaction (an
HTTP call must not hold the store's write lock); the outcome is recorded afterwards. A digest that
was not delivered leaves the watermark where it was, so its failures go out with the next slot.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from integration.domain.times import iso_moment
from integration.store.db import Database
from integration.store.queries import alerts as q

FIRST_N = 10


@dataclass(frozen=True)
class Digest:
    """The failures new in ``(since, through]``: counts by code and the first ten, oldest first."""

    since: str | None
    through: str
    total: int
    by_code: dict[str, int]
    first: list[dict]


def claim(db: Database, slot: str, worker_id: str, now: datetime) -> bool:
    """Take the slot for this process; False when another one already has it (the primary key decides,
    so this holds with any number of processes on any engine)."""
    with db.transaction() as tx:
        return tx.one(q.CLAIM, slot=slot, worker_id=worker_id, now=now) is not None


def digest(db: Database, slot: str) -> Digest:
    """What the claimed ``slot`` should say: failures after the last delivered digest, up to its claim."""
    with db.read() as tx:
        through = tx.scalar(q.THROUGH, slot=slot)
        if through is None:
            raise LookupError(f"alert slot {slot!r} is not claimed: claim() it before asking for its digest")
        since = tx.scalar(q.LAST_DELIVERED, through=through)
        by_code = {r["code"]: r["n"] for r in tx.rows(q.NEW_BY_CODE, through=through, since=since)}
        rows = tx.rows(q.NEW_FIRST, through=through, since=since, first=FIRST_N)
    first = [{"id": r["id"], "object_type": r["object_type"], "object_id": r["object_id"],
              "code": r["error_code"] or "UNKNOWN", "message": r["last_error"] or "",
              "last_failed_at": iso_moment(r["last_failed_at"])} for r in rows]
    return Digest(since=iso_moment(since), through=iso_moment(through), total=sum(by_code.values()), by_code=by_code,
                  first=first)


def record(db: Database, slot: str, *, failures: int, delivered_at: datetime | None, error: str | None = None) -> None:
    """The slot's outcome: delivered (the watermark moves to its ``through``) or not (it stays)."""
    with db.transaction() as tx:
        tx.run(q.RECORD, failures=failures, delivered_at=delivered_at,
               error=error, slot=slot)
