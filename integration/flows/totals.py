"""The totals report (CONTRACT §9): per linked account, what the billing platform invoiced in a month
against what Zuora holds for those invoices — the net under everything else, in money.

For each account mapping, the billing invoices dated in the period (``GET /invoices`` by owner and
time, each then read whole; drafts, ``VOID`` and ``MERGED`` are left out as the invoice flow leaves
them out) give ``billing_total`` (their ``totalAmount``). ``zuora_total`` is read back from Zuora,
never taken from our own records: the items of the Zuora invoice the mapping table links
(``chargeAmount``), plus the account's usage records whose description names the invoice and a meter,
at that meter's per-unit amount (quantity × the billing line's ``valuePerQuantity``; revenue-mode
meters at 1 per unit, as their Zuora charge is priced). Tiered meters (several per-unit amounts) are
priced at their average, the billing revenue over the billing quantity.

Exact decimals throughout. An invoice differs when Zuora's total and the billing total differ by half
a minor unit of the currency or more: the invoice flow rounds sub-cent lines together to the cent
(integration.flows.invoices), so 3 × 0.333333333333 billed is 1.00 in Zuora, and that is a match.
Rows are per account and currency (an account whose invoices came in two currencies has two rows,
never one sum), mismatches first.

Adjustments (CONTRACT §12): Zuora's items include the discounts (read back as items of their own),
credits, taxes, true-ups and the platform's rounding the invoice flow put there, so they are in
``zuora_total`` like any item. Where an invoice differs, its notes name what differs — the charges,
the discount, the credits applied, the tax, the true-up, the rounding or the usage — each with what the
billing invoice says Zuora should hold (the invoice flow's own items, integration.flows.invoice_items)
and what it holds. The platform's rounding of its subtotal is listed as a warning of the account's row,
matching or not.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from integration.billing.amounts import (
    CREDITS,
    CREDITS_NAME,
    DISCOUNT,
    DISCOUNT_NAME,
    LABELS,
    ROUNDING,
    ROUNDING_NAME,
    TAX,
    TAX_NAME,
    TRUE_UP,
    TRUE_UP_NAME,
    InvoiceAmounts,
    Line,
    MeterUsage,
    usage_quantity,
)
from integration.billing.model import checked, currency_code
from integration.billing.port import BillingPlatform
from integration.domain import money
from integration.domain.errors import InvalidData, MalformedResponse, ZuoraRejected
from integration.domain.periods import Period
from integration.flows.invoice_items import invoice_items
from integration.flows.invoices import split_lines
from integration.flows.usage import holds_marker, usage_marker
from integration.store import mappings, meters
from integration.store.db import Database
from integration.store.mapping_export import all_mappings
from integration.zuora.client import ZuoraClient
from integration.zuora.model import ZuoraUsage

READ_BACK_MARGIN = timedelta(hours=1)
"""How far before the first mapping row of an account's invoices its usage records are read (clock skew)."""
CHARGES, USAGE = "charges", "usage"
_KIND_OF_NAME = {ROUNDING_NAME: ROUNDING, TRUE_UP_NAME: TRUE_UP, TAX_NAME: TAX, CREDITS_NAME: CREDITS}
_PARTS = (CHARGES, DISCOUNT, CREDITS, TAX, TRUE_UP, ROUNDING, USAGE)
_PART_LABELS = {**LABELS, CHARGES: "charges", USAGE: "usage"}
_ANY_DAY = date(2000, 1, 1)  # items planned only to be summed: their service period does not matter


@dataclass(frozen=True)
class InvoiceTotals:
    """One billing invoice and what Zuora holds for it."""

    billing_invoice_id: str
    zuora_invoice_id: str | None
    currency: str | None
    billing_total: Decimal
    zuora_total: Decimal
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def difference(self) -> Decimal:
        """Zuora less billing, exactly: negative when Zuora holds less than was billed."""
        return money.EXACT.subtract(self.zuora_total, self.billing_total)

    @property
    def differs(self) -> bool:
        cents = money.quantum(money.minor_units(self.currency))
        return self.difference.quantize(cents, rounding=ROUND_HALF_UP) != 0

    def as_json(self) -> dict[str, Any]:
        return {"billing_invoice_id": self.billing_invoice_id, "zuora_invoice_id": self.zuora_invoice_id,
                "billing_total": money.plain(self.billing_total), "zuora_total": money.plain(self.zuora_total),
                "difference": money.plain(self.difference), "notes": list(self.notes)}


@dataclass
class AccountTotals:
    """One linked account in one currency: its invoices of the period and their sums."""

    zuora_account: str
    zuora_account_id: str
    billing_account: str
    currency: str | None
    invoices: list[InvoiceTotals] = field(default_factory=list)

    @property
    def billing_total(self) -> Decimal:
        return money.exact_sum(i.billing_total for i in self.invoices)

    @property
    def zuora_total(self) -> Decimal:
        return money.exact_sum(i.zuora_total for i in self.invoices)

    @property
    def difference(self) -> Decimal:
        return money.EXACT.subtract(self.zuora_total, self.billing_total)

    @property
    def differing(self) -> list[InvoiceTotals]:
        return [i for i in self.invoices if i.differs]

    @property
    def matches(self) -> bool:
        return not self.differing

    @property
    def warnings(self) -> list[str]:
        """What an operator should know about matching invoices too (the platform's rounding)."""
        return [f"{i.billing_invoice_id}: {w}" for i in self.invoices for w in i.warnings]

    def as_json(self) -> dict[str, Any]:
        return {"zuora_account": self.zuora_account, "zuora_account_id": self.zuora_account_id,
                "billing_account": self.billing_account, "currency": self.currency,
                "billing_total": money.plain(self.billing_total), "zuora_total": money.plain(self.zuora_total),
                "difference": money.plain(self.difference), "matches": self.matches,
                "invoice_count": len(self.invoices), "invoices": [i.as_json() for i in self.differing],
                "warnings": self.warnings}


@dataclass(frozen=True)
class TotalsReport:
    period: Period
    rows: list[AccountTotals]

    @property
    def mismatches(self) -> int:
        return sum(1 for row in self.rows if not row.matches)

    def currencies(self) -> list[dict[str, Any]]:
        """Sums per currency, never across currencies."""
        by_currency: dict[str, list[AccountTotals]] = {}
        for row in self.rows:
            by_currency.setdefault(row.currency or "", []).append(row)
        result = []
        for currency in sorted(by_currency):
            rows = by_currency[currency]
            billing = money.exact_sum(r.billing_total for r in rows)
            zuora = money.exact_sum(r.zuora_total for r in rows)
            result.append({"currency": currency or None, "accounts": len(rows),
                           "mismatches": sum(1 for r in rows if not r.matches),
                           "billing_total": money.plain(billing), "zuora_total": money.plain(zuora),
                           "difference": money.plain(money.EXACT.subtract(zuora, billing))})
        return result

    def as_json(self) -> dict[str, Any]:
        return {"period": str(self.period), "mismatches": self.mismatches, "data": [r.as_json() for r in self.rows],
                "currencies": self.currencies()}


def totals_report(db: Database, zuora: ZuoraClient, billing: BillingPlatform, period: Period) -> TotalsReport:
    """Every linked account's totals for ``period``, mismatches first, then by currency and account."""
    rows: list[AccountTotals] = []
    for account in all_mappings(db, "account"):
        rows.extend(_account_rows(db, zuora, billing, account, period))
    rows.sort(key=lambda r: (r.matches, r.currency or "", r.zuora_account, r.billing_account))
    return TotalsReport(period=period, rows=rows)


@dataclass(frozen=True)
class _Invoice:
    id: str
    usage: dict[str, list[MeterUsage]] | InvalidData
    amounts: InvoiceAmounts
    currency: str | None
    zuora_link: mappings.Mapping | None
    unexplained: str | None = None   # why its lines and adjustments do not add up, where they do not

    @property
    def lines(self) -> list[Line]:
        return self.amounts.lines

    @property
    def total(self) -> Decimal:
        return self.amounts.total


def _account_rows(db: Database, zuora: ZuoraClient, billing: BillingPlatform, account: mappings.Mapping,
                  period: Period) -> list[AccountTotals]:
    billing_account = billing.get_account(account.billing_id)
    default_currency = currency_code(billing_account.invoice_currency) if billing_account else None
    invoices = list(_period_invoices(db, billing, account.billing_id, period, default_currency))
    records = _usage_records(db, zuora, account.zuora_id, invoices)
    prices = _meter_modes(db, invoices)
    rows: dict[str | None, AccountTotals] = {}
    name = account.zuora_number or account.zuora_id
    if not invoices:
        rows[default_currency] = AccountTotals(name, account.zuora_id, account.billing_id, default_currency)
    for invoice in invoices:
        row = rows.setdefault(invoice.currency, AccountTotals(name, account.zuora_id, account.billing_id,
                                                              invoice.currency))
        row.invoices.append(_compare(zuora, invoice, records, prices))
    return list(rows.values())


def _period_invoices(db: Database, billing: BillingPlatform, owner_id: str, period: Period,
                     default_currency: str | None) -> Iterable[_Invoice]:
    """The owner's final invoices dated in the period (the date checked here too, whatever the list filtered)."""
    for summary in billing.list_invoices(owner_id=owner_id, start=period.start, end=period.end):
        invoice = billing.get_invoice(summary.id, currency=default_currency)
        if invoice is None or invoice.why_not_pushed() is not None:
            continue
        if not period.start <= checked(invoice.invoice_date) < period.end:
            continue
        currency = invoice.currency or default_currency
        unexplained: str | None = None
        if isinstance(invoice.amounts, InvalidData):  # never pushed (the flow refuses it); still billed, so
            unexplained = str(invoice.amounts)          # still compared: its lines against its total
        amounts = checked(invoice.unchecked_amounts)
        yield _Invoice(id=summary.id, usage=invoice.usage, amounts=amounts, currency=currency,
                       zuora_link=mappings.find(db, "invoice", billing_id=summary.id), unexplained=unexplained)


def _usage_records(db: Database, zuora: ZuoraClient, zuora_account_id: str,
                   invoices: list[_Invoice]) -> list[ZuoraUsage]:
    """The account's usage records created since the first mapping row of these invoices (less a
    margin): usage of a period's invoices is pushed after they were, so older records are not theirs."""
    if not any(line.meter_id for invoice in invoices for line in invoice.lines):
        return []
    rows = [m for invoice in invoices for m in ([invoice.zuora_link] if invoice.zuora_link else [])
            + mappings.children(db, "usage", invoice.id)]
    if not rows:
        return []
    since: datetime = min(row.created_at for row in rows) - READ_BACK_MARGIN
    return zuora.find_usages(zuora_account_id, created_since=since)


def _meter_modes(db: Database, invoices: list[_Invoice]) -> dict[str, str]:
    ids = {line.meter_id for invoice in invoices for line in invoice.lines if line.meter_id}
    return {meter_id: settings.mode for meter_id, settings in meters.settings_for(db, ids).items()}


def _compare(zuora: ZuoraClient, invoice: _Invoice, records: list[ZuoraUsage], modes: dict[str, str]) -> InvoiceTotals:
    notes: list[str] = [f"the billing invoice does not add up: {invoice.unexplained}"] if invoice.unexplained else []
    held: dict[str, list[Decimal]] = {part: [] for part in _PARTS}
    zuora_id = invoice.zuora_link.zuora_id if invoice.zuora_link else None
    if zuora_id is not None:
        try:
            items = zuora.get_invoice_items(zuora_id)
        except ZuoraRejected as exc:
            notes.append(f"Zuora invoice {zuora_id} could not be read: {exc}")
        else:
            for item in items:
                held[_part(item.processing_type, item.applied_to_item_id, item.charge_name, item.charge_amount)
                     ].append(item.charge_amount)
    by_meter: dict[str, list[Line]] = {}
    for line in invoice.lines:
        if line.meter_id:
            by_meter.setdefault(line.meter_id, []).append(line)
    for meter_id, lines in sorted(by_meter.items()):
        marker = usage_marker(invoice.id, meter_id)
        for record in (r for r in records if holds_marker(r.description, marker)):
            quantity = record.quantity
            if quantity is None:
                raise MalformedResponse(f"Zuora usage record {record.id} has no numeric quantity")
            held[USAGE].append(money.EXACT.multiply(quantity, _per_unit(invoice, meter_id, lines, modes, record)))
    sums = {part: money.exact_sum(values) for part, values in held.items()}
    zuora_total = money.exact_sum(sums.values())
    if zuora_id is None and not any(held.values()):
        notes.append("not in Zuora")
    totals = InvoiceTotals(invoice.id, zuora_id, invoice.currency, invoice.total, zuora_total, (),
                           invoice.amounts.warnings)
    if totals.differs and zuora_id is not None and not invoice.unexplained:
        notes.extend(_what_differs(invoice, sums, modes))
    return InvoiceTotals(invoice.id, zuora_id, invoice.currency, invoice.total, zuora_total, tuple(notes),
                         invoice.amounts.warnings)


def _item_part(item: dict[str, Any]) -> str:
    """``_part`` of an item the invoice flow plans (its payload's names)."""
    return _part(item.get("processingType"), item.get("appliedToItemId"), item.get("chargeName"),
                 money.to_decimal(item.get("chargeAmount", item.get("amount"))))


def _part(processing_type: object, applied_to_item_id: object, name: object, amount: Decimal | None) -> str:
    """Which part of a billing invoice a Zuora item (read back, or planned) carries, by what the invoice
    flow names it: a discount item, one of §12's named items, else a charge (a line, a miscellaneous
    or custom amount)."""
    if processing_type == "Discount" or applied_to_item_id:
        return DISCOUNT
    if name == DISCOUNT_NAME and (amount or 0) < 0:
        return DISCOUNT
    return _KIND_OF_NAME.get(name, CHARGES) if isinstance(name, str) else CHARGES


def _what_differs(invoice: _Invoice, held: dict[str, Decimal], modes: dict[str, str]) -> list[str]:
    """The parts whose Zuora sum is not what the billing invoice puts there (the invoice flow's own
    items for the lines left on the invoice; the exact revenue of the usage-synced lines)."""
    on_invoice, as_usage = split_lines(invoice.lines, set(modes))
    planned: dict[str, Decimal] = dict.fromkeys(_PARTS, Decimal(0))
    for item in invoice_items(on_invoice, currency=invoice.currency, start=_ANY_DAY, end=_ANY_DAY,
                              adjustments=invoice.amounts.adjustments):
        for part in [item, *({**d, "processingType": "Discount"} for d in item.get("discountItems", []))]:
            planned[_item_part(part)] = money.EXACT.add(planned[_item_part(part)], part["amount"])
    planned[USAGE] = money.exact_sum(line.value for line in as_usage)
    cents = money.quantum(money.minor_units(invoice.currency))
    return [f"{_PART_LABELS[part]} differs: billing {money.plain(planned[part])}, Zuora {money.plain(held[part])}"
            for part in _PARTS
            if money.EXACT.subtract(held[part], planned[part]).quantize(cents, rounding=ROUND_HALF_UP) != 0]


def _per_unit(invoice: _Invoice, meter_id: str, lines: list[Line], modes: dict[str, str], record: ZuoraUsage
              ) -> Decimal:
    """The meter's per-unit amount on this invoice: 1 in revenue mode (the settings', else what the
    record's description says it was pushed as), else the billing line's, or the average of a tiered one."""
    mode = modes.get(meter_id)
    if mode == "revenue" or (mode is None and (record.description or "").startswith("Revenue ")):
        return Decimal(1)
    prices = {price for line in lines for price in line.unit_prices()}
    if len(prices) == 1:
        return prices.pop()
    revenue = money.exact_sum(line.value for line in lines)
    try:
        quantity, _ = usage_quantity(checked(invoice.usage), meter_id)
    except InvalidData:
        quantity = Decimal(0)
    return money.EXACT.divide(revenue, quantity) if quantity else Decimal(0)
