"""Reconciliation's state in the store (CONTRACT §9, §12): the watermark, the slot claim, the baseline,
and the queueing of one ``reconcile`` event per object that the service has not seen, or per mapped
invoice that became void (§12) and whose Zuora twin is not undone yet.

The baseline is what existed before the service, which reconciliation must never create a twin for
(``integration backfill`` onboards it, matching twins first). Togai's accounts carry no timestamps, so it
is decided from what the service saw rather than from a missing field: the first pass records the ID
of every object it lists (``record_baseline``) and marks the baseline taken (``finish_baseline``) only
once it has listed them all, so a first pass that dies midway is simply taken again by the next.

An object is left alone when it is in the baseline, has a mapping (already synced) or any event that is
pending, running, failed (it is on the failure list, whose retries own it) or done (a flow already decided
about it, e.g. an invoice with nothing to push). Everything else is recorded with ``record_unless_active``
in one transaction per object, so two passes racing (or a webhook arriving at the same moment) queue one
event.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from integration import metrics
from integration.domain import work
from integration.store import mappings, scheduler
from integration.store.db import Database
from integration.store.inbox import Inbox
from integration.store.queries import reconcile as q

NAME = "default"
BASELINE = "baseline"  # the reconcile_state row that says the baseline is complete, and when it was taken
SOURCE = "reconcile"
KINDS = {
    # what a pass lists -> the kind of work it queues (integration.domain.work); its object type is the
    # mapping type looked up, on the side whose ID its object key carries
    "zuora_account": work.ACCOUNT_CALLOUT,
    "billing_account": work.ACCOUNT_CREATED,
    "billing_invoice": work.INVOICE_FINALIZED,
    "billing_invoice_void": work.INVOICE_VOIDED,
}
VOIDS = frozenset({"billing_invoice_void"})
"""Kinds queued for what the store *has* (a mapping not yet undone), not for what it lacks."""
BASELINE_KINDS = tuple(kind for kind in KINDS if kind not in VOIDS)
"""Kinds the baseline records: a void needs a mapping the service made, so none existed before it."""


def watermark(db: Database) -> datetime:
    """Where the next pass starts reading: the last completed pass's start, or, before the first one,
    the moment the store was created (what existed before is ``integration backfill``'s job)."""
    with db.read() as tx:
        stored = tx.scalar(q.WATERMARK, name=NAME)
        created = stored or tx.scalar(q.STORE_CREATED)
    moment: datetime | None = created
    if moment is None:
        raise RuntimeError("the store is not migrated")
    return moment


def advance(db: Database, to: datetime, now: datetime) -> None:
    """After a completed pass: the watermark moves to ``to``, never backwards."""
    with db.transaction() as tx:
        tx.run(q.ADVANCE, name=NAME, watermark=to, now=now)


def claim(db: Database, slot: str, worker_id: str, now: datetime) -> bool:
    """Take a reconciliation slot (``scheduled_runs`` primary key): True for exactly one process."""
    with db.transaction() as tx:
        return scheduler.claim_slot(tx, slot, worker_id, now)


def baseline_taken(db: Database) -> datetime | None:
    """When the first complete pass took the baseline (its start), or None while none has: the next pass
    must take it, and queue nothing."""
    with db.read() as tx:
        taken: datetime | None = tx.scalar(q.BASELINE_TAKEN, name=BASELINE)
        return taken


def record_baseline(db: Database, kind: str, object_ids: Iterable[str], now: datetime) -> int:
    """Record objects of ``kind`` as existing before the service, in one transaction; the number new
    to the baseline. Recording one twice (a retaken or racing first pass) is a no-op: the key decides."""
    if kind not in BASELINE_KINDS:
        raise ValueError(f"not a kind the baseline records: {kind!r}")
    params = [{"kind": kind, "object_id": object_id, "now": now} for object_id in dict.fromkeys(object_ids)]
    if not params:
        return 0
    with db.transaction() as tx:
        return tx.run_many(q.RECORD_BASELINE, params)


def finish_baseline(db: Database, taken_at: datetime, now: datetime) -> None:
    """Mark the baseline complete, as taken at ``taken_at``; a baseline already complete stays as it was."""
    with db.transaction() as tx:
        tx.run(q.FINISH_BASELINE, name=BASELINE, taken_at=taken_at, now=now)


def baseline_counts(db: Database) -> dict[str, int]:
    """How many objects of each kind the baseline holds (every kind named, zero where none)."""
    with db.read() as tx:
        found = {row["kind"]: int(row["n"]) for row in tx.rows(q.BASELINE_COUNTS)}
    return {kind: found.get(kind, 0) for kind in BASELINE_KINDS}


def queue(inbox: Inbox, kind: str, object_id: str, *, payload: dict | None = None) -> str | None:
    """Queue a ``reconcile`` event for one object unless it is in the baseline, mapped or has an event (a
    void: unless its invoice is unmapped, undone already, failed or has an event pending or running); the
    new event's ID, or None when the object needs nothing. A void needs a mapping, so the baseline (what
    existed before the service) never hides one: the service pushed that invoice itself."""
    queued = KINDS[kind]
    object_key = queued.object_key(object_id)
    with inbox.db.transaction() as tx:
        if kind in VOIDS:  # a mapped invoice, not undone, not on the failure list
            if tx.scalar(q.NOT_REVERSED, billing_id=object_id) is None or \
                    tx.scalar(q.FAILED, object_key=object_key) is not None:
                return None
        else:
            if tx.scalar(q.IN_BASELINE, kind=kind, object_id=object_id) is not None:
                return None
            found = (mappings.find(tx, queued.object_type, zuora_key=object_id) if queued.key.side == "zuora"
                     else mappings.find(tx, queued.object_type, billing_id=object_id))
            if found is not None or tx.scalar(q.HANDLED, object_key=object_key) is not None:
                return None
        event_id, created = inbox.record_unless_active(
            tx, source=SOURCE, **queued.event(object_id), payload=payload or {"found_by": "reconcile"})
    if created:
        metrics.EVENTS_RECEIVED.labels(source=SOURCE, type=queued.type).inc()
        return event_id
    return None
