"""Reconciliation's state in the store (CONTRACT §9): the watermark, the slot claim, and the queueing
of one ``reconcile`` event per object that the service has not seen, or per mapped invoice that became
void (§12) and whose Zuora twin is not undone yet.

An object is left alone when it has a mapping (already synced) or any event that is pending, running,
failed (it is on the failure list, whose retries own it) or done (a flow already decided about it, e.g.
an invoice with nothing to push). Everything else is recorded with ``record_unless_active`` in one
transaction per object, so two passes racing (or a webhook arriving at the same moment) queue one event.
"""
from __future__ import annotations

from datetime import datetime

from integration import metrics
from integration.domain.times import from_db_time, to_db_time
from integration.store import mappings, scheduler
from integration.store.db import Database
from integration.store.inbox import Inbox
from integration.store.queries import reconcile as q

NAME = "default"
SOURCE = "reconcile"
KINDS = {
    # kind -> (event type, object_type, object_key prefix, mapping type, look-up side)
    "zuora_account": ("account.callout", "account", "zuora-account", "account", "zuora"),
    "billing_account": ("account.created", "account", "billing-account", "account", "billing"),
    "billing_invoice": ("invoice.finalized", "invoice", "billing-invoice", "invoice", "billing"),
    "billing_invoice_void": ("invoice.voided", "invoice", "billing-invoice", "invoice", "billing"),
}
VOIDS = frozenset({"billing_invoice_void"})
"""Kinds queued for what the store *has* (a mapping not yet undone), not for what it lacks."""


def watermark(db: Database) -> datetime:
    """Where the next pass starts reading: the last completed pass's start, or, before the first one,
    the moment the store was created (what existed before is ``integration backfill``'s job)."""
    with db.read() as tx:
        stored = tx.scalar(q.WATERMARK, name=NAME)
        created = stored or tx.scalar(q.STORE_CREATED)
    moment = from_db_time(created)
    if moment is None:
        raise RuntimeError("the store is not migrated")
    return moment


def advance(db: Database, to: datetime, now: datetime) -> None:
    """After a completed pass: the watermark moves to ``to``, never backwards."""
    with db.transaction() as tx:
        tx.run(q.ADVANCE, name=NAME, watermark=to_db_time(to), now=to_db_time(now))


def claim(db: Database, slot: str, worker_id: str, now: datetime) -> bool:
    """Take a reconciliation slot (``scheduled_runs`` primary key): True for exactly one process."""
    with db.transaction() as tx:
        return scheduler.claim_slot(tx, slot, worker_id, now)


def queue(inbox: Inbox, kind: str, object_id: str, *, payload: dict | None = None) -> str | None:
    """Queue a ``reconcile`` event for one object unless it is mapped or has an event (a void: unless
    its invoice is unmapped, undone already, failed or has an event pending or running); the new
    event's ID, or None when the object needs nothing."""
    event_type, object_type, prefix, mapping_type, side = KINDS[kind]
    object_key = f"{prefix}:{object_id}"
    with inbox.db.transaction() as tx:
        if kind in VOIDS:  # a mapped invoice, not undone, not on the failure list
            if tx.scalar(q.NOT_REVERSED, billing_id=object_id) is None or \
                    tx.scalar(q.FAILED, object_key=object_key) is not None:
                return None
        else:
            found = (mappings.find(tx, mapping_type, zuora_key=object_id) if side == "zuora"
                     else mappings.find(tx, mapping_type, billing_id=object_id))
            if found is not None or tx.scalar(q.HANDLED, object_key=object_key) is not None:
                return None
        event_id, created = inbox.record_unless_active(
            tx, source=SOURCE, type=event_type, object_type=object_type, object_id=object_id,
            object_key=object_key, payload=payload or {"found_by": "reconcile"})
    if created:
        metrics.EVENTS_RECEIVED.labels(source=SOURCE, type=event_type).inc()
        return event_id
    return None
