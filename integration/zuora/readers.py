"""Zuora's JSON → ``integration.zuora.model``: what the client's read methods return.

A field the model cannot do without (an account's ID and number, an item's ``chargeAmount``) missing
or of the wrong type is ``MalformedResponse`` naming the call and the field, as the client already
refuses an answer without the fields a call returns; never a ``KeyError`` further on. Optional fields
read as None when absent. Times are aware UTC (a time without an offset is taken as UTC); amounts are
the ``Decimal`` the body parser gave, or the text of a number.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from integration.domain import money
from integration.domain.errors import MalformedResponse
from integration.domain.times import parse_moment
from integration.zuora.model import (
    ZuoraAccount,
    ZuoraContact,
    ZuoraCreated,
    ZuoraCreditMemo,
    ZuoraInvoice,
    ZuoraInvoiceItem,
    ZuoraUndo,
    ZuoraUsage,
)

Json = Mapping[str, object]

_CONTACT_FIELDS = {"first_name": "firstName", "last_name": "lastName", "work_email": "workEmail",
                   "personal_email": "personalEmail", "address1": "address1", "address2": "address2",
                   "city": "city", "state": "state", "zip_code": "zipCode", "country": "country",
                   "work_phone": "workPhone", "mobile_phone": "mobilePhone", "home_phone": "homePhone"}
_ACCOUNT_FIELDS = frozenset({"id", "accountNumber", "name", "currency", "status", "updatedDate"})


def text(body: Json, key: str, where: str) -> str | None:
    """An optional text field: a string as it is, a number as its text, None when absent or null."""
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        return str(value)
    raise MalformedResponse(f"{where}: {key} is not text")


def required_text(body: Json, key: str, where: str) -> str:
    """A text field the object cannot be without (an ID, a number): non-empty, or ``MalformedResponse``."""
    value = text(body, key, where)
    if not value:
        raise MalformedResponse(f"{where}: response has no {key}")
    return value


def decimal_or_none(value: object) -> Decimal | None:
    """A number from a body (``Decimal``, an int, or its text) as ``Decimal``; None when it is none
    (``money.to_decimal``'s rule, the one the flows read amounts by)."""
    return money.to_decimal(value)


def instant(value: object) -> datetime | None:
    """A Zuora time (``2026-01-02T03:04:05Z``, an offset, or none: UTC) as aware UTC; None when unreadable."""
    return parse_moment(value, naive_is_utc=True)


def day(value: object) -> date | None:
    """A Zuora date (``2026-01-02``, or a time whose first ten characters are one); None when unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _object(body: Json, key: str, where: str) -> Json:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedResponse(f"{where}: {key} is not an object")
    return value


def contact(body: Json, key: str, where: str) -> ZuoraContact | None:
    """The contact under ``key``, or None when the answer has none."""
    found = _object(body, key, where)
    if not found:
        return None
    return ZuoraContact(**{ours: text(found, theirs, f"{where} {key}") for ours, theirs in _CONTACT_FIELDS.items()})


def _custom_fields(body: Json, known: frozenset[str]) -> tuple[tuple[str, str], ...]:
    return tuple((key, value) for key, value in body.items() if key not in known and isinstance(value, str))


def _emails(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def account(body: Json, where: str) -> ZuoraAccount:
    """``GET /v1/accounts/{key}``: ``basicInfo`` (the link field among its custom fields), the contacts,
    ``billingAndPayment`` (currency, additional emails)."""
    basic = _object(body, "basicInfo", where)
    payment = _object(body, "billingAndPayment", where)
    return ZuoraAccount(
        id=required_text(basic, "id", f"{where} basicInfo"),
        number=required_text(basic, "accountNumber", f"{where} basicInfo"),
        name=text(basic, "name", where) or "",
        currency=text(payment, "currency", where) or text(basic, "currency", where),
        status=text(basic, "status", where),
        bill_to=contact(body, "billToContact", where),
        sold_to=contact(body, "soldToContact", where),
        additional_emails=_emails(payment.get("additionalEmailAddresses")),
        updated=instant(basic.get("updatedDate")),
        custom_fields=_custom_fields(basic, _ACCOUNT_FIELDS),
    )


def account_row(row: Json, where: str) -> ZuoraAccount:
    """An Object Query ``accounts`` row (``billTo`` when expanded); its custom fields are top-level."""
    return ZuoraAccount(
        id=required_text(row, "id", where),
        number=required_text(row, "accountNumber", where),
        name=text(row, "name", where) or "",
        currency=text(row, "currency", where),
        status=text(row, "status", where),
        bill_to=contact(row, "billTo", where),
        updated=instant(row.get("updatedDate")),
        custom_fields=_custom_fields(row, _ACCOUNT_FIELDS),
    )


def invoice(body: Json, where: str) -> ZuoraInvoice:
    """``GET /v1/invoices/{id}`` or an Object Query ``invoices`` row (the same names for what is read)."""
    return ZuoraInvoice(
        id=required_text(body, "id", where),
        number=text(body, "invoiceNumber", where),
        account_id=text(body, "accountId", where),
        status=text(body, "status", where),
        invoice_date=day(body.get("invoiceDate")),
        reversed=body.get("reversed") is True,
        amount=decimal_or_none(body.get("amount")),
        balance=decimal_or_none(body.get("balance")),
        updated=instant(body.get("updatedDate")),
    )


def invoice_item(body: Json, invoice_id: str, where: str) -> ZuoraInvoiceItem:
    """One of an invoice's items; a ``chargeAmount`` that is no number is refused, naming the item."""
    amount = decimal_or_none(body.get("chargeAmount"))
    item_id = text(body, "id", where)
    if amount is None:
        raise MalformedResponse(f"Zuora invoice {invoice_id}: item {item_id} has no numeric chargeAmount")
    return ZuoraInvoiceItem(id=item_id, charge_name=text(body, "chargeName", where), charge_amount=amount,
                            processing_type=text(body, "processingType", where),
                            applied_to_item_id=text(body, "appliedToItemId", where))


def credit_memo(row: Json, where: str) -> ZuoraCreditMemo:
    return ZuoraCreditMemo(id=required_text(row, "id", where), reason_code=text(row, "reasonCode", where))


def usage(row: Json, where: str) -> ZuoraUsage:
    return ZuoraUsage(id=required_text(row, "id", where), description=text(row, "description", where),
                      quantity=decimal_or_none(row.get("quantity")), account_id=text(row, "accountId", where),
                      created=instant(row.get("createdDate")))


def created(body: Json, id_key: str, number_key: str, where: str) -> ZuoraCreated:
    """A create call's answer: the new ID (``accountId``, ``id``) and number (``accountNumber``, ``invoiceNumber``)."""
    return ZuoraCreated(id=required_text(body, id_key, where), number=required_text(body, number_key, where))


def undo(body: Json, where: str) -> ZuoraUndo:
    """A cancel's or a reversal's answer: the credit memo's ID, or the job that runs it."""
    memo = body.get("creditMemo")
    memo_id = memo.get("id") if isinstance(memo, Mapping) else None
    return ZuoraUndo(credit_memo_id=memo_id if isinstance(memo_id, str) and memo_id else None,
                     job_id=text(body, "jobId", where) or None, job_status=text(body, "jobStatus", where))
