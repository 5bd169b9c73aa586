"""Failed console sign-ins, counted in the store (CONTRACT §8: rate-limited per client address).

WHY the store and not a counter in memory: every gunicorn worker on every host is a process of its
own, so a per-process count would give a guesser one allowance per process. Rows older than the
window are deleted whenever a new failure is recorded, so the table stays as small as the failures
of one window.
"""
from __future__ import annotations

from datetime import datetime

from integration.domain.times import from_db_time, to_db_time
from integration.store.db import Database
from integration.store.queries import sign_ins as q

ADDRESS_MAX = 200
"""Characters of a client address kept (a forwarded address comes from a header)."""


def recent_failures(db: Database, address: str, since: datetime, n: int) -> list[datetime]:
    """The newest ``n`` failures of ``address`` after ``since``, newest first."""
    with db.read() as tx:
        rows = tx.rows(q.RECENT, address=address[:ADDRESS_MAX], since=to_db_time(since), n=n)
    return [from_db_time(r["failed_at"]) for r in rows]


def record_failure(db: Database, address: str, now: datetime, forget_before: datetime) -> None:
    """Count one failure of ``address``; forget every failure at or before ``forget_before``."""
    with db.transaction() as tx:
        tx.run(q.PRUNE, before=to_db_time(forget_before))
        tx.run(q.RECORD, address=address[:ADDRESS_MAX], now=to_db_time(now))


def clear(db: Database, address: str) -> None:
    """A successful sign-in wipes the address's failures."""
    with db.transaction() as tx:
        tx.run(q.CLEAR, address=address[:ADDRESS_MAX])
