"""Togai JSON → the internal model (integration.billing.model): customers, accounts, links and invoices.

WHY a module of its own: this is the one place that knows Togai's field names. Every reader is as
forgiving as the flows were when they read the JSON themselves: a field only some flows need is read
into its value or its ``InvalidData`` (model docstring), never refused up front.

The one rule of an invoice's state (CONTRACT §6.3, §12), decided here once for the invoice flow, backfill,
reconciliation and the totals report: ``VOID`` and ``MERGED`` are never pushed (even when finalized); an
invoice is final when its ``finalizingStatus`` is ``FINALIZED`` or its status is ``DUE``, ``PAID`` or
``PARTIALLY_PAID``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar

from integration.billing.amounts import InvoiceAmounts
from integration.billing.model import (
    ADDRESS_FIELDS,
    BillingAccount,
    BillingCustomer,
    BillingInvoice,
    BillingLink,
    currency_code,
)
from integration.billing.togai.adjustments import read_amounts
from integration.billing.togai.line_items import invoice_lines, meter_usage, required_amount
from integration.domain.errors import InvalidData
from integration.domain.times import parse_moment

T = TypeVar("T")

SETTINGS_NAMESPACE = "zuora"
"""The namespace of the Togai account settings that name the account's Zuora twin."""
ZUORA_ID_SETTING, ZUORA_NUMBER_SETTING = "zuoraAccountId", "zuoraAccountNumber"
PUSHED_STATUSES = frozenset({"DUE", "PAID", "PARTIALLY_PAID"})
NEVER_PUSHED_STATUSES = frozenset({"VOID", "MERGED"})
VOID = "VOID"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _address(raw: object) -> dict[str, str]:
    """The address fields the canonical form compares (values as strings; absent ones left out)."""
    if not isinstance(raw, Mapping):
        return {}
    return {k: v if isinstance(v, str) else str(v) for k in ADDRESS_FIELDS
            if (v := raw.get(k)) not in (None, "")}


def parse_instant(value: object) -> datetime | None:
    """An ISO-8601 time (``Z`` or an offset) as aware UTC; None when absent, unreadable or without a zone."""
    return parse_moment(value, naive_is_utc=False)


# -- customers, accounts, links ---------------------------------------------------------------------------

def customer(raw: Mapping[str, Any]) -> BillingCustomer:
    return BillingCustomer(id=str(raw["id"]), name=_text(raw.get("name")),
                           primary_email=_text(raw.get("primaryEmail")), address=_address(raw.get("address")))


def link_from_settings(settings: object) -> BillingLink:
    """The Zuora twin named by an account's ``zuora`` settings (a setting without a namespace counts)."""
    stored: dict[str, tuple[str, str | None]] = {}
    for s in settings if isinstance(settings, list) else []:
        if isinstance(s, Mapping) and s.get("namespace", SETTINGS_NAMESPACE) == SETTINGS_NAMESPACE:
            value = s.get("value")
            stored[str(s.get("name"))] = (str(s.get("id")), value if isinstance(value, str) else None)
    return BillingLink(zuora_account_id=_stripped(stored.get(ZUORA_ID_SETTING)),
                       zuora_account_number=_stripped(stored.get(ZUORA_NUMBER_SETTING)), stored=stored)


def _stripped(entry: tuple[str, str | None] | None) -> str | None:
    value = entry[1] if entry else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def account(raw: Mapping[str, Any]) -> BillingAccount:
    settings = raw.get("settings")
    return BillingAccount(
        id=str(raw["id"]), customer_id=_text(raw.get("customerId")), name=_text(raw.get("name")),
        primary_email=_text(raw.get("primaryEmail")), address=_address(raw.get("address")),
        invoice_currency=_text(raw.get("invoiceCurrency")),
        link=link_from_settings(settings) if settings is not None else None,
        created_at=parse_instant(raw.get("createdAt")), updated_at=parse_instant(raw.get("updatedAt")))


# -- invoices ----------------------------------------------------------------------------------------------

def billing_instant(invoice: Mapping[str, Any], key: str) -> datetime:
    """One of the invoice's instants (ISO-8601 date or date-time) as an aware UTC datetime."""
    raw = invoice.get(key)
    if not isinstance(raw, str) or len(raw) > 40:
        raise InvalidData(key, "must be an ISO-8601 date or date-time")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidData(key, "must be an ISO-8601 date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def service_end(invoice: Mapping[str, Any]) -> date:
    """The last day of the invoice's service period: ``endDateInclusive``, or — where an invoice
    carries only the exclusive ``endDate``, as Togai's own get-invoice example does — the day of
    the last millisecond before it."""
    if invoice.get("endDateInclusive") is None and invoice.get("endDate") is not None:
        return (billing_instant(invoice, "endDate") - timedelta(milliseconds=1)).date()
    return billing_instant(invoice, "endDateInclusive").date()


def required_id(invoice: Mapping[str, Any], key: str) -> str:
    value = invoice.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise InvalidData(key, "must be a non-empty string of at most 255 characters")
    return value


def invoice_currency(invoice: Mapping[str, Any]) -> str | None:
    details = invoice.get("invoiceDetails")
    account = details.get("account") if isinstance(details, dict) else None
    currency = account.get("invoiceCurrency") if isinstance(account, dict) else None
    return currency_code(currency)


def why_not_pushed(invoice: Mapping[str, Any]) -> str | None:
    """The one rule (module docstring): None when the invoice is final, else the reason it is left alone."""
    status = invoice.get("status")
    if status in NEVER_PUSHED_STATUSES:
        return f"status {status}"
    if is_finalized(invoice):
        return None
    return f"not finalized (status {status}, finalizingStatus {invoice.get('finalizingStatus')})"


def is_finalized(invoice: Mapping[str, Any]) -> bool:
    return invoice.get("finalizingStatus") == "FINALIZED" or invoice.get("status") in PUSHED_STATUSES


def _lazy(read: Callable[[], T]) -> T | InvalidData:
    try:
        return read()
    except InvalidData as exc:
        return exc


def _bare_amounts(raw: Mapping[str, Any]) -> InvoiceAmounts:
    """The lines and ``totalAmount`` without the adjustments' check: what the totals report compares
    for an invoice whose lines and adjustments do not add up."""
    return InvoiceAmounts(lines=invoice_lines(dict(raw)), adjustments=[],
                          total=required_amount(dict(raw), "totalAmount", "invoice"))


def invoice(raw: Mapping[str, Any], default_currency: str | None = None) -> BillingInvoice:
    """A Togai invoice (``GET /invoices/{id}``, or a row of ``GET /invoices``) in the model. The amounts
    are read in the invoice's currency, else ``default_currency`` (the rounding bound's minor unit)."""
    body = dict(raw)
    status = raw.get("status")
    currency = invoice_currency(raw)
    owner = raw.get("ownerId") or raw.get("accountId")
    due = (lambda: billing_instant(raw, "dueDate")) if raw.get("dueDate") is not None else (lambda: None)
    amounts = _lazy(lambda: read_amounts(body, currency or default_currency))
    return BillingInvoice(
        id=required_id(raw, "id"),
        status=status if isinstance(status, str) else None if status is None else str(status),
        is_void=status == VOID, is_finalized=is_finalized(raw), not_pushed_because=why_not_pushed(raw),
        currency=currency, owner_id=_lazy(lambda: required_id(raw, "ownerId")),
        listed_owner=str(owner) if owner else None,
        invoice_date=_lazy(lambda: billing_instant(raw, "invoiceDate")), due_date=_lazy(due),
        start_date=_lazy(lambda: billing_instant(raw, "startDate")), service_end=_lazy(lambda: service_end(raw)),
        amounts=amounts, unchecked_amounts=amounts if isinstance(amounts, InvoiceAmounts) else _lazy(
            lambda: _bare_amounts(raw)), usage=_lazy(lambda: meter_usage(body)),
        created_at=parse_instant(raw.get("generatedAt")), updated_at=parse_instant(raw.get("updatedAt")))
