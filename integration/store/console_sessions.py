"""Console sessions kept in the store (CONTRACT §8: a logout button ends the session).

WHY on the server: a session that lives only in a signed cookie cannot be ended — a copy taken before
sign-out stays valid until it expires. Here the cookie carries only a random session ID; a session is
live while its row is, so signing out (the row is deleted), rotating ``ADMIN_TOKEN`` (the row's token
fingerprint no longer matches) and expiry (``expires_at``) end it in every process on every host at
once. The ID is kept as its SHA-256 only: someone who reads the store cannot sign in with what they read.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from integration.store.db import Database
from integration.store.queries import console_sessions as q


@dataclass(frozen=True)
class ConsoleSession:
    token_fingerprint: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(db: Database, session_id: str, fingerprint: str, now: datetime, expires_at: datetime) -> None:
    """Record a new session; first forget the expired ones and those of another token."""
    with db.transaction() as tx:
        tx.run(q.PRUNE, now=now, fingerprint=fingerprint)
        tx.run(q.START, id_hash=_hash(session_id), fingerprint=fingerprint, now=now,
               expires_at=expires_at)


def live(db: Database, session_id: str, now: datetime) -> ConsoleSession | None:
    """The session, when it exists and has not expired at ``now``."""
    with db.read() as tx:
        row = tx.one(q.LIVE, id_hash=_hash(session_id), now=now)
    if row is None:
        return None
    return ConsoleSession(**row)


def touch(db: Database, session_id: str, now: datetime, expires_at: datetime) -> bool:
    """Mark the session seen at ``now``, now expiring at ``expires_at``; False when it is gone or expired."""
    with db.transaction() as tx:
        return tx.run(q.TOUCH, id_hash=_hash(session_id), now=now, expires_at=expires_at) == 1


def end(db: Database, session_id: str) -> None:
    """End the session everywhere (sign-out, or a session of a rotated token)."""
    with db.transaction() as tx:
        tx.run(q.END, id_hash=_hash(session_id))


def count(db: Database) -> int:
    """Sessions kept (live or not yet pruned): for tests and the shell."""
    with db.read() as tx:
        return int(tx.scalar(q.COUNT))
