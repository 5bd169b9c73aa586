"""The built-in Zuora sandbox: a small Flask app that behaves like the Zuora REST API where it matters.

WHY: the tests, the demo and anyone without a tenant run the service against this app. Where it is more
lenient than Zuora, our bugs ship; so it is deliberately strict: the real field limits, Zuora's error
shapes (HTTP 200 ``success: false`` with 8-digit reason codes; ``Success``/``Errors`` on ``/v1/object``;
401 ``{"message": "Authentication error"}``), tokens that expire, ``Idempotency-Key`` replay and 409/422,
rate and concurrency limits (via :mod:`integration_sandbox.faults`), an atomic usage import that is only
done when its status says ``Completed``, and account-created callouts sent the way Zuora sends them
(first try without credentials, Basic after a challenge, ``Zuora-Notification-Id`` stable across retries,
success only on HTTP 200, retries only on 1xx/403/408/429/5xx/connection errors). Facts and sources:
``reference/zuora-api.md``.

Sandbox choices where Zuora's docs are silent (documented here so nobody mistakes them for Zuora's):

* Reason-code resource prefixes: accounts ``531000``, invoices ``592100``, usage upload ``533000``,
  GETs without a body ``500000``; the last two digits follow Zuora's categories (§9).
* ``Idempotency-Key`` is tenant-wide, as on Zuora: reusing a key on another path or method answers 422.
  Every result of the endpoint is stored and replayed (success or business failure, as Zuora says);
  requests refused before the endpoint ran (401, injected faults, 429) store nothing.
* ``/oauth/token`` is exempt from faults and limits ("create-token requests are unlimited").
* No product catalog, subscriptions or payment methods: fields that need them are refused with a
  category-30 reason, so nothing pretends to work that the sandbox cannot check.
* Money (``amount``, ``Quantity``, ``QTY``) is parsed as :class:`decimal.Decimal` and written back as
  JSON numbers digit for digit; numeric strings are accepted too (Zuora's JSON binder coerces them).
* Usage-file ``STARTDATE``/``ENDDATE`` use the default en_US locale format ``MM/DD/YYYY``.

Extras for tests and the demo, none needing auth: ``GET /_sandbox/state``, ``POST /_sandbox/reset``,
``POST /_sandbox/revoke-tokens``, ``GET|POST /_sandbox/config`` (callout settings),
``POST /_sandbox/callouts`` (resend), ``POST /_sandbox/fail-next``, ``POST /_sandbox/lose-next`` (a write
takes effect and its answer is lost: 5xx, timeout or ``success: false``), ``GET|POST|DELETE /_sandbox/faults``.

Custom fields: ``custom_fields`` on Account and ``invoice_custom_fields`` on Invoice (``*__c``, strings
≤255), returned by the GETs and filterable in Object Query (``/object-query/accounts``, ``invoices``;
``usages`` by ``accountId``, ``accountNumber``, ``importId`` and ``createdDate``; EQ, and GE/GT/LE/LT on
``createdDate``/``updatedDate``).
"""
from __future__ import annotations

import base64
import collections
import csv
import datetime as dt
import functools
import hmac
import io
import json
import logging
import queue
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Callable, Iterable

import flask
import pycountry
import requests
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from integration_sandbox import faults as faults_mod

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Body = dict[str, Any]

# Reason-code resource prefixes (sandbox choice, see module docstring) and Zuora's categories (§9).
RES_ACCOUNT = 531000
RES_INVOICE = 592100
RES_USAGE_UPLOAD = 533000
RES_GET = 500000
CAT_INVALID = 20
CAT_UNKNOWN_FIELD = 21
CAT_MISSING = 22
CAT_BAD_QUERY = 27
CAT_BUSINESS = 30
CAT_NOT_FOUND = 40
CAT_CONCURRENCY = 70
CAT_MALFORMED = 90

REQUEST_LOG_SIZE = 10_000  # the newest requests kept for /_sandbox/state
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
MAX_IDEMPOTENCY_KEY = 255
MAX_USAGE_FILE_BYTES = 4 * 1024 * 1024
MAX_USAGE_FILE_NAME = 50
MAX_INVOICE_ITEMS = 1000
CALLOUT_TIMEOUT = (10, 15)  # Zuora: 10 s to connect, 15 s to transfer
CALLOUT_WORKERS = 4
HMAC_ALGORITHMS = {"MD5": "md5", "SHA-1": "sha1", "SHA-224": "sha224", "SHA-256": "sha256",
                   "SHA-384": "sha384", "SHA-512": "sha512"}
HMAC_FORMATS = ("BASE64", "HEX")
PAYMENT_TERMS = {"Due Upon Receipt": 0, "Net 30": 30, "Net 60": 60, "Net 90": 90}
BATCHES = {f"Batch{n}" for n in range(1, 51)}
TRACK_ID_RE = re.compile(r"^[\x20-\x7e]{1,64}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
CUSTOM_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*__c$")
INVOICE_NUMBER_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DATE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$")
USAGE_REQUIRED_HEADERS = ("ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "PRODUCT_RATE_PLAN_CHARGE_ID",
                          "SUBSCRIPTION_ID", "CHARGE_ID")
USAGE_OPTIONAL_HEADERS = ("DESCRIPTION", "UNIQUE_KEY")


# ---------------------------------------------------------------------------------------------------
# JSON: Decimal in, Decimal out (as a JSON number, digit for digit)
# ---------------------------------------------------------------------------------------------------

_DEC_NONCE = secrets.token_hex(6)
_DEC_RE = re.compile(r'"@@dec' + _DEC_NONCE + r'@@(-?[0-9]+(?:\.[0-9]+)?)@@"')


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return f"@@dec{_DEC_NONCE}@@{format(obj, 'f')}@@"
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """JSON text with every Decimal written as a plain number, so amounts round-trip exactly."""
    return _DEC_RE.sub(r"\1", json.dumps(obj, default=_json_default, ensure_ascii=False))


class _DecimalJSONProvider(DefaultJSONProvider):
    """Flask's provider writes Decimal as a string; Zuora writes numbers."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return dumps(obj)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def parse_json(raw: bytes) -> Any:
    """Parse a request body; floats become Decimal; NaN/Infinity are refused."""
    return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)


# ---------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------

def _new_id() -> str:
    return uuid.uuid4().hex


def _process_id() -> str:
    return secrets.token_hex(8).upper()


def _utc_iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


def common_error(reasons: list[dict], **extra: Any) -> Body:
    """Zuora's v1 business-error body (``CommonResponse``)."""
    return {"success": False, "processId": _process_id(), "reasons": reasons,
            "requestId": str(uuid.uuid4()), **extra}


def reason(resource: int, category: int, message: str) -> dict:
    return {"code": resource * 100 + category, "message": message}


def object_error(code: str, message: str) -> Body:
    """The Object (CRUD) API's error body."""
    return {"Success": False, "Errors": [{"Code": code, "Message": message}]}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _to_decimal(v: Any) -> Decimal | None:
    """A JSON number or numeric string as a finite Decimal, else None (bools are not numbers)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, Decimal)):
        d = Decimal(v)
    elif isinstance(v, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", v):
        d = Decimal(v.strip())
    else:
        return None
    return d if d.is_finite() else None


def _parse_date(v: Any) -> dt.date | None:
    if not isinstance(v, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return None
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        return None


def _valid_date_time(v: Any) -> bool:
    if not isinstance(v, str) or not DATE_TIME_RE.match(v):
        return False
    try:
        dt.date.fromisoformat(v[:10])
        if len(v) > 10:
            dt.datetime.fromisoformat(v.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return False
    return True


def _normalise_country(value: str) -> str | None:
    try:
        return pycountry.countries.lookup(value.strip()).name
    except LookupError:
        return None


def _valid_state(country_name: str, state: str) -> bool:
    """Zuora checks state/province only where it knows them; we do for the US and Canada."""
    codes = {"United States": "US", "Canada": "CA"}
    cc = codes.get(country_name)
    if cc is None:
        return True
    wanted = state.strip().lower()
    for sub in pycountry.subdivisions.get(country_code=cc) or ():
        if wanted in (sub.name.lower(), sub.code.split("-", 1)[1].lower()):
            return True
    return False


def _valid_currency(value: Any) -> bool:
    return (isinstance(value, str) and re.fullmatch(r"[A-Z]{3}", value) is not None
            and pycountry.currencies.get(alpha_3=value) is not None)


class Problems:
    """Collects every reason a request is refused, so one answer names them all (as Zuora does)."""

    def __init__(self, resource: int):
        self.resource = resource
        self.reasons: list[dict] = []

    def add(self, category: int, message: str) -> None:
        self.reasons.append(reason(self.resource, category, message))

    def __bool__(self) -> bool:
        return bool(self.reasons)

    # field checks: each returns the clean value or None, recording a reason when invalid

    def string(self, data: dict, key: str, label: str, *, required: bool = False, min_len: int = 0,
               max_len: int | None = None) -> str | None:
        if key not in data or data[key] is None:
            if required:
                self.add(CAT_MISSING, f"'{label}' may not be null")
            return None
        value = data[key]
        if not isinstance(value, str):
            self.add(CAT_INVALID, f"'{label}' must be a string")
            return None
        if required and not value.strip():
            self.add(CAT_MISSING, f"'{label}' may not be empty")
            return None
        if len(value) < min_len or (max_len is not None and len(value) > max_len):
            bound = f"between {min_len} and {max_len}" if min_len else f"at most {max_len}"
            self.add(CAT_INVALID, f"'{label}' length must be {bound} characters")
            return None
        return value

    def boolean(self, data: dict, key: str, label: str) -> bool | None:
        if key not in data or data[key] is None:
            return None
        if not isinstance(data[key], bool):
            self.add(CAT_INVALID, f"'{label}' must be true or false")
            return None
        return data[key]

    def integer(self, data: dict, key: str, label: str, lo: int, hi: int, *, required: bool = False) -> int | None:
        if key not in data or data[key] is None:
            if required:
                self.add(CAT_MISSING, f"'{label}' may not be null")
            return None
        value = data[key]
        if not _is_int(value) or not lo <= value <= hi:
            self.add(CAT_INVALID, f"'{label}' must be an integer between {lo} and {hi}")
            return None
        return value

    def email(self, data: dict, key: str, label: str) -> str | None:
        value = self.string(data, key, label, max_len=74)
        if value is not None and value != "" and not EMAIL_RE.match(value):
            self.add(CAT_INVALID, f"'{label}' is not a valid email address")
            return None
        return value

    def unknown_keys(self, data: dict, allowed: Iterable[str], prefix: str = "") -> None:
        allowed = set(allowed)
        for key in data:
            if key not in allowed:
                self.add(CAT_UNKNOWN_FIELD, f"Unknown field '{prefix}{key}'")


# ---------------------------------------------------------------------------------------------------
# accounts
# ---------------------------------------------------------------------------------------------------

CONTACT_LIMITS = {
    "firstName": 100, "lastName": 100, "address1": 255, "address2": 255, "city": 40, "state": 40,
    "zipCode": 20, "country": 64, "county": 32, "workPhone": 40, "homePhone": 40, "mobilePhone": 100,
    "otherPhone": 40, "fax": 40, "nickname": 100, "taxRegion": 32, "contactDescription": 100,
}
CONTACT_EMAILS = ("workEmail", "personalEmail")
CONTACT_KEYS = set(CONTACT_LIMITS) | set(CONTACT_EMAILS) | {"otherPhoneType"}
OTHER_PHONE_TYPES = ("Work", "Mobile", "Home", "Other")

ACCOUNT_STRINGS = {  # field -> max length (fields stored as given)
    "crmId": 100, "notes": 65535, "salesRep": 50, "purchaseOrderNumber": 100, "parentId": 32,
    "invoiceTemplateId": 32, "communicationProfileId": 32, "profileNumber": 64, "sequenceSetId": 32,
    "paymentGateway": 40, "customerServiceRepName": 50, "creditMemoTemplateId": 32,
    "debitMemoTemplateId": 32, "organizationLabel": 100, "tagging": 255, "defaultPaymentMethodId": 64,
}
ACCOUNT_BOOLS = ("autoPay", "invoiceDeliveryPrefsEmail", "invoiceDeliveryPrefsPrint", "partnerAccount")
ACCOUNT_OBJECTS = ("taxInfo", "einvoiceProfile")
CREATE_ONLY = {"name", "accountNumber", "currency", "billToContact", "soldToContact", "shipToContact",
               "billCycleDay", "bcdSettingOption", "paymentTerm", "batch", "additionalEmailAddresses",
               "soldToSameAsBillTo", "shipToSameAsBillTo"}
UNSUPPORTED_CREATE = ("subscription", "paymentMethod", "creditCard", "hpmCreditCardPaymentMethodId")
ACCOUNT_CREATE_KEYS = (CREATE_ONLY | set(ACCOUNT_STRINGS) | set(ACCOUNT_BOOLS) | set(ACCOUNT_OBJECTS)
                       | set(UNSUPPORTED_CREATE)) - {"defaultPaymentMethodId"}
ACCOUNT_UPDATE_KEYS = ({"name", "billCycleDay", "paymentTerm", "batch", "additionalEmailAddresses",
                        "billToContact", "soldToContact", "shipToContact"}
                       | set(ACCOUNT_STRINGS) | set(ACCOUNT_BOOLS) | set(ACCOUNT_OBJECTS))


def validate_contact(p: Problems, data: Any, label: str, *, partial: bool) -> dict | None:
    """Check one contact object; ``partial`` (PUT) makes firstName/lastName optional."""
    if not isinstance(data, dict):
        p.add(CAT_INVALID, f"'{label}' must be an object")
        return None
    before = len(p.reasons)
    p.unknown_keys(data, CONTACT_KEYS, prefix=f"{label}.")
    clean: dict[str, Any] = {}
    for key, limit in CONTACT_LIMITS.items():
        required = key in ("firstName", "lastName") and not partial
        min_len = 1 if key in ("firstName", "lastName") else 0
        if key in ("firstName", "lastName") and partial and data.get(key) is not None:
            required = True  # present on an update: must still be 1-100 non-blank characters
        value = p.string(data, key, f"{label}.{key}", required=required, min_len=min_len, max_len=limit)
        if value is not None:
            clean[key] = value
    for key in CONTACT_EMAILS:
        value = p.email(data, key, f"{label}.{key}")
        if value is not None:
            clean[key] = value
    opt = p.string(data, "otherPhoneType", f"{label}.otherPhoneType")
    if opt is not None:
        if opt not in OTHER_PHONE_TYPES:
            p.add(CAT_INVALID, f"'{label}.otherPhoneType' value should be one of: {', '.join(OTHER_PHONE_TYPES)}")
        else:
            clean["otherPhoneType"] = opt
    if clean.get("country") is not None:
        name = _normalise_country(clean["country"])
        if name is None:
            p.add(CAT_INVALID, f"'{label}.country' value '{clean['country']}' is not a valid country name or abbreviation")
        else:
            clean["country"] = name
            if clean.get("state") and not _valid_state(name, clean["state"]):
                p.add(CAT_INVALID, f"'{label}.state' value '{clean['state']}' is not a valid state or province of {name}")
    return clean if len(p.reasons) == before else None


def _validate_account_common(p: Problems, body: dict, custom_fields: set[str], *, create: bool) -> dict:
    """Checks shared by create and update; returns the clean values present in ``body``."""
    clean: dict[str, Any] = {}
    for key, limit in ACCOUNT_STRINGS.items():
        if create and key == "defaultPaymentMethodId":
            continue
        value = p.string(body, key, key, max_len=limit)
        if value is not None:
            clean[key] = value
    for key in ACCOUNT_BOOLS:
        value = p.boolean(body, key, key)
        if value is not None:
            clean[key] = value
    for key in ACCOUNT_OBJECTS:
        if body.get(key) is not None:
            if isinstance(body[key], dict):
                clean[key] = body[key]
            else:
                p.add(CAT_INVALID, f"'{key}' must be an object")
    name = p.string(body, "name", "name", required=create, min_len=1, max_len=255)
    if "name" in body and body["name"] is not None and name is not None and not name.strip():
        p.add(CAT_INVALID, "'name' may not be blank")
    elif name is not None:
        clean["name"] = name
    term = p.string(body, "paymentTerm", "paymentTerm")
    if term is not None:
        if term in PAYMENT_TERMS:
            clean["paymentTerm"] = term
        else:
            p.add(CAT_INVALID, f"'paymentTerm' value should be one of: {', '.join(PAYMENT_TERMS)}")
    batch = p.string(body, "batch", "batch", max_len=50)
    if batch is not None:
        if batch in BATCHES:
            clean["batch"] = batch
        else:
            p.add(CAT_INVALID, f"'batch' value '{batch}' is not a configured batch (Batch1 to Batch50)")
    emails = body.get("additionalEmailAddresses")
    if emails is not None:
        if not isinstance(emails, list) or not all(isinstance(e, str) and EMAIL_RE.match(e) and len(e) <= 74
                                                   for e in emails):
            p.add(CAT_INVALID, "'additionalEmailAddresses' must be a list of valid email addresses")
        else:
            clean["additionalEmailAddresses"] = list(emails)
    for key, value in body.items():
        if key.endswith("__c"):
            if key not in custom_fields:
                p.add(CAT_UNKNOWN_FIELD, f"Unknown field '{key}': no such custom field on Account")
            elif value is not None and (not isinstance(value, str) or len(value) > 255):
                p.add(CAT_INVALID, f"'{key}' must be a string of at most 255 characters")
            else:
                clean.setdefault("customFields", {})[key] = value
    return clean


def validate_account_create(body: Any, custom_fields: set[str]) -> tuple[dict, Problems]:
    p = Problems(RES_ACCOUNT)
    if not isinstance(body, dict):
        p.add(CAT_MALFORMED, "The request body must be a JSON object")
        return {}, p
    p.unknown_keys({k: v for k, v in body.items() if not k.endswith("__c")}, ACCOUNT_CREATE_KEYS)
    clean = _validate_account_common(p, body, custom_fields, create=True)
    for key in UNSUPPORTED_CREATE:
        if body.get(key) is not None:
            p.add(CAT_BUSINESS, f"'{key}' is not supported by the sandbox (no catalog or payment gateway)")
    currency = p.string(body, "currency", "currency", required=True)
    if currency is not None:
        if _valid_currency(currency):
            clean["currency"] = currency
        else:
            p.add(CAT_INVALID, f"'currency' value '{currency}' is not a 3-letter currency code defined in Billing Settings")
    number = p.string(body, "accountNumber", "accountNumber", max_len=50)
    if number is not None:
        if not number.strip():
            p.add(CAT_INVALID, "'accountNumber' may not be blank")
        else:
            clean["accountNumber"] = number
    # No subscription can be created here, so billCycleDay is always required (0 = auto-set).
    bcd = p.integer(body, "billCycleDay", "billCycleDay", 0, 31, required=True)
    if bcd is not None:
        clean["billCycleDay"] = bcd
    opt = p.string(body, "bcdSettingOption", "bcdSettingOption")
    if opt is not None and opt not in ("AutoSet", "ManualSet"):
        p.add(CAT_INVALID, "'bcdSettingOption' value should be one of: AutoSet, ManualSet")
    for key in ("soldToSameAsBillTo", "shipToSameAsBillTo"):
        p.boolean(body, key, key)
    if body.get("billToContact") is None:
        p.add(CAT_MISSING, "'billToContact' may not be null")
    else:
        clean["billToContact"] = validate_contact(p, body["billToContact"], "billToContact", partial=False)
    for key in ("soldToContact", "shipToContact"):
        if body.get(key) is not None:
            if body.get(key.replace("Contact", "SameAsBillTo")) is True:
                p.add(CAT_BUSINESS, f"'{key}' cannot be given when '{key.replace('Contact', 'SameAsBillTo')}' is true")
            clean[key] = validate_contact(p, body[key], key, partial=False)
    if clean.get("autoPay"):
        p.add(CAT_BUSINESS, "autoPay is true but no payment method is given "
                            "(paymentMethod, creditCard or hpmCreditCardPaymentMethodId)")
    return clean, p


def validate_account_update(body: Any, custom_fields: set[str]) -> tuple[dict, Problems]:
    p = Problems(RES_ACCOUNT)
    if not isinstance(body, dict):
        p.add(CAT_MALFORMED, "The request body must be a JSON object")
        return {}, p
    p.unknown_keys({k: v for k, v in body.items() if not k.endswith("__c")}, ACCOUNT_UPDATE_KEYS)
    clean = _validate_account_common(p, body, custom_fields, create=False)
    bcd = p.integer(body, "billCycleDay", "billCycleDay", 1, 31)
    if bcd is not None:
        clean["billCycleDay"] = bcd
    for key in ("billToContact", "soldToContact", "shipToContact"):
        if body.get(key) is not None:
            contact = validate_contact(p, body[key], key, partial=True)
            if contact is not None:
                clean[key] = contact
    if clean.get("autoPay"):
        p.add(CAT_BUSINESS, "autoPay is true but the account has no default payment method")
    return clean, p


# ---------------------------------------------------------------------------------------------------
# invoices and usage validation
# ---------------------------------------------------------------------------------------------------

INVOICE_KEYS = {"accountId", "accountNumber", "invoiceDate", "dueDate", "status", "autoPay", "comments",
                "currency", "customRates", "invoiceNumber", "paymentTerm", "templateId", "sequenceSet",
                "billToContactId", "soldToContactId", "shipToContactId", "transferredToAccounting",
                "invoiceItems"}
ITEM_STRINGS = {"chargeName": 130, "description": 500, "uom": 100, "sku": 255, "bookingReference": 255,
                "purchaseOrderNumber": 100, "itemType": 100, "taxCode": 64, "accountingCode": 100,
                "deferredRevenueAccountingCode": 100, "recognizedRevenueAccountingCode": 100,
                "adjustmentLiabilityAccountingCode": 100, "adjustmentRevenueAccountingCode": 100,
                "contractAssetAccountingCode": 100, "contractLiabilityAccountingCode": 100,
                "contractRecognizedRevenueAccountingCode": 100, "unbilledReceivablesAccountingCode": 100,
                "revRecCode": 70, "revenueRecognitionRuleName": 100}
ITEM_KEYS = set(ITEM_STRINGS) | {"amount", "serviceStartDate", "serviceEndDate", "productRatePlanChargeId",
                                 "quantity", "unitPrice", "chargeDate", "taxMode", "taxItems", "discountItems",
                                 "excludeItemBillingFromRevenueAccounting"}


def validate_invoice_item(p: Problems, item: Any, n: int) -> dict | None:
    label = f"invoiceItems[{n}]"
    if not isinstance(item, dict):
        p.add(CAT_INVALID, f"'{label}' must be an object")
        return None
    before = len(p.reasons)
    p.unknown_keys({k: v for k, v in item.items()}, ITEM_KEYS, prefix=f"{label}.")
    clean: dict[str, Any] = {}
    if item.get("amount") is None:
        p.add(CAT_MISSING, f"'{label}.amount' may not be null")
    elif (amount := _to_decimal(item["amount"])) is None:
        p.add(CAT_INVALID, f"'{label}.amount' must be a number")
    else:
        clean["amount"] = amount
    if item.get("serviceStartDate") is None:
        p.add(CAT_MISSING, f"'{label}.serviceStartDate' may not be null")
    elif (start := _parse_date(item["serviceStartDate"])) is None:
        p.add(CAT_INVALID, f"'{label}.serviceStartDate' must be a date in yyyy-mm-dd format")
    else:
        clean["serviceStartDate"] = start
    if item.get("serviceEndDate") is not None:
        end = _parse_date(item["serviceEndDate"])
        if end is None:
            p.add(CAT_INVALID, f"'{label}.serviceEndDate' must be a date in yyyy-mm-dd format")
        elif "serviceStartDate" in clean and end < clean["serviceStartDate"]:
            p.add(CAT_BUSINESS, f"'{label}.serviceEndDate' cannot be earlier than serviceStartDate")
        else:
            clean["serviceEndDate"] = end
    for key, limit in ITEM_STRINGS.items():
        value = p.string(item, key, f"{label}.{key}", max_len=limit)
        if value is not None:
            clean[key] = value
    if item.get("productRatePlanChargeId") is not None:
        p.add(CAT_NOT_FOUND, f"'{label}.productRatePlanChargeId' '{item['productRatePlanChargeId']}' is invalid "
                             "(the sandbox has no product catalog)")
    elif item.get("chargeName") in (None, ""):
        p.add(CAT_MISSING, f"'{label}.chargeName' is required if productRatePlanChargeId is not specified")
    for key in ("quantity", "unitPrice"):
        if item.get(key) is not None:
            value = _to_decimal(item[key])
            if value is None or (key == "quantity" and value < 0):
                p.add(CAT_INVALID, f"'{label}.{key}' must be a {'non-negative ' if key == 'quantity' else ''}number")
            else:
                clean[key] = value
    clean.setdefault("quantity", Decimal(1))
    if item.get("chargeDate") is not None:
        value = item["chargeDate"]
        try:
            dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
            clean["chargeDate"] = value
        except (TypeError, ValueError):
            p.add(CAT_INVALID, f"'{label}.chargeDate' must be in yyyy-mm-dd hh:mm:ss format")
    if item.get("taxMode") is not None:
        if item["taxMode"] in ("TaxExclusive", "TaxInclusive"):
            clean["taxMode"] = item["taxMode"]
        else:
            p.add(CAT_INVALID, f"'{label}.taxMode' value should be one of: TaxExclusive, TaxInclusive")
    for key, most in (("taxItems", 5), ("discountItems", 10)):
        if item.get(key) is not None and (not isinstance(item[key], list) or len(item[key]) > most):
            p.add(CAT_INVALID, f"'{label}.{key}' must be a list of at most {most} objects")
        elif item.get(key):
            p.add(CAT_BUSINESS, f"'{label}.{key}' is not supported by the sandbox")
    return clean if len(p.reasons) == before else None


# ---------------------------------------------------------------------------------------------------
# callouts
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CalloutSettings:
    """How account-created callouts are sent; ``repr`` never shows the password or HMAC secret."""

    url: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    preemptive: bool = False
    hmac_secret: str | None = field(default=None, repr=False)
    hmac_header: str = "X-Zuora-Signature"
    hmac_algorithm: str = "SHA-256"
    hmac_format: str = "BASE64"
    retry_interval: float = 1.0
    attempts: int = 3

    def validate(self) -> "CalloutSettings":
        if self.url is not None and (not isinstance(self.url, str) or not re.match(r"^https?://", self.url)
                                     or len(self.url) > 1000):
            raise ValueError("callout_url must be an http(s) URL of at most 1000 characters")
        for name in ("username", "password", "hmac_secret"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"callout_{name} must be a string")
        if self.username is not None and ":" in self.username:
            raise ValueError("callout_username may not contain ':'")
        if not isinstance(self.preemptive, bool):
            raise ValueError("callout_preemptive must be true or false")
        if not isinstance(self.hmac_header, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,100}", self.hmac_header):
            raise ValueError("callout_hmac_header must be a header name")
        if self.hmac_algorithm not in HMAC_ALGORITHMS:
            raise ValueError(f"callout_hmac_algorithm must be one of {', '.join(HMAC_ALGORITHMS)}")
        if self.hmac_format not in HMAC_FORMATS:
            raise ValueError("callout_hmac_format must be BASE64 or HEX")
        if (not isinstance(self.retry_interval, (int, float, Decimal)) or isinstance(self.retry_interval, bool)
                or not 0 <= self.retry_interval <= 86400):
            raise ValueError("callout_retry_interval must be a number of seconds 0..86400")
        if not _is_int(self.attempts) or not 1 <= self.attempts <= 5:
            raise ValueError("callout_attempts must be an integer 1..5 (Zuora's maximum)")
        return replace(self, retry_interval=float(self.retry_interval))

    def public(self) -> dict:
        """For ``GET /_sandbox/config``: secrets reported only as set or not."""
        return {"callout_url": self.url, "callout_username": self.username,
                "callout_password_set": self.password is not None, "callout_preemptive": self.preemptive,
                "callout_hmac_secret_set": self.hmac_secret is not None, "callout_hmac_header": self.hmac_header,
                "callout_hmac_algorithm": self.hmac_algorithm, "callout_hmac_format": self.hmac_format,
                "callout_retry_interval": self.retry_interval, "callout_attempts": self.attempts}


def sign_callout(settings: CalloutSettings, body: bytes) -> str:
    """The HMAC of the raw body in the configured algorithm and output format."""
    assert settings.hmac_secret is not None
    digest = hmac.new(settings.hmac_secret.encode(), body, HMAC_ALGORITHMS[settings.hmac_algorithm]).digest()
    return base64.b64encode(digest).decode() if settings.hmac_format == "BASE64" else digest.hex()


def _retryable_status(status: int) -> bool:
    """Zuora retries only on 1xx, 403, 408, 429 and 5xx (and connection errors)."""
    return 100 <= status < 200 or status in (403, 408, 429) or status >= 500


@dataclass
class _Notification:
    notification_id: str
    account_id: str
    settings: CalloutSettings
    manual: bool
    generation: int


# ---------------------------------------------------------------------------------------------------
# state
# ---------------------------------------------------------------------------------------------------

class ZuoraSandbox:
    """All sandbox state behind one lock; lives in ``app.extensions["zuora_sandbox"]``.

    What tests and the demo use: ``client_id``, ``client_secret`` (never in ``repr``), ``faults``
    (:class:`~integration_sandbox.faults.Faults`), ``wait_for_callouts(timeout)``, ``state()`` (the
    ``/_sandbox/state`` document), ``reset()``, ``revoke_tokens()`` and ``close()``.
    """

    def __init__(self, *, client_id: str, client_secret: str, token_lifetime: int, custom_fields: set[str],
                 callout: CalloutSettings, clock: Clock, faults: faults_mod.Faults,
                 invoice_custom_fields: set[str] = frozenset()):
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.custom_fields = custom_fields
        self.invoice_custom_fields = set(invoice_custom_fields)
        self.clock = clock
        self.faults = faults
        self.lock = threading.RLock()
        self.callout = callout
        self.tokens: dict[str, float] = {}   # access token -> expiry (clock seconds)
        self.tokens_issued = 0
        self._queue: queue.Queue[_Notification] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition(self.lock)
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._generation = 0
        self._clear()

    def __repr__(self) -> str:
        return f"ZuoraSandbox(client_id={self.client_id!r}, accounts={len(self.accounts)})"

    def _clear(self) -> None:
        self.accounts: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.usage: list[dict] = []
        self.imports: dict[str, dict] = {}
        self.callouts: list[dict] = []
        self.requests: collections.deque[dict] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self.idempotency: dict[str, dict] = {}
        self.fail_next: dict | None = None
        self.lose_next: dict[str, dict] = {}  # path -> {"count", "mode", "status", "hold_seconds"}
        self.account_seq = 0
        self.invoice_seq = 0

    def reset(self) -> None:
        """Forget all data, logs and idempotency keys; credentials, tokens and settings stay."""
        with self.lock:
            self._generation += 1
            self._clear()

    def now(self) -> float:
        return self.clock()

    # -- tokens ------------------------------------------------------------------------------------

    def issue_token(self) -> tuple[str, str]:
        token, jti = secrets.token_hex(16), secrets.token_hex(16)
        with self.lock:
            now = self.now()
            for expired in [t for t, expiry in self.tokens.items() if expiry <= now]:
                del self.tokens[expired]
            self.tokens[token] = now + self.token_lifetime
            self.tokens_issued += 1
        return token, jti

    def token_valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self.lock:
            expiry = self.tokens.get(token)
            return expiry is not None and self.now() < expiry

    def revoke_tokens(self) -> int:
        with self.lock:
            n = len(self.tokens)
            self.tokens.clear()
            return n

    # -- lookups -------------------------------------------------------------------------------------

    def find_account(self, key: str) -> dict | None:
        """By ID or number, as every Zuora ``*-key`` accepts either."""
        with self.lock:
            if key in self.accounts:
                return self.accounts[key]
            return next((a for a in self.accounts.values() if a["accountNumber"] == key), None)

    def find_invoice(self, key: str) -> dict | None:
        with self.lock:
            if key in self.invoices:
                return self.invoices[key]
            return next((i for i in self.invoices.values() if i["invoiceNumber"] == key), None)

    # -- idempotency -------------------------------------------------------------------------------

    def idempotency_begin(self, key: str, method: str, path: str) -> tuple[str, dict | None]:
        """``("new", None)``, ``("replay", stored)``, ``("in_flight", None)`` or ``("mismatch", None)``."""
        with self.lock:
            now = self.now()
            for k in [k for k, v in self.idempotency.items() if v["expires"] <= now]:
                del self.idempotency[k]
            entry = self.idempotency.get(key)
            if entry is None:
                self.idempotency[key] = {"method": method, "path": path, "state": "in_flight",
                                         "expires": now + IDEMPOTENCY_TTL_SECONDS}
                return "new", None
            if (entry["method"], entry["path"]) != (method, path):
                return "mismatch", None
            if entry["state"] == "in_flight":
                return "in_flight", None
            return "replay", entry

    def idempotency_finish(self, key: str, status: int, body: bytes) -> None:
        with self.lock:
            entry = self.idempotency.get(key)
            if entry is not None:
                entry.update(state="done", status=status, body=body)

    def idempotency_abort(self, key: str) -> None:
        with self.lock:
            self.idempotency.pop(key, None)

    # -- fail-next ---------------------------------------------------------------------------------

    def take_fail_next(self) -> dict | None:
        with self.lock:
            if not self.fail_next or self.fail_next["count"] <= 0:
                return None
            self.fail_next["count"] -= 1
            taken = dict(self.fail_next)
            if self.fail_next["count"] == 0:
                self.fail_next = None
            return taken

    def take_lose_next(self, path: str) -> dict | None:
        """The lost-response fault for one write on ``path``, if one is armed (counted down)."""
        with self.lock:
            armed = self.lose_next.get(path)
            if not armed:
                return None
            armed["count"] -= 1
            if armed["count"] <= 0:
                del self.lose_next[path]
            return dict(armed)

    # -- callouts ------------------------------------------------------------------------------------

    def queue_callout(self, account_id: str, *, manual: bool = False) -> str | None:
        """Queue an account-created notification; None when no callout URL is configured."""
        with self.lock:
            settings = self.callout
            if settings.url is None:
                return None
            note = _Notification(uuid.uuid4().hex, account_id, settings, manual, self._generation)
            self._pending += 1
            self._ensure_workers()
        self._queue.put(note)
        return note.notification_id

    def wait_for_callouts(self, timeout: float = 10.0) -> bool:
        """Block until every queued callout has been delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self) -> None:
        """Stop the callout workers (pending retries are abandoned)."""
        self._stop.set()
        for _ in self._workers:
            self._queue.put(None)  # type: ignore[arg-type]

    def _ensure_workers(self) -> None:
        self._workers = [w for w in self._workers if w.is_alive()]
        while len(self._workers) < CALLOUT_WORKERS and not self._stop.is_set():
            worker = threading.Thread(target=self._work, name="zuora-sandbox-callouts", daemon=True)
            worker.start()
            self._workers.append(worker)

    def _work(self) -> None:
        while not self._stop.is_set():
            note = self._queue.get()
            if note is None:
                return
            try:
                self._deliver(note)
            except Exception:  # a bug here must not kill the worker or hang wait_for_callouts
                log.exception("callout delivery crashed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, note: _Notification) -> None:
        """One notification: up to ``attempts`` deliveries, each with Zuora's Basic-challenge handshake."""
        s = note.settings
        body = json.dumps({"AccountId": note.account_id}, separators=(",", ":")).encode()
        send_auth = s.preemptive and s.username is not None
        for attempt in range(1, s.attempts + 1):
            if self._stale(note):
                return
            status, outcome_headers = self._attempt(note, body, attempt, send_auth)
            if (status == 401 and not send_auth and s.username is not None
                    and "basic" in outcome_headers.get("www-authenticate", "").lower()):
                self._log_outcome(note, "challenged")
                send_auth = True
                status, outcome_headers = self._attempt(note, body, attempt, send_auth)
            if status == 200:
                self._log_outcome(note, "delivered")
                return
            if status is not None and not _retryable_status(status):
                self._log_outcome(note, "failed")
                return
            if attempt == s.attempts:
                self._log_outcome(note, "failed")
                return
            self._log_outcome(note, "retry")
            if self._stop.wait(s.retry_interval):
                return

    def _stale(self, note: _Notification) -> bool:
        with self.lock:
            return note.generation != self._generation

    def _attempt(self, note: _Notification, body: bytes, attempt: int, send_auth: bool) -> tuple[int | None, dict]:
        s = note.settings
        request_id = uuid.uuid4().hex
        headers = {"Content-Type": "application/json", "Zuora-Request-Id": request_id,
                   "Zuora-Notification-Id": note.notification_id,
                   "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}",
                   "User-Agent": "Zuora-Callout-Sandbox/1.0"}
        if send_auth:
            token = base64.b64encode(f"{s.username}:{s.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if s.hmac_secret is not None:
            headers[s.hmac_header] = sign_callout(s, body)
        entry = {"notification_id": note.notification_id, "account_id": note.account_id, "attempt": attempt,
                 "request_id": request_id, "url": s.url, "authorization": "basic" if send_auth else None,
                 "hmac": s.hmac_secret is not None, "manual": note.manual, "at": _utc_iso(self.now()),
                 "status": None, "error": None, "outcome": None}
        response_headers: dict = {}
        try:
            resp = requests.post(s.url, data=body, headers=headers, timeout=CALLOUT_TIMEOUT, allow_redirects=False)
            entry["status"] = resp.status_code
            response_headers = {k.lower(): v for k, v in resp.headers.items()}
        except requests.RequestException as exc:
            entry["error"] = type(exc).__name__
        with self.lock:
            if note.generation == self._generation:
                self.callouts.append(entry)
        return entry["status"], response_headers

    def _log_outcome(self, note: _Notification, outcome: str) -> None:
        with self.lock:
            for entry in reversed(self.callouts):
                if entry["notification_id"] == note.notification_id:
                    entry["outcome"] = outcome
                    return

    # -- inspection ----------------------------------------------------------------------------------

    def state(self) -> dict:
        with self.lock:
            return {
                "accounts": [account_view(a, self) for a in self.accounts.values()],
                "invoices": [invoice_view(i, with_items=True) for i in self.invoices.values()],
                "usage": [dict(u) for u in self.usage],
                "imports": [import_view(i) for i in self.imports.values()],
                "callouts": [dict(c) for c in self.callouts],
                "tokens_issued": self.tokens_issued,
                "requests": [dict(r) for r in self.requests],
            }


# ---------------------------------------------------------------------------------------------------
# views (response shapes)
# ---------------------------------------------------------------------------------------------------

def _contact_view(contact: dict) -> dict:
    out = {"id": contact["id"]}
    for key in list(CONTACT_LIMITS) + list(CONTACT_EMAILS) + ["otherPhoneType"]:
        out[key] = contact.get(key)
    return out


def account_metrics(account: dict, sb: ZuoraSandbox) -> dict:
    posted = [i for i in sb.invoices.values() if i["accountId"] == account["id"] and i["status"] == "Posted"]
    balance = sum((i["balance"] for i in posted), Decimal("0"))
    return {"balance": balance, "totalInvoiceBalance": balance, "creditBalance": Decimal("0"),
            "contractedMrr": Decimal("0")}


def account_view(a: dict, sb: ZuoraSandbox) -> dict:
    """``GET /v1/accounts/{key}`` without ``success``."""
    basic = {"id": a["id"], "accountNumber": a["accountNumber"], "name": a["name"], "status": a["status"],
             "batch": a["batch"], "crmId": a.get("crmId"), "notes": a.get("notes"), "salesRep": a.get("salesRep"),
             "parentId": a.get("parentId"), "communicationProfileId": a.get("communicationProfileId"),
             "profileNumber": a.get("profileNumber"), "invoiceTemplateId": a.get("invoiceTemplateId"),
             "sequenceSetId": a.get("sequenceSetId"), "partnerAccount": a.get("partnerAccount", False),
             "customerServiceRepName": a.get("customerServiceRepName"),
             "purchaseOrderNumber": a.get("purchaseOrderNumber"), "tagging": a.get("tagging"),
             "organizationLabel": a.get("organizationLabel")}
    for name in sorted(sb.custom_fields):
        basic[name] = a["customFields"].get(name)
    billing = {"billCycleDay": a["billCycleDay"], "currency": a["currency"], "autoPay": a["autoPay"],
               "paymentTerm": a["paymentTerm"], "paymentGateway": a.get("paymentGateway"),
               "defaultPaymentMethodId": a.get("defaultPaymentMethodId"),
               "invoiceDeliveryPrefsEmail": a["invoiceDeliveryPrefsEmail"],
               "invoiceDeliveryPrefsPrint": a["invoiceDeliveryPrefsPrint"],
               "additionalEmailAddresses": list(a.get("additionalEmailAddresses", [])),
               "paymentMethodCascadingConsent": False}
    metrics = account_metrics(a, sb)
    return {"basicInfo": basic, "billingAndPayment": billing,
            "billToContact": _contact_view(a["contacts"][a["billToContactId"]]),
            "soldToContact": _contact_view(a["contacts"][a["soldToContactId"]]),
            "metrics": metrics, "metricsData": [dict(metrics, currency=a["currency"])],
            "taxInfo": a.get("taxInfo"), "einvoiceProfile": a.get("einvoiceProfile")}


def account_query_view(a: dict, sb: ZuoraSandbox) -> dict:
    """One account as Object Query returns it: flat camelCase fields plus custom fields."""
    metrics = account_metrics(a, sb)
    out = {"id": a["id"], "accountNumber": a["accountNumber"], "name": a["name"], "status": a["status"],
           "currency": a["currency"], "billCycleDay": a["billCycleDay"], "autoPay": a["autoPay"],
           "paymentTerm": a["paymentTerm"], "batch": a["batch"], "crmId": a.get("crmId"),
           "billToId": a["billToContactId"], "soldToId": a["soldToContactId"], "notes": a.get("notes"),
           "balance": metrics["balance"], "creditBalance": metrics["creditBalance"],
           "totalInvoiceBalance": metrics["totalInvoiceBalance"], "createdDate": a["createdDate"],
           "updatedDate": a["updatedDate"]}
    for name in sorted(sb.custom_fields):
        out[name] = a["customFields"].get(name)
    return out


def invoice_view(inv: dict, *, with_items: bool) -> dict:
    out = {k: v for k, v in inv.items() if k != "items"}
    if with_items:
        out["invoiceItems"] = [dict(item) for item in inv["items"]]
    return out


def import_view(imp: dict) -> dict:
    return {k: imp[k] for k in ("id", "fileName", "size", "status", "message", "polls", "recordCount",
                                "createdDate")}


# ---------------------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------------------

def _error_body_for_faults(status: int, message: str) -> dict:
    """Zuora shapes for injected faults and limits."""
    if status == 429:
        return common_error([reason(RES_GET, CAT_CONCURRENCY, f"Request exceeded limit: {message}")])
    if status >= 500:
        return {"reasons": [{"code": "SystemError", "message": message}]}
    return {"message": message}


def create_zuora_sandbox(*, client_id: str | None = None, client_secret: str | None = None,
                         token_lifetime: int = 3599, custom_fields: Iterable[str] = ("BillingAccountId__c",),
                         invoice_custom_fields: Iterable[str] = ("BillingInvoiceId__c",),
                         callout_url: str | None = None, callout_username: str | None = None,
                         callout_password: str | None = None, callout_preemptive: bool = False,
                         callout_hmac_secret: str | None = None, callout_hmac_header: str = "X-Zuora-Signature",
                         callout_hmac_algorithm: str = "SHA-256", callout_hmac_format: str = "BASE64",
                         callout_retry_interval: float = 1.0, callout_attempts: int = 3,
                         rate_limit: int | None = None, concurrency_limit: int | None = 40,
                         clock: Clock | None = None) -> flask.Flask:
    """Build the sandbox app. ``clock`` (epoch seconds) drives token expiry, idempotency TTL and the
    rate window; credentials are generated when not given (read them from ``app.extensions``)."""
    fields = set(custom_fields)
    invoice_fields = set(invoice_custom_fields)
    for name in fields | invoice_fields:
        if not CUSTOM_FIELD_RE.match(name):
            raise ValueError(f"custom field {name!r} must look like Name__c")
    if not _is_int(token_lifetime) or token_lifetime < 1:
        raise ValueError("token_lifetime must be a positive integer")
    callout = CalloutSettings(callout_url, callout_username, callout_password, callout_preemptive,
                              callout_hmac_secret, callout_hmac_header, callout_hmac_algorithm,
                              callout_hmac_format, callout_retry_interval, callout_attempts).validate()
    faults = faults_mod.Faults(rate_limit=rate_limit, concurrency_limit=concurrency_limit,
                               **({"clock": clock} if clock is not None else {}))
    sb = ZuoraSandbox(client_id=client_id or str(uuid.uuid4()),
                      client_secret=client_secret or secrets.token_urlsafe(30),
                      token_lifetime=token_lifetime, custom_fields=fields, callout=callout,
                      clock=clock or time.time, faults=faults, invoice_custom_fields=invoice_fields)

    app = flask.Flask(__name__)
    app.json = _DecimalJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_USAGE_FILE_BYTES + 256 * 1024
    app.config["SANDBOX_ERROR_BODY"] = _error_body_for_faults
    app.extensions["zuora_sandbox"] = sb
    faults_mod.install(app, faults, api_name="zuora", exempt_prefixes=("/_sandbox", "/oauth/token"))
    _register_hooks(app, sb)
    _register_auth_routes(app, sb)
    _register_account_routes(app, sb)
    _register_invoice_routes(app, sb)
    _register_usage_routes(app, sb)
    _register_sandbox_routes(app, sb)
    return app


def _json_response(body: Any, status: int = 200) -> flask.Response:
    return flask.Response(dumps(body), status=status, mimetype="application/json")


def _track_id_ok(track: str | None) -> bool:
    """Zuora-Track-Id: at most 64 US-ASCII characters, none of ``: ; " '``."""
    return track is not None and bool(TRACK_ID_RE.match(track)) and not any(c in track for c in ':;"\'')


def _register_hooks(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.before_request
    def _check_track_id() -> flask.Response | None:
        track = flask.request.headers.get("Zuora-Track-Id")
        if track is not None and not flask.request.path.startswith("/_sandbox") and not _track_id_ok(track):
            return _json_response(common_error([reason(RES_GET, CAT_INVALID,
                                                       "Zuora-Track-Id must be at most 64 US-ASCII characters "
                                                       "without : ; \" or '")]), 400)
        return None

    @app.after_request
    def _stamp_and_log(response: flask.Response) -> flask.Response:
        req = flask.request
        if req.path.startswith("/_sandbox"):
            return response
        request_id = str(uuid.uuid4())
        response.headers["Zuora-Request-Id"] = request_id
        track = req.headers.get("Zuora-Track-Id")
        if _track_id_ok(track):
            response.headers["Zuora-Track-Id"] = track
        if req.path.startswith("/v1/"):
            high_volume = req.method == "POST" and req.path == "/v1/accounts"
            response.headers["Concurrency-Limit-Type"] = "high-volume" if high_volume else "default"
        idem = req.headers.get("Idempotency-Key") if req.method in ("POST", "PATCH") else None
        with sb.lock:
            sb.requests.append({"method": req.method, "path": req.path, "status": response.status_code,
                                "idempotency_key": idem, "track_id": track,
                                "entity_ids": req.headers.get("Zuora-Entity-Ids"), "request_id": request_id,
                                "at": _utc_iso(sb.now())})
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> flask.Response:
        if exc.code == 404:
            body: Any = {"message": "no Route matched with those values"}
        elif exc.code == 413:
            body = {"message": "Request size limit exceeded"}
        else:
            body = {"message": exc.name}
        return _json_response(body, exc.code or 500)

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> flask.Response:
        log.exception("zuora sandbox: unhandled error")
        return _json_response({"reasons": [{"code": "SystemError", "message": "internal server error"}]}, 500)


def _auth_failure() -> flask.Response:
    resp = _json_response({"message": "Authentication error"}, 401)
    resp.headers["WWW-Authenticate"] = "Basic realm=Zuora API, ZSession realm=Zuora API, Bearer realm=Zuora API"
    return resp


def _bearer() -> str | None:
    header = flask.request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _api(sb: ZuoraSandbox, *, write: bool = False, object_api: bool = False, resource: int = RES_GET):
    """Wrap a view: bearer auth, ``Idempotency-Key`` (POST/PATCH), fail-next for writes.

    The view returns ``(body, status)``; the wrapper turns it into JSON and stores it under the key.
    """
    def shape(category: int, message: str) -> Body:
        if object_api:
            return object_error("INVALID_VALUE" if category != CAT_CONCURRENCY else "LOCK_COMPETITION", message)
        return common_error([reason(resource, category, message)])

    def decorate(view: Callable[..., tuple[Any, int]]) -> Callable[..., flask.Response]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> flask.Response:
            if not sb.token_valid(_bearer()):
                return _auth_failure()
            req = flask.request
            key = req.headers.get("Idempotency-Key") if req.method in ("POST", "PATCH") else None
            if key is not None:
                if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
                    return _json_response(shape(CAT_INVALID, "Idempotency-Key must be 1 to 255 characters"), 400)
                verdict, stored = sb.idempotency_begin(key, req.method, req.path)
                if verdict == "replay":
                    return flask.Response(stored["body"], status=stored["status"], mimetype="application/json")
                if verdict == "in_flight":
                    return _json_response(shape(CAT_CONCURRENCY, "A request with this Idempotency-Key is "
                                                                 "still in progress"), 409)
                if verdict == "mismatch":
                    return _json_response(shape(CAT_INVALID, "Idempotency-Key was already used with a "
                                                             "different URL or HTTP method"), 422)
            try:
                failure = sb.take_fail_next() if write else None
                if failure is not None:
                    if object_api:
                        body, status = object_error(str(failure["code"]), failure["message"]), 200
                    else:
                        body, status = common_error([{"code": failure["code"], "message": failure["message"]}]), 200
                else:
                    body, status = view(*args, **kwargs)
                text = dumps(body)
            except BaseException:
                if key is not None:
                    sb.idempotency_abort(key)
                raise
            if key is not None:
                sb.idempotency_finish(key, status, text.encode())
            lost = sb.take_lose_next(req.path) if write else None
            if lost is not None:
                return _lost_response(sb, lost, shape)
            return flask.Response(text, status=status, mimetype="application/json")
        return wrapper
    return decorate


LOSE_MODES = ("error", "timeout", "failure")


def _lost_response(sb: ZuoraSandbox, lost: dict, shape: Callable[[int, str], Body]) -> flask.Response:
    """What the client gets instead of the result of a write that took effect (and whose result is
    stored under its Idempotency-Key): a 5xx, a connection held past the client's read timeout and
    then answered 504, or a ``success: false`` answer with a business-rule code."""
    if lost["mode"] == "timeout":
        time.sleep(lost["hold_seconds"])
        return _json_response({"reasons": [{"code": "SystemError", "message": "gateway timeout"}]}, 504)
    if lost["mode"] == "failure":
        body = shape(CAT_BUSINESS, lost["message"])
        return _json_response(body, 200)
    return _json_response({"reasons": [{"code": "SystemError", "message": "internal server error"}]},
                          lost["status"])


def _json_body(resource: int) -> tuple[Any, Body | None]:
    """The parsed JSON body, or a category-90 error body (HTTP 200, as Zuora answers malformed JSON)."""
    req = flask.request
    if not req.mimetype or not (req.mimetype == "application/json" or req.mimetype.endswith("+json")):
        return None, common_error([reason(resource, CAT_MALFORMED, "Content-Type must be application/json")])
    try:
        return parse_json(req.get_data(cache=False)), None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, common_error([reason(resource, CAT_MALFORMED, "Malformed JSON in the request body")])


def _register_auth_routes(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.post("/oauth/token")
    def create_token() -> flask.Response:
        req = flask.request
        if req.mimetype != "application/x-www-form-urlencoded":
            return _json_response({"message": "Content-Type must be application/x-www-form-urlencoded"}, 415)
        form = req.form
        missing = [k for k in ("client_id", "client_secret", "grant_type") if not form.get(k)]
        if missing:
            return _json_response({"message": f"Missing required form field(s): {', '.join(missing)}"}, 400)
        if form["grant_type"] != "client_credentials":
            return _json_response({"message": "grant_type must be client_credentials"}, 400)
        ok_id = hmac.compare_digest(form["client_id"].encode(), sb.client_id.encode())
        ok_secret = hmac.compare_digest(form["client_secret"].encode(), sb.client_secret.encode())
        if not (ok_id and ok_secret):
            return _json_response({"message": "Authentication error"}, 401)
        token, jti = sb.issue_token()
        return _json_response({"access_token": token, "token_type": "bearer", "expires_in": sb.token_lifetime,
                               "scope": f"user.{uuid.uuid4().hex} entity.{uuid.uuid4()} "
                                        "service.usage.delete service.usage.update tenant.19",
                               "jti": jti})


def _register_account_routes(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.post("/v1/accounts")
    @_api(sb, write=True, resource=RES_ACCOUNT)
    def create_account() -> tuple[Body, int]:
        body, error = _json_body(RES_ACCOUNT)
        if error:
            return error, 200
        clean, problems = validate_account_create(body, sb.custom_fields)
        if problems:
            return common_error(problems.reasons), 200
        with sb.lock:
            if clean.get("accountNumber") and sb.find_account(clean["accountNumber"]):
                return common_error([reason(RES_ACCOUNT, CAT_BUSINESS, f"The account number "
                                            f"{clean['accountNumber']} already exists.")]), 200
            account = _new_account(sb, clean)
            sb.accounts[account["id"]] = account
        sb.queue_callout(account["id"])
        return {"success": True, "accountId": account["id"], "accountNumber": account["accountNumber"],
                "billToContactId": account["billToContactId"], "soldToContactId": account["soldToContactId"]}, 200

    @app.get("/v1/accounts/<path:key>")
    @_api(sb)
    def get_account(key: str) -> tuple[Body, int]:
        with sb.lock:
            account = sb.find_account(key)
            if account is None:
                return common_error([reason(RES_GET, CAT_NOT_FOUND, f"Cannot find entity by key: '{key}'.")]), 200
            return {"success": True, **account_view(account, sb)}, 200

    @app.put("/v1/accounts/<path:key>")
    @_api(sb, write=True, resource=RES_ACCOUNT)
    def update_account(key: str) -> tuple[Body, int]:
        body, error = _json_body(RES_ACCOUNT)
        if error:
            return error, 200
        clean, problems = validate_account_update(body, sb.custom_fields)
        with sb.lock:
            account = sb.find_account(key)
            if account is None:
                return common_error([reason(RES_ACCOUNT, CAT_NOT_FOUND, f"Cannot find entity by key: '{key}'.")]), 200
            if problems:
                return common_error(problems.reasons), 200
            _apply_account_update(sb, account, clean)
        return {"success": True}, 200

    @app.get("/object-query/accounts")
    @_api(sb)
    def query_accounts() -> tuple[Body, int]:
        return _query_accounts(sb)


def _new_contact(fields: dict) -> dict:
    return {"id": _new_id(), **fields}


def _new_account(sb: ZuoraSandbox, clean: dict) -> dict:
    """Build a new Active account from validated fields (caller holds the lock)."""
    if clean.get("accountNumber"):
        number = clean["accountNumber"]
    else:
        while True:
            sb.account_seq += 1
            number = f"A{sb.account_seq:08d}"
            if sb.find_account(number) is None:
                break
    bill_to = _new_contact(clean["billToContact"])
    contacts = {bill_to["id"]: bill_to}
    sold_to = bill_to
    if clean.get("soldToContact"):
        sold_to = _new_contact(clean["soldToContact"])
        contacts[sold_to["id"]] = sold_to
    if clean.get("shipToContact"):
        ship_to = _new_contact(clean["shipToContact"])
        contacts[ship_to["id"]] = ship_to
    now = _utc_iso(sb.now())
    account = {
        "id": _new_id(), "accountNumber": number, "name": clean["name"], "status": "Active",
        "currency": clean["currency"], "billCycleDay": clean["billCycleDay"], "autoPay": False,
        "paymentTerm": clean.get("paymentTerm", "Due Upon Receipt"), "batch": clean.get("batch", "Batch1"),
        "invoiceDeliveryPrefsEmail": False, "invoiceDeliveryPrefsPrint": False,
        "customFields": {name: None for name in sb.custom_fields}, "contacts": contacts,
        "billToContactId": bill_to["id"], "soldToContactId": sold_to["id"], "createdDate": now, "updatedDate": now,
    }
    for key, value in clean.items():
        if key in ACCOUNT_STRINGS or key in ACCOUNT_BOOLS or key in ACCOUNT_OBJECTS or key == "additionalEmailAddresses":
            account[key] = value
    account["customFields"].update(clean.get("customFields", {}))
    return account


def _apply_account_update(sb: ZuoraSandbox, account: dict, clean: dict) -> None:
    """Merge a validated PUT into the account (caller holds the lock)."""
    for key, value in clean.items():
        if key == "customFields":
            account["customFields"].update(value)
        elif key == "billToContact":
            account["contacts"][account["billToContactId"]].update(value)
        elif key == "soldToContact":
            if account["soldToContactId"] == account["billToContactId"]:
                # sold-to shared the bill-to contact: split it rather than change the bill-to too
                copy = {k: v for k, v in account["contacts"][account["billToContactId"]].items() if k != "id"}
                contact = _new_contact({**copy, **value})
                account["contacts"][contact["id"]] = contact
                account["soldToContactId"] = contact["id"]
            else:
                account["contacts"][account["soldToContactId"]].update(value)
        elif key == "shipToContact":
            contact = _new_contact(value)
            account["contacts"][contact["id"]] = contact
        else:
            account[key] = value
    account["updatedDate"] = _utc_iso(sb.now())


def _query_accounts(sb: ZuoraSandbox) -> tuple[Body, int]:
    """``GET /object-query/accounts``: ``filter[]=<field>.EQ:<value>`` (ANDed), ``pageSize`` 1-99, ``cursor``."""
    filterable = ["id", "accountNumber", "name", "crmId", "status", "currency", *sb.custom_fields]
    with sb.lock:
        rows = [account_query_view(a, sb) for a in sb.accounts.values()]
    return _object_query("accounts", rows, filterable)


def _query_invoices(sb: ZuoraSandbox) -> tuple[Body, int]:
    """``GET /object-query/invoices``: as for accounts, filterable by invoice custom fields too."""
    filterable = ["id", "invoiceNumber", "accountId", "status", *sb.invoice_custom_fields]
    with sb.lock:
        rows = [invoice_query_view(i, sb) for i in sb.invoices.values()]
    return _object_query("invoices", rows, filterable)


def _query_usages(sb: ZuoraSandbox) -> tuple[Body, int]:
    """``GET /object-query/usages``: usage records, filterable by account and import."""
    with sb.lock:
        rows = [usage_query_view(u) for u in sb.usage]
    return _object_query("usages", rows, ["id", "accountId", "accountNumber", "importId", "createdDate"])


def invoice_query_view(inv: dict, sb: ZuoraSandbox) -> dict:
    """One invoice as Object Query returns it: flat fields plus the invoice custom fields."""
    out = {k: inv[k] for k in ("id", "invoiceNumber", "accountId", "invoiceDate", "dueDate", "status", "amount",
                               "balance", "currency", "comments", "createdDate", "updatedDate")}
    for name in sorted(sb.invoice_custom_fields):
        out[name] = inv.get(name)
    return out


def usage_query_view(u: dict) -> dict:
    """One usage record as Object Query returns it (camelCase)."""
    return {"id": u["Id"], "accountId": u["AccountId"], "accountNumber": u["AccountNumber"],
            "quantity": u["Quantity"], "uom": u["UOM"], "startDateTime": u["StartDateTime"],
            "endDateTime": u["EndDateTime"], "subscriptionNumber": u["SubscriptionNumber"],
            "chargeNumber": u["ChargeNumber"], "description": u["Description"], "uniqueKey": u["UniqueKey"],
            "importId": u["ImportId"], "source": u["Source"], "createdDate": u["CreatedDate"]}


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "GE": lambda a, b: a >= b, "GT": lambda a, b: a > b, "LE": lambda a, b: a <= b, "LT": lambda a, b: a < b}


def _parse_instant(value: Any) -> dt.datetime | None:
    """An ISO-8601 date-time with a zone (``Z`` or an offset), else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _object_query(resource: str, rows: list[dict], filterable: Iterable[str]) -> tuple[Body, int]:
    """Object Query over ``rows``: ``filter[]=<field>.<OP>:<value>`` (ANDed, field names case-insensitive,
    only ``filterable`` ones; EQ, and GE/GT/LE/LT on the date-times), ``pageSize`` 1-99, ``cursor`` (an
    offset here), ``nextPage`` when more."""
    args = flask.request.args
    by_lower = {name.lower(): name for name in filterable}

    def bad(message: str) -> tuple[Body, int]:
        return common_error([reason(RES_GET, CAT_BAD_QUERY, message)]), 400

    clauses = []
    for raw in args.getlist("filter[]"):
        m = re.fullmatch(r"([A-Za-z0-9_]+)\.([A-Za-z]+):(.*)", raw, flags=re.S)
        if not m:
            return bad(f"invalid filter '{raw}': expected <field>.<operator>:<value>")
        fld, op, value = m.group(1), m.group(2).upper(), m.group(3)
        if fld.lower() not in by_lower:
            return bad(f"field '{fld}' is not filterable on {resource}")
        name = by_lower[fld.lower()]
        if op == "EQ":
            clauses.append(lambda r, f=name, v=value: r.get(f) is not None and str(r.get(f)) == v)
            continue
        if name not in ("createdDate", "updatedDate"):
            return bad(f"operator '{op}' is not supported by the sandbox (EQ only)")
        if op not in _COMPARISONS:
            return bad(f"operator '{op}' is not supported by the sandbox on '{fld}' (EQ, GE, GT, LE, LT)")
        bound = _parse_instant(value)
        if bound is None:
            return bad(f"'{value}' is not a date-time with a time zone, e.g. 2024-07-01T00:00:00Z")
        clauses.append(lambda r, f=name, b=bound, cmp=_COMPARISONS[op]:
                       _parse_instant(r.get(f)) is not None and cmp(_parse_instant(r.get(f)), b))
    try:
        page_size = int(args.get("pageSize", "10"))
        offset = int(args.get("cursor", "0") or 0)
    except ValueError:
        return bad("pageSize and cursor must be integers")
    if not 1 <= page_size <= 99:
        return bad("pageSize must be between 1 and 99")
    matched = [r for r in rows if all(clause(r) for clause in clauses)]
    page = matched[offset:offset + page_size]
    body: Body = {"data": page}
    if offset + page_size < len(matched):
        body["nextPage"] = str(offset + page_size)
    return body, 200


def _register_invoice_routes(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.post("/v1/invoices")
    @_api(sb, write=True, resource=RES_INVOICE)
    def create_invoice() -> tuple[Body, int]:
        body, error = _json_body(RES_INVOICE)
        if error:
            return error, 200
        with sb.lock:
            result = _create_invoice(sb, body)
        return result, 200

    @app.get("/object-query/invoices")
    @_api(sb)
    def query_invoices() -> tuple[Body, int]:
        return _query_invoices(sb)

    @app.get("/v1/invoices/<key>")
    @_api(sb)
    def get_invoice(key: str) -> tuple[Body, int]:
        with sb.lock:
            inv = sb.find_invoice(key)
            if inv is None:
                return common_error([reason(RES_GET, CAT_NOT_FOUND, f"Cannot find entity by key: '{key}'.")]), 200
            return {"success": True, **invoice_view(inv, with_items=True)}, 200

    @app.get("/v1/invoices/<key>/items")
    @_api(sb)
    def get_invoice_items(key: str) -> tuple[Body, int]:
        with sb.lock:
            inv = sb.find_invoice(key)
            if inv is None:
                return common_error([reason(RES_GET, CAT_NOT_FOUND, f"Cannot find entity by key: '{key}'.")]), 200
            return {"success": True, "invoiceItems": [dict(i) for i in inv["items"]]}, 200


def _create_invoice(sb: ZuoraSandbox, body: Any) -> Body:
    """Validate and store a standalone invoice (caller holds the lock)."""
    p = Problems(RES_INVOICE)
    if not isinstance(body, dict):
        p.add(CAT_MALFORMED, "The request body must be a JSON object")
        return common_error(p.reasons)
    p.unknown_keys({k: v for k, v in body.items() if not k.endswith("__c")}, INVOICE_KEYS)
    custom: dict[str, Any] = {name: None for name in sorted(sb.invoice_custom_fields)}
    for key, value in body.items():
        if not key.endswith("__c"):
            continue
        if key not in sb.invoice_custom_fields:
            p.add(CAT_UNKNOWN_FIELD, f"Unknown field '{key}': no such custom field on Invoice")
        elif value is not None and (not isinstance(value, str) or len(value) > 255):
            p.add(CAT_INVALID, f"'{key}' must be a string of at most 255 characters")
        else:
            custom[key] = value
    account = _invoice_account(sb, p, body)
    invoice_date = _parse_date(body.get("invoiceDate"))
    if body.get("invoiceDate") is None:
        p.add(CAT_MISSING, "'invoiceDate' may not be null")
    elif invoice_date is None:
        p.add(CAT_INVALID, "'invoiceDate' must be a date in yyyy-mm-dd format")
    due_date = None
    if body.get("dueDate") is not None:
        due_date = _parse_date(body["dueDate"])
        if due_date is None:
            p.add(CAT_INVALID, "'dueDate' must be a date in yyyy-mm-dd format")
        elif invoice_date is not None and due_date < invoice_date:
            p.add(CAT_BUSINESS, "'dueDate' cannot be earlier than invoiceDate")
    status = body.get("status", "Draft")
    if status not in ("Draft", "Posted"):
        p.add(CAT_INVALID, "'status' value should be one of: Draft, Posted")
    number = p.string(body, "invoiceNumber", "invoiceNumber")
    if number is not None:
        if not INVOICE_NUMBER_RE.match(number):
            p.add(CAT_INVALID, "'invoiceNumber' must be at most 32 characters of A-Z, a-z, 0-9, - and _")
        elif sb.find_invoice(number) is not None:
            p.add(CAT_BUSINESS, f"The invoice number {number} already exists; it must be unique in the system")
    p.string(body, "comments", "comments", max_len=255)
    term = p.string(body, "paymentTerm", "paymentTerm")
    if term is not None and term not in PAYMENT_TERMS:
        p.add(CAT_INVALID, f"'paymentTerm' value should be one of: {', '.join(PAYMENT_TERMS)}")
    for key in ("autoPay", "transferredToAccounting"):
        p.boolean(body, key, key)
    if body.get("autoPay") is True:
        p.add(CAT_BUSINESS, "autoPay is not supported by the sandbox (no payment methods)")
    if body.get("currency") is not None and account is not None and body["currency"] != account["currency"]:
        p.add(CAT_BUSINESS, f"'currency' {body['currency']!r} differs from the account currency "
                            f"{account['currency']} (Multi-currency is not enabled)")
    for key in ("customRates", "templateId", "sequenceSet", "billToContactId", "soldToContactId", "shipToContactId"):
        if body.get(key) is not None:
            p.add(CAT_BUSINESS, f"'{key}' is not supported by the sandbox")
    items = body.get("invoiceItems")
    clean_items: list[dict] = []
    if items is None:
        p.add(CAT_MISSING, "'invoiceItems' may not be null")
    elif not isinstance(items, list):
        p.add(CAT_INVALID, "'invoiceItems' must be a list")
    elif not 1 <= len(items) <= MAX_INVOICE_ITEMS:
        p.add(CAT_INVALID, f"'invoiceItems' must hold between 1 and {MAX_INVOICE_ITEMS} items")
    else:
        for n, item in enumerate(items):
            clean = validate_invoice_item(p, item, n)
            if clean is not None:
                clean_items.append(clean)
    if p:
        return common_error(p.reasons)
    assert account is not None and invoice_date is not None
    if due_date is None:
        days = PAYMENT_TERMS[term or account["paymentTerm"]]
        due_date = invoice_date + dt.timedelta(days=days)
    if number is None:
        while True:
            sb.invoice_seq += 1
            number = f"INV{sb.invoice_seq:08d}"
            if sb.find_invoice(number) is None:
                break
    total = sum((i["amount"] for i in clean_items), Decimal("0"))
    now = _utc_iso(sb.now())
    inv_id = _new_id()
    stored_items = []
    for item in clean_items:
        stored = {"id": _new_id(), **{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in item.items()}}
        stored.setdefault("serviceEndDate", stored["serviceStartDate"])
        stored.setdefault("taxMode", "TaxExclusive")
        stored["taxAmount"] = Decimal("0")
        stored_items.append(stored)
    invoice = {
        "id": inv_id, "invoiceNumber": number, "accountId": account["id"], "accountNumber": account["accountNumber"],
        "invoiceDate": invoice_date.isoformat(), "dueDate": due_date.isoformat(), "status": status,
        "amount": total, "amountWithoutTax": total, "taxAmount": Decimal("0"), "balance": total,
        "currency": account["currency"], "sourceType": "Standalone", "source": "API",
        "comments": body.get("comments"), "paymentTerm": term or account["paymentTerm"],
        "createdDate": now, "updatedDate": now, "postedOn": now if status == "Posted" else None,
        **custom, "items": stored_items,
    }
    sb.invoices[inv_id] = invoice
    return {"success": True, **invoice_view(invoice, with_items=False)}


def _invoice_account(sb: ZuoraSandbox, p: Problems, body: dict) -> dict | None:
    acc_id, acc_number = body.get("accountId"), body.get("accountNumber")
    if acc_id is None and acc_number is None:
        p.add(CAT_MISSING, "Either 'accountId' or 'accountNumber' is required")
        return None
    found = []
    for key, value in (("accountId", acc_id), ("accountNumber", acc_number)):
        if value is None:
            continue
        if not isinstance(value, str):
            p.add(CAT_INVALID, f"'{key}' must be a string")
            return None
        account = sb.accounts.get(value) if key == "accountId" else sb.find_account(value)
        if key == "accountNumber" and account is not None and account["accountNumber"] != value:
            account = None
        if account is None:
            p.add(CAT_NOT_FOUND, f"The account {'ID' if key == 'accountId' else 'number'} {value} is invalid.")
            return None
        found.append(account)
    if len(found) == 2 and found[0]["id"] != found[1]["id"]:
        p.add(CAT_BUSINESS, "'accountId' and 'accountNumber' refer to different accounts")
        return None
    return found[0]


# ---------------------------------------------------------------------------------------------------
# usage
# ---------------------------------------------------------------------------------------------------

USAGE_OBJECT_KEYS = {"AccountId", "AccountNumber", "Quantity", "StartDateTime", "EndDateTime", "UOM",
                     "SubscriptionId", "SubscriptionNumber", "ChargeId", "ChargeNumber", "Description",
                     "ProductRatePlanChargeNumber", "UniqueKey"}
USAGE_OBJECT_LIMITS = {"AccountId": 32, "AccountNumber": 50, "UOM": 100, "SubscriptionId": 32,
                       "SubscriptionNumber": 100, "ChargeId": 32, "ChargeNumber": 50, "Description": 200,
                       "ProductRatePlanChargeNumber": 100, "UniqueKey": 50}


def _create_usage_object(sb: ZuoraSandbox, body: Any, reject_unknown: bool) -> tuple[Body, int]:
    """``POST /v1/object/usage``: one record, Object-API shapes (caller holds the lock)."""
    if not isinstance(body, dict):
        return object_error("INVALID_VALUE", "The request body must be a JSON object"), 400
    unknown = [k for k in body if k not in USAGE_OBJECT_KEYS]
    if unknown and reject_unknown:
        return {"message": "Error - unrecognised fields"}, 400
    for key in ("Quantity", "StartDateTime", "UOM"):
        if body.get(key) is None or body.get(key) == "":
            return object_error("MISSING_REQUIRED_VALUE", f"Missing required value: {key}"), 400
    for key, limit in USAGE_OBJECT_LIMITS.items():
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            return object_error("INVALID_VALUE", f"{key} must be a string of at most {limit} characters"), 400
    if body.get("AccountId") is None and body.get("AccountNumber") is None:
        return object_error("MISSING_REQUIRED_VALUE", "Missing required value: AccountId or AccountNumber"), 400
    account = None
    if body.get("AccountId") is not None:
        account = sb.accounts.get(body["AccountId"])
        if account is None:
            return object_error("INVALID_VALUE", f"The account ID {body['AccountId']} is invalid."), 400
    if body.get("AccountNumber") is not None:
        by_number = next((a for a in sb.accounts.values() if a["accountNumber"] == body["AccountNumber"]), None)
        if by_number is None:
            return object_error("INVALID_VALUE", f"The account number {body['AccountNumber']} is invalid."), 400
        if account is not None and account["id"] != by_number["id"]:
            return object_error("INVALID_VALUE", "AccountId and AccountNumber refer to different accounts."), 400
        account = by_number
    quantity = _to_decimal(body["Quantity"])
    if quantity is None or quantity < 0:
        return object_error("INVALID_VALUE", "Quantity must be a number greater than or equal to 0."), 400
    if not _valid_date_time(body["StartDateTime"]):
        return object_error("INVALID_VALUE", "StartDateTime must be a date-time, e.g. 2024-06-01T02:00:00.000+01:00."), 400
    if body.get("EndDateTime") is not None and not _valid_date_time(body["EndDateTime"]):
        return object_error("INVALID_VALUE", "EndDateTime must be a date-time."), 400
    assert account is not None
    record = _usage_record(sb, account, quantity=quantity, uom=body["UOM"], start=body["StartDateTime"],
                           end=body.get("EndDateTime"), subscription=body.get("SubscriptionNumber"),
                           charge=body.get("ChargeNumber"), description=body.get("Description"),
                           unique_key=body.get("UniqueKey"), import_id=None, source="API")
    record["SubscriptionId"] = body.get("SubscriptionId")
    record["ChargeId"] = body.get("ChargeId")
    sb.usage.append(record)
    return {"Success": True, "Id": record["Id"]}, 200


def _usage_record(sb: ZuoraSandbox, account: dict, *, quantity: Decimal, uom: str, start: str, end: str | None,
                  subscription: str | None, charge: str | None, description: str | None, unique_key: str | None,
                  import_id: str | None, source: str) -> dict:
    return {"Id": _new_id(), "AccountId": account["id"], "AccountNumber": account["accountNumber"],
            "Quantity": quantity, "UOM": uom, "StartDateTime": start, "EndDateTime": end,
            "SubscriptionNumber": subscription or None, "ChargeNumber": charge or None,
            "Description": description or None, "UniqueKey": unique_key or None, "ImportId": import_id,
            "Source": source, "CreatedDate": _utc_iso(sb.now())}


def _parse_us_date(value: str) -> dt.date | None:
    if not re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", value):
        return None
    try:
        return dt.datetime.strptime(value, "%m/%d/%Y").date()
    except ValueError:
        return None


def process_usage_file(sb: ZuoraSandbox, content: bytes, import_id: str) -> tuple[list[dict], str | None]:
    """Validate a whole usage CSV; ``(records, None)`` or ``([], message naming the line)``.

    Atomic like Zuora's import: one bad record rejects the file. Line 1 is the header row.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "The file is not UTF-8 encoded text."
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return [], "The file is empty."
    header = [h.strip() for h in rows[0]]
    missing = [h for h in USAGE_REQUIRED_HEADERS if h not in header]
    if missing:
        return [], f"Missing required column heading(s): {', '.join(missing)}."
    unknown = [h for h in header if h not in USAGE_REQUIRED_HEADERS + USAGE_OPTIONAL_HEADERS]
    if unknown or len(set(header)) != len(header):
        return [], f"Unexpected or duplicate column heading(s): {', '.join(unknown) or 'duplicate'}."
    data = [(n, row) for n, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]
    if not data:
        return [], "The file has no usage records."
    records = []
    for line, row in data:
        if len(row) != len(header):
            return [], f"Line {line}: expected {len(header)} columns, found {len(row)}."
        cells = {h: cell.strip() for h, cell in zip(header, row)}
        record, problem = _usage_row(sb, cells, import_id)
        if problem:
            return [], f"Line {line}: {problem}"
        records.append(record)
    return records, None


def _usage_row(sb: ZuoraSandbox, cells: dict[str, str], import_id: str) -> tuple[dict | None, str | None]:
    number = cells["ACCOUNT_ID"]
    if not number:
        return None, "ACCOUNT_ID is required."
    account = next((a for a in sb.accounts.values() if a["accountNumber"] == number), None)
    if account is None:
        hint = " (ACCOUNT_ID takes the account number, not the account ID)" if number in sb.accounts else ""
        return None, f"The account number {number} is invalid{hint}."
    if not cells["UOM"]:
        return None, "UOM is required."
    quantity = _to_decimal(cells["QTY"]) if cells["QTY"] else None
    if quantity is None or quantity < 0:
        return None, f"QTY '{cells['QTY']}' must be a number greater than or equal to 0."
    start = _parse_us_date(cells["STARTDATE"])
    if start is None:
        return None, f"STARTDATE '{cells['STARTDATE']}' must be a date in MM/DD/YYYY format."
    end = None
    if cells["ENDDATE"]:
        end = _parse_us_date(cells["ENDDATE"])
        if end is None:
            return None, f"ENDDATE '{cells['ENDDATE']}' must be a date in MM/DD/YYYY format."
        if end < start:
            return None, "ENDDATE cannot be earlier than STARTDATE."
    description = cells.get("DESCRIPTION", "")
    if len(description) > 200:
        return None, "DESCRIPTION must be at most 200 characters."
    if len(cells["SUBSCRIPTION_ID"]) > 100 or len(cells["CHARGE_ID"]) > 50:
        return None, "SUBSCRIPTION_ID must be at most 100 and CHARGE_ID at most 50 characters."
    record = _usage_record(sb, account, quantity=quantity, uom=cells["UOM"], start=f"{start.isoformat()}T00:00:00",
                           end=f"{end.isoformat()}T00:00:00" if end else None,
                           subscription=cells["SUBSCRIPTION_ID"], charge=cells["CHARGE_ID"],
                           description=description, unique_key=cells.get("UNIQUE_KEY"), import_id=import_id,
                           source="Import")
    return record, None


def _register_usage_routes(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.post("/v1/object/usage")
    @_api(sb, write=True, object_api=True)
    def create_usage() -> tuple[Body, int]:
        req = flask.request
        if req.mimetype != "application/json":
            return object_error("INVALID_VALUE", "Content-Type must be application/json"), 400
        try:
            body = parse_json(req.get_data(cache=False))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return object_error("INVALID_VALUE", "Malformed JSON in the request body"), 400
        reject_unknown = req.args.get("rejectUnknownFields", "false").lower() == "true"
        with sb.lock:
            return _create_usage_object(sb, body, reject_unknown)

    @app.post("/v1/usage")
    @_api(sb, write=True, resource=RES_USAGE_UPLOAD)
    def upload_usage() -> tuple[Body, int]:
        def fail(category: int, message: str) -> tuple[Body, int]:
            return common_error([reason(RES_USAGE_UPLOAD, category, message)]), 200

        if flask.request.mimetype != "multipart/form-data":
            return fail(CAT_INVALID, "The request must be multipart/form-data with a 'file' part")
        upload = flask.request.files.get("file")
        if upload is None:
            return fail(CAT_MISSING, "'file' may not be null")
        name = upload.filename or ""
        content = upload.read(MAX_USAGE_FILE_BYTES + 1)
        if not name:
            return fail(CAT_MISSING, "The uploaded file must have a file name")
        if len(name) > MAX_USAGE_FILE_NAME:
            return fail(CAT_INVALID, f"The file name must not exceed {MAX_USAGE_FILE_NAME} characters")
        if not name.lower().endswith(".csv"):
            return fail(CAT_INVALID, "Only .csv usage files are supported by the sandbox")
        if len(content) > MAX_USAGE_FILE_BYTES:
            return fail(CAT_INVALID, "The file size must not exceed 4MB")
        import_id = _new_id()
        with sb.lock:
            sb.imports[import_id] = {"id": import_id, "fileName": name, "size": len(content), "status": "Pending",
                                     "message": None, "polls": 0, "recordCount": 0, "content": content,
                                     "createdDate": _utc_iso(sb.now())}
            if flask.request.path in sb.lose_next:
                # The client will not learn the import ID: process it now, as Zuora would in the
                # background, so the upload really "took effect".
                _advance_import(sb, sb.imports[import_id])
                _advance_import(sb, sb.imports[import_id])
        return {"success": True, "checkImportStatus": f"/v1/usage/{import_id}/status", "size": len(content)}, 200

    @app.get("/object-query/usages")
    @_api(sb)
    def query_usages() -> tuple[Body, int]:
        return _query_usages(sb)

    @app.get("/v1/usage/<import_id>/status")
    @_api(sb)
    def usage_import_status(import_id: str) -> tuple[Body, int]:
        with sb.lock:
            imp = sb.imports.get(import_id)
            if imp is None:
                return common_error([reason(RES_GET, CAT_NOT_FOUND,
                                            f"Cannot find entity by key: '{import_id}'.")]), 200
            _advance_import(sb, imp)
            return {"success": True, "importStatus": imp["status"], "message": imp["message"]}, 200


def _advance_import(sb: ZuoraSandbox, imp: dict) -> None:
    """One state per poll: Pending -> Processing -> Completed/Failed (caller holds the lock)."""
    imp["polls"] += 1
    if imp["status"] == "Pending":
        imp["status"] = "Processing"
    elif imp["status"] == "Processing":
        records, problem = process_usage_file(sb, imp["content"], imp["id"])
        if problem:
            imp.update(status="Failed", message=problem)
        else:
            sb.usage.extend(records)
            imp.update(status="Completed", recordCount=len(records), message=None)
        imp["content"] = b""


# ---------------------------------------------------------------------------------------------------
# /_sandbox
# ---------------------------------------------------------------------------------------------------

_CONFIG_KEYS = {"callout_url": "url", "callout_username": "username", "callout_password": "password",
                "callout_preemptive": "preemptive", "callout_hmac_secret": "hmac_secret",
                "callout_hmac_header": "hmac_header", "callout_hmac_algorithm": "hmac_algorithm",
                "callout_hmac_format": "hmac_format", "callout_retry_interval": "retry_interval",
                "callout_attempts": "attempts"}


def _sandbox_error(code: str, detail: str, status: int = 400) -> flask.Response:
    return _json_response({"error": code, "detail": detail}, status)


def _register_sandbox_routes(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.get("/_sandbox/state")
    def sandbox_state() -> flask.Response:
        return _json_response(sb.state())

    @app.post("/_sandbox/reset")
    def sandbox_reset() -> flask.Response:
        sb.reset()
        return _json_response({"reset": True})

    @app.post("/_sandbox/revoke-tokens")
    def sandbox_revoke() -> flask.Response:
        return _json_response({"revoked": sb.revoke_tokens()})

    @app.get("/_sandbox/config")
    def sandbox_config_get() -> flask.Response:
        with sb.lock:
            return _json_response(sb.callout.public())

    @app.post("/_sandbox/config")
    def sandbox_config_set() -> flask.Response:
        payload = flask.request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _sandbox_error("invalid_config", "body must be a JSON object")
        unknown = sorted(set(payload) - set(_CONFIG_KEYS))
        if unknown:
            return _sandbox_error("invalid_config", f"unknown setting(s): {', '.join(unknown)}")
        with sb.lock:
            try:
                sb.callout = replace(sb.callout, **{_CONFIG_KEYS[k]: v for k, v in payload.items()}).validate()
            except (ValueError, TypeError) as exc:
                return _sandbox_error("invalid_config", str(exc))
            return _json_response(sb.callout.public())

    @app.post("/_sandbox/callouts")
    def sandbox_resend() -> flask.Response:
        payload = flask.request.get_json(silent=True)
        account_id = payload.get("AccountId") if isinstance(payload, dict) else None
        if not isinstance(account_id, str) or not account_id:
            return _sandbox_error("invalid_request", "body must be {\"AccountId\": \"<id or number>\"}")
        account = sb.find_account(account_id)
        if account is None:
            return _sandbox_error("not_found", f"no account {account_id}", 404)
        notification_id = sb.queue_callout(account["id"], manual=True)
        if notification_id is None:
            return _sandbox_error("no_callout_url", "set callout_url with POST /_sandbox/config first", 409)
        return _json_response({"queued": True, "notification_id": notification_id})

    @app.post("/_sandbox/fail-next")
    def sandbox_fail_next() -> flask.Response:
        payload = flask.request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _sandbox_error("invalid_request", "body must be a JSON object")
        count = payload.get("count", 1)
        code = payload.get("code", RES_ACCOUNT * 100 + CAT_INVALID)
        message = payload.get("message", "Injected failure")
        if not _is_int(count) or not 0 <= count <= 10_000:
            return _sandbox_error("invalid_request", "count must be an integer 0..10000")
        if not (_is_int(code) and 10_000_000 <= code <= 99_999_999) and not (isinstance(code, str) and code):
            return _sandbox_error("invalid_request", "code must be an 8-digit integer or a non-empty string")
        if not isinstance(message, str) or not message:
            return _sandbox_error("invalid_request", "message must be a non-empty string")
        with sb.lock:
            sb.fail_next = {"count": count, "code": code, "message": message} if count else None
        return _json_response({"fail_next": sb.fail_next})

    @app.post("/_sandbox/lose-next")
    def sandbox_lose_next() -> flask.Response:
        """Arm the lost-response fault: the next ``count`` writes to ``path`` take effect (and their
        result is stored under their Idempotency-Key, as Zuora stores it), then the client gets
        ``mode``: ``error`` (HTTP ``status``, 500/502/503/504), ``timeout`` (held ``hold_seconds``,
        then 504) or ``failure`` (HTTP 200 ``success: false`` with a business-rule reason)."""
        payload = flask.request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _sandbox_error("invalid_request", "body must be a JSON object")
        unknown = sorted(set(payload) - {"path", "count", "mode", "status", "hold_seconds", "message"})
        if unknown:
            return _sandbox_error("invalid_request", f"unknown setting(s): {', '.join(unknown)}")
        path, count = payload.get("path"), payload.get("count", 1)
        mode, status = payload.get("mode", "error"), payload.get("status", 500)
        hold, message = payload.get("hold_seconds", 5.0), payload.get("message", "Injected failure after the write")
        if not isinstance(path, str) or not path.startswith("/v1/"):
            return _sandbox_error("invalid_request", "path must be a /v1/ path such as /v1/invoices")
        if not _is_int(count) or not 0 <= count <= 10_000:
            return _sandbox_error("invalid_request", "count must be an integer 0..10000")
        if mode not in LOSE_MODES:
            return _sandbox_error("invalid_request", f"mode must be one of {', '.join(LOSE_MODES)}")
        if not _is_int(status) or status not in (500, 502, 503, 504):
            return _sandbox_error("invalid_request", "status must be 500, 502, 503 or 504")
        if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not 0 <= hold <= 600:
            return _sandbox_error("invalid_request", "hold_seconds must be a number 0..600")
        if not isinstance(message, str) or not message:
            return _sandbox_error("invalid_request", "message must be a non-empty string")
        with sb.lock:
            if count:
                sb.lose_next[path] = {"count": count, "mode": mode, "status": status,
                                      "hold_seconds": float(hold), "message": message}
            else:
                sb.lose_next.pop(path, None)
            return _json_response({"lose_next": {p: dict(v) for p, v in sb.lose_next.items()}})
