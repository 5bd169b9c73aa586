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

from integration.store.db import Database, iso, to_db_time

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
    """Take the slot for this process; False when another one already has it."""
    stamp = to_db_time(now)
    with db.transaction() as conn:
        return conn.execute("INSERT INTO alert_digests (slot, worker_id, claimed_at, through) VALUES (?, ?, ?, ?)"
                            " ON CONFLICT (slot) DO NOTHING", (slot, worker_id, stamp, stamp)).rowcount == 1


def digest(db: Database, slot: str) -> Digest:
    """What the claimed ``slot`` should say: failures after the last delivered digest, up to its claim."""
    through = db.query("SELECT through FROM alert_digests WHERE slot = ?", (slot,))[0]["through"]
    since = db.query("SELECT MAX(through) AS t FROM alert_digests WHERE delivered_at IS NOT NULL"
                     " AND through < ?", (through,))[0]["t"]
    where = "status = 'failed' AND last_failed_at <= ?" + (" AND last_failed_at > ?" if since else "")
    params = (through, since) if since else (through,)
    by_code = {r["code"]: r["n"] for r in db.query(
        f"SELECT COALESCE(error_code, 'UNKNOWN') AS code, COUNT(*) AS n FROM events WHERE {where}"
        " GROUP BY 1 ORDER BY 2 DESC, 1", params)}
    first = [{"id": r["id"], "object_type": r["object_type"], "object_id": r["object_id"],
              "code": r["error_code"] or "UNKNOWN", "message": r["last_error"] or "",
              "last_failed_at": iso(r["last_failed_at"])}
             for r in db.query(f"SELECT id, object_type, object_id, error_code, last_error, last_failed_at FROM events"
                               f" WHERE {where} ORDER BY last_failed_at, rowid LIMIT {FIRST_N}", params)]
    return Digest(since=iso(since), through=iso(through), total=sum(by_code.values()), by_code=by_code, first=first)


def record(db: Database, slot: str, *, failures: int, delivered_at: datetime | None, error: str | None = None) -> None:
    """The slot's outcome: delivered (the watermark moves to its ``through``) or not (it stays)."""
    with db.transaction() as conn:
        conn.execute("UPDATE alert_digests SET failures = ?, delivered_at = ?, error = ? WHERE slot = ?",
                     (failures, to_db_time(delivered_at) if delivered_at else None, error, slot))
