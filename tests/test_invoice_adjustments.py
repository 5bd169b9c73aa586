"""CONTRACT §12 end to end: real invoices — discounts, credits, taxes, true-ups, miscellaneous amounts,
the platform's rounding — through the invoice and usage flows against both sandboxes over real HTTP,
on both engines.

Fixtures: Togai's own get-invoice example (tests/fixtures/togai/get_invoice_example.json, copied
unchanged from the ``Invoice`` example of Togai's published OpenAPI document; tests/test_line_items.py
checks the copy against ``../shared/vendor-specs/togai-openapi.yaml``), served by the billing sandbox
as it is; invoices the billing sandbox builds with every adjustment; and random invoices
(tests/adjusted_invoices.py). The Zuora side is read from the Zuora sandbox: its own invoice total,
which includes the discount items, and the items read back as Zuora lists them.
"""
from __future__ import annotations

import copy
from decimal import Decimal

import pytest
import requests
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from integration import create_app
from integration.cli import main
from integration.cli import report as report_command
from integration.clients.bodies import dumps_json
from integration.domain.errors import INVALID_DATA, ZUORA_REJECTED
from integration.domain.periods import parse_period
from integration.flows.totals import totals_report
from integration.flows.usage import holds_marker, usage_marker
from tests.adjusted_invoices import CURRENCIES, adjusted_invoices
from tests.conftest import ADMIN_TOKEN
from tests.test_adjustments import check_refused, reproduces
from tests.test_invoice_flow import loads, only_invoice
from tests.test_line_items import documented_example

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)


def post_invoice(stack, spec: dict) -> dict:
    """``POST /_sandbox/invoices`` on the billing sandbox (finalized: it emits ``invoice.finalized``)."""
    resp = requests.post(f"{stack.billing_server.url}/_sandbox/invoices", data=dumps_json(spec),
                         headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 201, resp.text
    return loads(resp.text)


def serve_document(stack, document: dict, account_id: str = "acc-1") -> dict:
    """A Togai invoice served by the billing sandbox as it is (its trees and total digit for digit)."""
    return post_invoice(stack, {"id": document["id"], "accountId": account_id, "startDate": document["startDate"],
                                "endDate": document["endDate"], "invoiceDate": document["invoiceDate"],
                                "document": document})


def push(stack, invoice_id: str) -> str:
    event_id = stack.finalized(invoice_id)
    stack.worker.drain()
    return event_id


def zuora_invoice_of(stack, invoice_id: str) -> dict | None:
    found = [i for i in stack.zuora_state()["invoices"] if i.get("BillingInvoiceId__c") == invoice_id]
    assert len(found) <= 1
    return found[0] if found else None


def items_and_discounts(invoice: dict) -> list[tuple[str, Decimal, list[Decimal]]]:
    return [(i["chargeName"], i["amount"], [d["amount"] for d in i.get("discountItems", [])])
            for i in invoice["invoiceItems"]]


# -- Togai's documented example -------------------------------------------------------------------------

def test_togais_documented_example_reaches_zuora_as_exactly_881_94(stack):
    """Rate cards 982.04, GROSS_AMOUNT 981.94, NET_AMOUNT and totalAmount 881.94: two lines carrying the
    100.00 discount as discountItems, and a −0.10 rounding item with a warning (CONTRACT §12)."""
    account = stack.linked_account("acc-1", "USD")
    example = documented_example()
    served = serve_document(stack, example)
    assert (served["revenueInfo"], served["totalAmount"]) == (example["revenueInfo"], Decimal("881.94"))

    event_id = push(stack, example["id"])

    event = stack.event(event_id)
    assert event.status == "done", event.last_error
    zinv = only_invoice(stack)
    assert (zinv["accountId"], zinv["BillingInvoiceId__c"], zinv["invoiceDate"]) == (
        account["accountId"], "inv.hkgkgyh.ghg", "2020-08-04")
    assert items_and_discounts(zinv) == [
        ("Payout_NEFT", Decimal("392.1"), [Decimal("-39.93")]),
        ("Payout IMPS", Decimal("589.94"), [Decimal("-60.07")]),
        ("Billing platform rounding", Decimal("-0.10"), [])]
    assert {d["chargeName"] for i in zinv["invoiceItems"] for d in i.get("discountItems", [])} == {"Discount"}
    # Zuora's own total, discounts included, is the billing total to the cent.
    assert zinv["amount"] == Decimal("881.94") == example["totalAmount"]
    read_back = stack.services.zuora.get_invoice_items(zinv["id"])
    assert [(i.charge_name, i.charge_amount, i.processing_type) for i in read_back] == [
        ("Payout_NEFT", Decimal("392.1"), "Charge"), ("Discount", Decimal("-39.93"), "Discount"),
        ("Payout IMPS", Decimal("589.94"), "Charge"), ("Discount", Decimal("-60.07"), "Discount"),
        ("Billing platform rounding", Decimal("-0.10"), "Charge")]
    assert sum(i.charge_amount for i in read_back) == Decimal("881.94")
    # The rounding is a warning in the event's history.
    [attempt] = stack.services.inbox.history(event_id)
    assert (attempt.outcome, attempt.message) == (
        "done", "warning: billing platform rounding -0.10: GROSS_AMOUNT 981.94 against its rate-card lines' "
                "982.04 (revenueInfo.lineItems[0].lineItems[0].lineItems[0])")
    # The totals report: a match to the cent, with the rounding listed.
    report = totals_report(stack.services.db, stack.services.zuora, stack.services.billing, parse_period("2020-08"))
    [row] = report.rows
    assert (row.matches, row.billing_total, row.zuora_total) == (True, Decimal("881.94"), Decimal("881.94"))
    assert row.warnings == ["inv.hkgkgyh.ghg: billing platform rounding -0.10: GROSS_AMOUNT 981.94 against its "
                            "rate-card lines' 982.04 (revenueInfo.lineItems[0].lineItems[0].lineItems[0])"]


def test_the_totals_report_names_the_adjustment_that_differs(stack, monkeypatch):
    stack.linked_account("acc-1", "USD")
    example = documented_example()
    serve_document(stack, example)
    push(stack, example["id"])
    items = stack.services.zuora.get_invoice_items(only_invoice(stack)["id"])
    discount = next(i for i in items if i.charge_amount == Decimal("-39.93"))
    changed = requests.post(f"{stack.zuora_server.url}/_sandbox/invoice-items/{discount.id}",
                            json={"amount": "-30.00"}, timeout=10)
    assert changed.status_code == 200, changed.text

    report = totals_report(stack.services.db, stack.services.zuora, stack.services.billing, parse_period("2020-08"))
    [row] = report.rows
    [invoice] = row.differing
    assert (invoice.billing_total, invoice.zuora_total, invoice.difference) == (
        Decimal("881.94"), Decimal("891.87"), Decimal("9.93"))
    assert invoice.notes == ("discount differs: billing -100.00, Zuora -90.07",)
    # The same in the admin API and the command, with the rounding as a warning.
    body = create_app(services=stack.services).test_client().get(
        "/admin/reports/totals?period=2020-08", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).get_json()
    [row_json] = body["data"]
    assert [i["notes"] for i in row_json["invoices"]] == [["discount differs: billing -100.00, Zuora -90.07"]]
    assert row_json["warnings"] == row.warnings and len(row.warnings) == 1
    monkeypatch.setattr(report_command, "services_or_exit", lambda: stack.services)
    result = CliRunner().invoke(main, ["report", "--period", "2020-08"])
    assert result.exit_code == 1
    number = row.zuora_account
    assert f"{number}: discount differs: billing -100.00, Zuora -90.07" in result.output.splitlines()
    assert f"warning: {number}: {row.warnings[0]}" in result.output.splitlines()


def test_a_replayed_example_is_linked_not_posted_again(stack):
    stack.linked_account("acc-1", "USD")
    example = documented_example()
    serve_document(stack, example)
    push(stack, example["id"])
    replay = push(stack, example["id"])
    assert stack.event(replay).status == "done"
    assert len(stack.zuora_requests("POST", "/v1/invoices")) == 1


# -- every adjustment, with usage ----------------------------------------------------------------------

ADJUSTMENTS = {"grossAmount": Decimal("129.99"), "discount": Decimal("20.00"), "trueUp": Decimal("30.00"),
               "taxes": [{"description": "VAT 20%", "amount": Decimal("21.99")}],
               "credits": [{"description": "Prepaid credit", "granted": Decimal("500"), "applied": Decimal("10.00")}],
               "miscellaneous": [{"description": "Setup assistance", "amount": Decimal("15.00")}],
               "custom": [{"description": "Rush fee", "amount": Decimal("5.00")}]}


def test_every_adjustment_reaches_zuora_and_with_usage_adds_up_to_the_billing_total(stack):
    stack.linked_account("acc-1", "USD")
    stack.meter("m-storage", "revenue", uom="USD")
    invoice = post_invoice(stack, {
        "id": "inv-all", "accountId": "acc-1", "startDate": "2024-07-01T00:00:00Z", "endDate": "2024-08-01T00:00:00Z",
        "fixed": [{"description": "Platform fee", "amount": Decimal("60.00")},
                  {"description": "Seats", "quantity": 3, "valuePerQuantity": Decimal("10.00")}],
        "usage": [{"meterId": "m-storage", "name": "Storage", "quantity": 100, "valuePerQuantity": Decimal("0.1")}],
        "adjustments": ADJUSTMENTS})
    # lines 60 + 30 + 10 and a 30 true-up (130.00) under a GROSS_AMOUNT of 129.99; less 20.00; + 15 + 5
    # + 21.99; less the 10.00 of credits applied (of 500 granted).
    assert invoice["totalAmount"] == Decimal("141.98")
    event_id = push(stack, "inv-all")

    assert stack.event(event_id).status == "done", stack.event(event_id).last_error
    zinv = only_invoice(stack)
    # The discount is spread over the lines left on the invoice (60 and 30; the meter's 10 is usage).
    assert items_and_discounts(zinv) == [
        ("Platform fee", Decimal("60.00"), [Decimal("-13.33")]),
        ("Seats", Decimal("30.00"), [Decimal("-6.67")]),
        ("Setup assistance", Decimal("15.00"), []), ("Rush fee", Decimal("5.00"), []),
        ("Minimum commitment true-up", Decimal("30.00"), []),
        ("Billing platform rounding", Decimal("-0.01"), []),
        ("Tax", Decimal("21.99"), []),
        ("Credits applied", Decimal("-10.00"), [])]
    tax, credits = zinv["invoiceItems"][6], zinv["invoiceItems"][7]
    assert (tax["description"], credits["description"]) == ("VAT 20%", "TOTAL_CREDITS 10.00: Prepaid credit")
    [usage] = stack.zuora_state()["usage"]
    assert usage["Quantity"] == Decimal("10.0")  # revenue mode: the meter's revenue at 1 per unit
    assert zinv["amount"] + usage["Quantity"] == invoice["totalAmount"]

    report = totals_report(stack.services.db, stack.services.zuora, stack.services.billing, parse_period("2024-08"))
    [row] = report.rows
    assert (row.matches, row.billing_total, row.zuora_total) == (True, Decimal("141.98"), Decimal("141.980"))


def test_a_discount_with_every_line_as_usage_is_an_invoice_item_of_its_own(stack):
    stack.linked_account("acc-1", "USD")
    stack.meter("m-api", "quantity", uom="Call")
    post_invoice(stack, {"id": "inv-usage", "accountId": "acc-1", "startDate": "2024-07-01",
                         "endDate": "2024-08-01",
                         "usage": [{"meterId": "m-api", "name": "API", "quantity": 1000,
                                    "valuePerQuantity": Decimal("0.05")}],
                         "adjustments": {"discount": Decimal("5.00"),
                                         "taxes": [{"description": "GST", "amount": Decimal("4.50")}]}})
    push(stack, "inv-usage")
    zinv = only_invoice(stack)
    assert items_and_discounts(zinv) == [("Discount", Decimal("-5.00"), []), ("Tax", Decimal("4.50"), [])]
    [usage] = stack.zuora_state()["usage"]
    assert zinv["amount"] + usage["Quantity"] * Decimal("0.05") == Decimal("49.50")


# -- refusals --------------------------------------------------------------------------------------------

def test_an_unexplained_difference_is_invalid_data_naming_both_sums_and_posts_nothing(stack):
    stack.linked_account("acc-1", "USD")
    example = {**documented_example(), "id": "inv-off", "totalAmount": Decimal("881.95")}
    serve_document(stack, example)
    event_id = push(stack, "inv-off")
    event = stack.event(event_id)
    assert (event.status, event.error_code) == ("failed", INVALID_DATA)
    assert event.last_error == ("totalAmount: the invoice's 2 rate-card lines (982.04) and its adjustments "
                                "(billing platform rounding -0.10, discount -100.00) sum to 881.94, not to its "
                                "totalAmount 881.95")
    assert stack.zuora_requests("POST", "/v1/invoices") == []


def test_a_rounding_beyond_the_bound_is_invalid_data_naming_both_sums(stack):
    stack.linked_account("acc-1", "USD")
    example = copy.deepcopy(documented_example())
    example["id"] = "inv-far"
    gross = example["revenueInfo"]["lineItems"][0]["lineItems"][0]["lineItems"][0]
    gross["value"] = Decimal("980.94")  # 1.10 below its lines: more than 0.1 % of it (0.98)
    serve_document(stack, example)
    event = stack.event(push(stack, "inv-far"))
    assert (event.status, event.error_code) == ("failed", INVALID_DATA)
    assert event.last_error.startswith("revenueInfo.lineItems[0].lineItems[0].lineItems[0].value: GROSS_AMOUNT 980.94 "
                                       "differs from the 2 rate-card lines and amounts below it, which sum to 982.04, "
                                       "by -1.10: more than the platform's rounding")
    assert stack.zuora_requests("POST", "/v1/invoices") == []


def test_a_tenant_that_refuses_negative_items_is_zuora_rejected_with_zuoras_reason(stack):
    stack.linked_account("acc-1", "USD")
    rules = requests.post(f"{stack.zuora_server.url}/_sandbox/billing-rules", json={"negative_invoice_items": False},
                          timeout=10)
    assert rules.status_code == 200
    example = documented_example()
    serve_document(stack, example)
    event = stack.event(push(stack, example["id"]))
    assert (event.status, event.error_code) == ("failed", ZUORA_REJECTED)
    assert "'invoiceItems[2].amount' is -0.10: this tenant's billing rules do not allow negative invoice items" \
        in event.last_error
    assert stack.zuora_state()["invoices"] == []


# -- property: random invoices through both flows --------------------------------------------------------

def test_random_invoices_reach_zuora_and_usage_to_the_cent_or_are_refused_naming_both_sums(stack):
    """For random invoices (tests/adjusted_invoices.py: nesting, discounts, credits, taxes, true-ups,
    sub-cent lines, 0–3 usage-synced meters, JPY/USD/KWD), what the flows put in Zuora — the Zuora
    sandbox's own invoice total, discount items included, plus the usage records at their per-unit
    amount — reproduces the billing total (exactly where the invoice's part fits the currency; to the
    minor unit where sub-unit usage cannot), or the event is INVALID_DATA naming both sums."""
    for currency in CURRENCIES:
        stack.linked_account(f"acc-{currency}", currency)
    seen = iter(range(10**6))

    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(adjusted_invoices(invoice_id="inv-prop"))
    def check(case):
        n = next(seen)
        invoice_id = f"inv-p{n}"
        document = copy.deepcopy(case.invoice)
        document.update(id=invoice_id, startDate="2024-07-01T00:00:00Z", endDate="2024-08-01T00:00:00Z",
                        invoiceDate="2024-08-01T00:00:00Z")
        renamed = {meter: f"p{n}-{i}" for i, meter in enumerate(case.modes)}
        text = dumps_json(document).decode()
        for old, new in renamed.items():
            text = text.replace(f'"{old}"', f'"{new}"')
        document = loads(text)
        for old, mode in case.modes.items():
            stack.meter(renamed[old], mode, uom="Each")
        serve_document(stack, document, account_id=f"acc-{case.currency}")
        event = stack.event(push(stack, invoice_id))
        if case.refusal is not None:
            assert (event.status, event.error_code) == ("failed", INVALID_DATA), event.last_error
            check_refused(case, event.last_error)
            return
        assert event.status == "done", event.last_error
        usage_events = [e for e in stack.events("invoice.usage") if e["object_id"] == invoice_id]
        assert all(e["status"] == "done" for e in usage_events), [e["last_error"] for e in usage_events]
        zinv = zuora_invoice_of(stack, invoice_id)
        usage_value = Decimal(0)
        for old, new in renamed.items():
            marker = usage_marker(invoice_id, new)
            for record in stack.zuora_state()["usage"]:
                if holds_marker(record["Description"], marker):
                    usage_value += record["Quantity"] * case.prices.get(old, Decimal(1))
        reproduces(case, zinv["amount"] if zinv else Decimal(0), usage_value)

    check()
