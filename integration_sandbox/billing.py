"""The built-in billing-platform sandbox: a small Flask app that behaves like Togai's REST API.

WHY: tests, the demo and users without a tenant run against it, so wherever Togai is strict this must be
strict too, or our bugs ship. Field limits, ``additionalProperties: false``, status codes and the
``{"message": ...}`` error shape follow Togai's OpenAPI spec (``TogaiHQ/togai-mintlify-docs``
``openapi.yaml`` and the generated ``togai-python-client`` 1.0.3 models; see
``reference/billing-platforms.md`` §A).

API (Bearer token on every path outside ``/_sandbox``; missing or wrong → 401):

- ``POST /customers`` (201), ``GET``/``PATCH /customers/{id}``
- ``POST /accounts`` (201), ``GET``/``PATCH /accounts/{id}``; ``invoiceCurrency`` is immutable
- ``POST /settings`` (201), ``GET /settings`` (``entity_type``, ``entity_id``, ``namespace``,
  ``setting_id``, ``pageSize`` ≤ 50 default 10, ``nextToken``) → ``{"data", "nextToken"?, "context"}``,
  ``GET /settings/{id}``, ``PATCH /settings/{id}`` (201, as the spec lists for update)
- ``GET /invoices/{id}`` in Togai's ``Invoice`` shape, amounts as exact JSON numbers; the line-item
  trees in the shape the invoice was created with (``shape`` of ``POST /_sandbox/invoices``: ``nested``
  by default, ``flat``, ``total_usage``, ``documented``, ``legacy``; see
  :mod:`integration_sandbox.billing_invoices`), so tests meet each of Togai's documented variants

Choices where the spec is silent (each the stricter reading):

- A duplicate customer, account, setting or invoice ID → **400** ``"... already exists"``: Togai
  documents no 409, so a client must recognise the conflict from the message.
- Every account creation emits ``account.created`` and every PATCH that changes an account emits
  ``account.updated`` — through the API too, as Togai's "Account creation" trigger fires whatever the
  channel. So the service sees the echo of its own writes. ``POST /_sandbox/config
  {"emit_api_events": false}`` turns API-originated events off.
- A setting is unique by ID and by (entityType, entityId, namespace, name).
- Leaf line items carry no ``lineItems`` key (the spec's InvoiceLineItem has none); parents do.

Outgoing events are Standard-Webhooks-signed POSTs of ``{"type", "data": {"id"}}`` sent from one
background thread, retried on non-2xx and connection errors per ``webhook_retry_schedule``; the
``webhook-id`` is stable across retries and resends of one event. Control and inspection live under
``/_sandbox`` (no auth): see :func:`create_billing_sandbox`.
"""
from __future__ import annotations

import base64
import binascii
import heapq
import hmac
import itertools
import json
import logging
import os
import re
import secrets
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import flask
import pycountry
import requests
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from standardwebhooks import Webhook
from werkzeug.exceptions import HTTPException

from integration_sandbox import faults as faults_module
from integration_sandbox.billing_invoices import (
    DEFAULT_SHAPE,
    FIXED_LINE_TYPES,
    SHAPES,
    DecimalJSONProvider,
    inclusive_end,
    invoice_trees,
    iso,
    json_loads,
)

log = logging.getLogger(__name__)

EVENT_TYPES = ("account.created", "account.updated", "invoice.finalized")
SETTING_DATA_TYPES = ("STRING", "NUMERIC", "JSON", "JSON_LOGIC")
# docs/settings.mdx says ten entity types carry settings; the spec names none, these are Togai's entities.
SETTING_ENTITY_TYPES = ("ORGANIZATION", "CUSTOMER", "ACCOUNT", "USAGE_METER", "PRICE_PLAN", "ADDON",
                        "FEATURE", "EVENT_SCHEMA", "INVOICE", "INVOICE_GROUP")
INVOICE_STATUSES = ("DRAFT", "DUE", "PAID", "VOID", "UN_COLLECTIBLE", "REFUND_INITIATED",
                    "REFUND_COMPLETED", "MERGED", "PARTIALLY_PAID")
BASE_CURRENCY = "USD"  # "invoiceCurrency ... Defaults to Base currency"
MAX_BODY_BYTES = 1024 * 1024
REQUEST_LOG_SIZE = 1000
SETTINGS_PAGE_DEFAULT, SETTINGS_PAGE_MAX = 10, 50
DELIVERY_TIMEOUT = (3.05, 10.0)  # connect, read (seconds)
_NUMERIC = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


class ApiError(Exception):
    """A refusal answered as ``{"message": message}`` with ``status`` (Togai's error shape)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


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

    default_error_messages = {"invalid": "Not a valid number.",
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

    default_error_messages = {"invalid": "Not a valid boolean."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class _Instant(fields.Field):
    """``YYYY-MM-DD`` (midnight UTC) or an ISO-8601 date-time; a naive time is taken as UTC."""

    default_error_messages = {"invalid": "Not a valid ISO-8601 date or date-time."}

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

    @validates_schema
    def _consistent(self, data: dict, **kwargs: Any) -> None:
        if data["endDate"] <= data["startDate"]:
            raise ValidationError({"endDate": ["Must be after startDate."]})
        if len(data["fixed"]) + len(data["usage"]) > MAX_INVOICE_LINES:
            raise ValidationError(f"An invoice has at most {MAX_INVOICE_LINES} lines.")
        status = data.get("status")
        if data["finalize"] and status == "DRAFT":
            raise ValidationError({"status": ["A finalized invoice cannot be DRAFT."]})
        if not data["finalize"] and status not in (None, "DRAFT"):
            raise ValidationError({"status": ["An invoice that is not finalized must be DRAFT."]})


class FinalizeSchema(Schema):
    status = fields.String(validate=validate.OneOf([s for s in INVOICE_STATUSES if s != "DRAFT"]))


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


# -- helpers -----------------------------------------------------------------------------------------

def _system_clock() -> datetime:
    return datetime.now(timezone.utc)


def _togai_id(prefix: str) -> str:
    """IDs in Togai's style, e.g. ``cus.1zYnCiM9Bpg.1zYn``."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    head = "".join(secrets.choice(alphabet) for _ in range(11))
    tail = "".join(secrets.choice(alphabet) for _ in range(5))
    return f"{prefix}.{head}.{tail}"


def new_webhook_secret() -> str:
    """A fresh Standard Webhooks secret (``whsec_`` + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def billing_address(address: dict) -> str:
    """Togai's ``billingAddress`` string (≤1000 chars) from the structured address."""
    keys = ("line1", "line2", "city", "state", "postalCode", "country")
    return ", ".join(address[k] for k in keys if address.get(k))[:1000]


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(400, "Invalid nextToken") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ApiError(400, "Invalid nextToken")
    return offset


# -- the sandbox state ---------------------------------------------------------------------------------

class BillingSandbox:
    """All state of one billing sandbox, behind one lock, plus the webhook delivery thread.

    Routes call the public methods; tests and the demo read ``api_token``, ``webhook_secret`` and
    ``faults`` and call :meth:`wait_for_deliveries`.
    """

    def __init__(self, *, api_token: str, webhook_url: str | None, webhook_secret: str,
                 webhook_retry_schedule: Sequence[float], faults: faults_module.Faults,
                 clock: Callable[[], datetime]):
        self._lock = threading.RLock()
        self._cv = threading.Condition(self._lock)  # same lock: the one lock guards state and queue
        self._clock = clock
        self.faults = faults
        self._api_token = api_token
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self._extra_secrets: list[str] = []
        self._retry_schedule = [Decimal(str(s)) for s in webhook_retry_schedule]
        self._emit_api_events = True
        self._queue: list[tuple[float, int, str, int]] = []  # (due monotonic, seq, event id, round)
        self._seq = itertools.count()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._clear()

    def __repr__(self) -> str:
        return f"<BillingSandbox customers={len(self._customers)} events={len(self._events)}>"

    # -- configuration ---------------------------------------------------------------------------

    @property
    def api_token(self) -> str:
        return self._api_token

    @property
    def webhook_secret(self) -> str:
        with self._lock:
            return self._webhook_secret

    @property
    def webhook_url(self) -> str | None:
        with self._lock:
            return self._webhook_url

    def token_matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self._api_token.encode())

    def configure(self, **settings: Any) -> dict:
        """Change ``webhook_url``, ``webhook_secret``, ``extra_webhook_secrets`` (also sign with these,
        to test rotation), ``webhook_retry_schedule`` or ``emit_api_events`` at runtime.

        Validated like ``POST /_sandbox/config``: an invalid setting raises :class:`ApiError` (400)
        and nothing changes. Returns :meth:`config_view`.
        """
        schedule = settings.get("webhook_retry_schedule")
        if isinstance(schedule, (list, tuple)):
            settings["webhook_retry_schedule"] = [Decimal(str(s)) if isinstance(s, float) else s
                                                  for s in schedule]
        settings = load(ConfigSchema(), settings)
        with self._lock:
            if "webhook_url" in settings:
                self._webhook_url = settings["webhook_url"]
            if "webhook_secret" in settings:
                self._webhook_secret = settings["webhook_secret"]
            if "extra_webhook_secrets" in settings:
                self._extra_secrets = list(settings["extra_webhook_secrets"])
            if "webhook_retry_schedule" in settings:
                self._retry_schedule = list(settings["webhook_retry_schedule"])
            if "emit_api_events" in settings:
                self._emit_api_events = settings["emit_api_events"]
            return self.config_view()

    def config_view(self) -> dict:
        """The configuration without secret values."""
        with self._lock:
            return {"webhook_url": self._webhook_url,
                    "webhook_retry_schedule": list(self._retry_schedule),
                    "emit_api_events": self._emit_api_events,
                    "webhook_secret_count": 1 + len(self._extra_secrets)}

    # -- lifecycle -------------------------------------------------------------------------------

    def _clear(self) -> None:
        self._customers: dict[str, dict] = {}
        self._accounts: dict[str, dict] = {}
        self._settings: dict[str, dict] = {}
        self._invoices: dict[str, dict] = {}
        self._events: dict[str, dict] = {}
        self._requests: deque[dict] = deque(maxlen=REQUEST_LOG_SIZE)

    def reset(self) -> None:
        """Forget every object, event, queued delivery and logged request; reset the faults."""
        with self._cv:
            self._clear()
            self._queue.clear()
            self._cv.notify_all()
        self.faults.reset()

    def close(self) -> None:
        """Stop the delivery thread (queued deliveries are dropped)."""
        with self._cv:
            self._closed = True
            self._queue.clear()
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until no event is queued, waiting for a retry or in flight; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._queue and self._in_flight == 0, timeout)

    # -- customers and accounts ------------------------------------------------------------------

    def create_customer(self, payload: Any, *, via_api: bool = True) -> dict:
        """``POST /customers``: customer, its account (auto-created when absent) and inline settings."""
        data = load(CreateCustomerSchema(), payload)
        account_data = data.get("account") or {
            "id": data["id"], "name": data["name"], "primaryEmail": data["primaryEmail"],
            "address": dict(data["address"])}
        with self._lock:
            if data["id"] in self._customers:
                raise ApiError(400, f"Customer with id '{data['id']}' already exists")
            self._check_new_account(account_data["id"])
            customer_settings = [dict(s, entityType="CUSTOMER", entityId=data["id"])
                                 for s in data.get("settings", [])]
            account_settings = [dict(s, entityType="ACCOUNT", entityId=account_data["id"])
                                for s in account_data.get("settings", [])]
            self._check_new_settings(customer_settings + account_settings)
            now = self._clock()
            customer = {"id": data["id"], "togaiCustomerId": _togai_id("cus"), "name": data["name"],
                        "primaryEmail": data["primaryEmail"], "address": dict(data["address"]),
                        "status": "ACTIVE", "createdAt": now, "updatedAt": now}
            self._customers[customer["id"]] = customer
            account = self._store_account(account_data, customer, now)
            for setting in customer_settings + account_settings:
                self._settings[setting["id"]] = setting
            response = self.customer_view(customer)
            if customer_settings:
                response["settings"] = [self._entity_setting(s) for s in customer_settings]
            response["account"] = self.account_view(account)
            self._emit("account.created", account["id"], via_api=via_api)
            return response

    def get_customer(self, customer_id: str) -> dict:
        with self._lock:
            return self.customer_view(self._customer(customer_id))

    def update_customer(self, customer_id: str, payload: Any) -> dict:
        data = load(UpdateCustomerSchema(), payload)
        with self._lock:
            customer = self._customer(customer_id)
            before = self.customer_view(customer)
            customer.update({k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()})
            if self.customer_view(customer) != before:
                customer["updatedAt"] = self._clock()
            return self.customer_view(customer)

    def create_account(self, payload: Any, *, via_api: bool = True) -> dict:
        """``POST /accounts``: another account under an existing customer."""
        data = load(CreateAccountSchema(), payload)
        with self._lock:
            customer = self._customers.get(data["customerId"])
            if customer is None:
                raise ApiError(404, f"Customer with id '{data['customerId']}' not found")
            self._check_new_account(data["id"])
            settings = [dict(s, entityType="ACCOUNT", entityId=data["id"])
                        for s in data.get("settings", [])]
            self._check_new_settings(settings)
            account = self._store_account(data, customer, self._clock())
            for setting in settings:
                self._settings[setting["id"]] = setting
            self._emit("account.created", account["id"], via_api=via_api)
            return self.account_view(account)

    def get_account(self, account_id: str) -> dict:
        with self._lock:
            return self.account_view(self._account(account_id))

    def update_account(self, account_id: str, payload: Any, *, via_api: bool = True) -> dict:
        """``PATCH /accounts/{id}``; emits ``account.updated`` only when something changed."""
        data = load(UpdateAccountSchema(), payload)
        with self._lock:
            account = self._account(account_id)
            currency = data.get("invoiceCurrency")
            if currency is not None and currency != account["invoiceCurrency"]:
                raise ApiError(400, "invoiceCurrency of an account cannot be changed")
            before = self.account_view(account)
            for key, value in data.items():
                if key == "tags":
                    value = list(dict.fromkeys(t.lower() for t in value))
                account[key] = dict(value) if isinstance(value, dict) else value
            view = self.account_view(account)
            if view != before:
                account["updatedAt"] = self._clock()
                self._emit("account.updated", account_id, via_api=via_api)
            return view

    def _store_account(self, data: dict, customer: dict, now: datetime) -> dict:
        account = {"id": data["id"], "togaiAccountId": _togai_id("acc"),
                   "togaiCustomerId": customer["togaiCustomerId"], "customerId": customer["id"],
                   "name": data["name"], "invoiceCurrency": data.get("invoiceCurrency", BASE_CURRENCY),
                   "status": data.get("status", "ACTIVE"), "createdAt": now, "updatedAt": now}
        for key in ("aliases", "netTermDays", "address", "primaryEmail", "billingInformation",
                    "metadata"):
            if key in data:
                account[key] = data[key]
        if "tags" in data:
            account["tags"] = list(dict.fromkeys(t.lower() for t in data["tags"]))
        self._accounts[account["id"]] = account
        return account

    def _check_new_account(self, account_id: str) -> None:
        if account_id in self._accounts:
            raise ApiError(400, f"Account with id '{account_id}' already exists")

    def _customer(self, customer_id: str) -> dict:
        customer = self._customers.get(customer_id)
        if customer is None:
            raise ApiError(404, f"Customer with id '{customer_id}' not found")
        return customer

    def _account(self, account_id: str) -> dict:
        account = self._accounts.get(account_id)
        if account is None:
            raise ApiError(404, f"Account with id '{account_id}' not found")
        return account

    @staticmethod
    def customer_view(customer: dict) -> dict:
        """Togai's ``Customer``."""
        return {"id": customer["id"], "togaiCustomerId": customer["togaiCustomerId"],
                "name": customer["name"], "primaryEmail": customer["primaryEmail"],
                "billingAddress": billing_address(customer["address"]),
                "address": dict(customer["address"]), "status": customer["status"],
                "createdAt": customer["createdAt"], "updatedAt": customer["updatedAt"]}

    def account_view(self, account: dict) -> dict:
        """Togai's ``Account``, with the account's current settings."""
        view = {key: account[key] for key in ("id", "togaiAccountId", "togaiCustomerId", "name",
                                              "customerId", "invoiceCurrency")}
        if "aliases" in account:
            view["aliases"] = [{"alias": alias} for alias in account["aliases"]]
        for key in ("netTermDays", "address", "primaryEmail", "billingInformation"):
            if key in account:
                view[key] = account[key]
        view["status"] = account["status"]
        settings = [self._entity_setting(s) for s in self._settings.values()
                    if s["entityType"] == "ACCOUNT" and s["entityId"] == account["id"]]
        if settings:
            view["settings"] = settings
        for key in ("metadata", "tags"):
            if key in account:
                view[key] = account[key]
        return view

    # -- settings --------------------------------------------------------------------------------

    @staticmethod
    def _entity_setting(setting: dict) -> dict:
        return {k: setting[k] for k in ("id", "value", "namespace", "name", "dataType")}

    @staticmethod
    def _setting_view(setting: dict) -> dict:
        return {k: setting[k] for k in ("id", "value", "entityType", "entityId", "namespace", "name",
                                        "dataType")}

    def _check_new_settings(self, new: list[dict]) -> None:
        """IDs unique, and (entityType, entityId, namespace, name) unique, including within ``new``."""
        ids = set(self._settings)
        keys = {self._setting_key(s) for s in self._settings.values()}
        for setting in new:
            if setting["id"] in ids:
                raise ApiError(400, f"Setting with id '{setting['id']}' already exists")
            key = self._setting_key(setting)
            if key in keys:
                raise ApiError(400, f"Setting '{setting['namespace']}.{setting['name']}' already "
                                    f"exists for {setting['entityType']} '{setting['entityId']}'")
            ids.add(setting["id"])
            keys.add(key)

    @staticmethod
    def _setting_key(setting: dict) -> tuple[str, str, str, str]:
        return (setting["entityType"], setting["entityId"], setting["namespace"], setting["name"])

    def _check_entity(self, entity_type: str, entity_id: str) -> None:
        if entity_type == "CUSTOMER":
            self._customer(entity_id)
        elif entity_type == "ACCOUNT":
            self._account(entity_id)

    def create_setting(self, payload: Any) -> dict:
        data = load(SettingSchema(), payload)
        with self._lock:
            self._check_entity(data["entityType"], data["entityId"])
            self._check_new_settings([data])
            self._settings[data["id"]] = dict(data)
            return self._setting_view(data)

    def get_setting(self, setting_id: str) -> dict:
        with self._lock:
            return self._setting_view(self._setting(setting_id))

    def _setting(self, setting_id: str) -> dict:
        setting = self._settings.get(setting_id)
        if setting is None:
            raise ApiError(404, f"Setting with id '{setting_id}' not found")
        return setting

    def update_setting(self, setting_id: str, payload: Any) -> dict:
        data = load(UpdateSettingSchema(), payload)
        with self._lock:
            setting = self._setting(setting_id)
            updated = {**setting, **data}
            try:
                _setting_value_matches(updated["dataType"], updated["value"])
            except ValidationError as exc:
                raise ApiError(400, "; ".join(_flatten(exc.messages))) from None
            if self._setting_key(updated) != self._setting_key(setting):
                others = {self._setting_key(s) for s in self._settings.values() if s is not setting}
                if self._setting_key(updated) in others:
                    raise ApiError(400, f"Setting '{updated['namespace']}.{updated['name']}' already "
                                        f"exists for {updated['entityType']} '{updated['entityId']}'")
            setting.update(data)
            return self._setting_view(setting)

    def list_settings(self, args: Any) -> dict:
        """``GET /settings``: filtered, oldest first, ``pageSize`` (≤50, default 10) per page."""
        entity_type = args.get("entity_type")
        if entity_type is not None and entity_type not in SETTING_ENTITY_TYPES:
            raise ApiError(400, f"entity_type must be one of: {', '.join(SETTING_ENTITY_TYPES)}")
        page_size = self._page_size(args.get("pageSize"))
        offset = _decode_token(args["nextToken"]) if args.get("nextToken") else 0
        filters = {"entityType": entity_type, "entityId": args.get("entity_id"),
                   "namespace": args.get("namespace"), "id": args.get("setting_id")}
        with self._lock:
            matching = [self._setting_view(s) for s in self._settings.values()
                        if all(v is None or s[k] == v for k, v in filters.items())]
        page = matching[offset:offset + page_size]
        body: dict[str, Any] = {"data": page}
        if offset + page_size < len(matching):
            body["nextToken"] = _encode_token(offset + page_size)
        body["context"] = {"pageSize": page_size, "sortOrder": "ASC"}
        return body

    @staticmethod
    def _page_size(raw: str | None) -> int:
        if raw is None:
            return SETTINGS_PAGE_DEFAULT
        if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= SETTINGS_PAGE_MAX:
            raise ApiError(400, f"pageSize must be an integer from 1 to {SETTINGS_PAGE_MAX}")
        return int(raw)

    # -- invoices --------------------------------------------------------------------------------

    def get_invoice(self, invoice_id: str) -> dict:
        with self._lock:
            return self._invoice(invoice_id)

    def _invoice(self, invoice_id: str) -> dict:
        invoice = self._invoices.get(invoice_id)
        if invoice is None:
            raise ApiError(404, f"Invoice with id '{invoice_id}' not found")
        return invoice

    def create_invoice(self, payload: Any) -> dict:
        """``POST /_sandbox/invoices``: build an invoice from the compact spec; finalized by default.

        Emits ``invoice.finalized`` when the invoice is created finalized; a draft emits nothing.
        """
        spec = load(InvoiceSpecSchema(), payload)
        with self._lock:
            account = self._account(spec["accountId"])
            customer = self._customers[account["customerId"]]
            invoice_id = spec.get("id") or _togai_id("inv")
            if invoice_id in self._invoices:
                raise ApiError(400, f"Invoice with id '{invoice_id}' already exists")
            invoice = self._build_invoice(invoice_id, spec, account, customer)
            self._invoices[invoice_id] = invoice
            if spec["finalize"]:
                self._emit("invoice.finalized", invoice_id, via_api=False)
            return invoice

    def _build_invoice(self, invoice_id: str, spec: dict, account: dict, customer: dict) -> dict:
        now = self._clock()
        usage, revenue, total = invoice_trees(spec["fixed"], spec["usage"], shape=spec["shape"],
                                              currency=account["invoiceCurrency"])
        net_term_days = spec.get("netTermDays", account.get("netTermDays", 0))
        invoice_date = spec.get("invoiceDate", spec["endDate"])
        status = spec.get("status") or ("DUE" if spec["finalize"] else "DRAFT")
        paid = spec.get("paidAmount", total if status == "PAID" else Decimal(0))
        invoice: dict[str, Any] = {
            "id": invoice_id, "customerId": customer["id"], "ownerId": account["id"],
            "usageInfo": usage, "revenueInfo": revenue,
            "invoiceDetails": self._invoice_details(account, customer),
            "status": status}
        if spec["finalize"]:
            invoice["finalizingStatus"] = "FINALIZED"
        invoice.update({
            "invoiceClass": "INVOICE", "invoiceType": "STANDARD", "autoAdvance": True,
            "startDate": spec["startDate"], "endDate": spec["endDate"],
            "endDateInclusive": inclusive_end(spec["endDate"]), "invoiceDate": invoice_date,
            "dueDate": spec.get("dueDate", invoice_date + timedelta(days=net_term_days))})
        if spec["finalize"]:
            invoice["generatedAt"] = now
        invoice["updatedAt"] = now
        if "metadata" in spec:
            invoice["metadata"] = spec["metadata"]
        invoice.update({"sequenceId": f"INV-{len(self._invoices) + 1:06d}", "totalAmount": total,
                        "paidAmount": paid, "netTermDays": net_term_days})
        return invoice

    @staticmethod
    def _invoice_details(account: dict, customer: dict) -> dict:
        """The customer/account snapshot Togai embeds; account falls back to the customer's contact."""
        return {
            "customer": {"name": customer["name"], "primaryEmail": customer["primaryEmail"],
                         "billingAddress": billing_address(customer["address"]),
                         "address": dict(customer["address"])},
            "account": {"name": account["name"], "invoiceCurrency": account["invoiceCurrency"],
                        "address": dict(account.get("address", customer["address"])),
                        "primaryEmail": account.get("primaryEmail", customer["primaryEmail"])}}

    def finalize_invoice(self, invoice_id: str, payload: Any) -> dict:
        """``POST /_sandbox/invoices/{id}/finalize``: a draft becomes FINALIZED and emits the event."""
        data = load(FinalizeSchema(), payload if payload is not None else {})
        with self._lock:
            invoice = self._invoice(invoice_id)
            if invoice.get("finalizingStatus") == "FINALIZED":
                raise ApiError(400, f"Invoice '{invoice_id}' is already finalized")
            now = self._clock()
            status = data.get("status", "DUE")
            rebuilt: dict[str, Any] = {}
            for key, value in invoice.items():
                rebuilt[key] = value
                if key == "status":
                    rebuilt["status"] = status
                    rebuilt["finalizingStatus"] = "FINALIZED"
                if key == "dueDate":
                    rebuilt["generatedAt"] = now
            rebuilt["updatedAt"] = now
            if status == "PAID":
                rebuilt["paidAmount"] = rebuilt["totalAmount"]
            # Replaced, never mutated: a response being serialised elsewhere keeps a stable object.
            self._invoices[invoice_id] = rebuilt
            self._emit("invoice.finalized", invoice_id, via_api=False)
            return rebuilt

    # -- outgoing events -------------------------------------------------------------------------

    def _emit(self, event_type: str, object_id: str, *, via_api: bool) -> dict | None:
        """Record an event and queue its delivery (caller holds the lock)."""
        if via_api and not self._emit_api_events:
            return None
        event_id = "msg_" + secrets.token_hex(16)
        body = json.dumps({"type": event_type, "data": {"id": object_id}}, separators=(",", ":"))
        event = {"id": event_id, "type": event_type, "data": {"id": object_id}, "body": body,
                 "created_at": self._clock(), "status": "pending", "round": 0, "attempts": []}
        self._events[event_id] = event
        self._schedule_round(event)
        return event

    def _schedule_round(self, event: dict) -> None:
        """Start a delivery round (first send, or a resend): queue attempt 1 now."""
        event["round"] += 1
        if self._webhook_url is None:
            event["status"] = "skipped"
            return
        event["status"] = "pending"
        self._enqueue(event["id"], event["round"], delay=0.0)

    def _enqueue(self, event_id: str, round_: int, delay: float) -> None:
        if self._closed:
            return
        heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), event_id, round_))
        if self._thread is None:
            self._thread = threading.Thread(target=self._deliver_loop, name="billing-sandbox-webhooks",
                                            daemon=True)
            self._thread.start()
        self._cv.notify_all()

    def resend(self, payload: Any) -> dict:
        """Deliver an event again with its original ``webhook-id`` (a duplicate), or a new one.

        The latest event of that type for that object is resent; with ``"new": true``, or when there
        is none, a new event (any ``type``, to test unknown types) is created.
        """
        data = load(ResendSchema(), payload)
        with self._lock:
            matches = [e for e in self._events.values()
                       if e["type"] == data["type"] and e["data"]["id"] == data["id"]]
            if matches and not data["new"]:
                event = matches[-1]
                self._schedule_round(event)
                duplicate = True
            else:
                event = self._emit(data["type"], data["id"], via_api=False)
                assert event is not None
                duplicate = False
            return {"event_id": event["id"], "duplicate": duplicate, "status": event["status"]}

    def _deliver_loop(self) -> None:
        session = requests.Session()
        while True:
            with self._cv:
                item = self._next_due()
                if item is None:
                    return
                job = self._prepare_attempt(*item[2:])
                self._in_flight += 1
            result: tuple[int | None, str | None] = (None, None)
            try:
                if job is not None:
                    result = self._post(session, job)
            finally:
                with self._cv:
                    if job is not None:
                        self._record_attempt(job, *result)
                    self._in_flight -= 1
                    self._cv.notify_all()

    def _next_due(self) -> tuple[float, int, str, int] | None:
        """Wait (lock held, released while waiting) for the next due delivery; None when closed."""
        while not self._closed:
            if self._queue:
                delay = self._queue[0][0] - time.monotonic()
                if delay <= 0:
                    return heapq.heappop(self._queue)
                self._cv.wait(delay)
            else:
                self._cv.wait()
        return None

    def _prepare_attempt(self, event_id: str, round_: int) -> dict | None:
        """Everything one POST needs, read under the lock; None if the event is gone or superseded."""
        event = self._events.get(event_id)
        if event is None or event["round"] != round_ or self._webhook_url is None:
            if event is not None and self._webhook_url is None:
                event["status"] = "skipped"
            return None
        in_round = sum(1 for a in event["attempts"] if a["round"] == round_) + 1
        moment = self._clock()
        signatures = " ".join(Webhook(secret).sign(event_id, moment, event["body"])
                              for secret in [self._webhook_secret, *self._extra_secrets])
        headers = {"content-type": "application/json", "user-agent": "billing-sandbox",
                   "webhook-id": event_id, "webhook-timestamp": str(int(moment.timestamp())),
                   "webhook-signature": signatures}
        return {"event": event, "round": round_, "attempt": in_round, "url": self._webhook_url,
                "headers": headers, "body": event["body"].encode(), "at": moment}

    @staticmethod
    def _post(session: requests.Session, job: dict) -> tuple[int | None, str | None]:
        try:
            response = session.post(job["url"], data=job["body"], headers=job["headers"],
                                    timeout=DELIVERY_TIMEOUT, allow_redirects=False)
            response.close()
            return response.status_code, None
        except requests.RequestException as exc:
            return None, type(exc).__name__  # never str(exc): it may carry the URL's query secrets

    def _record_attempt(self, job: dict, status_code: int | None, error: str | None) -> None:
        event = job["event"]
        if self._events.get(event["id"]) is not event:
            return  # reset while in flight
        ok = status_code is not None and 200 <= status_code < 300
        event["attempts"].append({"round": job["round"], "attempt": job["attempt"], "at": job["at"],
                                  "url": job["url"], "webhook_id": event["id"],
                                  "status_code": status_code, "error": error, "ok": ok})
        if event["round"] != job["round"]:
            return  # a resend started meanwhile; that round decides the status
        if ok:
            event["status"] = "delivered"
        elif job["attempt"] <= len(self._retry_schedule):
            delay = float(self._retry_schedule[job["attempt"] - 1])
            self._enqueue(event["id"], job["round"], delay)
        else:
            event["status"] = "failed"

    # -- inspection ------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The sandbox clock (aware UTC)."""
        return self._clock()

    def log_request(self, entry: dict) -> None:
        with self._lock:
            self._requests.append(entry)

    def state(self) -> dict:
        """Everything, for ``GET /_sandbox/state``: objects in API shape, events, requests, config."""
        with self._lock:
            events = [{**{k: v for k, v in e.items() if k not in ("body", "round")},
                       "attempts": list(e["attempts"])} for e in self._events.values()]
            return {"customers": [self.customer_view(c) for c in self._customers.values()],
                    "accounts": [self.account_view(a) for a in self._accounts.values()],
                    "settings": [self._setting_view(s) for s in self._settings.values()],
                    "invoices": list(self._invoices.values()),
                    "events": events, "requests": list(self._requests),
                    "config": self.config_view()}

    def sandbox_accounts(self, payload: Any) -> dict:
        """``POST /_sandbox/accounts``: ``{"customer", "account"?}`` or ``{"account": {..customerId}}``."""
        data = load(SandboxAccountSchema(), payload)
        if "customer" in data:
            customer = dict(data["customer"])
            if "account" in data:
                customer["account"] = data["account"]
            return self.create_customer(customer, via_api=False)
        if "account" in data:
            return self.create_account(data["account"], via_api=False)
        raise ApiError(400, "Give customer (and optionally account), or account with customerId")


# -- the Flask app -------------------------------------------------------------------------------------

def _json_body() -> Any:
    """The request's JSON, numbers as Decimal; 415 for another content type, 400 when malformed."""
    if not flask.request.is_json:
        raise ApiError(415, "Content-Type must be application/json")
    try:
        return json_loads(flask.request.get_data(cache=True))
    except (ValueError, RecursionError):
        raise ApiError(400, "Malformed JSON body") from None


def _json_object() -> dict:
    body = _json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body


def _optional_json_body() -> Any:
    return _json_body() if flask.request.get_data(cache=True) else None


def _logged_body() -> Any:
    try:
        raw = flask.request.get_data(cache=True)
    except HTTPException:
        return None
    if not raw:
        return None
    try:
        return json_loads(raw)
    except (ValueError, RecursionError):
        return raw[:2000].decode("utf-8", "replace")


def _register_errors(app: flask.Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return flask.jsonify({"message": exc.message}), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return flask.jsonify({"message": exc.name}), exc.code or 500

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("billing sandbox: unexpected error")
        return flask.jsonify({"message": "Internal server error"}), 500


def _register_auth_and_log(app: flask.Flask, sandbox: BillingSandbox) -> None:
    @app.before_request
    def _bearer_auth():
        if flask.request.path.startswith("/_sandbox"):
            return None
        scheme, _, token = flask.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Missing bearer token")
        if not sandbox.token_matches(token.strip()):
            raise ApiError(401, "Invalid bearer token")
        return None

    @app.after_request
    def _log(response: flask.Response) -> flask.Response:
        if not flask.request.path.startswith("/_sandbox"):
            sandbox.log_request({"at": iso(sandbox.now()), "method": flask.request.method,
                                 "path": flask.request.path, "query": flask.request.args.to_dict(),
                                 "status": response.status_code, "body": _logged_body()})
        return response


def _register_api(app: flask.Flask, sandbox: BillingSandbox) -> None:
    jsonify = flask.jsonify

    @app.post("/customers")
    def create_customer():
        return jsonify(sandbox.create_customer(_json_body())), 201

    @app.get("/customers/<customer_id>")
    def get_customer(customer_id: str):
        return jsonify(sandbox.get_customer(customer_id))

    @app.patch("/customers/<customer_id>")
    def update_customer(customer_id: str):
        return jsonify(sandbox.update_customer(customer_id, _json_body()))

    @app.post("/accounts")
    def create_account():
        return jsonify(sandbox.create_account(_json_body())), 201

    @app.get("/accounts/<account_id>")
    def get_account(account_id: str):
        return jsonify(sandbox.get_account(account_id))

    @app.patch("/accounts/<account_id>")
    def update_account(account_id: str):
        return jsonify(sandbox.update_account(account_id, _json_body()))

    @app.post("/settings")
    def create_setting():
        return jsonify(sandbox.create_setting(_json_body())), 201

    @app.get("/settings")
    def list_settings():
        return jsonify(sandbox.list_settings(flask.request.args))

    @app.get("/settings/<setting_id>")
    def get_setting(setting_id: str):
        return jsonify(sandbox.get_setting(setting_id))

    @app.patch("/settings/<setting_id>")
    def update_setting(setting_id: str):
        return jsonify(sandbox.update_setting(setting_id, _json_body())), 201

    @app.get("/invoices/<invoice_id>")
    def get_invoice(invoice_id: str):
        return jsonify(sandbox.get_invoice(invoice_id))


def _register_control(app: flask.Flask, sandbox: BillingSandbox) -> None:
    jsonify = flask.jsonify

    @app.post("/_sandbox/accounts")
    def sandbox_create_account():
        return jsonify(sandbox.sandbox_accounts(_json_body())), 201

    @app.patch("/_sandbox/accounts/<account_id>")
    def sandbox_update_account(account_id: str):
        return jsonify(sandbox.update_account(account_id, _json_body(), via_api=False))

    @app.post("/_sandbox/invoices")
    def sandbox_create_invoice():
        return jsonify(sandbox.create_invoice(_json_body())), 201

    @app.post("/_sandbox/invoices/<invoice_id>/finalize")
    def sandbox_finalize_invoice(invoice_id: str):
        return jsonify(sandbox.finalize_invoice(invoice_id, _optional_json_body()))

    @app.get("/_sandbox/config")
    def sandbox_get_config():
        return jsonify(sandbox.config_view())

    @app.post("/_sandbox/config")
    def sandbox_config():
        return jsonify(sandbox.configure(**_json_object()))

    @app.post("/_sandbox/events/resend")
    def sandbox_resend():
        return jsonify(sandbox.resend(_json_body())), 202

    @app.get("/_sandbox/state")
    def sandbox_state():
        return jsonify(sandbox.state())

    @app.post("/_sandbox/reset")
    def sandbox_reset():
        sandbox.reset()
        return jsonify({"reset": True})


def create_billing_sandbox(*, api_token: str | None = None, webhook_url: str | None = None,
                           webhook_secret: str | None = None,
                           webhook_retry_schedule: Sequence[float] = (0.5, 1.0, 2.0),
                           rate_limit: int | None = None,
                           clock: Callable[[], datetime] | None = None) -> flask.Flask:
    """A Togai-compatible billing API app; its state is ``app.extensions["billing_sandbox"]``.

    ``api_token`` and ``webhook_secret`` (``whsec_`` + base64) are generated when not given.
    ``webhook_retry_schedule`` is the wait in seconds before each retry of a failed delivery
    (so ``1 + len(schedule)`` attempts in all). ``clock`` returns an aware UTC ``datetime`` and
    stamps createdAt/updatedAt, invoice dates and ``webhook-timestamp``.

    Control endpoints (no auth): ``POST /_sandbox/accounts``, ``PATCH /_sandbox/accounts/{id}``,
    ``POST /_sandbox/invoices``, ``POST /_sandbox/invoices/{id}/finalize``, ``GET|POST
    /_sandbox/config``, ``POST /_sandbox/events/resend``, ``GET /_sandbox/state``,
    ``POST /_sandbox/reset`` and ``GET|POST|DELETE /_sandbox/faults``.
    """
    secret = webhook_secret if webhook_secret is not None else new_webhook_secret()
    try:
        _check_secret(secret, "webhook_secret")
        ConfigSchema().load({"webhook_url": webhook_url,
                             "webhook_retry_schedule": [Decimal(str(s)) for s in webhook_retry_schedule]})
    except ValidationError as exc:
        raise ValueError("; ".join(_flatten(exc.messages))) from None
    sandbox = BillingSandbox(
        api_token=api_token or secrets.token_urlsafe(32), webhook_url=webhook_url,
        webhook_secret=secret, webhook_retry_schedule=webhook_retry_schedule,
        faults=faults_module.Faults(rate_limit=rate_limit), clock=clock or _system_clock)
    app = flask.Flask("integration_sandbox.billing")
    app.json = DecimalJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["billing_sandbox"] = sandbox
    # Faults first: their before_request (rate limit, 5xx, latency) runs ahead of authentication.
    faults_module.install(app, sandbox.faults, api_name="billing",
                          error_body=lambda status, message: {"message": message})
    _register_auth_and_log(app, sandbox)
    _register_errors(app)
    _register_api(app, sandbox)
    _register_control(app, sandbox)
    return app
