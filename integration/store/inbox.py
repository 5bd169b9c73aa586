"""The durable inbox: record, claim, finish, fail and reschedule events.

Delivery is at-least-once: a worker claims a due event under a lease; if it dies, the lease
expires and another worker claims the event again. Every flow is therefore idempotent.
Two rules keep work single: a repeated dedupe key returns the event already recorded, and an
object (``object_key``) is never claimed while another event for it is running under a live
lease; a new event for an object that already has one *pending* (not yet claimed) is coalesced
into it. Both rules are kept by unique keys (``dedupe_key``; one coalescing event per object and
type), not by a select-then-insert that only one writer at a time would make safe.

A sender's delivery ID (``record(..., remember_for=...)``) is remembered on its own, in
``webhook_deliveries``, for at least that sender's replay window: a delivery coalesced into a pending
event leaves no event of its own, so without that row the same delivery sent again after the event
ran would create and run a new one. Its primary key decides between two copies arriving at once.

The inbox's own retries (backoff after a TransientError, a lease that expired) stay in the event's
attempt series, so a lost answer is replayed from Zuora's store; every other retry goes through
``events.start_new_series`` (a new key), since Zuora replays a stored *failure* for 24 h too. Each
try is one row of ``attempts``, inserted in the claim's transaction and completed with its outcome
(``lost`` when its lease was taken over).
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from integration.domain import work
from integration.domain.backoff import Backoff
from integration.domain.errors import RETRIES_EXHAUSTED
from integration.domain.times import utcnow
from integration.store.db import Database
from integration.store.events import (
    Attempt,
    Event,
    LeaseLost,
    Recorded,
    new_event_id,
    new_series_key,
    start_new_series,
)
from integration.store.queries import inbox as q
from integration.store.queries import mappings as mq
from integration.store.tx import IntegrityError, Tx

__all__ = ["Attempt", "Backoff", "Event", "Inbox", "LeaseLost", "Recorded"]

Clock = Callable[[], datetime]

ATTEMPT_MESSAGE_MAX = 500
"""Remote messages kept per attempt (the clients have already scrubbed secrets from them)."""
SCAN_WIDEST = 20
"""Candidates per wanted event a claim looks at, at most, before it answers "nothing to take"."""


class Inbox:
    def __init__(self, db: Database, *, clock: Clock = utcnow, lease_seconds: float = 60.0,
                 max_attempts: int = 10, backoff: Backoff = Backoff(), rng: random.Random | None = None):
        self.db = db
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.rng = rng or random.Random()  # noqa: S311 - retry jitter, not a secret

    # -- intake --------------------------------------------------------------------------------

    def record(self, *, source: str, type: str, object_type: str, object_id: str, object_key: str,
               dedupe_key: str | None = None, payload: dict | None = None, coalesce: bool | None = None,
               remember_for: timedelta | None = None, conn: Tx | None = None) -> Recorded:
        """Store an event durably (or find the one it repeats or joins). Raises StoreUnavailable.

        ``coalesce``: None (the usual) means what the event's kind declares (``integration.domain.work``).

        ``remember_for``: ``dedupe_key`` is a sender's delivery ID, remembered for at least that long
        however the delivery ends (a new event, a repeat, or coalesced into a pending one), so that
        the same delivery sent again within it is a repeat that creates no work."""
        if conn is None:
            with self.db.transaction() as tx:
                return self.record(source=source, type=type, object_type=object_type, object_id=object_id,
                                   object_key=object_key, dedupe_key=dedupe_key, payload=payload,
                                   coalesce=coalesce, remember_for=remember_for, conn=tx)
        event_id = new_event_id()
        now = self.clock()
        if remember_for is not None:
            if dedupe_key is None:
                raise ValueError("remember_for needs the delivery ID as dedupe_key")
            seen = self._remember_delivery(conn, dedupe_key, event_id, now, now + remember_for)
            if seen is not None:
                return Recorded(seen, created=False)
        recorded = self._insert_or_join(conn, event_id, now, source=source, type=type, object_type=object_type,
                                        object_id=object_id, object_key=object_key,
                                        dedupe_key=dedupe_key or f"{source}:generated:{event_id}",
                                        payload=payload,
                                        coalesce=work.coalesces(type) if coalesce is None else coalesce)
        if remember_for is not None and recorded.event_id != event_id:
            conn.run(q.POINT_DELIVERY, delivery_key=dedupe_key, event_id=recorded.event_id)
        return recorded

    @staticmethod
    def _remember_delivery(conn: Tx, delivery_key: str, event_id: str, now: datetime,
                           forget_after: datetime) -> str | None:
        """Remember a delivery ID for ``event_id``; None when it is new, else the event its earlier
        copy recorded. On PostgreSQL a racing copy's insert waits for ours to commit, then reads it."""
        for _ in range(3):  # a row can be forgotten between the insert and the read
            if conn.one(q.REMEMBER_DELIVERY, delivery_key=delivery_key, event_id=event_id, now=now,
                        forget_after=forget_after) is not None:
                return None
            seen = conn.one(q.DELIVERY, delivery_key=delivery_key)
            if seen is not None:
                return str(seen["event_id"])
        raise RuntimeError(f"could not remember or find the delivery {delivery_key!r}")

    @staticmethod
    def _insert_or_join(conn: Tx, event_id: str, now: datetime, *, source: str, type: str, object_type: str,
                        object_id: str, object_key: str, dedupe_key: str, payload: dict | None,
                        coalesce: bool) -> Recorded:
        """Insert the event, or find the one with its dedupe key, or the pending one it joins."""
        for _ in range(3):  # a conflicting row can leave between the insert and the read (other engines)
            inserted = conn.one(q.INSERT, id=event_id, source=source, type=type, object_type=object_type,
                                object_id=object_id, object_key=object_key, dedupe_key=dedupe_key,
                                payload=json.dumps(payload or {}), now=now,
                                series_key=new_series_key(), coalescing=1 if coalesce else 0)
            if inserted is not None:
                conn.announce()
                return Recorded(event_id, created=True)
            existing = conn.one(q.BY_DEDUPE_KEY, dedupe_key=dedupe_key)
            if existing is not None:
                return Recorded(existing["id"], created=False)
            pending = conn.one(q.COALESCING, object_key=object_key, type=type)
            if pending is not None:
                return Recorded(pending["id"], created=False, coalesced=True)
        raise RuntimeError(f"could not record or find the event {dedupe_key!r}")

    def forget_deliveries(self) -> int:
        """Delete the delivery IDs whose replay window has passed (the worker's housekeeping); returns
        how many. Safe from any number of processes at once: each deletes what is left."""
        with self.db.transaction() as tx:
            return tx.run(q.FORGET_DELIVERIES, now=self.clock())

    def active_event_id(self, conn: Tx, object_key: str) -> str | None:
        """The pending or running event of an object, if any (oldest first)."""
        row = conn.one(q.ACTIVE, object_key=object_key)
        return row["id"] if row else None

    def record_unless_active(self, conn: Tx, **event: Any) -> tuple[str, bool]:
        """Inside the caller's transaction: record the event unless its object already has one
        pending or running. Returns (event ID, created): the new event, or the active one.

        An on-demand sync must not start a second sync of an object already in hand. The check
        finds one already there; two requests racing past it both insert a *coalescing* event, and
        the unique index on those (one per object and type) lets only one land, on any engine: the
        other gets the winner's ID back.
        """
        if not work.coalesces(event["type"]):
            raise ValueError(f"{event['type']} events do not coalesce; record them with record()")
        active = self.active_event_id(conn, event["object_key"])
        if active is not None:
            return active, False
        recorded = self.record(conn=conn, coalesce=True, **event)
        return recorded.event_id, recorded.created

    # -- work ------------------------------------------------------------------------------------

    def claim(self, worker_id: str, limit: int = 1) -> list[Event]:
        """Take up to ``limit`` due events under a lease: pending ones whose time has come, and
        running ones whose lease has expired (their worker died). Never two of one object.

        On PostgreSQL the candidates are locked ``FOR UPDATE SKIP LOCKED`` (another claimer's rows
        are passed over, not waited for). On both engines the partial unique index
        ``events_one_running`` forbids a second running event of an object across every process:
        a take that meets it (another host took a sibling event of that object a moment ago) rolls
        back to its savepoint and the claim goes on to the next object instead of failing.

        The scan starts at ``limit`` candidates and widens (×4, up to ``limit × SCAN_WIDEST``) only
        when every candidate was passed over: each row a PostgreSQL claim locks is a row it writes,
        so the usual claim locks the one event it takes, not twenty.
        """
        now = self.clock()
        params = {"now": now, "lease_until": now + timedelta(seconds=self.lease_seconds),
                  "worker_id": worker_id}
        with self.db.transaction() as tx:
            claimed: list[Event] = []
            seen: set[str] = set()
            scan = limit
            while True:
                rows = tx.rows(q.EXPIRED_LEASES[tx.dialect], now=params["now"], scan=scan)
                widen = len(rows) == scan
                due = tx.rows(q.DUE[tx.dialect], now=params["now"], scan=scan)
                widen = widen or len(due) == scan
                for row in rows + due:
                    if row["object_key"] in seen:
                        continue
                    seen.add(row["object_key"])
                    taken = self._take(tx, row["id"], params)
                    if taken is None:  # someone else took it first, or another event of the object runs
                        continue
                    claimed.append(Event.from_row(taken))
                    if len(claimed) == limit:
                        return claimed
                if not widen or scan >= limit * SCAN_WIDEST:
                    return claimed
                scan = min(scan * 4, limit * SCAN_WIDEST)

    @staticmethod
    def _take(tx: Tx, event_id: str, params: dict[str, Any]) -> dict[str, Any] | None:
        try:
            with tx.savepoint():
                taken = tx.one(q.TAKE, id=event_id, **params)
                if taken is None:
                    return None
                tx.run(q.LOSE_OPEN_ATTEMPTS, id=event_id, now=params["now"])
                tx.run(q.OPEN_ATTEMPT, id=event_id, series=taken["series"], attempt=taken["attempts"],
                       worker_id=params["worker_id"], now=params["now"])
                return taken
        except IntegrityError:
            return None

    def next_due_in(self) -> float | None:
        """Seconds until the earliest pending event or expiring lease is due (None: nothing waits)."""
        with self.db.read() as tx:
            due = tx.scalar(q.NEXT_DUE)
        if due is None:
            return None
        return max((due - self.clock()).total_seconds(), 0.0)

    def heartbeat(self, event_id: str, worker_id: str) -> bool:
        """Extend the lease of an event in hand; False if it is no longer ours."""
        until = self.clock() + timedelta(seconds=self.lease_seconds)
        with self.db.transaction() as tx:
            return tx.run(q.HEARTBEAT, id=event_id, worker_id=worker_id, lease_until=until) == 1

    def _own(self, tx: Tx, event_id: str, worker_id: str) -> dict[str, Any]:
        row = tx.one(q.GET, id=event_id)
        if row is None or row["status"] != "running" or row["lease_owner"] != worker_id:
            raise LeaseLost(event_id)
        return row

    def _close_attempt(self, tx: Tx, row: dict[str, Any], at: datetime, outcome: str,
                       code: str | None = None, message: str | None = None) -> None:
        """Complete the attempt this worker is on (the event row ``row`` it owns) with its outcome,
        ended ``at`` (the same stored time the event row gets)."""
        tx.run(q.CLOSE_ATTEMPT, now=at, outcome=outcome, code=code,
               message=message[:ATTEMPT_MESSAGE_MAX] if message is not None else None,
               id=row["id"], series=row["series"], attempt=row["attempts"])

    def finish(self, event_id: str, worker_id: str, conn: Tx, *, warnings: Sequence[str] = ()) -> None:
        """Mark done, inside the caller's transaction (which also writes the mappings). ``warnings`` (what
        the flow wants an operator to see) become the done attempt's message in the event's history."""
        row = self._own(conn, event_id, worker_id)
        now = self.clock()
        message = "warning: " + "; ".join(warnings) if warnings else None
        self._close_attempt(conn, row, now, "done", None, message)
        conn.run(q.FINISH, id=event_id, now=now)

    def fail(self, event_id: str, worker_id: str, code: str, message: str,
             waiting_for: str | None = None) -> None:
        """Put the event on the failure list with a CONTRACT §5 code (no automatic retry)."""
        now = self.clock()
        with self.db.transaction() as tx:
            row = self._own(tx, event_id, worker_id)
            self._close_attempt(tx, row, now, "failed", code, message)
            tx.run(q.FAIL, id=event_id, code=code, message=message[:2000], waiting_for=waiting_for, now=now)
            if waiting_for:
                # The account may have been linked while this event ran: don't wait for a link
                # that already exists.
                self._release_if_linked(tx, waiting_for)

    def reschedule(self, event_id: str, worker_id: str, message: str,
                   retry_after: float | None = None) -> bool:
        """Transient trouble: try again after backoff, in the same attempt series (same key). Once
        attempts run out, fail it with RETRIES_EXHAUSTED, keeping the last remote reason, and
        return False; the scheduled retry picks those up in a new series. The attempts and the backoff
        are the kind's retry policy's (integration.domain.work), this inbox's where it names none."""
        now = self.clock()
        with self.db.transaction() as tx:
            row = self._own(tx, event_id, worker_id)
            policy = work.retry_policy(row["type"])
            if row["attempts"] >= (policy.max_attempts or self.max_attempts):
                self._close_attempt(tx, row, now, "failed", RETRIES_EXHAUSTED, message)
                tx.run(q.FAIL, id=event_id, code=RETRIES_EXHAUSTED, waiting_for=None, now=now,
                       message=f"gave up after {row['attempts']} attempts: {message}"[:2000])
                return False
            delay = (policy.backoff or self.backoff).delay(row["attempts"] - 1, self.rng, retry_after)
            self._close_attempt(tx, row, now, "rescheduled", None, message)
            tx.run(q.RESCHEDULE, id=event_id, due=now + timedelta(seconds=delay),
                   message=message[:2000], now=now)
            return True

    def release(self, event_id: str, worker_id: str) -> None:
        """Hand an unstarted or interrupted event back at once (shutdown), without counting the attempt."""
        with self.db.transaction() as tx:
            tx.run(q.DROP_OPEN_ATTEMPT, id=event_id, worker_id=worker_id)
            if tx.run(q.RELEASE, id=event_id, worker_id=worker_id, now=self.clock()):
                tx.announce()

    # -- MISSING_MAPPING --------------------------------------------------------------------------

    def release_waiting(self, conn: Tx, waiting_for: str) -> int:
        """Make every event waiting for ``waiting_for`` (e.g. an account link) due now, in a new
        attempt series. Called in the transaction that writes the mapping, so no wake-up is ever missed."""
        ids = [row["id"] for row in conn.rows(q.WAITING_FOR, waiting_for=waiting_for)]
        return start_new_series(conn, ids, self.clock())

    def restart(self, conn: Tx, event_ids: list[str]) -> int:
        """Inside the caller's transaction: put these failed events back in the queue in a new attempt
        series, due now (for callers that pick events by ID, e.g. reconciliation)."""
        return start_new_series(conn, event_ids, self.clock())

    def _release_if_linked(self, tx: Tx, waiting_for: str) -> None:
        kind, _, value = waiting_for.partition(":")
        keys = {work.BILLING_ACCOUNT.prefix: {"billing_id": value, "zuora_id": None},
                work.ZUORA_ACCOUNT.prefix: {"billing_id": None, "zuora_id": value}}.get(kind)
        if keys and tx.one(mq.ACCOUNT_LINKED, **keys):
            self.release_waiting(tx, waiting_for)

    # -- reading ---------------------------------------------------------------------------------

    def get(self, event_id: str) -> Event | None:
        with self.db.read() as tx:
            row = tx.one(q.GET, id=event_id)
        return Event.from_row(row) if row else None

    def find_by_dedupe_key(self, dedupe_key: str) -> Event | None:
        """The event recorded under a dedupe key, if any."""
        with self.db.read() as tx:
            row = tx.one(q.BY_DEDUPE_KEY, dedupe_key=dedupe_key)
        return Event.from_row(row) if row else None

    def history(self, event_id: str) -> list[Attempt]:
        """Every attempt of an event, oldest first, across all its series."""
        with self.db.read() as tx:
            return [Attempt.from_row(row) for row in tx.rows(q.HISTORY, id=event_id)]

    def busy(self, within: float = 1.0) -> int:
        """Events running, or pending and due within ``within`` seconds (the local stack's "settled")."""
        with self.db.read() as tx:
            return tx.scalar(q.BUSY, soon=self.clock() + timedelta(seconds=within))

    def status_counts(self) -> dict[str, int]:
        """How many events are in each status (demo, benchmarks, tests)."""
        with self.db.read() as tx:
            return {row["status"]: row["n"] for row in tx.rows(q.STATUS_COUNTS)}

    def depth(self) -> dict[str, Any]:
        """Pending/running counts and the age of the oldest due event, for /metrics."""
        now = self.clock()
        with self.db.read() as tx:
            counts = {row["status"]: row["n"] for row in tx.rows(q.OPEN_COUNTS)}
            oldest = tx.scalar(q.OLDEST_DUE, now=now)
        age = (now - oldest).total_seconds() if oldest else 0.0
        return {"pending": counts.get("pending", 0), "running": counts.get("running", 0),
                "oldest_due_age_seconds": age}
