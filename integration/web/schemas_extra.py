"""Schemas of the admin routes added for the console and the commands (CONTRACT §4): the event
list and links. They feed ``/openapi.json`` like the rest."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from integration.domain.identifiers import IDENTIFIER
from integration.store.events_list import SOURCES, STATUSES

_ID = [validate.Length(min=1, max=255), IDENTIFIER]


class EventQuerySchema(Schema):
    """Filters and paging of ``GET /admin/events`` (newest first)."""

    class Meta:
        unknown = EXCLUDE

    status = fields.String(validate=validate.OneOf(STATUSES))
    source = fields.String(validate=validate.OneOf(SOURCES))
    type = fields.String(validate=[validate.Length(min=1, max=100), IDENTIFIER],
                         metadata={"description": "an event type, e.g. account.callout or invoice.finalized"})
    object_id = fields.String(validate=_ID)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    after = fields.String(validate=validate.Length(min=1, max=100), metadata={"description": "cursor from `next`"})


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


class LinkRequestSchema(Schema):
    """Body of ``POST /admin/links``: two accounts that already exist."""

    zuora_account_id = fields.String(required=True, validate=[validate.Length(min=1, max=64), IDENTIFIER],
                                     metadata={"description": "Zuora account ID or number"})
    billing_account_id = fields.String(required=True, validate=_ID)


class LinkResultSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["linked", "queued"]), metadata={
        "description": "linked: written on both sides and recorded; queued (202): no worker finished it in time"})
    event_id = fields.String(required=True, metadata={"description": "the account.link event"})
    message = fields.String(required=True)
