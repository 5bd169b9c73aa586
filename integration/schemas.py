"""Marshmallow schemas for every payload the service takes in or gives out.

They validate hostile input (each webhook and admin request) and feed ``/openapi.json`` through
apispec, so the document and the checks can never disagree.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

NO_WHITESPACE = validate.Regexp(r"^\S*$", error="must not contain whitespace")


class ZuoraCalloutSchema(Schema):
    """The custom body of the Zuora callout template: ``{"AccountId": "{{Account.Id}}"}``."""

    class Meta:
        unknown = EXCLUDE

    AccountId = fields.String(required=True, validate=[validate.Length(min=1, max=64), NO_WHITESPACE],
                              metadata={"description": "Zuora account ID or number"})


class BillingEventDataSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=[validate.Length(min=1, max=255), NO_WHITESPACE],
                       metadata={"description": "ID of the billing object; the service fetches it"})


class BillingEventSchema(Schema):
    """A Standard-Webhooks-signed billing event: a pointer, never the data itself."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.Length(min=1, max=100),
                         metadata={"description": "account.created, account.updated or invoice.finalized"})
    data = fields.Nested(BillingEventDataSchema, required=True)


class AcceptedSchema(Schema):
    accepted = fields.Boolean(required=True)
    event_id = fields.String(metadata={"description": "the inbox event that will do the work"})
    ignored = fields.String(metadata={"description": "an event type the service does not sync"})


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "machine-readable error code"})
    detail = fields.Raw(metadata={"description": "what was wrong, by field where that applies"})


class MappingQuerySchema(Schema):
    """Filters and paging of ``GET /admin/mappings``."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(validate=validate.OneOf(["account", "invoice", "usage"]))
    zuora_id = fields.String(validate=validate.Length(min=1, max=255))
    billing_id = fields.String(validate=validate.Length(min=1, max=255))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    after = fields.String(validate=validate.Length(min=1, max=100), metadata={"description": "cursor from `next`"})


class MappingSchema(Schema):
    type = fields.String(required=True, metadata={"description": "account, invoice or usage"})
    zuora_id = fields.String(required=True)
    zuora_number = fields.String(allow_none=True)
    billing_id = fields.String(required=True)
    billing_customer_id = fields.String(metadata={"description": "accounts: the billing customer"})
    billing_parent_id = fields.String(metadata={"description": "invoices and usage: the billing invoice"})
    origin = fields.String(required=True, metadata={"description": "zuora, billing or linked"})
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class MappingPageSchema(Schema):
    data = fields.List(fields.Nested(MappingSchema), required=True)
    next = fields.String(allow_none=True, required=True)
