"""Togai's webhook envelope, ``{"type", "data": {"id"}}``: the schema the web validates a billing
webhook's body with (a malformed envelope is a 400 naming the field) and that ``/openapi.json`` documents.
The adapter owns it, as it owns the signatures (integration.billing.togai.webhooks): another platform's
envelope is another adapter's schema, never the web's."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from integration.domain.identifiers import IDENTIFIER


class BillingEventDataSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=[validate.Length(min=1, max=255), IDENTIFIER],
                       metadata={"description": "ID of the billing object; the service fetches it"})


class BillingEventSchema(Schema):
    """A Standard-Webhooks-signed billing event: a pointer, never the data itself."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=[validate.Length(min=1, max=100), IDENTIFIER],
                         metadata={"description": "account.created, account.updated, invoice.finalized, "
                                                   "invoice.voided or invoice.updated"})
    data = fields.Nested(BillingEventDataSchema, required=True)
