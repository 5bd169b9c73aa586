"""What the store keeps about voided billing invoices (CONTRACT §12).

A void that reached Zuora is recorded on the invoice's mapping row (``reversed_at``, ``reversal`` =
``cancelled`` or ``reversed``, ``credit_memo_id``) by a conditional UPDATE: whatever runs it twice (a
replayed webhook, ``invoice.voided`` and ``invoice.updated`` both arriving, reconciliation, a worker
whose lease was taken over) records it once. A void of an invoice that never reached Zuora goes to
``unpushed_voids``, which the invoice flow reads before it pushes anything: such an invoice is never
pushed afterwards. Both writes run in the transaction that finishes the void's event.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from integration.domain.errors import TransientError
from integration.domain.times import utcnow
from integration.store.db import Database
from integration.store.queries import voids as q
from integration.store.tx import Tx

log = logging.getLogger("integration.store.voids")

REVERSALS = ("cancelled", "reversed")


@dataclass(frozen=True)
class UnpushedVoid:
    billing_id: str
    event_id: str | None
    voided_at: str


def unpushed_void(db_or_tx: Database | Tx, billing_id: str) -> UnpushedVoid | None:
    """The record of the invoice's void before it reached Zuora, if there is one."""
    if isinstance(db_or_tx, Tx):
        row = db_or_tx.one(q.UNPUSHED, billing_id=billing_id)
    else:
        with db_or_tx.read() as tx:
            row = tx.one(q.UNPUSHED, billing_id=billing_id)
    return UnpushedVoid(**row) if row is not None else None


def record_reversal(billing_id: str, reversal: str, credit_memo_id: str | None):
    """A write (for ``Outcome.writes``) recording that the invoice's Zuora twin was cancelled or reversed.
    Meeting a row that already says so changes nothing (logged: a second undo should not have run)."""
    if reversal not in REVERSALS:
        raise ValueError(f"reversal must be one of {REVERSALS}")

    def write(tx: Tx) -> None:
        changed = tx.run(q.RECORD_REVERSAL, billing_id=billing_id, reversal=reversal, credit_memo_id=credit_memo_id,
                         now=utcnow())
        if changed == 0:
            log.warning("the invoice's reversal was recorded already; kept the first record",
                        extra={"invoice_id": billing_id})

    return write


def record_unpushed(billing_id: str, event_id: str):
    """A write recording a void of an invoice that never reached Zuora. If a push recorded the invoice's
    mapping meanwhile, nothing is recorded and the event is tried again (``TransientError``), to reverse it."""

    def write(tx: Tx) -> None:
        inserted = tx.one(q.RECORD_UNPUSHED, billing_id=billing_id, event_id=event_id, now=utcnow())
        if inserted is None and unpushed_void(tx, billing_id) is None:
            raise TransientError(f"billing invoice {billing_id} reached Zuora while its void ran; reversing it "
                                 f"on the next attempt")

    return write
