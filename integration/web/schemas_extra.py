"""Schemas of the admin routes added for the console and the commands (CONTRACT §4): the event
list, links and the totals report. They feed ``/openapi.json`` like the rest."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from integration.actions.limits import (
    ACCOUNT_ID_MAX,
    CURSOR_MAX,
    EVENT_TYPE_MAX,
    ID_MAX,
    PAGE_DEFAULT,
    PAGE_MAX,
)
from integration.domain.identifiers import IDENTIFIER
from integration.domain.periods import parse_period
from integration.store.events_list import SOURCES, STATUSES

_ID = [validate.Length(min=1, max=ID_MAX), IDENTIFIER]


class EventQuerySchema(Schema):
    """Filters and paging of ``GET /admin/events`` (newest first)."""

    class Meta:
        unknown = EXCLUDE

    status = fields.String(validate=validate.OneOf(STATUSES))
    source = fields.String(validate=validate.OneOf(SOURCES))
    type = fields.String(validate=[validate.Length(min=1, max=EVENT_TYPE_MAX), IDENTIFIER],
                         metadata={"description": "an event type, e.g. account.callout or invoice.finalized"})
    object_id = fields.String(validate=_ID)
    limit = fields.Integer(load_default=PAGE_DEFAULT, validate=validate.Range(min=1, max=PAGE_MAX))
    after = fields.String(validate=validate.Length(min=1, max=CURSOR_MAX),
                          metadata={"description": "cursor from `next`"})


class EventSummarySchema(Schema):
    id = fields.String(required=True)
    source = fields.String(required=True)
    type = fields.String(required=True)
    object_type = fields.String(required=True)
    object_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    attempts = fields.Integer(required=True)
    code = fields.String(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class EventPageSchema(Schema):
    data = fields.List(fields.Nested(EventSummarySchema), required=True)
    next = fields.String(allow_none=True, required=True, metadata={"description": "cursor of the next page"})


_ACCOUNT_ID = [validate.Length(min=1, max=ACCOUNT_ID_MAX), IDENTIFIER]


class LinkRequestSchema(Schema):
    """Body of ``POST /admin/links`` (and the console's link form): two accounts that already exist."""

    zuora_account_id = fields.String(required=True, validate=_ACCOUNT_ID,
                                     metadata={"description": "Zuora account ID or number"})
    billing_account_id = fields.String(required=True, validate=_ACCOUNT_ID,
                                       metadata={"description": "billing account ID"})


class LinkResultSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["queued"]), metadata={
        "description": "queued: a worker writes the link on both sides and records the mapping"})
    event_id = fields.String(required=True, metadata={"description": "the account.link event"})
    message = fields.String(required=True)
    event = fields.String(required=True, metadata={
        "description": "the event's address (also the `Location` header): GET it to follow the link; status "
                       "`done` is linked, `failed` refused (the reason in `last_error`)"})


def _check_period(value: str) -> None:
    try:
        parse_period(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class TotalsQuerySchema(Schema):
    """Query of ``GET /admin/reports/totals``."""

    class Meta:
        unknown = EXCLUDE

    period = fields.String(required=True, validate=_check_period,
                           metadata={"description": "the month, YYYY-MM (UTC)", "example": "2024-07"})


_AMOUNT = {"description": "an exact decimal, as a string", "example": "120.50"}


class InvoiceTotalsSchema(Schema):
    billing_invoice_id = fields.String(required=True)
    zuora_invoice_id = fields.String(required=True, allow_none=True,
                                     metadata={"description": "the linked Zuora invoice; null when none is"})
    billing_total = fields.String(required=True, metadata=_AMOUNT)
    zuora_total = fields.String(required=True, metadata=_AMOUNT)
    difference = fields.String(required=True, metadata={**_AMOUNT, "description": "zuora_total − billing_total"})
    notes = fields.List(fields.String(), required=True)


class AccountTotalsSchema(Schema):
    zuora_account = fields.String(required=True, metadata={"description": "Zuora account number (else ID)"})
    zuora_account_id = fields.String(required=True)
    billing_account = fields.String(required=True)
    currency = fields.String(required=True, allow_none=True)
    billing_total = fields.String(required=True, metadata=_AMOUNT)
    zuora_total = fields.String(required=True, metadata=_AMOUNT)
    difference = fields.String(required=True, metadata=_AMOUNT)
    matches = fields.Boolean(required=True)
    invoice_count = fields.Integer(required=True)
    invoices = fields.List(fields.Nested(InvoiceTotalsSchema), required=True,
                           metadata={"description": "the invoices that differ; each one's notes name what "
                                                    "differs (charges, discount, credits applied, tax, true-up, "
                                                    "rounding, usage)"})
    warnings = fields.List(fields.String(), required=True,
                           metadata={"description": "what to know although it may match: the billing platform's "
                                                    "rounding of an invoice's subtotal, by invoice"})


class CurrencyTotalsSchema(Schema):
    currency = fields.String(required=True, allow_none=True)
    accounts = fields.Integer(required=True)
    mismatches = fields.Integer(required=True)
    billing_total = fields.String(required=True, metadata=_AMOUNT)
    zuora_total = fields.String(required=True, metadata=_AMOUNT)
    difference = fields.String(required=True, metadata=_AMOUNT)


class TotalsReportSchema(Schema):
    period = fields.String(required=True)
    mismatches = fields.Integer(required=True, metadata={"description": "account rows that differ"})
    data = fields.List(fields.Nested(AccountTotalsSchema), required=True,
                       metadata={"description": "one row per account and currency, mismatches first"})
    currencies = fields.List(fields.Nested(CurrencyTotalsSchema), required=True)
