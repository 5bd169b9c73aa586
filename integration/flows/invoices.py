"""Flow 3 (CONTRACT §6.3, §12): a finalized billing invoice becomes one Zuora standalone invoice.

The billing invoice is only read, never trusted: its lines are the deepest ``*_RATE_CARD_AMOUNT``
entries of the nested ``revenueInfo`` tree, at any depth and in either spelling (integration.billing.togai.line_items
owns that walk), and its discounts, credits, taxes, true-ups, miscellaneous amounts and the platform's
own rounding are read from the same tree (integration.billing.togai.adjustments); lines and adjustments must
add up, exactly, to ``totalAmount`` before a cent is pushed. Lines of usage-synced meters (those with
settings, integration.store.meters) travel as Zuora usage instead (flows 4/5, integration.flows.usage)
and are left off the invoice, so a meter's revenue is never billed twice, nor dropped: the split is
decided here, once, and handed to the usage flow in its event's payload. The adjustments all go on
the Zuora invoice (integration.flows.invoice_items maps them: discounts as ``discountItems``, the rest
as items of their own), so the Zuora invoice plus the usage equals the billing total to the cent; an
invoice whose lines all travel as usage still gets a Zuora invoice when it carries adjustments.

Exactly once: a mapping row → skip; a Zuora invoice whose ``ZUORA_INVOICE_LINK_FIELD`` names the
billing invoice (Object Query) → link it; otherwise ``POST /v1/invoices`` with that field set and the
``Idempotency-Key`` ``billing-invoice:{id}:{series key}``: a retry inside one attempt series (a crash
after the POST, a lost answer) gets Zuora's stored answer back instead of a second invoice, and a
new series (an operator's or the scheduled retry) gets a new key, so it is not answered with the
stored failure of the last one, and finds by the look-up what an earlier series created. The
mapping and the usage follow-up event (``invoice.usage``, which carries the meters left off the
invoice) are recorded in the transaction that finishes the event.
Once a run has finished, its split stands: a replay never moves a line to the other side because
meter settings changed since.

Money (integration.domain.money): amounts stay ``Decimal`` end to end. Items that fit the currency's
precision (the usual case) go over digit for digit. Sub-cent amounts (3 × 0.333333333333) are rounded
*together* with every other amount on the invoice: the total is rounded half-up once and the cents
spread by largest remainder, so the Zuora invoice equals the billing total (less usage) to the cent,
where Zuora rounding each item alone would drift; the exact amount is kept in the item's description.
The platform's rounding against its own subtotal is a warning in the event's history.

Choices where the contract is silent:
- An invoice with more than 1,000 invoice lines fails as INVALID_DATA (``revenueInfo``) rather
  than being split: one billing invoice ↔ one Zuora invoice keeps the mapping and the customer's
  statement one-to-one, and Togai invoices carry far fewer lines in practice.
- ``VOID`` and ``MERGED`` invoices are not pushed even when finalized (billing a voided invoice is
  worse than not billing it); the event finishes with a summary saying so, like a draft. A ``VOID`` one
  is handed to the void flow (integration.flows.voids, CONTRACT §12), which records it or undoes its
  twin; one whose void was recorded before it reached Zuora is never pushed, not even fetched.
- Dates are the UTC calendar dates of the billing instants; a service end before its start (a
  zero-length period) is clamped to the start.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from integration.billing.amounts import LABELS, Adjustment, Line
from integration.billing.model import BillingInvoice, checked
from integration.billing.port import BillingPlatform
from integration.domain import money, work
from integration.domain.errors import BillingRejected, InvalidData, MissingMapping
from integration.flows.invoice_items import invoice_items, truncate, zuora_total
from integration.flows.outcome import Outcome, Write
from integration.services import Services
from integration.store import mappings, meters, voids
from integration.store.db import Database
from integration.store.inbox import Event
from integration.store.meters import MeterSettings
from integration.store.tx import Tx
from integration.zuora.model import ZuoraInvoice

log = logging.getLogger("integration.flows.invoices")

MAX_INVOICE_ITEMS = 1000
COMMENTS_MAX = 255


# -- reading a billing invoice (the model: integration.billing.model; Togai's reader: billing.togai) ----------

def fetch_invoice(billing: BillingPlatform, invoice_id: str) -> BillingInvoice:
    """The billing invoice as it is now (events are only pointers); a vanished one is refused."""
    invoice = billing.get_invoice(invoice_id)
    if invoice is None:
        raise BillingRejected(f"billing invoice {invoice_id} not found", 404)
    return invoice


def linked_owner(db: Database, invoice: BillingInvoice, invoice_id: str) -> mappings.Mapping:
    """The account mapping of the invoice's owner; MISSING_MAPPING (waiting for that account) if unlinked."""
    owner = checked(invoice.owner_id)
    account = mappings.find(db, "account", billing_id=owner)
    if account is None:
        raise MissingMapping(f"billing account {owner} of invoice {invoice_id} is not linked to a Zuora "
                             f"account yet", waiting_for=work.BILLING_ACCOUNT.key(owner))
    return account


def split_lines(lines: list[Line], synced: dict[str, MeterSettings] | set[str]) -> tuple[list[Line], list[Line]]:
    """(lines for the invoice, lines of usage-synced meters): every line lands in exactly one."""
    on_invoice = [line for line in lines if line.meter_id is None or line.meter_id not in synced]
    as_usage = [line for line in lines if line.meter_id is not None and line.meter_id in synced]
    return on_invoice, as_usage


# -- the Zuora invoice (its items: integration.flows.invoice_items) ------------------------------------

def zuora_invoice_payload(invoice: BillingInvoice, lines: list[Line], *, account_id: str, status: str,
                          currency: str | None, adjustments: list[Adjustment] | tuple[()] = ()) -> dict[str, Any]:
    """The ``POST /v1/invoices`` body for the invoice's non-usage lines and its adjustments."""
    invoice_id = invoice.id
    if len(lines) + len(adjustments) > MAX_INVOICE_ITEMS:
        raise InvalidData("revenueInfo", f"{len(lines)} invoice lines and {len(adjustments)} adjustments; a Zuora "
                                         f"standalone invoice takes at most {MAX_INVOICE_ITEMS:,} items")
    invoice_date = checked(invoice.invoice_date).date()
    payload: dict[str, Any] = {"accountId": account_id, "invoiceDate": invoice_date.isoformat()}
    due = checked(invoice.due_date)
    if due is not None:  # else Zuora derives it from the account's payment term
        due_date = due.date()
        if due_date < invoice_date:
            raise InvalidData("dueDate", f"{due_date} is before the invoiceDate {invoice_date}")
        payload["dueDate"] = due_date.isoformat()
    start, end = checked(invoice.start_date).date(), checked(invoice.service_end)
    payload.update(status=status, comments=truncate(f"Billing invoice {invoice_id}", COMMENTS_MAX),
                   invoiceItems=invoice_items(lines, currency=currency, start=start, end=end,
                                              adjustments=adjustments))
    return payload


# -- the flow ------------------------------------------------------------------------------------------

def usage_dedupe_key(invoice_id: str) -> str:
    """The one ``invoice.usage`` event of an invoice: recorded by the run that decided its split."""
    return work.INVOICE_USAGE.dedupe_key(invoice_id)


class InvoiceFlow:
    """``invoice.finalized`` → a Zuora standalone invoice, and the usage follow-up event."""

    def __init__(self, services: Services, *, on_void: Callable[[Event], Outcome] | None = None):
        self.db = services.db
        self.inbox = services.inbox
        self.zuora = services.zuora
        self.billing = services.billing
        self.status = services.config.zuora_invoice_status
        self.link_field = services.config.zuora_invoice_link_field
        self.on_void = on_void  # integration.flows.voids: an invoice found VOID is a void, whatever the event

    def handle(self, event: Event) -> Outcome:
        invoice_id = event.object_id
        if voids.unpushed_void(self.db, invoice_id) is not None:  # CONTRACT §12: never pushed afterwards
            return Outcome(summary=f"invoice {invoice_id} was voided before it reached Zuora; never pushed")
        invoice = fetch_invoice(self.billing, invoice_id)
        if invoice.is_void and self.on_void is not None:
            return self.on_void(event)
        reason = invoice.why_not_pushed()
        if reason:
            return Outcome(summary=f"invoice {invoice_id} not pushed: {reason}")
        account = linked_owner(self.db, invoice, invoice_id)

        amounts = checked(invoice.amounts)  # lines + adjustments == total, exactly (CONTRACT §12)
        lines = amounts.lines
        earlier = self._earlier_run(invoice_id, lines)
        if earlier:
            return Outcome(summary=earlier)

        synced = meters.settings_for(self.db, {line.meter_id for line in lines if line.meter_id})
        on_invoice, as_usage = split_lines(lines, synced)
        writes: list[Write] = []
        summary = self._push_invoice(event, invoice, on_invoice, amounts.adjustments, account, writes)
        if as_usage:
            used = {line.meter_id for line in as_usage if line.meter_id is not None}  # all of them: split_lines
            writes.append(self._usage_follow_up(invoice_id, {m: synced[m] for m in sorted(used)}))
            summary += f"; usage of {len(used)} meter(s) queued"
        return Outcome(writes=writes, summary=summary, warnings=list(amounts.warnings))

    def _earlier_run(self, invoice_id: str, lines: list[Line]) -> str | None:
        """A summary when a run of this invoice has finished before (None: this run decides).

        Its split stands, whatever the meter settings say now: a meter given settings since was
        billed on the Zuora invoice, one that lost them goes as usage; re-deciding would bill one
        twice or not at all.
        """
        existing = mappings.find(self.db, "invoice", billing_id=invoice_id)
        decided = self._decided_split(invoice_id)
        if existing is None and decided is None:
            return None
        summary = (f"already pushed as Zuora invoice {existing.zuora_number or existing.zuora_id}" if existing
                   else "already done; no invoice lines outside usage-synced meters")
        queued = {line.meter_id for line in split_lines(lines, decided or set())[1]}
        return summary + (f"; usage of {len(queued)} meter(s) queued before" if queued else "")

    def _decided_split(self, invoice_id: str) -> set[str] | None:
        """The meters an earlier, finished run of this invoice left off the Zuora invoice: the usage
        follow-up it recorded carries them (None: no finished run queued usage)."""
        follow_up = self.inbox.find_by_dedupe_key(usage_dedupe_key(invoice_id))
        if follow_up is None:
            return None
        snapshot = follow_up.payload.get("meters")
        return set(snapshot) if isinstance(snapshot, dict) else None

    def _push_invoice(self, event: Event, invoice: BillingInvoice, lines: list[Line], adjustments: list[Adjustment],
                      account: mappings.Mapping, writes: list[Write]) -> str:
        invoice_id = event.object_id
        nothing = "no invoice lines outside usage-synced meters; no Zuora invoice"
        if not lines and not adjustments:
            return nothing
        currency = self._check_currency(invoice, account)
        payload = zuora_invoice_payload(invoice, lines, account_id=account.zuora_id, status=self.status,
                                        currency=currency, adjustments=adjustments)
        items = payload["invoiceItems"]
        if not items:  # only adjustments, each rounding to zero
            return nothing
        if any(item["amount"] != line.value for item, line in zip(items, lines, strict=False)):
            log.info("sub-cent invoice lines allocated to whole cents", extra={"invoice_id": invoice_id})
        earlier = self._created_before(invoice_id)
        if earlier is not None:
            writes.append(mappings.link("invoice", zuora_id=earlier.id, zuora_number=earlier.number,
                                        billing_id=invoice_id, billing_parent_id=None, origin="billing"))
            return (f"Zuora invoice {earlier.number or earlier.id} was created by an earlier "
                    f"attempt; linked, not posted again")
        payload[self.link_field] = invoice_id
        created = self.zuora.create_invoice(payload, idempotency_key=event.idempotency_key(work.BILLING_INVOICE.prefix,
                                                                                           invoice_id))
        writes.append(mappings.link("invoice", zuora_id=created.id, zuora_number=created.number,
                                    billing_id=invoice_id, billing_parent_id=None, origin="billing"))
        total = zuora_total(items)
        return (f"Zuora invoice {created.number} created: {len(items)} item(s), "
                f"{money.plain(total)} {currency or ''}".rstrip() + _adjusted(adjustments))

    def _created_before(self, invoice_id: str) -> ZuoraInvoice | None:
        """The Zuora invoice whose link field names this billing invoice, if one exists: created by an
        earlier attempt series (whose answer was lost) or another event of this invoice. Looked up on
        every push, because a new series carries a new Idempotency-Key and Zuora would post again."""
        found = self.zuora.find_invoices(self.link_field, invoice_id)
        if len(found) > 1:
            log.warning("several Zuora invoices name one billing invoice; linking the first",
                        extra={"invoice_id": invoice_id, "zuora_ids": [row.id for row in found][:10]})
        return found[0] if found else None

    def _check_currency(self, invoice: BillingInvoice, account: mappings.Mapping) -> str | None:
        """The invoice's currency, after checking the Zuora account bills in it: a standalone
        invoice takes the account's currency, so a mismatch would change the money silently."""
        zuora_account = self.zuora.get_account(account.zuora_id)
        zuora_currency = zuora_account.currency
        billing_currency = invoice.currency
        if billing_currency and zuora_currency and billing_currency.upper() != zuora_currency.upper():
            raise InvalidData("invoiceDetails.account.invoiceCurrency",
                              f"the billing invoice is in {billing_currency}, but Zuora account "
                              f"{account.zuora_number or account.zuora_id} bills in {zuora_currency}")
        return billing_currency or zuora_currency

    def _usage_follow_up(self, invoice_id: str, synced: dict[str, MeterSettings]) -> Write:
        """A write that queues ``invoice.usage`` with the meters this run left off the invoice, so the
        usage flow pushes exactly those, whatever happens to the settings in between."""
        snapshot = {meter_id: {"zuora_subscription_number": s.zuora_subscription_number,
                               "zuora_charge_number": s.zuora_charge_number, "uom": s.uom, "mode": s.mode}
                    for meter_id, s in synced.items()}

        def write(conn: Tx) -> None:
            self.inbox.record(source="billing", **work.INVOICE_USAGE.event(invoice_id),
                              dedupe_key=usage_dedupe_key(invoice_id), payload={"meters": snapshot}, conn=conn)

        return write


def _adjusted(adjustments: list[Adjustment]) -> str:
    """The summary's note of what the invoice carried beside its lines (exact billing amounts)."""
    if not adjustments:
        return ""
    return "; adjustments: " + ", ".join(f"{LABELS[a.kind]} {money.plain(a.amount)}" for a in adjustments)
