"""CONTRACT §12 in pure logic: what a billing invoice carries between its lines and its total
(integration.billing.togai.adjustments) and the Zuora items that carry it (integration.flows.invoice_items).

Fixtures: Togai's own get-invoice example (tests/fixtures/togai/get_invoice_example.json, copied from
its OpenAPI document; tests/test_line_items.py checks the copy), hand-built trees for each rule, and a
property test over random invoices (tests/adjusted_invoices.py). The flows against the sandboxes are in
tests/test_invoice_adjustments.py.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings

from integration.billing.togai.adjustments import (
    CHARGE,
    CREDITS,
    DISCOUNT,
    ROUNDING,
    TAX,
    TRUE_UP,
    read_amounts,
)
from integration.billing.togai.line_items import meter_usage
from integration.domain import money
from integration.domain.errors import InvalidData
from integration.flows.invoice_items import invoice_items, zuora_total
from integration.flows.invoices import split_lines
from integration.flows.usage import build_usage_lines
from tests.adjusted_invoices import Case, adjusted_invoices, node
from tests.test_line_items import documented_example, settings_for

START, END = date(2024, 7, 1), date(2024, 7, 31)


def line(description: str, value: str, **extra) -> dict:
    return node("FIXED_FEE_RATE_CARD_AMOUNT", description, Decimal(value), **extra)


def invoice_of(root: dict, total: str) -> dict:
    return {"id": "inv-1", "revenueInfo": root, "totalAmount": Decimal(total)}


def every_kind() -> dict:
    """Lines 60 + 40.004 and a 30 true-up under a GROSS_AMOUNT of 130.00 (rounding −0.004), a 20
    discount, 15 + 5 of charges, 21.99 of tax in two parts, 10 of 500 granted credits applied."""
    price_plan = node("PRICE_PLAN_AMOUNT", "Price plan", Decimal("130.004"), [
        node("SUB_TOTAL_AMOUNT", "Sub total", Decimal("100.004"), [line("Platform", "60"), line("Seats", "40.004")]),
        node("TRUE_UP_AMOUNT", "True-up", Decimal("30"))])
    net = node("NET_AMOUNT", "Total amount due", Decimal("110.00"), [
        node("GROSS_AMOUNT", "Sum Total", Decimal("130.00"), [price_plan])])
    root = node("TOTAL_AMOUNT", "Total", Decimal("141.99"), [
        net,
        node("TOTAL_MISCELLANEOUS_CHARGES", "Misc", Decimal("15"),
             [node("MISCELLANEOUS_CHARGE", "Setup", Decimal(15))]),
        node("CUSTOM_AMOUNT", "Rush fee", Decimal("5")),
        node("TOTAL_TAX_AMOUNT", "Tax", Decimal("21.99"), [node("TAX_AMOUNT", "VAT 20%", Decimal("20")),
                                                           node("TAX_AMOUNT", "City tax", Decimal("1.99"))]),
        node("TOTAL_CREDITS", "Credits", Decimal("10"), [node("SUB_CREDITS", "Prepaid credit", Decimal("500"))])])
    return invoice_of(root, "141.99")


# -- reading -------------------------------------------------------------------------------------------

def test_every_kind_is_read_in_order_with_its_name_and_sign():
    amounts = read_amounts(every_kind(), "USD")
    gross = "revenueInfo.lineItems[0].lineItems[0]"
    assert [(a.kind, a.name, a.amount, a.path) for a in amounts.adjustments] == [
        (CHARGE, "Setup", Decimal(15), "revenueInfo.lineItems[1].lineItems[0]"),
        (CHARGE, "Rush fee", Decimal(5), "revenueInfo.lineItems[2]"),
        (TRUE_UP, "Minimum commitment true-up", Decimal(30), f"{gross}.lineItems[0].lineItems[1]"),
        (ROUNDING, "Billing platform rounding", Decimal("-0.004"), gross),
        (DISCOUNT, "Discount", Decimal("-20.00"), "revenueInfo.lineItems[0]"),
        (TAX, "Tax", Decimal(20), "revenueInfo.lineItems[3].lineItems[0]"),
        (TAX, "Tax", Decimal("1.99"), "revenueInfo.lineItems[3].lineItems[1]"),
        (CREDITS, "Credits applied", Decimal(-10), "revenueInfo.lineItems[4]")]
    by_kind = {a.kind: a for a in amounts.adjustments}
    assert [a.detail for a in amounts.by_kind(TAX)] == ["VAT 20%", "City tax"]  # the item names the tax
    assert by_kind[CREDITS].detail == "TOTAL_CREDITS 10: Prepaid credit"  # 500 granted, 10 applied
    assert by_kind[DISCOUNT].reduces == tuple(line.path for line in amounts.lines)
    assert by_kind[DISCOUNT].detail == "GROSS_AMOUNT 130.00 − NET_AMOUNT 110.00"
    assert amounts.warnings == (f"billing platform rounding -0.004: GROSS_AMOUNT 130.00 against its rate-card "
                                f"lines' 130.004 ({gross})",)
    assert amounts.total == Decimal("141.99")


def test_granted_credits_are_never_deducted():
    """SUB_CREDITS is the *granted* value: under TOTAL_CREDITS or anywhere else, it takes nothing off."""
    root = node("TOTAL_AMOUNT", "T", Decimal(90), [
        line("Fee", "100"), node("SUB_CREDITS", "Promo", Decimal(1000)),
        node("TOTAL_CREDITS", "Credits", Decimal(10), [node("SUB_CREDITS", "Prepaid", Decimal(250))])])
    amounts = read_amounts(invoice_of(root, "90"), "USD")
    assert [(a.kind, a.amount) for a in amounts.adjustments] == [(CREDITS, Decimal(-10))]
    with pytest.raises(InvalidData, match=r"sum to 90, not to its totalAmount 80$"):
        read_amounts(invoice_of(root, "80"), "USD")  # deducting a granted 1,000 or 250 explains nothing


def test_tax_parts_that_miss_their_total_are_one_item_naming_them_all():
    root = node("TOTAL_AMOUNT", "T", Decimal("110.00"), [
        line("Fee", "100"), node("TOTAL_TAX_AMOUNT", "Tax", Decimal("10.00"), [
            node("TAX_AMOUNT", "State tax", Decimal("4.00")), node("TAX_AMOUNT", "County tax", Decimal("5.99"))])])
    [tax] = read_amounts(invoice_of(root, "110.00"), "USD").adjustments
    assert (tax.kind, tax.name, tax.amount, tax.detail) == (TAX, "Tax", Decimal("10.00"), "State tax, County tax")


def test_a_tax_or_charge_on_its_own_and_zero_amounts():
    root = node("TOTAL_AMOUNT", "T", Decimal("107"), [
        line("Fee", "100"), node("TAX_AMOUNT", "GST", Decimal("5")), node("TAX_AMOUNT", "Zero", Decimal(0)),
        node("MISCELLANEOUS_CHARGE", "Courier", Decimal("2")), node("TRUE_UP_AMOUNT", "None due", Decimal(0))])
    amounts = read_amounts(invoice_of(root, "107"), "USD")
    assert [(a.kind, a.name, a.amount, a.detail) for a in amounts.adjustments] == [
        (CHARGE, "Courier", Decimal(2), "MISCELLANEOUS_CHARGE"), (TAX, "Tax", Decimal(5), "GST")]


def test_summaries_with_nothing_below_them_add_nothing_and_only_totalamount_is_checked():
    root = node("TOTAL_AMOUNT", "Stated wrongly", Decimal(999), [
        node("SUB_TOTAL_AMOUNT", "No children", Decimal(50)), line("Fee", "10"),
        node("PRICING_RULE_REVENUE_UPDATE_AMOUNT", "Informational", Decimal(3))])
    amounts = read_amounts(invoice_of(root, "10"), "USD")
    assert (amounts.adjustments, amounts.total) == ([], Decimal(10))


@pytest.mark.parametrize("currency, lines, gross, allowed", [
    ("USD", ["3.334", "3.333", "3.333"], "10.03", True),     # −0.03 against 3 lines: one cent each
    ("USD", ["3.334", "3.333", "3.333"], "10.04", False),    # 0.04: more than 3 × 0.01 and 0.1 % of 10.04
    ("USD", ["5000", "5009.99"], "10000.00", True),          # −9.99: within 0.1 % of the subtotal (10.00)
    ("USD", ["5000", "5010.01"], "10000.00", False),         # −10.01: beyond it
    ("JPY", ["100.4", "100.4"], "202", True),                # 1.2 yen against 2 lines: one yen each
    ("JPY", ["100.4", "100.4"], "203", False),
    ("KWD", ["1.0004", "1.0004", "1.0004"], "3.004", True),  # 0.0028 dinar: within 3 fils
    ("KWD", ["1.0004", "1.0004", "1.0004"], "3.005", False),
])
def test_the_platforms_rounding_is_bounded_by_a_minor_unit_a_line_or_a_tenth_of_a_percent(
        currency, lines, gross, allowed):
    leaves = [line(f"L{i}", value) for i, value in enumerate(lines)]
    below = money.exact_sum(Decimal(v) for v in lines)
    root = node("TOTAL_AMOUNT", "T", Decimal(gross), [node("GROSS_AMOUNT", "Sum Total", Decimal(gross), leaves)])
    invoice = invoice_of(root, gross)
    if allowed:
        [rounding] = read_amounts(invoice, currency).adjustments
        assert (rounding.kind, rounding.amount) == (ROUNDING, Decimal(gross) - below)
        return
    with pytest.raises(InvalidData) as caught:
        read_amounts(invoice, currency)
    message = str(caught.value)
    assert message.startswith(f"revenueInfo.lineItems[0].value: GROSS_AMOUNT {gross} differs from the {len(lines)} "
                              f"rate-card lines and amounts below it, which sum to {money.plain(below)}, by ")
    assert "more than the platform's rounding" in message


def test_an_unexplained_difference_is_invalid_data_naming_both_sums():
    root = node("TOTAL_AMOUNT", "T", Decimal("90.00"), [node("NET_AMOUNT", "Net", Decimal("90.00"), [
        line("A", "60.00"), line("B", "40.00")])])
    with pytest.raises(InvalidData) as caught:
        read_amounts(invoice_of(root, "91.00"), "USD")
    assert str(caught.value) == ("totalAmount: the invoice's 2 rate-card lines (100.00) and its adjustments "
                                 "(discount -10.00) sum to 90.00, not to its totalAmount 91.00")
    plain = node("TOTAL_AMOUNT", "T", Decimal("10.00"), [line("Fee", "10.00")])
    with pytest.raises(InvalidData, match=r"^totalAmount: the invoice's 1 rate-card lines sum to 10.00, not to its "
                                          r"totalAmount 10.01$"):
        read_amounts(invoice_of(plain, "10.01"), "USD")


@pytest.mark.parametrize("root, message", [
    (node("NET_AMOUNT", "Net", Decimal(11), [line("A", "10")]),
     "revenueInfo.value: NET_AMOUNT 11 is more than the 10 it nets: a negative discount"),
    (node("TOTAL_AMOUNT", "T", Decimal(0), [line("A", "10"), node("TOTAL_CREDITS", "C", Decimal(-10))]),
     "revenueInfo.lineItems[1].value: TOTAL_CREDITS (credits applied) must not be negative"),
    (node("TOTAL_AMOUNT", "T", Decimal(0), [node("TOTAL_TAX_AMOUNT", "Tax", "ten")]),
     "revenueInfo.lineItems[0].value: must be an exact number below 10^15 with at most 30 decimal places"),
])
def test_impossible_adjustments_are_invalid_data_naming_the_field(root, message):
    with pytest.raises(InvalidData) as caught:
        read_amounts(invoice_of(root, "0"), "USD")
    assert str(caught.value) == message


def test_a_discount_takes_the_platforms_name_where_it_gives_one():
    net = node("NET_AMOUNT", "Total amount due", Decimal(9), [line("A", "10")], metadata={"couponCode": "SPRING10"})
    [discount] = read_amounts(invoice_of(net, "9"), "USD").adjustments
    assert (discount.name, discount.amount) == ("SPRING10", Decimal(-1))


# -- the Zuora items -----------------------------------------------------------------------------------

def test_togais_example_becomes_its_two_lines_with_the_discount_spread_and_a_rounding_item():
    amounts = read_amounts(documented_example(), "USD")
    items = invoice_items(amounts.lines, currency="USD", start=START, end=END, adjustments=amounts.adjustments)
    assert [(i["chargeName"], i["amount"], [d["amount"] for d in i.get("discountItems", [])]) for i in items] == [
        ("Payout_NEFT", Decimal("392.1"), [Decimal("-39.93")]),     # 100.00 × 392.10 / 982.04 = 39.927…
        ("Payout IMPS", Decimal("589.94"), [Decimal("-60.07")]),    # 100.00 × 589.94 / 982.04 = 60.072…
        ("Billing platform rounding", Decimal("-0.10"), [])]
    assert items[0]["discountItems"][0] == {
        "amount": Decimal("-39.93"), "chargeName": "Discount",
        "description": "Share of the 100.00 discount (GROSS_AMOUNT 981.94 − NET_AMOUNT 881.94), spread over 2 "
                       "item(s) by amount"}
    assert items[2]["description"] == ("GROSS_AMOUNT 981.94 against its rate-card lines' 982.04 "
                                       "(revenueInfo.lineItems[0].lineItems[0].lineItems[0])")
    assert zuora_total(items) == Decimal("881.94") == amounts.total


def test_every_other_adjustment_is_an_item_of_its_own_after_the_lines():
    amounts = read_amounts(every_kind(), "USD")
    items = invoice_items(amounts.lines, currency="USD", start=START, end=END, adjustments=amounts.adjustments)
    assert [(i["chargeName"], i["amount"]) for i in items] == [
        ("Platform", Decimal(60)), ("Seats", Decimal("40.00")), ("Setup", Decimal(15)), ("Rush fee", Decimal(5)),
        ("Minimum commitment true-up", Decimal(30)), ("Tax", Decimal(20)), ("Tax", Decimal("1.99")),
        ("Credits applied", Decimal(-10))]  # the −0.004 rounding and Seats' 0.004 round together: no item
    assert [d["amount"] for d in items[0]["discountItems"]] + [d["amount"] for d in items[1]["discountItems"]] == [
        Decimal("-12.00"), Decimal("-8.00")]
    assert [i["description"] for i in items[5:]] == ["VAT 20%", "City tax", "TOTAL_CREDITS 10: Prepaid credit"]
    assert {(i["serviceStartDate"], i["serviceEndDate"]) for i in items} == {("2024-07-01", "2024-07-31")}
    assert zuora_total(items) == Decimal("141.99")


@pytest.mark.parametrize("currency, amounts, discount, shares", [
    ("USD", ["1.00", "1.00", "1.00"], "0.10", ["-0.04", "-0.03", "-0.03"]),  # a tie: the earlier item
    ("USD", ["0.01", "9.99"], "5.00", ["-0.01", "-4.99"]),                  # never more than its item
    ("JPY", ["333", "333", "334"], "100", ["-33", "-33", "-34"]),
    ("KWD", ["1.000", "2.000"], "0.001", [None, "-0.001"]),                   # a zero share is no discount item
])
def test_a_discount_is_spread_by_amount_in_whole_minor_units_by_largest_remainder(currency, amounts, discount,
                                                                                  shares):
    total = money.exact_sum(Decimal(a) for a in amounts) - Decimal(discount)
    root = node("NET_AMOUNT", "Net", total, [line(f"L{i}", a) for i, a in enumerate(amounts)])
    parsed = read_amounts(invoice_of(root, str(total)), currency)
    items = invoice_items(parsed.lines, currency=currency, start=START, end=END, adjustments=parsed.adjustments)
    assert [i["discountItems"][0]["amount"] if "discountItems" in i else None for i in items] == [
        Decimal(s) if s else None for s in shares]
    assert zuora_total(items) == total and len(items) == len(amounts)


def test_a_discount_no_item_can_carry_is_an_item_of_its_own():
    """Every line it reduces travels as usage; or it is more than the items it reduces hold."""
    root = node("TOTAL_AMOUNT", "T", Decimal(95), [
        node("NET_AMOUNT", "Net", Decimal(5), [line("Metered", "10", metadata={"usageMeterId": "m-1"})]),
        line("Fee", "90")])
    amounts = read_amounts(invoice_of(root, "95"), "USD")
    on_invoice, _ = split_lines(amounts.lines, {"m-1"})
    items = invoice_items(on_invoice, currency="USD", start=START, end=END, adjustments=amounts.adjustments)
    assert [(i["chargeName"], i["amount"], "discountItems" in i) for i in items] == [
        ("Fee", Decimal(90), False), ("Discount", Decimal("-5"), False)]
    assert items[1]["description"] == "the amounts below 10 − NET_AMOUNT 5"
    bigger = node("TOTAL_AMOUNT", "T", Decimal(1), [
        node("NET_AMOUNT", "Net", Decimal(1), [line("Metered", "10", metadata={"usageMeterId": "m-1"}),
                                               line("Fee", "1")])])
    amounts = read_amounts(invoice_of(bigger, "1"), "USD")
    on_invoice, _ = split_lines(amounts.lines, {"m-1"})
    items = invoice_items(on_invoice, currency="USD", start=START, end=END, adjustments=amounts.adjustments)
    assert [(i["chargeName"], i["amount"]) for i in items] == [("Fee", Decimal(1)), ("Discount", Decimal(-10))]


def test_past_zuoras_ten_discounts_an_item_takes_no_more():
    tree = line("Fee", "10.00")
    for k in range(11):  # eleven nested NET_AMOUNTs, each taking a cent off
        tree = node("NET_AMOUNT", f"Net {k}", Decimal("9.99") - Decimal("0.01") * k, [tree])
    amounts = read_amounts(invoice_of(tree, "9.89"), "USD")
    items = invoice_items(amounts.lines, currency="USD", start=START, end=END, adjustments=amounts.adjustments)
    assert len(items[0]["discountItems"]) == 10
    assert [(i["chargeName"], i["amount"]) for i in items[1:]] == [("Discount", Decimal("-0.01"))]
    assert zuora_total(items) == Decimal("9.89")


# -- property: Zuora plus usage reproduces the billing total, or INVALID_DATA names both sums -------------

def numbers_in(text: str) -> set[Decimal]:
    return {Decimal(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)}


def check_refused(case: Case, message: str) -> None:
    """INVALID_DATA naming both sums: the one the invoice states and the one its tree explains."""
    stated = case.invoice["revenueInfo"] if case.refusal == "gross" else None
    named = numbers_in(message)
    assert case.stated_sum in named, (message, case.stated_sum)
    if stated is None:
        assert case.total in named and message.startswith("totalAmount: "), message
    else:
        assert "GROSS_AMOUNT" in message and "more than the platform's rounding" in message, message


def reproduces(case: Case, zuora_invoice_total: Decimal, usage_value: Decimal) -> None:
    """Zuora's invoice plus the usage equals the billing total: exactly where the part billed on the
    invoice fits the currency's minor unit, and to the minor unit (the invoice's part rounded half-up
    once) where sub-unit usage makes an exact match impossible for any invoice in that currency."""
    unit = money.quantum(case.places)
    on_invoice = case.total - usage_value
    assert zuora_invoice_total == on_invoice.quantize(unit, rounding=ROUND_HALF_UP), (zuora_invoice_total, on_invoice)
    if money.fits(on_invoice, case.places):
        assert zuora_invoice_total + usage_value == case.total
    assert abs(zuora_invoice_total + usage_value - case.total) <= unit / 2


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(adjusted_invoices())
def test_random_invoices_reach_zuora_to_the_cent_or_are_refused_naming_both_sums(case):
    refused: str | None = None
    try:
        amounts = read_amounts(case.invoice, case.currency)
    except InvalidData as exc:
        refused = str(exc)
    if refused is not None or case.refusal is not None:
        assert refused is not None and case.refusal is not None, refused
        check_refused(case, refused)
        return
    meters = settings_for(case.modes)
    on_invoice, _ = split_lines(amounts.lines, meters)
    items = invoice_items(on_invoice, currency=case.currency, start=START, end=END, adjustments=amounts.adjustments)
    for item in items:
        assert money.fits(item["amount"], case.places)
        discounts = [d["amount"] for d in item.get("discountItems", [])]
        assert len(discounts) <= 10 and all(d < 0 and money.fits(d, case.places) for d in discounts)
        assert not discounts or -sum(discounts, Decimal(0)) <= item["amount"]
    usage_value = Decimal(0)
    for record in build_usage_lines(case.invoice["id"], meter_usage(case.invoice), amounts.lines, meters):
        usage_value += record.quantity * case.prices.get(record.meter_id, Decimal(1))
    reproduces(case, zuora_total(items), usage_value)
