"""Request schemas (Togai's ``additionalProperties: false`` is marshmallow's ``unknown=RAISE``) and
the field checks they use; :func:`load` turns a refusal into a 400 naming every field."""
from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pycountry
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .common import (
    _NUMERIC,
    INVOICE_STATUSES,
    SETTING_DATA_TYPES,
    SETTING_ENTITY_TYPES,
    ApiError,
)
from .invoices import DEFAULT_SHAPE, FIXED_LINE_TYPES, SHAPES, json_loads

# -- field validators ------------------------------------------------------------------------------

def _country(value: str) -> None:
    if not (len(value) == 2 and value.isascii() and value.isupper()
            and pycountry.countries.get(alpha_2=value) is not None):
        raise ValidationError("Not a valid ISO-3166-1 alpha-2 country code.")


def _currency(value: str) -> None:
    if not (len(value) == 3 and value.isascii() and value.isupper()
            and pycountry.currencies.get(alpha_3=value) is not None):
        raise ValidationError("Not a valid ISO-4217 currency code.")


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _setting_value_matches(data_type: str, value: str) -> None:
    """NUMERIC values must be numbers and JSON/JSON_LOGIC values parseable JSON."""
    if data_type == "NUMERIC" and not _NUMERIC.fullmatch(value):
        raise ValidationError({"value": ["Not a valid NUMERIC value."]})
    if data_type in ("JSON", "JSON_LOGIC"):
        try:
            json_loads(value)
        except (ValueError, RecursionError):
            raise ValidationError({"value": [f"Not a valid {data_type} value."]}) from None


def _id_field(max_length: int = 50, **kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(max=max_length), _not_blank], **kwargs)


def _email_field(**kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(max=320), validate.Email()], **kwargs)


# -- request schemas (additionalProperties: false → marshmallow's default unknown=RAISE) --------------

class AddressSchema(Schema):
    phoneNumber = fields.String()
    line1 = fields.String()
    line2 = fields.String()
    postalCode = fields.String()
    city = fields.String()
    state = fields.String()
    country = fields.String(validate=_country)


class EntitySettingSchema(Schema):
    """CreateEntitySetting: all five keys required."""

    id = fields.String(required=True, validate=_not_blank)
    value = fields.String(required=True)
    namespace = fields.String(required=True, validate=_not_blank)
    name = fields.String(required=True, validate=_not_blank)
    dataType = fields.String(required=True, validate=validate.OneOf(SETTING_DATA_TYPES))

    @validates_schema
    def _value_fits_type(self, data: dict, **kwargs: Any) -> None:
        _setting_value_matches(data["dataType"], data["value"])


class SettingSchema(EntitySettingSchema):
    """The body of ``POST /settings`` (Togai's ``Setting``)."""

    entityType = fields.String(required=True, validate=validate.OneOf(SETTING_ENTITY_TYPES))
    entityId = fields.String(required=True, validate=_not_blank)


class UpdateSettingSchema(Schema):
    name = fields.String(validate=_not_blank)
    value = fields.String()
    dataType = fields.String(validate=validate.OneOf(SETTING_DATA_TYPES))


class AccountAliasSchema(Schema):
    value = fields.String(required=True, validate=validate.Length(min=1, max=50))
    effectiveFrom = fields.AwareDateTime()
    effectiveUntil = fields.AwareDateTime()


def _settings_list() -> fields.List:
    return fields.List(fields.Nested(EntitySettingSchema), validate=validate.Length(max=10))


class AccountFieldsSchema(Schema):
    """CreateAccountRequestWithoutCustomerId."""

    id = _id_field(required=True)
    name = fields.String(required=True, validate=validate.Length(min=3, max=255))
    invoiceCurrency = fields.String(validate=_currency)
    aliases = fields.List(fields.String(validate=validate.Length(min=3, max=50)),
                          validate=validate.Length(max=10))
    accountAliases = fields.List(fields.Nested(AccountAliasSchema))
    address = fields.Nested(AddressSchema)
    primaryEmail = _email_field()
    billingInformation = fields.Dict()
    settings = _settings_list()
    netTermDays = fields.Integer(strict=True, validate=validate.Range(min=0, max=2**31 - 1))
    metadata = fields.Dict(keys=fields.String(), values=fields.String())
    tags = fields.List(fields.String())
    status = fields.String(validate=validate.OneOf(("ACTIVE", "DRAFT")))


class CreateAccountSchema(AccountFieldsSchema):
    customerId = fields.String(required=True, validate=[validate.Length(min=1, max=255), _not_blank])


class UpdateAccountSchema(Schema):
    name = fields.String(validate=validate.Length(min=3, max=255))
    status = fields.String(validate=validate.OneOf(("ACTIVE", "DRAFT")))
    invoiceCurrency = fields.String(validate=_currency)
    netTermDays = fields.Integer(strict=True, validate=validate.Range(min=0, max=2**31 - 1))
    primaryEmail = _email_field()
    billingInformation = fields.Dict()
    address = fields.Nested(AddressSchema)
    metadata = fields.Dict(keys=fields.String(), values=fields.String())
    tags = fields.List(fields.String())


class CreateCustomerSchema(Schema):
    id = _id_field(required=True)
    name = fields.String(required=True, validate=validate.Length(min=3, max=255))
    primaryEmail = _email_field(required=True)
    address = fields.Nested(AddressSchema, required=True)
    settings = _settings_list()
    account = fields.Nested(AccountFieldsSchema)


class UpdateCustomerSchema(Schema):
    name = fields.String(validate=validate.Length(min=3, max=255))
    primaryEmail = _email_field()
    address = fields.Nested(AddressSchema)


# -- sandbox-control schemas -------------------------------------------------------------------------

class _Number(fields.Field):
    """A JSON number (parsed as Decimal), never a string or bool; bounded so money stays sane."""

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": "Not a valid number.",
                              "range": "Must have at most 15 integer and 12 fractional digits."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise self.make_error("invalid")
        number = Decimal(value)
        exponent = number.as_tuple().exponent
        if not number.is_finite() or abs(number) >= Decimal(10) ** 15 or exponent < -12:
            raise self.make_error("range")
        return number


class _Bool(fields.Field):
    """A JSON ``true``/``false`` only (marshmallow's Boolean also takes "yes", 1, ...)."""

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": "Not a valid boolean."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class _Instant(fields.Field):
    """``YYYY-MM-DD`` (midnight UTC) or an ISO-8601 date-time; a naive time is taken as UTC."""

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": "Not a valid ISO-8601 date or date-time."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 40:
            raise self.make_error("invalid")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.make_error("invalid") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)


MAX_INVOICE_LINES = 20_000
"""A sandbox bound, high enough for invoices with thousands of usage meters (the scale tests)."""


class FixedLineSchema(Schema):
    id = _id_field()
    description = fields.String(required=True, validate=[validate.Length(max=255), _not_blank])
    type = fields.String(validate=validate.OneOf(FIXED_LINE_TYPES))
    amount = _Number()
    quantity = _Number(validate=validate.Range(min=0))
    valuePerQuantity = _Number()

    @validates_schema
    def _amount_or_rate(self, data: dict, **kwargs: Any) -> None:
        if "amount" not in data and not {"quantity", "valuePerQuantity"} <= data.keys():
            raise ValidationError("Give amount, or quantity and valuePerQuantity.")


class UsageLineSchema(Schema):
    meterId = _id_field(max_length=20, required=True)  # UsageMeter.id maxLength 20
    name = fields.String(required=True, validate=[validate.Length(max=50), _not_blank])
    description = fields.String(validate=[validate.Length(max=255), _not_blank])
    id = _id_field()
    quantity = _Number(required=True, validate=validate.Range(min=0))
    units = fields.String(validate=validate.Length(max=50))
    valuePerQuantity = _Number(required=True)


class NamedAmountSchema(Schema):
    description = fields.String(required=True, validate=[validate.Length(max=255), _not_blank])
    amount = _Number(required=True)


class CreditSchema(Schema):
    description = fields.String(required=True, validate=[validate.Length(max=255), _not_blank])
    granted = _Number(required=True, validate=validate.Range(min=0))
    applied = _Number(required=True, validate=validate.Range(min=0))


class AdjustmentsSchema(Schema):
    """What an invoice carries between its lines and its total (integration_sandbox.billing.adjustments)."""

    grossAmount = _Number()
    discount = _Number(validate=validate.Range(min=0))
    trueUp = _Number(validate=validate.Range(min=0))
    taxes = fields.List(fields.Nested(NamedAmountSchema), validate=validate.Length(max=50))
    credits = fields.List(fields.Nested(CreditSchema), validate=validate.Length(max=50))
    miscellaneous = fields.List(fields.Nested(NamedAmountSchema), validate=validate.Length(max=50))
    custom = fields.List(fields.Nested(NamedAmountSchema), validate=validate.Length(max=50))


def _document(value: Any) -> None:
    """A Togai ``Invoice`` served as given: it needs a ``revenueInfo`` tree and a numeric ``totalAmount``."""
    revenue, total = value.get("revenueInfo"), value.get("totalAmount")
    if not isinstance(revenue, (dict, list)):
        raise ValidationError("revenueInfo must be a line item or a list of line items.")
    if isinstance(total, bool) or not isinstance(total, (int, Decimal)):
        raise ValidationError("totalAmount must be a number.")
    if not isinstance(value.get("usageInfo", []), list):
        raise ValidationError("usageInfo must be a list.")


class InvoiceSpecSchema(Schema):
    id = _id_field()
    accountId = _id_field(required=True)
    startDate = _Instant(required=True)
    endDate = _Instant(required=True)
    invoiceDate = _Instant()
    dueDate = _Instant()
    fixed = fields.List(fields.Nested(FixedLineSchema), load_default=list)
    usage = fields.List(fields.Nested(UsageLineSchema), load_default=list)
    status = fields.String(validate=validate.OneOf(INVOICE_STATUSES))
    finalize = _Bool(load_default=True)
    paidAmount = _Number()
    netTermDays = fields.Integer(strict=True, validate=validate.Range(min=0, max=3650))
    metadata = fields.Dict(keys=fields.String(), values=fields.String())
    shape = fields.String(load_default=DEFAULT_SHAPE, validate=validate.OneOf(SHAPES))
    adjustments = fields.Nested(AdjustmentsSchema)
    document = fields.Dict(keys=fields.String(), validate=_document)

    @validates_schema
    def _consistent(self, data: dict, **kwargs: Any) -> None:
        if data["endDate"] <= data["startDate"]:
            raise ValidationError({"endDate": ["Must be after startDate."]})
        if "document" in data and (data["fixed"] or data["usage"] or "adjustments" in data):
            raise ValidationError({"document": ["A document is served as given: no fixed, usage or adjustments "
                                                "beside it."]})
        if len(data["fixed"]) + len(data["usage"]) > MAX_INVOICE_LINES:
            raise ValidationError(f"An invoice has at most {MAX_INVOICE_LINES} lines.")
        status = data.get("status")
        if data["finalize"] and status == "DRAFT":
            raise ValidationError({"status": ["A finalized invoice cannot be DRAFT."]})
        if not data["finalize"] and status not in (None, "DRAFT"):
            raise ValidationError({"status": ["An invoice that is not finalized must be DRAFT."]})


VOID_EVENTS = ("invoice.voided", "invoice.updated")


class FinalizeSchema(Schema):
    status = fields.String(validate=validate.OneOf([s for s in INVOICE_STATUSES if s != "DRAFT"]))


class VoidSchema(Schema):
    event = fields.String(load_default="invoice.voided", validate=validate.OneOf(VOID_EVENTS))


class ConfigSchema(Schema):
    webhook_url = fields.String(allow_none=True, validate=validate.Length(max=2000))
    webhook_secret = fields.String()
    extra_webhook_secrets = fields.List(fields.String(), validate=validate.Length(max=5))
    webhook_retry_schedule = fields.List(_Number(validate=validate.Range(min=0, max=3600)),
                                         validate=validate.Length(max=20))
    emit_api_events = _Bool()

    @validates_schema
    def _check(self, data: dict, **kwargs: Any) -> None:
        url = data.get("webhook_url")
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValidationError({"webhook_url": ["Must be an http(s) URL."]})
        if "webhook_secret" in data:
            _check_secret(data["webhook_secret"], "webhook_secret")
        for i, secret in enumerate(data.get("extra_webhook_secrets", ())):
            _check_secret(secret, f"extra_webhook_secrets[{i}]")


class ResendSchema(Schema):
    type = fields.String(required=True, validate=[validate.Length(max=100), _not_blank])
    id = fields.String(required=True, validate=[validate.Length(max=255), _not_blank])
    new = _Bool(load_default=False)


class SandboxAccountSchema(Schema):
    customer = fields.Dict()
    account = fields.Dict()


def _check_secret(secret: str, key: str) -> None:
    """A Standard Webhooks secret: ``whsec_`` + base64 of at least 24 bytes."""
    body = secret[len("whsec_"):] if secret.startswith("whsec_") else None
    try:
        raw = base64.b64decode((body or "") + "=" * (-len(body or "") % 4), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if body is None or len(raw) < 24:
        raise ValidationError({key: ["Must be whsec_ followed by base64 of at least 24 bytes."]})


def _flatten(messages: Any, prefix: str = "") -> list[str]:
    """marshmallow's nested error dict → ["account.address.country: Not a valid ...", ...]."""
    if isinstance(messages, dict):
        out: list[str] = []
        for key in sorted(messages, key=lambda k: (1, k) if isinstance(k, int) else (0, str(k))):
            if key == "_schema":
                label = prefix
            elif isinstance(key, int):
                label = f"{prefix}[{key}]"
            else:
                label = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten(messages[key], label))
        return out
    if isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            text = " ".join(messages)
            return [f"{prefix}: {text}" if prefix else text]
        return [line for m in messages for line in _flatten(m, prefix)]
    return [f"{prefix}: {messages}" if prefix else str(messages)]


def load(schema: Schema, payload: Any) -> dict:
    """Validate ``payload`` with ``schema``; refusals become 400 ``{"message": ...}``."""
    if not isinstance(payload, dict):
        raise ApiError(400, "Request body must be a JSON object")
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise ApiError(400, "; ".join(_flatten(exc.messages))) from None
