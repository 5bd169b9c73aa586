"""The durable inbox: record, claim, finish, fail and reschedule events.

Delivery is at-least-once: a worker claims a due event under a lease; if it dies, the lease
expires and another worker claims the event again. Every flow is therefore idempotent.
Two rules keep work single: a repeated dedupe key returns the event already recorded, and an
object (``object_key``) is never claimed while another event for it is running under a live
lease; a new event for an object that already has one *pending* is coalesced into it.

Attempt series (CONTRACT §6): an event's tries belong to a series with a random ``series_key``, from
which its Zuora ``Idempotency-Key``s are made (``Event.idempotency_key``). The inbox's own retries
(backoff after a TransientError, a lease that expired) stay in the series, so a lost answer is
replayed from Zuora's store; every other retry goes through ``start_new_series`` (new key), since
Zuora replays a stored *failure* for 24 h too. Each try is one row of ``attempts``, inserted in
the claim's transaction and completed with its outcome (``lost`` when its lease was taken over).
"""
from __future__ import annotations

import hashlib
import json
import random
import secrets
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from integration.domain.errors import RETRIES_EXHAUSTED
from integration.store.db import Database, from_db_time, to_db_time, utcnow

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Event:
    id: str
    source: str
    type: str
    object_type: str
    object_id: str
    object_key: str
    payload: dict
    status: str
    attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    error_code: str | None
    last_error: str | None
    waiting_for: str | None
    first_failed_at: datetime | None
    last_failed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    series: int = 1
    series_key: str = ""

    def idempotency_key(self, *parts: str) -> str:
        """The Zuora ``Idempotency-Key`` of this event's current attempt series for one write."""
        return idempotency_key(*parts, self.series_key)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Event":
        data = dict(row)
        for name in ("next_attempt_at", "lease_expires_at", "first_failed_at", "last_failed_at",
                     "created_at", "updated_at"):
            data[name] = from_db_time(data[name])
        data["payload"] = json.loads(data["payload"])
        del data["dedupe_key"]
        return cls(**data)


@dataclass(frozen=True)
class Recorded:
    """What ``record`` did: ``created`` False means a duplicate or a coalesced repeat."""

    event_id: str
    created: bool
    coalesced: bool = False


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: the n-th retry waits uniform(0, min(cap, base·2ⁿ⁻¹)),
    unless the remote said how long to wait: then that is the wait (never longer than asked)."""

    base_seconds: float = 5.0
    cap_seconds: float = 3600.0

    def delay(self, attempt: int, rng: random.Random, hint: float | None = None) -> float:
        if hint is not None:
            return hint
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(attempt - 1, 0))
        return rng.uniform(0, ceiling)


@dataclass(frozen=True)
class Attempt:
    """One try of an event, as ``GET /admin/events/<id>`` shows it in ``history``."""

    series: int
    attempt: int
    worker_id: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None       # None while it runs; done | rescheduled | failed | lost
    code: str | None
    message: str | None


class LeaseLost(Exception):
    """The event is no longer this worker's (its lease expired and someone else took it)."""


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def new_series_key() -> str:
    """A fresh random token for one attempt series (never derived from the object: two events of one
    object, or two series of one event, must never share a Zuora Idempotency-Key)."""
    return secrets.token_hex(8)


IDEMPOTENCY_KEY_MAX = 255


def idempotency_key(*parts: str) -> str:
    """``part:part:…`` as a Zuora ``Idempotency-Key``; an object ID that would make the key too long or
    not printable ASCII is replaced by its SHA-256 digest (the series token keeps the key unique)."""
    key = ":".join(parts)
    if len(key) <= IDEMPOTENCY_KEY_MAX and all(" " < ch <= "~" for ch in key):
        return key
    return ":".join(p if len(p) <= 40 and all(" " < ch <= "~" for ch in p)
                    else hashlib.sha256(p.encode("utf-8", "surrogatepass")).hexdigest()[:32] for p in parts)


ATTEMPT_MESSAGE_MAX = 500
"""Remote messages kept per attempt (the clients have already scrubbed secrets from them)."""

_NEW_SERIES_SET = ("status = 'pending', next_attempt_at = :now, attempts = 0, series = series + 1,"
                   " series_key = lower(hex(randomblob(8))), waiting_for = NULL, lease_owner = NULL,"
                   " lease_expires_at = NULL, updated_at = :now")


def start_new_series(conn: sqlite3.Connection, where: str, params: dict) -> int:
    """Inside the caller's transaction: put the events matching ``where`` back in the queue, due at
    ``params["now"]``, as a NEW attempt series (next series number, fresh random key, full attempt
    budget). Returns how many. Every retry that is not the inbox's own backoff goes through here:
    an operator's, the scheduled one, a MISSING_MAPPING release, and reconciliation.

    ``error_code``, ``last_error`` and the failure times stay as history until the event succeeds.
    """
    return conn.execute(f"UPDATE events SET {_NEW_SERIES_SET} WHERE {where}", params).rowcount


class Inbox:
    def __init__(self, db: Database, *, clock: Clock = utcnow, lease_seconds: float = 60.0,
                 max_attempts: int = 10, backoff: Backoff = Backoff(), rng: random.Random | None = None):
        self.db = db
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.rng = rng or random.Random()

    # -- intake --------------------------------------------------------------------------------

    def record(self, *, source: str, type: str, object_type: str, object_id: str, object_key: str,
               dedupe_key: str | None = None, payload: dict | None = None, coalesce: bool = True,
               conn: sqlite3.Connection | None = None) -> Recorded:
        """Store an event durably (or find the one it repeats). Raises StoreUnavailable."""
        if conn is None:
            with self.db.transaction() as tx:
                return self.record(source=source, type=type, object_type=object_type, object_id=object_id,
                                   object_key=object_key, dedupe_key=dedupe_key, payload=payload,
                                   coalesce=coalesce, conn=tx)
        event_id = new_event_id()
        dedupe_key = dedupe_key or f"{source}:generated:{event_id}"
        existing = conn.execute("SELECT id FROM events WHERE dedupe_key = ?", (dedupe_key,)).fetchone()
        if existing:
            return Recorded(existing["id"], created=False)
        if coalesce:
            pending = conn.execute(
                "SELECT id FROM events WHERE object_key = ? AND type = ? AND status = 'pending' "
                "ORDER BY created_at LIMIT 1", (object_key, type)).fetchone()
            if pending:
                return Recorded(pending["id"], created=False, coalesced=True)
        now = to_db_time(self.clock())
        conn.execute(
            "INSERT INTO events (id, source, type, object_type, object_id, object_key, dedupe_key, payload,"
            " next_attempt_at, created_at, updated_at, series, series_key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
            (event_id, source, type, object_type, object_id, object_key, dedupe_key,
             json.dumps(payload or {}), now, now, now, new_series_key()))
        return Recorded(event_id, created=True)

    def active_event_id(self, conn: sqlite3.Connection, object_key: str) -> str | None:
        """The pending or running event of an object, if any (oldest first)."""
        row = conn.execute("SELECT id FROM events WHERE object_key = ? AND status IN ('pending', 'running')"
                           " ORDER BY created_at LIMIT 1", (object_key,)).fetchone()
        return row["id"] if row else None

    def record_unless_active(self, conn: sqlite3.Connection, **event: Any) -> tuple[str, bool]:
        """Inside the caller's transaction: record the event unless its object already has one
        pending or running. Returns (event ID, created): the new event, or the active one.

        An on-demand sync must not start a second sync of an object already in hand; checking and
        inserting under one ``BEGIN IMMEDIATE`` makes that true even with concurrent requests.
        """
        active = self.active_event_id(conn, event["object_key"])
        if active is not None:
            return active, False
        recorded = self.record(conn=conn, coalesce=False, **event)
        return recorded.event_id, recorded.created

    # -- work ------------------------------------------------------------------------------------

    def claim(self, worker_id: str, limit: int = 1) -> list[Event]:
        """Take up to ``limit`` due events under a lease: pending ones whose time has come, and
        running ones whose lease has expired (their worker died). Never two of one object."""
        now = self.clock()
        now_text, lease_until = to_db_time(now), to_db_time(now + timedelta(seconds=self.lease_seconds))
        params = {"now": now_text, "scan": limit * 20}
        with self.db.transaction() as conn:
            # Two index-ordered scans rather than one OR: with a large backlog, one query over both
            # statuses made SQLite sort every due event on every claim (30 ms at 50k, bench/).
            rows = conn.execute(
                "SELECT id, object_key FROM events WHERE status = 'running' AND lease_expires_at <= :now"
                " ORDER BY lease_expires_at LIMIT :scan", params).fetchall()
            rows += conn.execute(
                """
                SELECT e.id, e.object_key FROM events e
                WHERE e.status = 'pending' AND e.next_attempt_at <= :now
                  AND NOT EXISTS (SELECT 1 FROM events r
                                  WHERE r.object_key = e.object_key AND r.status = 'running'
                                    AND r.lease_expires_at > :now)
                ORDER BY e.next_attempt_at, e.created_at
                LIMIT :scan
                """, params).fetchall()
            chosen, keys = [], set()
            for row in rows:
                if row["object_key"] not in keys:
                    keys.add(row["object_key"])
                    chosen.append(row["id"])
                if len(chosen) == limit:
                    break
            claimed = []
            for event_id in chosen:
                # An attempt still open here is one whose worker died (its lease ran out): lost.
                conn.execute("UPDATE attempts SET ended_at = ?, outcome = 'lost' WHERE event_id = ?"
                             " AND ended_at IS NULL", (now_text, event_id))
                row = conn.execute(
                    "UPDATE events SET status = 'running', attempts = attempts + 1, lease_owner = ?,"
                    " lease_expires_at = ?, updated_at = ? WHERE id = ? RETURNING *",
                    (worker_id, lease_until, now_text, event_id)).fetchone()
                conn.execute("INSERT INTO attempts (event_id, series, attempt, worker_id, started_at)"
                             " VALUES (?, ?, ?, ?, ?)", (event_id, row["series"], row["attempts"], worker_id, now_text))
                claimed.append(Event.from_row(row))
            return claimed

    def next_due_in(self) -> float | None:
        """Seconds until the earliest pending event or expiring lease is due (None: nothing waits)."""
        row = self.db.query(
            "SELECT MIN(t) AS due FROM ("
            " SELECT MIN(next_attempt_at) AS t FROM events WHERE status = 'pending'"
            " UNION ALL SELECT MIN(lease_expires_at) FROM events WHERE status = 'running')")[0]
        if row["due"] is None:
            return None
        return max((from_db_time(row["due"]) - self.clock()).total_seconds(), 0.0)

    def heartbeat(self, event_id: str, worker_id: str) -> bool:
        """Extend the lease of an event in hand; False if it is no longer ours."""
        now = self.clock()
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE events SET lease_expires_at = ? WHERE id = ? AND status = 'running' AND lease_owner = ?",
                (to_db_time(now + timedelta(seconds=self.lease_seconds)), event_id, worker_id))
            return cur.rowcount == 1

    def _own(self, conn: sqlite3.Connection, event_id: str, worker_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is None or row["status"] != "running" or row["lease_owner"] != worker_id:
            raise LeaseLost(event_id)
        return row

    def _close_attempt(self, conn: sqlite3.Connection, row: sqlite3.Row, at: str, outcome: str,
                       code: str | None = None, message: str | None = None) -> None:
        """Complete the attempt this worker is on (the event row ``row`` it owns) with its outcome,
        ended ``at`` (the same stored time the event row gets)."""
        conn.execute("UPDATE attempts SET ended_at = ?, outcome = ?, code = ?, message = ? WHERE event_id = ?"
                     " AND series = ? AND attempt = ? AND ended_at IS NULL",
                     (at, outcome, code,
                      message[:ATTEMPT_MESSAGE_MAX] if message is not None else None,
                      row["id"], row["series"], row["attempts"]))

    def finish(self, event_id: str, worker_id: str, conn: sqlite3.Connection) -> None:
        """Mark done, inside the caller's transaction (which also writes the mappings)."""
        row = self._own(conn, event_id, worker_id)
        now = to_db_time(self.clock())
        self._close_attempt(conn, row, now, "done")
        conn.execute(
            "UPDATE events SET status = 'done', lease_owner = NULL, lease_expires_at = NULL, error_code = NULL,"
            " last_error = NULL, waiting_for = NULL, updated_at = ? WHERE id = ?", (now, event_id))

    def fail(self, event_id: str, worker_id: str, code: str, message: str,
             waiting_for: str | None = None) -> None:
        """Put the event on the failure list with a CONTRACT §5 code (no automatic retry)."""
        now = to_db_time(self.clock())
        with self.db.transaction() as conn:
            row = self._own(conn, event_id, worker_id)
            self._close_attempt(conn, row, now, "failed", code, message)
            conn.execute(
                "UPDATE events SET status = 'failed', error_code = ?, last_error = ?, waiting_for = ?,"
                " lease_owner = NULL, lease_expires_at = NULL, first_failed_at = COALESCE(first_failed_at, ?),"
                " last_failed_at = ?, updated_at = ? WHERE id = ?",
                (code, message[:2000], waiting_for, now, now, now, event_id))
            if waiting_for:
                # The account may have been linked while this event ran: don't wait for a link
                # that already exists.
                self._release_if_linked(conn, waiting_for)

    def reschedule(self, event_id: str, worker_id: str, message: str,
                   retry_after: float | None = None) -> bool:
        """Transient trouble: try again after backoff, in the same attempt series (same key). Once
        attempts run out, fail it with RETRIES_EXHAUSTED, keeping the last remote reason, and
        return False; the scheduled retry picks those up in a new series."""
        now = self.clock()
        with self.db.transaction() as conn:
            row = self._own(conn, event_id, worker_id)
            if row["attempts"] >= self.max_attempts:
                stamp = to_db_time(now)
                self._close_attempt(conn, row, stamp, "failed", RETRIES_EXHAUSTED, message)
                conn.execute(
                    "UPDATE events SET status = 'failed', error_code = ?, last_error = ?, lease_owner = NULL,"
                    " lease_expires_at = NULL, first_failed_at = COALESCE(first_failed_at, ?), last_failed_at = ?,"
                    " updated_at = ? WHERE id = ?",
                    (RETRIES_EXHAUSTED, f"gave up after {row['attempts']} attempts: {message}"[:2000],
                     stamp, stamp, stamp, event_id))
                return False
            delay = self.backoff.delay(row["attempts"], self.rng, retry_after)
            self._close_attempt(conn, row, to_db_time(now), "rescheduled", None, message)
            conn.execute(
                "UPDATE events SET status = 'pending', next_attempt_at = ?, last_error = ?, lease_owner = NULL,"
                " lease_expires_at = NULL, updated_at = ? WHERE id = ?",
                (to_db_time(now + timedelta(seconds=delay)), message[:2000], to_db_time(now), event_id))
            return True

    def release(self, event_id: str, worker_id: str) -> None:
        """Hand an unstarted or interrupted event back at once (shutdown), without counting the attempt."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM attempts WHERE ended_at IS NULL AND event_id = (SELECT id FROM events"
                         " WHERE id = ? AND status = 'running' AND lease_owner = ?)", (event_id, worker_id))
            conn.execute(
                "UPDATE events SET status = 'pending', attempts = MAX(attempts - 1, 0), lease_owner = NULL,"
                " lease_expires_at = NULL, next_attempt_at = ?, updated_at = ?"
                " WHERE id = ? AND status = 'running' AND lease_owner = ?",
                (to_db_time(self.clock()), to_db_time(self.clock()), event_id, worker_id))

    # -- MISSING_MAPPING --------------------------------------------------------------------------

    def release_waiting(self, conn: sqlite3.Connection, waiting_for: str) -> int:
        """Make every event waiting for ``waiting_for`` (e.g. an account link) due now, in a new
        attempt series. Called in the transaction that writes the mapping, so no wake-up is ever missed."""
        return start_new_series(conn, "status = 'failed' AND waiting_for = :waiting_for",
                                {"now": to_db_time(self.clock()), "waiting_for": waiting_for})

    def restart(self, conn: sqlite3.Connection, event_ids: list[str]) -> int:
        """Inside the caller's transaction: put these failed events back in the queue in a new attempt
        series, due now (for callers that pick events by ID, e.g. reconciliation)."""
        return start_new_series(conn, "status = 'failed' AND id IN (SELECT value FROM json_each(:ids))",
                                {"now": to_db_time(self.clock()), "ids": json.dumps(list(event_ids))})

    def _release_if_linked(self, conn: sqlite3.Connection, waiting_for: str) -> None:
        kind, _, value = waiting_for.partition(":")
        column = {"billing-account": "billing_id", "zuora-account": "zuora_id"}.get(kind)
        if column and conn.execute(f"SELECT 1 FROM id_mappings WHERE type = 'account' AND {column} = ?",
                                   (value,)).fetchone():
            self.release_waiting(conn, waiting_for)

    # -- reading ---------------------------------------------------------------------------------

    def get(self, event_id: str) -> Event | None:
        rows = self.db.query("SELECT * FROM events WHERE id = ?", (event_id,))
        return Event.from_row(rows[0]) if rows else None

    def history(self, event_id: str) -> list[Attempt]:
        """Every attempt of an event, oldest first, across all its series."""
        rows = self.db.query("SELECT series, attempt, worker_id, started_at, ended_at, outcome, code, message"
                             " FROM attempts WHERE event_id = ? ORDER BY id", (event_id,))
        return [Attempt(**{**dict(r), "started_at": from_db_time(r["started_at"]),
                           "ended_at": from_db_time(r["ended_at"])}) for r in rows]

    def depth(self) -> dict[str, Any]:
        """Pending/running counts and the age of the oldest due event, for /metrics."""
        now = self.clock()
        counts = {row["status"]: row["n"] for row in self.db.query(
            "SELECT status, COUNT(*) AS n FROM events WHERE status IN ('pending', 'running') GROUP BY status")}
        oldest = self.db.query("SELECT MIN(next_attempt_at) AS t FROM events WHERE status = 'pending'"
                               " AND next_attempt_at <= ?", (to_db_time(now),))[0]["t"]
        age = (now - from_db_time(oldest)).total_seconds() if oldest else 0.0
        return {"pending": counts.get("pending", 0), "running": counts.get("running", 0),
                "oldest_due_age_seconds": age}
