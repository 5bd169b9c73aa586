"""Flow 3 (CONTRACT §6.3): a finalized billing invoice becomes one Zuora standalone invoice.

The billing invoice is only read, never trusted: its lines are the deepest ``*_RATE_CARD_AMOUNT``
entries of the nested ``revenueInfo`` tree, and they must add up, exactly, to ``totalAmount``
before a cent is pushed. Lines of usage-synced meters (those with settings, integration.meters)
travel as Zuora usage instead (flows 4/5, integration.flows.usage) and are left off the invoice,
so a meter's revenue is never billed twice, nor dropped: the split is decided here, once, and
handed to the usage flow in its event's payload.

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

Money (integration.money): amounts stay ``Decimal`` end to end. Items that fit the currency's
precision (the usual case) go over digit for digit and sum exactly to ``totalAmount`` less the
usage-synced lines. Sub-cent lines (3 × 0.333333333333) are rounded *together*: the total is
rounded half-up once and the cents spread by largest remainder, so the Zuora invoice equals the
billing total to the cent, where Zuora rounding each item alone would drift; the exact amount is
kept in the item's description.

Choices where the contract is silent:
- An invoice with more than 1,000 invoice lines fails as INVALID_DATA (``revenueInfo``) rather
  than being split: one billing invoice ↔ one Zuora invoice keeps the mapping and the customer's
  statement one-to-one, and Togai invoices carry far fewer lines in practice.
- ``VOID`` and ``MERGED`` invoices are not pushed even when finalized (billing a voided invoice is
  worse than not billing it); the event finishes with a summary saying so, like a draft.
- Dates are the UTC calendar dates of the billing instants; a service end before its start (a
  zero-length period) is clamped to the start.
- Item ``quantity``/``unitPrice`` are not sent (Zuora would re-derive or check the amount from
  them); the quantity and unit price go into the item's description instead.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Callable

from .. import mappings, meters, money
from ..errors import BillingRejected, InvalidData, MissingMapping
from ..inbox import Event
from ..meters import MeterSettings
from ..services import Services
from ..worker import Outcome

log = logging.getLogger("integration.flows.invoices")

PUSHED_STATUSES = frozenset({"DUE", "PAID", "PARTIALLY_PAID"})
NEVER_PUSHED_STATUSES = frozenset({"VOID", "MERGED"})
LINE_SUFFIX = "_RATE_CARD_AMOUNT"
MAX_INVOICE_ITEMS = 1000
CHARGE_NAME_MAX = 130
ITEM_DESCRIPTION_MAX = 500
COMMENTS_MAX = 255
MAX_TREE_DEPTH = 32
ELLIPSIS = "…"


# -- reading a billing invoice ------------------------------------------------------------------------

@dataclass(frozen=True)
class Line:
    """One revenue line of a billing invoice (a ``*_RATE_CARD_AMOUNT`` leaf of ``revenueInfo``)."""

    path: str                         # where it sits, for error messages
    type: str
    description: str
    value: Decimal                    # the amount
    quantity: Decimal | None
    value_per_quantity: Decimal | None
    meter_id: str | None              # metadata.usageMeterId (usage rate cards)
    units: str | None


def invoice_lines(invoice: dict) -> list[Line]:
    """Every revenue line, in document order. A ``*_RATE_CARD_AMOUNT`` node counts as a line when
    no node below it is one (slab breakdowns below a rate card stay part of it)."""
    root = invoice.get("revenueInfo")
    if root is None:
        return []
    if isinstance(root, dict):
        return _lines_below(root, "revenueInfo", 0)
    if isinstance(root, list):
        return [line for i, node in enumerate(root) for line in _lines_below(node, f"revenueInfo[{i}]", 0)]
    raise InvalidData("revenueInfo", "must be a line item or a list of line items")


def _lines_below(node: Any, path: str, depth: int) -> list[Line]:
    if not isinstance(node, dict):
        raise InvalidData(path, "must be a line item object")
    if depth > MAX_TREE_DEPTH:
        raise InvalidData(path, f"line items nested deeper than {MAX_TREE_DEPTH} levels")
    children = node.get("lineItems") or []
    if not isinstance(children, list):
        raise InvalidData(f"{path}.lineItems", "must be a list")
    found = [line for i, child in enumerate(children)
             for line in _lines_below(child, f"{path}.lineItems[{i}]", depth + 1)]
    kind = node.get("type")
    if found or not isinstance(kind, str) or not kind.endswith(LINE_SUFFIX):
        return found
    return [_line(node, path, kind)]


def _line(node: dict, path: str, kind: str) -> Line:
    metadata = node.get("metadata") if isinstance(node.get("metadata"), dict) else {}
    meter_id = metadata.get("usageMeterId")
    if meter_id is not None and (not isinstance(meter_id, str) or not meter_id.strip()):
        raise InvalidData(f"{path}.metadata.usageMeterId", "must be a non-empty string")
    description = node.get("description")
    units = node.get("units")
    return Line(path=path, type=kind,
                description=description.strip() if isinstance(description, str) else "",
                value=amount(node, "value", path, required=True),
                quantity=amount(node, "quantity", path),
                value_per_quantity=amount(node, "valuePerQuantity", path),
                meter_id=meter_id, units=units if isinstance(units, str) and units.strip() else None)


def amount(node: dict, key: str, path: str, *, required: bool = False) -> Decimal | None:
    """An exact, bounded number from the billing payload; INVALID_DATA naming the field otherwise."""
    raw = node.get(key)
    if raw is None:
        if required:
            raise InvalidData(f"{path}.{key}", "is missing")
        return None
    value = money.to_decimal(raw)
    if value is None or not money.in_bounds(value):
        raise InvalidData(f"{path}.{key}", "must be an exact number below 10^15 with at most "
                                           f"{money.MAX_PLACES} decimal places")
    return value


def billing_date(invoice: dict, key: str) -> date:
    """The UTC calendar date of one of the invoice's instants (ISO-8601 date or date-time)."""
    raw = invoice.get(key)
    if not isinstance(raw, str) or len(raw) > 40:
        raise InvalidData(key, "must be an ISO-8601 date or date-time")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidData(key, "must be an ISO-8601 date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).date()


def required_id(invoice: dict, key: str) -> str:
    value = invoice.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise InvalidData(key, "must be a non-empty string of at most 255 characters")
    return value


def fetch_invoice(billing, invoice_id: str) -> dict:
    """The billing invoice as it is now (events are only pointers); a vanished one is refused."""
    invoice = billing.get_invoice(invoice_id)
    if invoice is None:
        raise BillingRejected(f"billing invoice {invoice_id} not found", 404)
    return invoice


def linked_owner(db, invoice: dict, invoice_id: str) -> mappings.Mapping:
    """The account mapping of the invoice's owner; MISSING_MAPPING (waiting for that account) if unlinked."""
    owner = required_id(invoice, "ownerId")
    account = mappings.find(db, "account", billing_id=owner)
    if account is None:
        raise MissingMapping(f"billing account {owner} of invoice {invoice_id} is not linked to a Zuora "
                             f"account yet", waiting_for=f"billing-account:{owner}")
    return account


def why_not_pushed(invoice: dict) -> str | None:
    """None when the invoice is final (CONTRACT §6.3), else the reason it is left alone."""
    status = invoice.get("status")
    if status in NEVER_PUSHED_STATUSES:
        return f"status {status}"
    if invoice.get("finalizingStatus") == "FINALIZED" or status in PUSHED_STATUSES:
        return None
    return f"not finalized (status {status}, finalizingStatus {invoice.get('finalizingStatus')})"


def invoice_currency(invoice: dict) -> str | None:
    details = invoice.get("invoiceDetails")
    account = details.get("account") if isinstance(details, dict) else None
    currency = account.get("invoiceCurrency") if isinstance(account, dict) else None
    return currency if isinstance(currency, str) and len(currency) == 3 and currency.isalpha() else None


def check_adds_up(invoice: dict, lines: list[Line]) -> Decimal:
    """``totalAmount``, after checking that the lines sum to it exactly."""
    total = amount(invoice, "totalAmount", "invoice", required=True)
    assert total is not None
    lines_sum = money.exact_sum(line.value for line in lines)
    if lines_sum != total:
        raise InvalidData("totalAmount", f"the invoice's {len(lines)} rate-card lines sum to "
                                         f"{money.plain(lines_sum)}, not to its totalAmount {money.plain(total)}")
    return total


def split_lines(lines: list[Line], synced: dict[str, MeterSettings] | set[str]) -> tuple[list[Line], list[Line]]:
    """(lines for the invoice, lines of usage-synced meters): every line lands in exactly one."""
    on_invoice = [line for line in lines if line.meter_id is None or line.meter_id not in synced]
    as_usage = [line for line in lines if line.meter_id is not None and line.meter_id in synced]
    return on_invoice, as_usage


# -- the Zuora invoice ---------------------------------------------------------------------------------

def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters on a word boundary, marked with "…" when cut."""
    if len(text) <= limit:
        return text
    head = text[:limit - len(ELLIPSIS)]
    cut = head.rstrip()
    space = cut.rfind(" ")
    if space >= (limit * 2) // 3:  # a word boundary not too far back; else cut mid-word
        cut = cut[:space].rstrip(" ,;:-–—")
    return cut + ELLIPSIS


def invoice_items(lines: list[Line], *, currency: str | None, start: date, end: date) -> list[dict]:
    """One Zuora invoice item per line, amounts exact (or cent-allocated, see module docstring)."""
    places = money.minor_units(currency)
    amounts = money.allocate([line.value for line in lines], places)
    items = []
    for line, item_amount in zip(lines, amounts):
        full_name = line.description or _humanise(line.type)
        item = {"amount": item_amount, "chargeName": truncate(full_name, CHARGE_NAME_MAX),
                "serviceStartDate": start.isoformat(), "serviceEndDate": max(start, end).isoformat()}
        description = _item_description(line, full_name, item_amount)
        if description:
            item["description"] = description
        items.append(item)
    return items


def _item_description(line: Line, full_name: str, item_amount: Decimal) -> str:
    parts = []
    if len(full_name) > CHARGE_NAME_MAX:
        parts.append(full_name)
    if line.quantity is not None and line.value_per_quantity is not None:
        parts.append(f"{money.plain(line.quantity)} × {money.plain(line.value_per_quantity)}")
    if item_amount != line.value:
        parts.append(f"exact amount {money.plain(line.value)}")
    return truncate("; ".join(parts), ITEM_DESCRIPTION_MAX)


def _humanise(kind: str) -> str:
    return kind.replace("_", " ").title()


def zuora_invoice_payload(invoice: dict, lines: list[Line], *, account_id: str, status: str,
                          currency: str | None) -> dict:
    """The ``POST /v1/invoices`` body for the invoice's non-usage lines."""
    invoice_id = required_id(invoice, "id")
    if len(lines) > MAX_INVOICE_ITEMS:
        raise InvalidData("revenueInfo", f"{len(lines)} invoice lines; a Zuora standalone invoice takes at "
                                         f"most {MAX_INVOICE_ITEMS:,} items")
    invoice_date = billing_date(invoice, "invoiceDate")
    payload: dict[str, Any] = {"accountId": account_id, "invoiceDate": invoice_date.isoformat()}
    if invoice.get("dueDate") is not None:  # else Zuora derives it from the account's payment term
        due_date = billing_date(invoice, "dueDate")
        if due_date < invoice_date:
            raise InvalidData("dueDate", f"{due_date} is before the invoiceDate {invoice_date}")
        payload["dueDate"] = due_date.isoformat()
    start, end = billing_date(invoice, "startDate"), billing_date(invoice, "endDateInclusive")
    payload.update(status=status, comments=truncate(f"Billing invoice {invoice_id}", COMMENTS_MAX),
                   invoiceItems=invoice_items(lines, currency=currency, start=start, end=end))
    return payload


# -- the flow ------------------------------------------------------------------------------------------

def usage_dedupe_key(invoice_id: str) -> str:
    """The one ``invoice.usage`` event of an invoice: recorded by the run that decided its split."""
    return f"invoice-usage:{invoice_id}"


class InvoiceFlow:
    """``invoice.finalized`` → a Zuora standalone invoice, and the usage follow-up event."""

    def __init__(self, services: Services):
        self.db = services.db
        self.inbox = services.inbox
        self.zuora = services.zuora
        self.billing = services.billing
        self.status = services.config.zuora_invoice_status
        self.link_field = services.config.zuora_invoice_link_field

    def handle(self, event: Event) -> Outcome:
        invoice_id = event.object_id
        invoice = fetch_invoice(self.billing, invoice_id)
        reason = why_not_pushed(invoice)
        if reason:
            return Outcome(summary=f"invoice {invoice_id} not pushed: {reason}")
        account = linked_owner(self.db, invoice, invoice_id)

        lines = invoice_lines(invoice)
        check_adds_up(invoice, lines)
        earlier = self._earlier_run(invoice_id, lines)
        if earlier:
            return Outcome(summary=earlier)

        synced = meters.settings_for(self.db, {line.meter_id for line in lines if line.meter_id})
        on_invoice, as_usage = split_lines(lines, synced)
        writes: list[Callable] = []
        summary = self._push_invoice(event, invoice, on_invoice, account, writes)
        if as_usage:
            used = {line.meter_id for line in as_usage}
            writes.append(self._usage_follow_up(invoice_id, {m: synced[m] for m in sorted(used)}))
            summary += f"; usage of {len(used)} meter(s) queued"
        return Outcome(writes=writes, summary=summary)

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
        rows = self.db.query("SELECT payload FROM events WHERE dedupe_key = ?", (usage_dedupe_key(invoice_id),))
        if not rows:
            return None
        snapshot = json.loads(rows[0]["payload"]).get("meters")
        return set(snapshot) if isinstance(snapshot, dict) else None

    def _push_invoice(self, event: Event, invoice: dict, lines: list[Line], account: mappings.Mapping,
                      writes: list[Callable]) -> str:
        invoice_id = event.object_id
        if not lines:
            return "no invoice lines outside usage-synced meters; no Zuora invoice"
        currency = self._check_currency(invoice, account)
        payload = zuora_invoice_payload(invoice, lines, account_id=account.zuora_id, status=self.status,
                                        currency=currency)
        if any(item["amount"] != line.value for item, line in zip(payload["invoiceItems"], lines)):
            log.info("sub-cent invoice lines allocated to whole cents", extra={"invoice_id": invoice_id})
        earlier = self._created_before(invoice_id)
        if earlier is not None:
            writes.append(mappings.link("invoice", zuora_id=earlier["id"], zuora_number=earlier.get("invoiceNumber"),
                                        billing_id=invoice_id, billing_parent_id=None, origin="billing"))
            return (f"Zuora invoice {earlier.get('invoiceNumber') or earlier['id']} was created by an earlier "
                    f"attempt; linked, not posted again")
        payload[self.link_field] = invoice_id
        created = self.zuora.create_invoice(payload, idempotency_key=event.idempotency_key("billing-invoice",
                                                                                           invoice_id))
        writes.append(mappings.link("invoice", zuora_id=created["id"], zuora_number=created["invoiceNumber"],
                                    billing_id=invoice_id, billing_parent_id=None, origin="billing"))
        total = money.exact_sum(item["amount"] for item in payload["invoiceItems"])
        return (f"Zuora invoice {created['invoiceNumber']} created: {len(lines)} item(s), "
                f"{money.plain(total)} {currency or ''}".rstrip())

    def _created_before(self, invoice_id: str) -> dict | None:
        """The Zuora invoice whose link field names this billing invoice, if one exists: created by an
        earlier attempt series (whose answer was lost) or another event of this invoice. Looked up on
        every push, because a new series carries a new Idempotency-Key and Zuora would post again."""
        found = self.zuora.find_invoices(self.link_field, invoice_id)
        if len(found) > 1:
            log.warning("several Zuora invoices name one billing invoice; linking the first",
                        extra={"invoice_id": invoice_id, "zuora_ids": [row["id"] for row in found][:10]})
        return found[0] if found else None

    def _check_currency(self, invoice: dict, account: mappings.Mapping) -> str | None:
        """The invoice's currency, after checking the Zuora account bills in it: a standalone
        invoice takes the account's currency, so a mismatch would change the money silently."""
        zuora_account = self.zuora.get_account(account.zuora_id)
        zuora_currency = (zuora_account.get("billingAndPayment") or {}).get("currency")
        billing_currency = invoice_currency(invoice)
        if billing_currency and zuora_currency and billing_currency.upper() != str(zuora_currency).upper():
            raise InvalidData("invoiceDetails.account.invoiceCurrency",
                              f"the billing invoice is in {billing_currency}, but Zuora account "
                              f"{account.zuora_number or account.zuora_id} bills in {zuora_currency}")
        return billing_currency or (zuora_currency if isinstance(zuora_currency, str) else None)

    def _usage_follow_up(self, invoice_id: str, synced: dict[str, MeterSettings]) -> Callable:
        """A write that queues ``invoice.usage`` with the meters this run left off the invoice, so the
        usage flow pushes exactly those, whatever happens to the settings in between."""
        snapshot = {meter_id: {"zuora_subscription_number": s.zuora_subscription_number,
                               "zuora_charge_number": s.zuora_charge_number, "uom": s.uom, "mode": s.mode}
                    for meter_id, s in synced.items()}

        def write(conn) -> None:
            self.inbox.record(source="billing", type="invoice.usage", object_type="usage", object_id=invoice_id,
                              object_key=f"billing-invoice-usage:{invoice_id}",
                              dedupe_key=usage_dedupe_key(invoice_id), payload={"meters": snapshot}, conn=conn)

        return write


def handlers(services: Services) -> dict:
    """Flows 3–5: the invoice, and the usage it leaves to Zuora's rating."""
    from .usage import UsageFlow

    return {"invoice.finalized": InvoiceFlow(services).handle, "invoice.usage": UsageFlow(services).handle}
