"""Flows 3–5 against both sandboxes over real HTTP, for every invoice shape Togai documents.

The billing sandbox serves the same invoice as ``nested`` (our old assumption), ``flat`` (meter usage
in ``value``, no ``quantity``: Togai's get-invoice example), ``total_usage`` (meter entries under a
TOTAL_USAGE parent: Togai's type list), ``documented`` (GRAND_TOTAL_AMOUNT root, slabs, ``units:
"USD"``) and ``legacy`` (``…_REVENUE`` spelling). Whatever the shape, the same items reach the Zuora
invoice and the same quantities reach Zuora usage.
"""
from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
import requests

from integration_sandbox.billing.invoices import SHAPES
from tests.test_invoice_flow import Stack, only_invoice
from tests.test_line_items import documented_example, with_meters
from tests.test_usage_flow import put_invoice
from tests.validation_errors import flat_wrong_fields

CALLS_CHARGE, GB_CHARGE = "C-00000077", "C-00000078"


@pytest.fixture
def stack(sandboxes, tmp_path):
    """conftest's stack on SQLite only: these tests are about shapes, not engines."""
    s = Stack(sandboxes, tmp_path)
    yield s
    s.close()


def shape_of(invoice: dict) -> dict:
    """The features that tell the shapes apart, read from the invoice the sandbox serves."""
    revenue = invoice["revenueInfo"]
    types, units, stack_ = [], set(), [revenue]
    while stack_:
        node = stack_.pop()
        types.append(node["type"])
        units.add(node.get("units"))
        stack_.extend(node.get("lineItems", []))
    return {"root": revenue["type"], "usage_roots": [e["type"] for e in invoice["usageInfo"]],
            "legacy": any(t.endswith("_REVENUE") for t in types),
            "slabs": any("_SLAB_" in t for t in types), "revenue_units": units - {None},
            "usage_has_quantity": "quantity" in json.dumps(invoice["usageInfo"])}


EXPECTED_SHAPE = {
    "nested": {"root": "TOTAL_AMOUNT", "usage_roots": ["USAGE_METER_USAGE"] * 3, "legacy": False,
               "slabs": False, "revenue_units": set(), "usage_has_quantity": True},
    "flat": {"root": "TOTAL_AMOUNT", "usage_roots": ["USAGE_METER_USAGE"] * 3, "legacy": False,
             "slabs": False, "revenue_units": set(), "usage_has_quantity": False},
    "total_usage": {"root": "TOTAL_AMOUNT", "usage_roots": ["TOTAL_USAGE"], "legacy": False,
                    "slabs": False, "revenue_units": set(), "usage_has_quantity": True},
    "documented": {"root": "GRAND_TOTAL_AMOUNT", "usage_roots": ["USAGE_METER_USAGE"] * 3, "legacy": False,
                   "slabs": True, "revenue_units": {"USD"}, "usage_has_quantity": False},
    "legacy": {"root": "GRAND_TOTAL_AMOUNT", "usage_roots": ["USAGE_METER_USAGE"] * 3, "legacy": True,
               "slabs": True, "revenue_units": {"USD"}, "usage_has_quantity": False},
}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_bills_the_same_items_and_usage(stack, shape):
    account = stack.linked_account()
    stack.meter("m-calls", "quantity", uom="Call", sub="A-S00000042", charge=CALLS_CHARGE)
    stack.meter("m-gb", "revenue", uom="Dollar", sub="A-S00000043", charge=GB_CHARGE)
    invoice = stack.invoice(shape=shape, fixed=[{"description": "Platform fee", "amount": Decimal("12.34")}], usage=[
        {"meterId": "m-calls", "name": "API calls", "quantity": 1500, "valuePerQuantity": Decimal("0.002")},
        {"meterId": "m-gb", "name": "Storage", "quantity": 3, "valuePerQuantity": Decimal("0.333333333333")},
        {"meterId": "m-sms", "name": "SMS", "quantity": 7, "valuePerQuantity": Decimal("0.05")}])
    assert shape_of(invoice) == EXPECTED_SHAPE[shape]
    assert invoice["totalAmount"] == Decimal("12.34") + Decimal("3") + Decimal("0.999999999999") + Decimal("0.35")
    stack.finalized(invoice["id"])
    stack.worker.drain()

    [invoice_event] = stack.events("invoice.finalized")
    [usage_event] = stack.events("invoice.usage")
    assert (invoice_event["status"], usage_event["status"]) == ("done", "done"), (
        invoice_event["last_error"], usage_event["last_error"])
    # The Zuora invoice: the fixed fee and the meter without settings, never the usage-synced meters.
    zinv = only_invoice(stack)
    assert [(i["chargeName"], i["amount"]) for i in zinv["invoiceItems"]] == [
        ("Platform fee", Decimal("12.34")), ("SMS", Decimal("0.35"))]
    # Usage: quantity mode bills the meter's usage (read from quantity, or from value where Togai gives
    # only that, at any depth); revenue mode bills the revenue at 1 per unit, in every shape.
    records = {r["ChargeNumber"]: r for r in stack.zuora_state()["usage"]}
    calls, gb = records[CALLS_CHARGE], records[GB_CHARGE]
    assert (calls["Quantity"], calls["UOM"], calls["AccountNumber"]) == (Decimal("1500"), "Call",
                                                                        account["accountNumber"])
    units = " per USAGE_UNITS" if shape in ("flat", "documented", "legacy") else ""
    assert calls["Description"] == (f"Per-unit amount 0.002{units}; API calls; meter m-calls; "
                                    f"billing invoice {invoice['id']}")
    assert (gb["Quantity"], gb["UOM"]) == (Decimal("0.999999999999"), "Dollar")
    assert gb["Description"].startswith("Revenue 0.999999999999 at per-unit amount 1; Storage; meter m-gb")
    # Zuora's side adds up to the billing invoice, exactly: items + revenue × 1 + quantity × per-unit amount.
    assert (sum(i["amount"] for i in zinv["invoiceItems"]) + gb["Quantity"] + calls["Quantity"] * Decimal("0.002")
            == invoice["totalAmount"])


@pytest.mark.parametrize("usage_shape", ["flat", "total_usage"])
def test_togais_example_with_meter_ids_reaches_zuora_as_usage(stack, usage_shape):
    """The example as it would be with meter IDs: the quantity-mode meter is billed its usage from
    ``value`` (15 rides), the revenue-mode meter its rate card (589.94); with every line travelling as
    usage, the example's rounding (−0.10) and discount (−100.00) are invoice items of their own
    (CONTRACT §12: no item can carry the discount)."""
    stack.linked_account()
    stack.meter("m-local", "quantity", uom="Ride", charge=CALLS_CHARGE)
    stack.meter("m-pro", "revenue", uom="Dollar", charge=GB_CHARGE)
    invoice = with_meters(documented_example())
    invoice.update(ownerId="acc-1", endDateInclusive="2020-08-04T11:59:59.999Z")
    if usage_shape == "total_usage":
        invoice["usageInfo"] = [{"description": "Total usage", "type": "TOTAL_USAGE", "value": 20,
                                 "lineItems": copy.deepcopy(invoice["usageInfo"])}]
    put_invoice(stack, invoice)
    stack.finalized(invoice["id"])
    stack.worker.drain()

    [usage_event] = stack.events("invoice.usage")
    assert usage_event["status"] == "done", usage_event["last_error"]
    # Both rate cards are usage-synced meters: the Zuora invoice holds only the adjustments.
    assert [(i["chargeName"], i["amount"]) for i in only_invoice(stack)["invoiceItems"]] == [
        ("Billing platform rounding", Decimal("-0.10")), ("Discount", Decimal("-100.00"))]
    records = {r["ChargeNumber"]: r for r in stack.zuora_state()["usage"]}
    local, pro = records[CALLS_CHARGE], records[GB_CHARGE]
    assert (local["Quantity"], local["UOM"]) == (Decimal("15"), "Ride")
    assert local["Description"].startswith("Per-unit amount 0.001 per USAGE_UNITS; Payout_NEFT; meter m-local")
    assert (pro["Quantity"], pro["UOM"]) == (Decimal("589.94"), "Dollar")


def test_an_unknown_shape_is_refused_by_the_sandbox(stack):
    stack.billing_account()
    resp = requests.post(f"{stack.billing_server.url}/_sandbox/invoices", timeout=10, json={
        "accountId": "acc-1", "startDate": "2024-07-01", "endDate": "2024-08-01", "shape": "round",
        "fixed": [{"description": "Fee", "amount": 1}]})
    assert (resp.status_code, list(resp.json())) == (400, ["message"])
    assert flat_wrong_fields(resp.json()["message"]) == {"shape"}  # marshmallow's words: only the field counts
