"""Discount items of standalone invoice items, and the tenant's rule on negative invoice items.

WHY a module of its own: a discount changes what an invoice adds up to and what reading it back
returns, and both must be what Zuora documents, or a flow that spreads a billing platform's discount
over its items could pass here and fail on a real tenant.

What Zuora documents (reference/zuora-api.md §3; zuora-sdk ``CreateDiscountItem``, ``InvoiceItem``):
- ``invoiceItems[].discountItems[]``: at most 10 per item; ``amount`` required, "should be a negative
  number" (a fixed amount whatever the discount model); ``chargeName`` (≤ 130) required unless
  ``productRatePlanChargeId`` is given; the other fields are the invoice item's accounting, booking and
  revenue fields, ``sku``, ``unitPrice``, ``chargeDate`` and ``taxItems``.
- Reading the invoice back (``GET /v1/invoices/{key}/items``), each discount is an item of its own,
  right after the item it reduces: ``processingType: "Discount"``, ``appliedToItemId`` naming that
  item, ``chargeAmount`` the (negative) discount. The invoice's ``amount`` includes them.

Sandbox choices where the documents are silent or the sandbox models less:
- A discount ``amount`` of zero or more is refused (category 20): "should be negative" read strictly.
- ``productRatePlanChargeId`` is refused (no product catalog) and ``taxItems`` as not modelled, as on
  invoice items.
- Negative invoice items: whether a tenant takes them depends on its billing rules (docs/field-mapping.md
  names the setting). ``ZuoraSandbox.billing_rules["negative_invoice_items"]`` (default true, changed with
  ``POST /_sandbox/billing-rules``) models a tenant that refuses them: an invoice item with a negative
  ``amount`` is then a business-rule refusal (category 30) naming the item; discount items, negative
  by definition, are not affected.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .common import CAT_BUSINESS, CAT_INVALID, CAT_MISSING, _to_decimal
from .validation import Problems, named_charge, rev_rec_trigger

MAX_DISCOUNT_ITEMS = 10
DISCOUNT_STRINGS = {  # the limits of zuora-sdk's CreateDiscountItem
    "chargeName": 130, "description": 500, "sku": 255, "bookingReference": 100, "purchaseOrderNumber": 100,
    "itemType": 50, "accountingCode": 100, "deferredRevenueAccountingCode": 100,
    "recognizedRevenueAccountingCode": 100, "adjustmentLiabilityAccountingCode": 100,
    "adjustmentRevenueAccountingCode": 100, "contractAssetAccountingCode": 100,
    "contractLiabilityAccountingCode": 100, "contractRecognizedRevenueAccountingCode": 100,
    "unbilledReceivablesAccountingCode": 100, "accountsReceivableAccountingCode": 100, "revRecCode": 100,
    "revenueRecognitionRuleName": 50, "IntegrationId__NS": 255, "IntegrationStatus__NS": 255,
    "SyncDate__NS": 255}
DISCOUNT_KEYS = set(DISCOUNT_STRINGS) | {"amount", "chargeDate", "productRatePlanChargeId", "revRecTriggerCondition",
                                         "taxItems", "unitPrice"}
DEFAULT_BILLING_RULES = {"negative_invoice_items": True}


def validate_discount_items(p: Problems, raw: Any, label: str) -> list[dict] | None:
    """The clean discount items of one invoice item (``label`` names it), or None if any is refused."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_DISCOUNT_ITEMS:
        p.add(CAT_INVALID, f"'{label}.discountItems' must be a list of at most {MAX_DISCOUNT_ITEMS} objects")
        return None
    before = len(p.reasons)
    clean = [_validate_one(p, discount, f"{label}.discountItems[{n}]") for n, discount in enumerate(raw)]
    return [c for c in clean if c is not None] if len(p.reasons) == before else None


def _validate_one(p: Problems, discount: Any, label: str) -> dict | None:
    if not isinstance(discount, dict):
        p.add(CAT_INVALID, f"'{label}' must be an object")
        return None
    p.unknown_keys(dict(discount), DISCOUNT_KEYS, prefix=f"{label}.")
    clean: dict[str, Any] = {}
    if discount.get("amount") is None:
        p.add(CAT_MISSING, f"'{label}.amount' may not be null")
    elif (amount := _to_decimal(discount["amount"])) is None:
        p.add(CAT_INVALID, f"'{label}.amount' must be a number")
    elif amount >= 0:
        p.add(CAT_INVALID, f"'{label}.amount' must be a negative number")
    else:
        clean["amount"] = amount
    named_charge(p, discount, label, clean, DISCOUNT_STRINGS)
    if discount.get("unitPrice") is not None:
        if (price := _to_decimal(discount["unitPrice"])) is None:
            p.add(CAT_INVALID, f"'{label}.unitPrice' must be a number")
        else:
            clean["unitPrice"] = price
    if discount.get("chargeDate") is not None:
        try:
            dt.datetime.strptime(discount["chargeDate"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
            clean["chargeDate"] = discount["chargeDate"]
        except (TypeError, ValueError):
            p.add(CAT_INVALID, f"'{label}.chargeDate' must be in yyyy-mm-dd hh:mm:ss format")
    rev_rec_trigger(p, discount, label, clean)
    if discount.get("taxItems") is not None:
        if not isinstance(discount["taxItems"], list) or len(discount["taxItems"]) > 5:
            p.add(CAT_INVALID, f"'{label}.taxItems' must be a list of at most 5 objects")
        elif discount["taxItems"]:
            p.add(CAT_BUSINESS, f"'{label}.taxItems' is not supported by the sandbox")
    return clean


def check_negative_items(p: Problems, items: list[dict], rules: dict) -> None:
    """A tenant whose billing rules refuse negative invoice items refuses each one by name."""
    if rules.get("negative_invoice_items", True):
        return
    for n, item in enumerate(items):
        amount = item.get("amount")
        if isinstance(amount, Decimal) and amount < 0:
            p.add(CAT_BUSINESS, f"'invoiceItems[{n}].amount' is {amount}: this tenant's billing rules do not "
                                f"allow negative invoice items")


def store_discounts(item: dict, new_id: Any) -> None:
    """Give each clean discount of a stored item its ID and what reading it back shows: the item it is
    applied to and the item's service period."""
    item["discountItems"] = [{"id": new_id(), **discount, "appliedToItemId": item["id"],
                              "processingType": "Discount", "serviceStartDate": item["serviceStartDate"],
                              "serviceEndDate": item["serviceEndDate"]}
                             for discount in item.get("discountItems", [])]


def items_total(items: list[dict]) -> Decimal:
    """What an invoice's items add up to: their amounts and every discount on them."""
    return sum((i["amount"] + sum((d["amount"] for d in i.get("discountItems", [])), Decimal(0)) for i in items),
               Decimal(0))


def read_back(items: list[dict]) -> list[dict]:
    """The stored items as reading them back lists them: each item, then its discounts as items of their own."""
    flat: list[dict] = []
    for item in items:
        flat.append({**{k: v for k, v in item.items() if k != "discountItems"}, "processingType": "Charge"})
        flat.extend(dict(d) for d in item.get("discountItems", []))
    return flat
