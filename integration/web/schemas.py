"""Marshmallow schemas for every payload the service takes in or gives out.

They validate hostile input (each webhook and admin request) and feed ``/openapi.json`` through
apispec, so the document and the checks can never disagree.
"""
from __future__ import annotations

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from integration.actions.limits import (
    ACCOUNT_ID_MAX,
    CURSOR_MAX,
    EVENT_ID_MAX,
    ID_MAX,
    PAGE_DEFAULT,
    PAGE_MAX,
    SELECTOR_MAX_IDS,
    SYNC_MAX_IDS,
)
from integration.domain.errors import FAILURE_CODES
from integration.domain.identifiers import IDENTIFIER
from integration.domain.kinds import MeterMode, ObjectType, values


class ZuoraCalloutSchema(Schema):
    """The custom body of the Zuora callout template: ``{"AccountId": "{{Account.Id}}"}``."""

    class Meta:
        unknown = EXCLUDE

    AccountId = fields.String(required=True, validate=[validate.Length(min=1, max=64), IDENTIFIER],
                              metadata={"description": "Zuora account ID or number"})


class AcceptedSchema(Schema):
    success = fields.Boolean(metadata={"description": "Zuora callouts: always true on a 200, for Zuora's "
                                                      "\"confirm success by parsing response content\" option"})
    accepted = fields.Boolean(required=True)
    event_id = fields.String(metadata={"description": "the inbox event that will do the work"})
    ignored = fields.String(metadata={"description": "an event type the service does not sync"})


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "machine-readable error code"})
    reason = fields.String(metadata={"description": "a refused webhook's 401: its cause, one code per cause "
                                                    "(missing_credentials, signature_mismatch, …)"})
    detail = fields.Raw(metadata={"description": "what was wrong, by field where that applies"})


class MappingQuerySchema(Schema):
    """Filters and paging of ``GET /admin/mappings``."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(validate=validate.OneOf(["account", "invoice", "usage"]))
    zuora_id = fields.String(validate=[validate.Length(min=1, max=ID_MAX), IDENTIFIER])
    billing_id = fields.String(validate=[validate.Length(min=1, max=ID_MAX), IDENTIFIER])
    limit = fields.Integer(load_default=PAGE_DEFAULT, validate=validate.Range(min=1, max=PAGE_MAX))
    after = fields.String(validate=validate.Length(min=1, max=CURSOR_MAX),
                          metadata={"description": "cursor from `next`"})


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
    reversal = fields.String(metadata={"description": "invoices voided after the push: cancelled (a Draft twin) "
                                                      "or reversed (a Posted one, into a credit memo)"})
    reversed_at = fields.DateTime(metadata={"description": "invoices: when the Zuora twin was undone"})
    credit_memo_id = fields.String(allow_none=True, metadata={"description": "invoices: the reversal's credit memo"})


class MappingPageSchema(Schema):
    data = fields.List(fields.Nested(MappingSchema), required=True)
    next = fields.String(allow_none=True, required=True)


# -- admin: failures and events -------------------------------------------------------------------

OBJECT_TYPES = values(ObjectType)
EVENT_ID = [validate.Length(min=1, max=EVENT_ID_MAX), IDENTIFIER]


class StrictBoolean(fields.Boolean):
    """A JSON ``true``/``false`` only: ``1`` or ``"yes"`` in an operator's request is a mistake,
    not a wish to act on every failure."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class FailureQuerySchema(Schema):
    """Filters and paging of ``GET /admin/failures``."""

    class Meta:
        unknown = EXCLUDE

    object_type = fields.String(validate=validate.OneOf(OBJECT_TYPES))
    code = fields.String(validate=validate.OneOf(FAILURE_CODES), metadata={"description": "a CONTRACT §5 failure code"})
    limit = fields.Integer(load_default=PAGE_DEFAULT, validate=validate.Range(min=1, max=PAGE_MAX))
    after = fields.String(validate=validate.Length(min=1, max=CURSOR_MAX),
                          metadata={"description": "cursor from `next`"})


class FailureSchema(Schema):
    id = fields.String(required=True, metadata={"description": "the inbox event"})
    object_type = fields.String(required=True, metadata={"description": "account, invoice or usage"})
    object_id = fields.String(required=True, metadata={"description": "the object's ID in its source system"})
    source = fields.String(required=True, metadata={"description": "zuora, billing or admin"})
    code = fields.String(required=True, allow_none=True, metadata={"description": "CONTRACT §5 failure code"})
    message = fields.String(required=True, allow_none=True,
                            metadata={"description": "the remote's message, or which field was wrong"})
    attempts = fields.Integer(required=True)
    first_failed_at = fields.DateTime(required=True, allow_none=True)
    last_failed_at = fields.DateTime(required=True, allow_none=True)


class FailurePageSchema(Schema):
    data = fields.List(fields.Nested(FailureSchema), required=True)
    next = fields.String(allow_none=True, required=True, metadata={"description": "cursor of the next page"})


class FailureSelectorSchema(Schema):
    """Which failed events ``POST /admin/failures/retry`` or ``DELETE /admin/failures`` acts on:
    exactly one of ``ids``, ``object_type`` or ``all: true``."""

    ids = fields.List(fields.String(validate=EVENT_ID), validate=validate.Length(min=1, max=SELECTOR_MAX_IDS),
                      metadata={"description": f"1 to {SELECTOR_MAX_IDS:,} event IDs"})
    object_type = fields.String(validate=validate.OneOf(OBJECT_TYPES))
    all = StrictBoolean(validate=validate.Equal(True, error="Must be true."),
                        metadata={"description": "must be `true`: every failed event"})

    @validates_schema
    def exactly_one_selector(self, data, **kwargs):
        given = [name for name in ("ids", "object_type", "all") if name in data]
        if not given:
            raise ValidationError("Give exactly one of: ids, object_type, all.")
        if len(given) > 1:
            raise ValidationError({name: [f"Give only one of: {', '.join(given)}."] for name in given})


class RetriedSchema(Schema):
    retried = fields.Integer(required=True, metadata={"description": "events put back in the queue"})
    not_found = fields.List(fields.String(), metadata={
        "description": "with `ids`: those that name no event, or a deleted one (absent for other selectors)"})


class DeletedSchema(Schema):
    deleted = fields.Integer(required=True, metadata={"description": "events marked deleted (kept for audit)"})
    not_found = fields.List(fields.String(), metadata={
        "description": "with `ids`: those that name no event, or a deleted one (absent for other selectors)"})


class AttemptSchema(Schema):
    series = fields.Integer(required=True, metadata={
        "description": "the attempt series (1 first; each operator, scheduled or MISSING_MAPPING retry starts "
                       "the next, with a new Zuora Idempotency-Key)"})
    attempt = fields.Integer(required=True, metadata={"description": "the attempt's number within its series"})
    worker_id = fields.String(required=True, metadata={"description": "the worker that ran it"})
    started_at = fields.DateTime(required=True)
    ended_at = fields.DateTime(required=True, allow_none=True, metadata={"description": "null while it runs"})
    outcome = fields.String(required=True, allow_none=True, validate=validate.OneOf(
        ["done", "rescheduled", "failed", "lost"]), metadata={
        "description": "null while it runs; lost: its worker died and the lease was taken over"})
    code = fields.String(required=True, allow_none=True, validate=validate.OneOf(FAILURE_CODES),
                         metadata={"description": "the failure code of a failed attempt"})
    message = fields.String(required=True, allow_none=True,
                            metadata={"description": "the remote message (truncated; never a secret)"})


class EventSchema(Schema):
    id = fields.String(required=True)
    source = fields.String(required=True, metadata={"description": "zuora, billing or admin"})
    type = fields.String(required=True, metadata={
        "description": "account.callout, account.created, account.updated, invoice.finalized or invoice.usage"})
    object_type = fields.String(required=True, metadata={"description": "account, invoice or usage"})
    object_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["pending", "running", "done", "failed", "deleted"]))
    attempts = fields.Integer(required=True, metadata={"description": "attempts since it was recorded or last retried"})
    next_attempt_at = fields.DateTime(required=True, allow_none=True,
                                      metadata={"description": "when a pending event runs next; null otherwise"})
    code = fields.String(required=True, allow_none=True, metadata={"description": "failure code, if it failed"})
    last_error = fields.String(required=True, allow_none=True)
    waiting_for = fields.String(allow_none=True, metadata={"description": "MISSING_MAPPING: the account it waits for"})
    first_failed_at = fields.DateTime(allow_none=True)
    last_failed_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    series = fields.Integer(required=True, metadata={"description": "the current attempt series"})
    history = fields.List(fields.Nested(AttemptSchema), required=True,
                          metadata={"description": "every attempt of every series, oldest first"})


# -- admin: meters ----------------------------------------------------------------------------------

class MeterSettingsInputSchema(Schema):
    """Body of ``PUT /admin/meters/{meter_id}``."""

    zuora_subscription_number = fields.String(required=True, validate=[validate.Length(min=1, max=100), IDENTIFIER])
    zuora_charge_number = fields.String(required=True, validate=[validate.Length(min=1, max=50), IDENTIFIER])
    uom = fields.String(required=True, validate=validate.Length(min=1, max=100),
                        metadata={"description": "the Zuora unit of measure of the charge"})
    mode = fields.String(required=True, validate=validate.OneOf(values(MeterMode)),
                         metadata={"description": "quantity: the usage quantity; revenue: the meter's revenue"})


class MeterSchema(Schema):
    meter_id = fields.String(required=True)
    zuora_subscription_number = fields.String(required=True)
    zuora_charge_number = fields.String(required=True)
    uom = fields.String(required=True)
    mode = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class MeterListSchema(Schema):
    data = fields.List(fields.Nested(MeterSchema), required=True)


# -- admin: on-demand sync ----------------------------------------------------------------------------

def _account_id() -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=ACCOUNT_ID_MAX), IDENTIFIER])


class SyncRequestSchema(Schema):
    """Body of ``POST /admin/sync``: at most SYNC_MAX_IDS (10) account IDs in all."""

    zuora_account_ids = fields.List(_account_id(), load_default=list,
                                    metadata={"description": "Zuora account IDs or numbers: Zuora → billing"})
    billing_account_ids = fields.List(_account_id(), load_default=list,
                                      metadata={"description": "billing account IDs: billing → Zuora"})

    @validates_schema
    def between_one_and_ten(self, data, **kwargs):
        total = len(data.get("zuora_account_ids", [])) + len(data.get("billing_account_ids", []))
        if total == 0:
            raise ValidationError("Give at least one ID in zuora_account_ids or billing_account_ids.")
        if total > SYNC_MAX_IDS:
            raise ValidationError(f"At most {SYNC_MAX_IDS} IDs in all (zuora_account_ids and billing_account_ids);"
                                  f" got {total}.")


class SyncResultSchema(Schema):
    system = fields.String(required=True, validate=validate.OneOf(["zuora", "billing"]),
                           metadata={"description": "which system the ID belongs to"})
    id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["queued", "already_in_progress"]))
    event_id = fields.String(required=True, metadata={
        "description": "the event queued, or the pending/running one already syncing this account"})


class SyncResponseSchema(Schema):
    results = fields.List(fields.Nested(SyncResultSchema), required=True,
                          metadata={"description": "one per ID, in request order (Zuora IDs first)"})


# -- ops ------------------------------------------------------------------------------------------------

class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "`ok` or `ready`"})
