"""``/v1/invoices``: standalone invoices (create, get, items) and ``/object-query/invoices``."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import flask

from .common import (
    CAT_BAD_QUERY,
    CAT_BUSINESS,
    CAT_INVALID,
    CAT_MALFORMED,
    CAT_MISSING,
    CAT_NOT_FOUND,
    CAT_UNKNOWN_FIELD,
    INVOICE_NUMBER_RE,
    MAX_INVOICE_ITEMS,
    PAYMENT_TERMS,
    RES_GET,
    RES_INVOICE,
    SANDBOX_USER_ID,
    Body,
    _new_id,
    _parse_date,
    _to_decimal,
    _utc_iso,
    common_error,
    reason,
    v1_page,
)
from .discounts import check_negative_items, items_total, read_back, store_discounts, validate_discount_items
from .idempotency import _api, _json_body
from .object_query import _query_invoices
from .validation import Problems, named_charge, rev_rec_trigger
from .views import invoice_item_view, invoice_view

if TYPE_CHECKING:
    from .state import ZuoraSandbox


# ---------------------------------------------------------------------------------------------------
# invoices and usage validation
# ---------------------------------------------------------------------------------------------------

INVOICE_NETSUITE_FIELDS = ("IntegrationId__NS", "IntegrationStatus__NS", "SyncDate__NS")  # stored strings
INVOICE_KEYS = {"accountId", "accountNumber", "invoiceDate", "dueDate", "status", "autoPay", "comments",
                "currency", "customRates", "invoiceNumber", "paymentTerm", "templateId", "sequenceSet",
                "billToContactId", "soldToContactId", "shipToContactId", "transferredToAccounting",
                "invoiceItems", "billToContact", "soldToContact", "shipToContact", "soldToSameAsBillTo",
                "shipToSameAsBillTo", "communicationProfileId", *INVOICE_NETSUITE_FIELDS}
INVOICE_CONTACT_IDS = ("billToContactId", "soldToContactId", "shipToContactId")
ITEM_STRINGS = {"chargeName": 130, "description": 500, "uom": 100, "sku": 255, "bookingReference": 255,
                "purchaseOrderNumber": 100, "itemType": 100, "taxCode": 64, "accountingCode": 100,
                "deferredRevenueAccountingCode": 100, "recognizedRevenueAccountingCode": 100,
                "adjustmentLiabilityAccountingCode": 100, "adjustmentRevenueAccountingCode": 100,
                "contractAssetAccountingCode": 100, "contractLiabilityAccountingCode": 100,
                "contractRecognizedRevenueAccountingCode": 100, "unbilledReceivablesAccountingCode": 100,
                "revRecCode": 70, "revenueRecognitionRuleName": 100, "accountsReceivableAccountingCode": 100,
                **dict.fromkeys(INVOICE_NETSUITE_FIELDS, 255)}
ITEM_KEYS = set(ITEM_STRINGS) | {"amount", "serviceStartDate", "serviceEndDate", "productRatePlanChargeId",
                                 "quantity", "unitPrice", "chargeDate", "taxMode", "taxItems", "discountItems",
                                 "excludeItemBillingFromRevenueAccounting", "revRecStartDate",
                                 "revRecTriggerCondition"}


def validate_invoice_item(p: Problems, item: Any, n: int) -> dict | None:
    label = f"invoiceItems[{n}]"
    if not isinstance(item, dict):
        p.add(CAT_INVALID, f"'{label}' must be an object")
        return None
    before = len(p.reasons)
    p.unknown_keys(dict(item), ITEM_KEYS, prefix=f"{label}.")
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
    named_charge(p, item, label, clean, ITEM_STRINGS)
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
            dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)  # a format check
            clean["chargeDate"] = value
        except (TypeError, ValueError):
            p.add(CAT_INVALID, f"'{label}.chargeDate' must be in yyyy-mm-dd hh:mm:ss format")
    if item.get("revRecStartDate") is not None:
        rev_start = _parse_date(item["revRecStartDate"])
        if rev_start is None:
            p.add(CAT_INVALID, f"'{label}.revRecStartDate' must be a date in yyyy-mm-dd format")
        else:
            clean["revRecStartDate"] = rev_start
    rev_rec_trigger(p, item, label, clean)
    if item.get("taxMode") is not None:
        if item["taxMode"] in ("TaxExclusive", "TaxInclusive"):
            clean["taxMode"] = item["taxMode"]
        else:
            p.add(CAT_INVALID, f"'{label}.taxMode' value should be one of: TaxExclusive, TaxInclusive")
    if item.get("taxItems") is not None and (not isinstance(item["taxItems"], list) or len(item["taxItems"]) > 5):
        p.add(CAT_INVALID, f"'{label}.taxItems' must be a list of at most 5 objects")
    elif item.get("taxItems"):
        p.add(CAT_BUSINESS, f"'{label}.taxItems' is not supported by the sandbox")
    discounts = validate_discount_items(p, item.get("discountItems"), label)
    if discounts:
        clean["discountItems"] = discounts
    return clean if len(p.reasons) == before else None

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
            return {"success": True, **invoice_view(inv)}, 200

    @app.get("/v1/invoices/<key>/items")
    @_api(sb)
    def get_invoice_items(key: str) -> tuple[Body, int]:
        try:
            page, size = v1_page(flask.request.args)
        except ValueError as exc:
            return common_error([reason(RES_GET, CAT_BAD_QUERY, str(exc))]), 400
        with sb.lock:
            inv = sb.find_invoice(key)
            if inv is None:
                return common_error([reason(RES_GET, CAT_NOT_FOUND, f"Cannot find entity by key: '{key}'.")]), 200
            items = read_back(inv["items"])
            start = (page - 1) * size
            body: Body = {"success": True,
                          "invoiceItems": [invoice_item_view(i) for i in items[start:start + size]]}
            if start + size < len(items):
                body["nextPage"] = (f"{flask.request.url_root.rstrip('/')}/v1/invoices/{key}/items"
                                    f"?page={page + 1}&pageSize={size}")
            return body, 200


def _create_invoice(sb: ZuoraSandbox, body: Any) -> Body:
    """Validate and store a standalone invoice (caller holds the lock)."""
    p = Problems(RES_INVOICE)
    if not isinstance(body, dict):
        p.add(CAT_MALFORMED, "The request body must be a JSON object")
        return common_error(p.reasons)
    p.unknown_keys({k: v for k, v in body.items() if not k.endswith("__c")}, INVOICE_KEYS)
    custom: dict[str, Any] = dict.fromkeys(sorted(sb.invoice_custom_fields))
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
    for key in ("customRates", "templateId", "sequenceSet"):
        if body.get(key) is not None:
            p.add(CAT_BUSINESS, f"'{key}' is not supported by the sandbox")
    for key in ("billToContact", "soldToContact", "shipToContact"):
        if body.get(key) is not None:
            p.add(CAT_BUSINESS, f"'{key}' is not supported by the sandbox: it keeps no invoice-level contacts; "
                                f"give '{key}Id', one of the account's contacts")
    for key in ("soldToSameAsBillTo", "shipToSameAsBillTo"):
        p.boolean(body, key, key)
    extra = {key: p.string(body, key, key, max_len=255) for key in INVOICE_NETSUITE_FIELDS}
    extra["communicationProfileId"] = p.string(body, "communicationProfileId", "communicationProfileId", max_len=32)
    for key in INVOICE_CONTACT_IDS:
        contact_id = p.string(body, key, key, min_len=1, max_len=32)
        if contact_id is not None and account is not None and contact_id not in account["contacts"]:
            p.add(CAT_NOT_FOUND, f"'{key}' {contact_id} is not a contact of account {account['accountNumber']}")
        extra[key] = contact_id
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
        check_negative_items(p, clean_items, sb.billing_rules)
    if p:
        return common_error(p.reasons)
    if account is None or invoice_date is None:  # both were checked into p above
        raise RuntimeError("invoice validation passed without an account or an invoice date")
    if due_date is None:
        days = PAYMENT_TERMS[term or account["paymentTerm"]]
        due_date = invoice_date + dt.timedelta(days=days)
    if number is None:
        while True:
            sb.invoice_seq += 1
            number = f"INV{sb.invoice_seq:08d}"
            if sb.find_invoice(number) is None:
                break
    total = items_total(clean_items)
    now = _utc_iso(sb.now())
    inv_id = _new_id()
    stored_items = []
    for item in clean_items:
        stored = {"id": _new_id(), **{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in item.items()}}
        stored.setdefault("serviceEndDate", stored["serviceStartDate"])
        stored.setdefault("taxMode", "TaxExclusive")
        stored["taxAmount"] = Decimal("0")
        store_discounts(stored, _new_id)
        stored_items.append(stored)
    invoice = {
        "id": inv_id, "invoiceNumber": number, "accountId": account["id"], "accountNumber": account["accountNumber"],
        "invoiceDate": invoice_date.isoformat(), "dueDate": due_date.isoformat(), "status": status,
        "amount": total, "amountWithoutTax": total, "taxAmount": Decimal("0"), "balance": total,
        "currency": account["currency"], "sourceType": "Standalone", "source": "API",
        "comments": body.get("comments"), "paymentTerm": term or account["paymentTerm"],
        "createdDate": now, "updatedDate": now, "createdById": SANDBOX_USER_ID, "updatedById": SANDBOX_USER_ID,
        "postedDate": now[:10] if status == "Posted" else None,
        "postedBy": SANDBOX_USER_ID if status == "Posted" else None,
        "billToContactId": extra.pop("billToContactId") or account["billToContactId"],
        "soldToContactId": extra.pop("soldToContactId") or account["soldToContactId"],
        **{k: v for k, v in extra.items() if v is not None}, **custom, "items": stored_items,
    }
    sb.invoices[inv_id] = invoice
    return {"success": True, **invoice_view(invoice)}


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
