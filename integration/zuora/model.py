"""Zuora's objects as the flows read them: frozen dataclasses, amounts ``Decimal``, times aware UTC.

``integration.zuora.readers`` makes them from Zuora's JSON (refusing an answer that lacks what they
need); the client's read methods return them, so nothing outside ``integration.zuora`` reads Zuora's
field names. Each class holds what the flows, backfill, reconciliation and the totals report use, not
the whole of Zuora's object.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class ZuoraContact:
    """A bill-to or sold-to contact (``billToContact``; ``billTo`` when Object Query expands it)."""

    first_name: str | None = None
    last_name: str | None = None
    work_email: str | None = None
    personal_email: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None
    country: str | None = None
    work_phone: str | None = None
    mobile_phone: str | None = None
    home_phone: str | None = None


@dataclass(frozen=True)
class ZuoraAccount:
    """One customer account: ``GET /v1/accounts/{key}`` or an Object Query ``accounts`` row.

    ``custom_fields``: the account's text fields beyond the ones named here, by Zuora's name, so the
    configured link field (``BillingAccountId__c`` by default) is read with ``custom_field(name)``.
    A row of a list without the ``billTo`` expansion has no ``bill_to``.
    """

    id: str
    number: str
    name: str = ""
    currency: str | None = None
    status: str | None = None
    bill_to: ZuoraContact | None = None
    sold_to: ZuoraContact | None = None
    additional_emails: tuple[str, ...] = ()
    updated: datetime | None = None
    custom_fields: tuple[tuple[str, str], ...] = ()

    def custom_field(self, name: str) -> str | None:
        """The value of one of the account's other text fields (e.g. the link field), None when unset."""
        return next((value for key, value in self.custom_fields if key == name), None)


@dataclass(frozen=True)
class ZuoraInvoiceItem:
    """One item of ``GET /v1/invoices/{id}/items``: a charge, or a discount item applied to one."""

    id: str | None
    charge_name: str | None
    charge_amount: Decimal
    processing_type: str | None = None
    applied_to_item_id: str | None = None


@dataclass(frozen=True)
class ZuoraInvoice:
    """One invoice: ``GET /v1/invoices/{id}`` or an Object Query ``invoices`` row.

    ``invoice_date`` is None when Zuora's answer holds none that reads as a date (the void flow says so
    when it needs one); ``reversed`` is only True when Zuora says ``true``.
    """

    id: str
    number: str | None = None
    account_id: str | None = None
    status: str | None = None
    invoice_date: date | None = None
    reversed: bool = False
    amount: Decimal | None = None
    balance: Decimal | None = None
    updated: datetime | None = None


@dataclass(frozen=True)
class ZuoraCreditMemo:
    """One credit memo made from an invoice (Object Query ``credit-memos``)."""

    id: str
    reason_code: str | None = None


@dataclass(frozen=True)
class ZuoraUsage:
    """One usage record (Object Query ``usages``). ``quantity`` is None when the row has no number:
    only a record the totals report counts must have one, and it says which record lacks it."""

    id: str
    description: str | None = None
    quantity: Decimal | None = None
    account_id: str | None = None
    created: datetime | None = None


@dataclass(frozen=True)
class ZuoraUsageImport:
    """A usage upload Zuora has finished importing (``GET /v1/usage/{id}/status``)."""

    id: str
    status: str


@dataclass(frozen=True)
class ZuoraCreated:
    """What creating an account or an invoice gives back: the new object's ID and its number."""

    id: str
    number: str


@dataclass(frozen=True)
class ZuoraUndo:
    """The answer to a cancel or a reversal: a credit memo (a reversal done at once), or a job that
    runs it (over 1,000 items for a cancel, 2,000 for a reversal), or neither (a cancel done at once)."""

    credit_memo_id: str | None = None
    job_id: str | None = None
    job_status: str | None = None
