"""integration.billing.togai.line_items: Togai's line-item trees read in every shape Togai documents.

Fixtures: Togai's own get-invoice example (tests/fixtures/togai/, copied from its OpenAPI document)
and variants of it: meter entries under a TOTAL_USAGE parent, the older ``…_REVENUE`` spelling, slabs,
the usage in ``value`` without ``quantity``. Then hostile trees, and a property test that the Zuora
side reproduces the billing total for random trees.
"""
from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration.billing.amounts import usage_quantity
from integration.billing.togai import line_items
from integration.billing.togai.adjustments import DISCOUNT, ROUNDING, read_amounts
from integration.billing.togai.line_items import (
    current_type,
    invoice_lines,
    meter_entries,
    meter_usage,
)
from integration.domain import money
from integration.domain.errors import InvalidData
from integration.flows.invoices import invoice_items, split_lines
from integration.flows.usage import build_usage_lines
from integration.store.meters import MeterSettings

FIXTURES = Path(__file__).parent / "fixtures" / "togai"
REPO = Path(__file__).resolve().parents[1]


def documented_example() -> dict:
    """Togai's get-invoice example, numbers as exact Decimals (as the billing client reads them)."""
    return json.loads((FIXTURES / "get_invoice_example.json").read_text(), parse_float=Decimal)


def vendor_spec() -> Path | None:
    """``shared/vendor-specs/togai-openapi.yaml`` beside the project (or beside the worktrees' folder)."""
    for root in (REPO.parent, REPO.parent.parent):
        path = root / "shared" / "vendor-specs" / "togai-openapi.yaml"
        if path.is_file():
            return path
    return None


def settings_for(modes: dict[str, str]) -> dict[str, MeterSettings]:
    return {meter_id: MeterSettings(meter_id=meter_id, zuora_subscription_number="A-S00000001",
                                    zuora_charge_number=f"C-{i:08d}", uom="Each", mode=mode,
                                    created_at="", updated_at="")
            for i, (meter_id, mode) in enumerate(sorted(modes.items()), start=1)}


def legacy(node: dict) -> dict:
    """The older docs' spelling: every ``…_AMOUNT`` type below the totals spelled ``…_REVENUE``."""
    kind = node["type"]
    if kind.endswith("_AMOUNT") and kind not in ("GRAND_TOTAL_AMOUNT", "TOTAL_AMOUNT"):
        kind = kind[:-len("_AMOUNT")] + "_REVENUE"
    out = {**node, "type": kind}
    if "lineItems" in node:
        out["lineItems"] = [legacy(child) for child in node["lineItems"]]
    return out


# -- Togai's documented example ------------------------------------------------------------------------

def test_the_fixture_is_togais_example_unchanged():
    spec_path = vendor_spec()
    if spec_path is None:
        pytest.skip("shared/vendor-specs/togai-openapi.yaml is not beside the project")
    import yaml

    spec = yaml.safe_load(spec_path.read_text())
    example = spec["components"]["examples"]["Invoice"]["value"]
    assert spec["components"]["responses"]["InvoiceResponse"]["content"]["application/json"]["examples"] == {
        "Invoice": {"$ref": "#/components/examples/Invoice"}}
    assert json.loads((FIXTURES / "get_invoice_example.json").read_text()) == example


def test_documented_example_revenue_lines_are_the_two_rate_cards_with_their_slabs():
    lines = invoice_lines(documented_example())
    rate_cards = "revenueInfo.lineItems[0].lineItems[0].lineItems[0]"
    assert [(line.path, line.type, line.description, line.value) for line in lines] == [
        (f"{rate_cards}.lineItems[0]", "USAGE_RATE_CARD_AMOUNT", "Payout_NEFT", Decimal("392.1")),
        (f"{rate_cards}.lineItems[1]", "USAGE_RATE_CARD_AMOUNT", "Payout IMPS", Decimal("589.94"))]
    neft, imps = lines
    # The slabs stay part of their rate card: two each, never lines of their own.
    assert [(s.path, s.quantity, s.value_per_quantity, s.value) for s in neft.slabs] == [
        (f"{rate_cards}.lineItems[0].lineItems[0]", Decimal(10000), Decimal("0.001"), Decimal(10)),
        (f"{rate_cards}.lineItems[0].lineItems[1]", Decimal(10000), Decimal("0.001"), Decimal(10))]
    assert (neft.quantity, neft.value_per_quantity, neft.unit_prices()) == (None, None, {Decimal("0.001")})
    assert (imps.quantity, imps.value_per_quantity, len(imps.slabs)) == (Decimal(32109), Decimal("0.001"), 2)
    # "USD" on revenue nodes is the currency: kept as given, and no meter is read from it.
    assert {(line.units, line.meter_id) for line in lines} == {("USD", None)}


def test_documented_example_adds_up_as_its_lines_a_rounding_and_a_discount():
    """Rate cards 982.04, GROSS_AMOUNT 981.94, NET_AMOUNT and totalAmount 881.94 (CONTRACT §12)."""
    amounts = read_amounts(documented_example(), "USD")
    assert [line.value for line in amounts.lines] == [Decimal("392.1"), Decimal("589.94")]
    assert [(a.kind, a.name, a.amount) for a in amounts.adjustments] == [
        (ROUNDING, "Billing platform rounding", Decimal("-0.10")), (DISCOUNT, "Discount", Decimal("-100.00"))]
    assert amounts.total == Decimal("881.94")


def test_documented_example_meter_entries_carry_the_usage_in_value():
    entries = meter_entries(documented_example())
    assert [(e.path, e.meter_id, e.description, e.quantity, e.quantity_field, e.units) for e in entries] == [
        ("usageInfo[0]", None, "rides - local", Decimal(15), "usageInfo[0].value", "USAGE_UNITS"),
        ("usageInfo[1]", None, "rides - pro", Decimal(5), "usageInfo[1].value", "USAGE_UNITS")]
    assert meter_usage(documented_example()) == {}  # no entry names a meter: none can be billed by ID


def with_meters(invoice: dict) -> dict:
    """The documented example with meter IDs (CONTRACT §6.4: the entry's ``id`` is the meter ID)
    and the rate cards tagged with them, as a real usage rate card is."""
    invoice = copy.deepcopy(invoice)
    invoice["usageInfo"][0]["id"], invoice["usageInfo"][1]["id"] = "m-local", "m-pro"
    gross = invoice["revenueInfo"]["lineItems"][0]["lineItems"][0]["lineItems"][0]
    gross["lineItems"][0]["metadata"] = {"usageMeterId": "m-local"}
    gross["lineItems"][1]["metadata"] = {"usageMeterId": "m-pro"}
    return invoice


@pytest.mark.parametrize("variant", ["flat", "total_usage", "deeper_total_usage", "metadata_id"])
def test_meter_entries_are_found_at_any_depth(variant):
    invoice = with_meters(documented_example())
    entries = invoice["usageInfo"]
    if variant == "total_usage":
        invoice["usageInfo"] = [{"description": "Total usage", "type": "TOTAL_USAGE", "value": 20,
                                 "lineItems": entries}]
    elif variant == "deeper_total_usage":
        invoice["usageInfo"] = [{"description": "Total usage", "type": "TOTAL_USAGE", "value": 20, "lineItems": [
            {"description": "Group", "type": "CUSTOM_TAG", "value": 20, "lineItems": entries}]}]
    elif variant == "metadata_id":
        for entry in entries:
            entry["metadata"] = {"usageMeterId": entry.pop("id")}
    usage = meter_usage(invoice)
    assert usage_quantity(usage, "m-local") == (Decimal(15), "USAGE_UNITS")
    assert usage_quantity(usage, "m-pro") == (Decimal(5), "USAGE_UNITS")


def test_quantity_is_preferred_to_value_and_value_stands_in_when_quantity_is_absent():
    invoice = {"usageInfo": [
        {"id": "m-a", "description": "A", "type": "USAGE_METER_USAGE", "quantity": Decimal("2.5"), "value": 9},
        {"id": "m-b", "description": "B", "type": "USAGE_METER_USAGE", "value": Decimal("0.125")}]}
    usage = meter_usage(invoice)
    assert usage_quantity(usage, "m-a") == (Decimal("2.5"), None)
    assert usage_quantity(usage, "m-b") == (Decimal("0.125"), None)


def test_legacy_revenue_spelling_reads_as_todays():
    invoice = documented_example()
    today = invoice_lines(invoice)
    invoice["revenueInfo"] = legacy(invoice["revenueInfo"])
    assert invoice["revenueInfo"]["lineItems"][0]["lineItems"][0]["type"] == "NET_REVENUE"
    old = invoice_lines(invoice)
    assert old == today  # same lines, same paths, types in today's spelling, same slabs
    assert current_type("USAGE_RATE_CARD_SLAB_REVENUE") == "USAGE_RATE_CARD_SLAB_AMOUNT"
    assert current_type("TOTAL_AMOUNT") == "TOTAL_AMOUNT"


def test_a_rate_card_below_a_rate_card_is_the_line_and_slabs_never_are():
    tree = {"type": "TOTAL_AMOUNT", "description": "T", "value": 3, "lineItems": [
        {"type": "FIXED_FEE_RATE_CARD_AMOUNT", "description": "Bundle", "value": 3, "lineItems": [
            {"type": "LICENSE_RATE_CARD_AMOUNT", "description": "Seats", "value": 3, "lineItems": [
                {"type": "LICENSE_RATE_CARD_SLAB_AMOUNT", "description": "Slab 1", "value": 3,
                 "quantity": 3, "valuePerQuantity": 1}]}]}]}
    [line] = invoice_lines({"revenueInfo": tree})
    assert (line.description, line.type, line.value, len(line.slabs)) == ("Seats", "LICENSE_RATE_CARD_AMOUNT",
                                                                         Decimal(3), 1)


def test_revenue_units_are_never_the_usage_units():
    """A quantity-mode meter whose entry has no units: the description must not say "per USD"."""
    invoice = with_meters(documented_example())
    del invoice["usageInfo"][0]["units"]
    lines = invoice_lines(invoice)
    [usage] = build_usage_lines("inv-1", meter_usage(invoice), lines, settings_for({"m-local": "quantity"}))
    assert usage.quantity == Decimal(15)
    assert usage.description.startswith("Per-unit amount 0.001; Payout_NEFT; meter m-local")
    assert "USD" not in usage.description


# -- hostile trees -------------------------------------------------------------------------------------

def chain(depth: int) -> dict:
    """A revenue tree ``depth`` levels below its root, built without recursion."""
    node: dict = {"type": "FIXED_FEE_RATE_CARD_AMOUNT", "description": "Fee", "value": 1}
    for _ in range(depth):
        node = {"type": "CUSTOM_TAG", "description": "Tag", "value": 1, "lineItems": [node]}
    return node


def refusal(invoice: dict, read=invoice_lines) -> str:
    with pytest.raises(InvalidData) as caught:
        read(invoice)
    return str(caught.value)


def test_depth_is_bounded_and_the_refusal_names_the_path():
    [line] = invoice_lines({"revenueInfo": chain(line_items.MAX_DEPTH)})
    assert line.path == "revenueInfo" + ".lineItems[0]" * line_items.MAX_DEPTH
    too_deep = "revenueInfo" + ".lineItems[0]" * (line_items.MAX_DEPTH + 1)
    assert refusal({"revenueInfo": chain(line_items.MAX_DEPTH + 1)}) == (
        f"{too_deep}: line items nested deeper than {line_items.MAX_DEPTH} levels")
    # Far deeper than Python's recursion limit: refused at the bound, never a RecursionError.
    assert refusal({"revenueInfo": chain(5000)}).startswith(too_deep + ": ")
    deep_usage = {"usageInfo": [chain(line_items.MAX_DEPTH + 1)]}
    assert refusal(deep_usage, meter_entries).startswith("usageInfo[0]" + ".lineItems[0]" * 33 + ": ")


def test_size_is_bounded(monkeypatch):
    monkeypatch.setattr(line_items, "MAX_NODES", 3)
    flat = {"type": "TOTAL_AMOUNT", "description": "T", "value": 0,
            "lineItems": [{"type": "CUSTOM_TAG", "description": "x", "value": 0} for _ in range(3)]}
    assert refusal({"revenueInfo": flat}) == "revenueInfo.lineItems[2]: more than 3 line items in one tree"
    assert len(meter_entries({"usageInfo": flat["lineItems"]})) == 0  # 3 nodes: within the bound


@pytest.mark.parametrize("invoice, read, message", [
    ({"revenueInfo": "lots"}, invoice_lines, "revenueInfo: must be a line item or a list of line items"),
    ({"revenueInfo": {"type": "TOTAL_AMOUNT", "value": 1, "lineItems": [7]}}, invoice_lines,
     "revenueInfo.lineItems[0]: must be a line item object"),
    ({"revenueInfo": {"type": "TOTAL_AMOUNT", "value": 1, "lineItems": {"a": 1}}}, invoice_lines,
     "revenueInfo.lineItems: must be a list"),
    ({"revenueInfo": {"value": 1}}, invoice_lines,
     "revenueInfo.type: must be a line item type of at most 100 characters"),
    ({"revenueInfo": {"type": "X" * 101, "value": 1}}, invoice_lines,
     "revenueInfo.type: must be a line item type of at most 100 characters"),
    ({"revenueInfo": {"type": "USAGE_RATE_CARD_REVENUE", "value": 1.5}}, invoice_lines,
     "revenueInfo.value: must be an exact number below 10^15 with at most 30 decimal places"),
    ({"revenueInfo": {"type": "USAGE_RATE_CARD_AMOUNT", "value": 1, "lineItems": [
        {"type": "USAGE_RATE_CARD_SLAB_AMOUNT", "value": "NaN"}]}}, invoice_lines,
     "revenueInfo.lineItems[0].value: must be an exact number below 10^15 with at most 30 decimal places"),
    ({"revenueInfo": {"type": "USAGE_RATE_CARD_AMOUNT", "value": 1, "metadata": {"usageMeterId": 5}}},
     invoice_lines, "revenueInfo.metadata.usageMeterId: must be a non-empty string"),
    ({"usageInfo": 3}, meter_entries, "usageInfo: must be a line item or a list of line items"),
    ({"usageInfo": [{"type": "TOTAL_USAGE", "value": 1, "lineItems": [
        {"type": "USAGE_METER_USAGE", "id": ["m"], "value": 1}]}]}, meter_entries,
     "usageInfo[0].lineItems[0].id: must be a non-empty string"),
    ({"usageInfo": [{"type": "USAGE_METER_USAGE", "id": "m", "quantity": "1e999"}]}, meter_entries,
     "usageInfo[0].quantity: must be an exact number below 10^15 with at most 30 decimal places"),
])
def test_malformed_trees_are_invalid_data_naming_the_path(invoice, read, message):
    assert refusal(invoice, read) == message


def test_ambiguous_missing_or_negative_meter_usage_is_invalid_data():
    twice = meter_usage({"usageInfo": [
        {"type": "USAGE_METER_USAGE", "id": "m", "value": 1},
        {"type": "TOTAL_USAGE", "value": 1, "lineItems": [{"type": "USAGE_METER_USAGE", "id": "m", "value": 2}]}]})
    with pytest.raises(InvalidData, match=r"^usageInfo\[1\]\.lineItems\[0\]: meter m has 2 USAGE_METER_USAGE "
                                          r"entries \(usageInfo\[0\], usageInfo\[1\]\.lineItems\[0\]\)"):
        usage_quantity(twice, "m")
    none = meter_usage({"usageInfo": [{"type": "USAGE_METER_USAGE", "id": "m", "description": "no number"}]})
    with pytest.raises(InvalidData, match=r"^usageInfo\[0\]\.value: must be an exact number ≥ 0$"):
        usage_quantity(none, "m")
    negative = meter_usage({"usageInfo": [{"type": "USAGE_METER_USAGE", "id": "m", "quantity": -1, "value": 3}]})
    with pytest.raises(InvalidData, match=r"^usageInfo\[0\]\.quantity: must be an exact number ≥ 0$"):
        usage_quantity(negative, "m")
    with pytest.raises(InvalidData, match=r"^usageInfo: no USAGE_METER_USAGE entry for meter other"):
        usage_quantity(none, "other")


# -- property: the Zuora side reproduces the billing total ----------------------------------------------

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")
WRAPPERS = ("NET_AMOUNT", "GROSS_AMOUNT", "PRICE_PLAN_AMOUNT", "SUB_TOTAL_AMOUNT", "CUSTOM_TAG",
            "TOTAL_PURCHASE_AMOUNT")


def split(draw, whole: int, parts: int) -> list[int]:
    """``whole`` cut into ``parts`` non-negative integers at random points."""
    cuts = sorted(draw(st.lists(st.integers(0, whole), min_size=parts - 1, max_size=parts - 1)))
    return [b - a for a, b in zip([0, *cuts], [*cuts, whole], strict=False)]


def spelled(draw, kind: str) -> str:
    return kind[:-len("_AMOUNT")] + "_REVENUE" if kind.endswith("_AMOUNT") and draw(st.booleans()) else kind


def node(draw, kind: str, description: str, value: Decimal, **extra) -> dict:
    return {"description": description, "type": spelled(draw, kind), "units": "USD", "value": value, **extra}


def nest(draw, nodes: list[dict], depth: int, max_depth: int) -> list[dict]:
    """``nodes`` in order, grouped under wrapper nodes at random, at most ``max_depth`` levels deep."""
    if depth >= max_depth or not nodes or draw(st.booleans()):
        return nodes
    cuts = sorted(set(draw(st.lists(st.integers(1, len(nodes)), max_size=3))) | {len(nodes)})
    grouped, start = [], 0
    for end in cuts:
        group = nest(draw, nodes[start:end], depth + 1, max_depth)
        value = money.exact_sum(n["value"] for n in nodes[start:end])
        grouped.append(node(draw, draw(st.sampled_from(WRAPPERS)), "Group", value, lineItems=group))
        start = end
    return grouped


def rate_card(draw, kind: str, description: str, value: Decimal, *, meter: str | None = None,
              quantity: Decimal | None = None, price: Decimal | None = None) -> dict:
    """A rate card; sometimes its amount (or its quantity) is spread over slab children instead."""
    extra: dict = {"metadata": {"usageMeterId": meter}} if meter else {}
    slab_kind = kind.replace("_RATE_CARD_AMOUNT", "_RATE_CARD_SLAB_AMOUNT")
    if draw(st.booleans()):
        if price is None:
            micros = split(draw, int(value / MICRO), draw(st.integers(1, 3)))
            slabs = [node(draw, slab_kind, f"Slab {i}", m * MICRO) for i, m in enumerate(micros, 1)]
        else:
            assert quantity is not None
            slabs = [node(draw, slab_kind, f"Slab {i}", q * price, quantity=Decimal(q), valuePerQuantity=price)
                     for i, q in enumerate(split(draw, int(quantity), draw(st.integers(1, 3))), 1)]
        extra["lineItems"] = slabs
    elif price is not None:
        extra.update(quantity=quantity, valuePerQuantity=price)
    return node(draw, kind, description, value, **extra)


@st.composite
def billing_invoices(draw) -> tuple[dict, dict[str, str], dict[str, Decimal]]:
    """(invoice, meter modes, per-unit amount of each quantity-mode meter).

    - fixed charges and revenue-mode meters: a whole-cent amount split into sub-cent parts
      (micro-units) across 1–4 rate cards, each perhaps split again across slabs;
    - quantity-mode meters: quantity × a sub-cent per-unit amount, the quantity split across rate
      cards (and slabs); the usage entry carries ``quantity`` or only ``value``, flat or under
      TOTAL_USAGE parents;
    - the revenue lines 1–5 levels below the root, types in either spelling at random.
    """
    rate_cards, usage, modes, prices = [], [], {}, {}
    for i in range(draw(st.integers(0, 3))):
        cents = draw(st.integers(0, 10**7))
        for j, micros in enumerate(split(draw, cents * 10**4, draw(st.integers(1, 4)))):
            rate_cards.append(rate_card(draw, draw(st.sampled_from(["FIXED_FEE_RATE_CARD_AMOUNT",
                                                                     "LICENSE_RATE_CARD_AMOUNT"])),
                                        f"Fee {i}.{j}", micros * MICRO))
    for i in range(draw(st.integers(0, 3))):
        meter, cents = f"m-rev-{i}", draw(st.integers(0, 10**7))
        modes[meter] = "revenue"
        for j, micros in enumerate(split(draw, cents * 10**4, draw(st.integers(1, 4)))):
            rate_cards.append(rate_card(draw, "USAGE_RATE_CARD_AMOUNT", f"Rev {i}.{j}", micros * MICRO, meter=meter))
    for i in range(draw(st.integers(0, 3))):
        meter, quantity = f"m-qty-{i}", draw(st.integers(0, 10**6))
        price = draw(st.integers(1, 10**6)) * MICRO
        modes[meter], prices[meter] = "quantity", price
        for j, q in enumerate(split(draw, quantity, draw(st.integers(1, 4)))):
            rate_cards.append(rate_card(draw, "USAGE_RATE_CARD_AMOUNT", f"Qty {i}.{j}", q * price, meter=meter,
                                        quantity=Decimal(q), price=price))
        entry = {"id": meter, "description": meter, "type": "USAGE_METER_USAGE", "value": Decimal(quantity)}
        if draw(st.booleans()):
            entry["quantity"] = Decimal(quantity)
        usage.append(entry)
    total = money.exact_sum(card["value"] for card in rate_cards)
    max_depth = draw(st.integers(1, 5))
    root = node(draw, draw(st.sampled_from(["GRAND_TOTAL_AMOUNT", "TOTAL_AMOUNT"])), "Total", total,
                lineItems=nest(draw, rate_cards, 1, max_depth))
    if draw(st.booleans()) and usage:
        usage = [{"description": "Total usage", "type": "TOTAL_USAGE", "value": 0,
                  "lineItems": nest(draw, usage, 1, draw(st.integers(1, 4)))}]
    invoice = {"id": "inv-prop", "usageInfo": usage, "revenueInfo": root, "totalAmount": total}
    return invoice, modes, prices


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(billing_invoices())
def test_zuora_invoice_items_plus_usage_reproduce_the_billing_total_exactly(case):
    """For random trees, what reaches Zuora adds up to the billing invoice's ``totalAmount``.

    "Exactly" means Decimal equality with no tolerance:
        Σ Zuora invoice item amounts
      + Σ revenue-mode usage quantities × 1
      + Σ quantity-mode usage quantities × the meter's per-unit amount (its revenue lines' price)
      == totalAmount,
    where each invoice item amount is whole cents (money.allocate over the lines left on the
    invoice) and within one cent of its line's exact value. It holds exactly because the lines left
    on the invoice sum to whole cents (every fixed charge is a cent amount split into sub-cent
    parts), so allocating them to cents moves cents between items but loses none; the usage side
    is never rounded.
    """
    invoice, modes, prices = case
    lines = invoice_lines(invoice)
    total = read_amounts(invoice, "USD").total
    meters = settings_for(modes)
    on_invoice, _ = split_lines(lines, meters)
    items = invoice_items(on_invoice, currency="USD", start=date(2024, 7, 1), end=date(2024, 7, 31))
    for item, line in zip(items, on_invoice, strict=False):
        assert item["amount"] == item["amount"].quantize(CENT) and abs(item["amount"] - line.value) < CENT
    usage = build_usage_lines("inv-prop", meter_usage(invoice), lines, meters)
    usage_value = Decimal(0)
    for record in usage:
        if modes[record.meter_id] == "revenue":
            usage_value += record.quantity * 1
        else:
            price = prices[record.meter_id]
            assert {p for line in lines if line.meter_id == record.meter_id for p in line.unit_prices()} == {price}
            usage_value += record.quantity * price
    billed_meters = {line.meter_id for line in lines if line.meter_id}
    assert {record.meter_id for record in usage} == billed_meters
    assert money.exact_sum(item["amount"] for item in items) + usage_value == total
