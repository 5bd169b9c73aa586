"""Voids (CONTRACT §12): a billing invoice voided after it reached Zuora is undone there, once.

Who runs it: ``invoice.voided``; ``invoice.updated`` (nothing to do unless the invoice is ``VOID`` now);
reconciliation's ``invoice.voided`` for a mapped invoice that became void; and the invoice flow, when the
invoice it was asked to push is void. Every one of them carries the invoice's object key
(``billing-invoice:{id}``), so the inbox never runs two of them — nor a void and a push — at once.

Fetch on notify: the event only points at the invoice; the billing platform must say ``VOID`` now.

- **Never reached Zuora** (no mapping, and no Zuora invoice naming it in ``ZUORA_INVOICE_LINK_FIELD``): the
  void is recorded (``unpushed_voids``); the invoice flow reads that record before anything else, so the
  invoice is never pushed afterwards, whatever event of it comes later.
- **Its Zuora twin** (by mapping, or found by the link field when an earlier push lost its answer) is read
  first (Object Query: ``status``, ``reversed``), then: a ``Draft`` is cancelled
  (``PUT /v1/invoices/{id}/cancel``); a ``Posted`` one reversed (``PUT /v1/invoices/{id}/reverse``, which
  makes a credit memo applied to it), ``memoDate`` and ``applyEffectiveDate`` today (UTC), or the invoice
  date when that is later, since Zuora refuses a memo dated before its invoice; one already ``Canceled`` or
  ``reversed`` (an earlier attempt, or a person) is recorded as it is, not undone again; one still being
  generated, posted or cancelled is tried again later; any other status is ZUORA_REJECTED naming it.
- **Zuora's refusal** (a payment or credit memo applied, a split invoice, a negative one) is ZUORA_REJECTED
  with Zuora's reason, on the failure list, not retried. Before that, the twin is read again: PUT carries no
  Idempotency-Key, so a repeat of a cancel or reversal whose answer was lost is refused; it finds the twin
  already undone, and records that instead.
- **Recorded** on the invoice's mapping row (``reversed_at``, ``cancelled``/``reversed``, the credit memo's
  ID) in the transaction that finishes the event, by a conditional UPDATE (``integration.store.voids``):
  once, however many voids of the invoice run.
- **Usage already sent** for the invoice stays in Zuora (Zuora has no safe automatic undo for billed usage):
  its records are listed as a warning in the event's history, for an operator to decide.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from integration.domain.errors import MalformedResponse, TransientError, ZuoraRejected
from integration.domain.times import utcnow
from integration.flows.invoice_items import truncate
from integration.flows.invoices import fetch_invoice
from integration.flows.outcome import Outcome, Write
from integration.services import Services
from integration.store import mappings, voids
from integration.store.inbox import Event
from integration.zuora.model import ZuoraInvoice, ZuoraUndo

log = logging.getLogger("integration.flows.voids")

DRAFT, POSTED, CANCELED = "Draft", "Posted", "Canceled"
IN_PROGRESS = frozenset({"CancelInProgress", "Generating", "PendingForTax", "PostInProgress"})
"""Zuora statuses on the way to another: the void waits for them (TransientError), it does not fail."""
COMMENT_MAX = 255
USAGE_LISTED = 10
"""Usage record IDs named in the warning; the count names them all."""


@dataclass(frozen=True)
class Undone:
    """What happened to the Zuora twin: ``cancelled`` or ``reversed`` (with its credit memo), and how."""

    reversal: str
    credit_memo_id: str | None
    how: str


class VoidFlow:
    """``invoice.voided`` / ``invoice.updated`` → the Zuora twin cancelled or reversed, recorded once."""

    def __init__(self, services: Services, *, clock: Callable[[], datetime] = utcnow):
        self.db = services.db
        self.zuora = services.zuora
        self.billing = services.billing
        self.link_field = services.config.zuora_invoice_link_field
        self.clock = clock

    def handle(self, event: Event) -> Outcome:
        invoice_id = event.object_id
        invoice = fetch_invoice(self.billing, invoice_id)
        if not invoice.is_void:
            return Outcome(summary=f"invoice {invoice_id} is not void (status {invoice.status}); nothing to undo")
        return self.void(event)

    def void(self, event: Event) -> Outcome:
        """Undo the Zuora twin of a billing invoice the caller found ``VOID``, or record that it has none."""
        invoice_id = event.object_id
        writes: list[Write] = []
        mapping = mappings.find(self.db, "invoice", billing_id=invoice_id)
        if mapping is not None and mapping.reversed_at is not None:
            return Outcome(summary=f"invoice {invoice_id} voided; its Zuora twin "
                                   f"{mapping.zuora_number or mapping.zuora_id} was {mapping.reversal} before")
        if mapping is not None:
            zuora_id, number = mapping.zuora_id, mapping.zuora_number or mapping.zuora_id
        else:
            if voids.unpushed_void(self.db, invoice_id) is not None:
                return Outcome(summary=f"invoice {invoice_id} was voided before it reached Zuora; recorded before")
            twin = self._lost_twin(invoice_id)
            if twin is None:  # (usage of a usage-only invoice may have been sent all the same)
                return Outcome(writes=[voids.record_unpushed(invoice_id, event.id)],
                               summary=f"invoice {invoice_id} voided before it reached Zuora as an invoice; "
                                       f"recorded, it will never be pushed", warnings=self._usage_left(invoice_id))
            zuora_id, number = twin.id, twin.number or twin.id
            writes.append(mappings.link("invoice", zuora_id=zuora_id, zuora_number=twin.number,
                                        billing_id=invoice_id, origin="billing"))
        undone = self._undo(invoice_id, zuora_id, number)
        writes.append(voids.record_reversal(invoice_id, undone.reversal, undone.credit_memo_id))
        return Outcome(writes=writes, summary=f"invoice {invoice_id} voided; Zuora invoice {number} {undone.how}",
                       warnings=self._usage_left(invoice_id))

    # -- Zuora -----------------------------------------------------------------------------------------

    def _lost_twin(self, invoice_id: str) -> ZuoraInvoice | None:
        """A Zuora invoice an earlier push created but never recorded (its answer was lost)."""
        found = self.zuora.find_invoices(self.link_field, invoice_id)
        return found[0] if found else None

    def _read(self, zuora_id: str, number: str) -> ZuoraInvoice:
        twin = self.zuora.query_invoice(zuora_id)
        if twin is None:
            raise ZuoraRejected(f"Zuora invoice {number} (the twin of a voided billing invoice) is not found")
        return twin

    def _undo(self, invoice_id: str, zuora_id: str, number: str) -> Undone:
        twin = self._read(zuora_id, number)
        done = self._already_undone(twin, zuora_id)
        if done is not None:
            return done
        status = twin.status
        try:
            if status == DRAFT:
                self._wait_unless_done(self.zuora.cancel_invoice(zuora_id), "cancel")
                return Undone("cancelled", None, "cancelled (it was a Draft)")
            if status == POSTED:
                memo_date = max(self.clock().date(), self._invoice_date(twin, number))
                answer = self.zuora.reverse_invoice(
                    zuora_id, memo_date=memo_date, apply_effective_date=memo_date,
                    comment=truncate(f"Billing invoice {invoice_id} voided", COMMENT_MAX))
                memo_id = self._wait_unless_done(answer, "reversal") or self._reversal_memo(zuora_id)
                return Undone("reversed", memo_id, f"reversed into credit memo {memo_id} dated {memo_date}")
        except ZuoraRejected as refused:
            done = self._already_undone(self._read(zuora_id, number), zuora_id)
            if done is not None:  # a repeat of an undo that took effect, whose answer was lost
                return done
            raise ZuoraRejected(f"Zuora refused to undo invoice {number} of voided billing invoice {invoice_id}: "
                                f"{refused.remote_message}", refused.remote_code, refused.process_id,
                                refused.http_status) from refused
        if status in IN_PROGRESS:
            raise TransientError(f"Zuora invoice {number} is {status}; undoing it once that is over")
        raise ZuoraRejected(f"Zuora invoice {number} is {status}: only a Draft can be cancelled and only a "
                            f"Posted invoice reversed")

    def _already_undone(self, twin: ZuoraInvoice, zuora_id: str) -> Undone | None:
        if twin.status == CANCELED:
            return Undone("cancelled", None, "was already cancelled")
        if twin.reversed:
            memo_id = self._reversal_memo(zuora_id)
            return Undone("reversed", memo_id, f"was already reversed (credit memo {memo_id or 'not found'})")
        return None

    def _reversal_memo(self, zuora_id: str) -> str | None:
        """The credit memo an earlier reversal made: from the invoice, ``Invoice reversal`` its reason."""
        memos = self.zuora.find_credit_memos(zuora_id)
        ours = [m for m in memos if m.reason_code == "Invoice reversal"] or memos
        return ours[-1].id if ours else None

    @staticmethod
    def _wait_unless_done(answer: ZuoraUndo, what: str) -> str | None:
        """The credit memo ID of a finished reversal (None for a cancel, or a finished job, whose memo is
        looked up); a job still running means the next attempt reads the twin again (``TransientError``)."""
        if answer.credit_memo_id:
            return answer.credit_memo_id
        job_status = answer.job_status
        if answer.job_id and job_status != "Completed":
            raise TransientError(f"Zuora runs the {what} as job {answer.job_id} ({job_status}); checking it later")
        return None

    @staticmethod
    def _invoice_date(twin: ZuoraInvoice, number: str) -> date:
        if twin.invoice_date is None:
            raise MalformedResponse(f"Zuora invoice {number} has no readable invoiceDate")
        return twin.invoice_date

    # -- usage -------------------------------------------------------------------------------------------

    def _usage_left(self, invoice_id: str) -> list[str]:
        sent = mappings.children(self.db, "usage", invoice_id)
        if not sent:
            return []
        ids = ", ".join(m.zuora_id for m in sent[:USAGE_LISTED]) + (", …" if len(sent) > USAGE_LISTED else "")
        return [f"{len(sent)} usage record(s) already sent to Zuora for this invoice are left in place (Zuora has "
                f"no safe automatic undo for billed usage): {ids}"]
