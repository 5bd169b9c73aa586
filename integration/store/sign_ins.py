"""Sign-in attempts, counted in the store per bucket and window (CONTRACT §8: failed logins are
rate-limited per client address; the same limit guards ``/admin/*``).

WHY the store: every gunicorn worker on every host is a process of its own, so a count in memory would
give a guesser one allowance per process. WHY one upsert that returns the count: counting failures and
then checking "under the limit?" in two steps lets parallel guesses all read the same count before any
records its failure (40 at once got 10-12 checks against a limit of 5). Here each attempt is counted
*before* its credential is checked, and the statement that counts it returns its number in the window,
so attempt n of a window knows it is n whatever else runs at once; a caller checks the credential only
when n is within the limit. A success gives its attempt back (``refund``): only wrong tokens count,
and an operator's success never resets what a guesser sharing the address has used up. Rows of windows
that ran out are deleted when a new window starts somewhere, so the table holds about one row per bucket
active in the last window.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from integration.store.db import Database
from integration.store.queries import sign_ins as q
from integration.store.tx import StoreUnavailable

BUCKET_MAX = 200
"""Characters of a bucket name kept (an address may come from a forwarded header)."""


@dataclass(frozen=True)
class Attempt:
    """One counted attempt: its number in its bucket's window, and when that window started."""

    number: int
    window_start: datetime


def count_attempt(db: Database, bucket: str, now: datetime, window: timedelta) -> Attempt:
    """Count one attempt of ``bucket`` at ``now`` (a window lasts ``window``), atomically; its number."""
    expired = now - window
    with db.transaction() as tx:
        row = tx.one(q.COUNT_ATTEMPT, bucket=bucket[:BUCKET_MAX], now=now, expired=expired)
    if row is None:
        raise RuntimeError("the sign-in count returned no row")  # a bug: an upsert always returns one
    attempt = Attempt(number=int(row["attempts"]), window_start=row["window_start"])
    if attempt.number == 1:
        _prune(db, expired)
    return attempt


def _prune(db: Database, expired: datetime) -> None:
    """Forget windows that ran out. Housekeeping in a transaction of its own, so it never holds up or
    fails the attempt that was just counted."""
    try:
        with db.transaction() as tx:
            tx.run(q.PRUNE, expired=expired)
    except StoreUnavailable:
        pass  # a busy store: the next new window prunes


def refund(db: Database, bucket: str, attempt: Attempt) -> None:
    """A right token: ``attempt`` no longer counts (when its window is still the bucket's)."""
    with db.transaction() as tx:
        tx.run(q.REFUND, bucket=bucket[:BUCKET_MAX], window_start=attempt.window_start)


def buckets(db: Database) -> list[dict[str, Any]]:
    """Every bucket kept (bucket, window_start, attempts): for tests and the shell."""
    with db.read() as tx:
        return tx.rows(q.BUCKETS)
