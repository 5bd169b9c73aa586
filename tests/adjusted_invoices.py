"""A hypothesis strategy for billing invoices with everything CONTRACT §12 names between lines and total.

Shared by the pure property test (tests/test_adjustments.py) and the one that drives the flows against
the sandboxes (tests/test_invoice_adjustments.py). Each case is an invoice in Togai's shape, built the
way a platform would compute it:

- rate-card lines in the currency's minor unit or below it (sub-cent parts, sub-cent per-unit prices),
  for fixed charges and for 0–3 meters that the test makes usage-synced (revenue or quantity mode);
- the lines under SUB_TOTAL_AMOUNT (and PRICE_PLAN_AMOUNT, with a TRUE_UP_AMOUNT), grouped under random
  wrapper nodes, inside GROSS_AMOUNT, whose value is the platform's own subtotal: the lines' sum rounded
  to the minor unit, perhaps some units off within §12's bound (one minor unit per line);
- NET_AMOUNT below GROSS_AMOUNT by a discount; beside it miscellaneous and custom amounts, taxes
  (whose parts may or may not add up to their total) and applied credits (granted values beside them);
- currencies with 0, 2 and 3 decimals (JPY, USD, KWD); types sometimes in the older ``…_REVENUE`` spelling.

One case in ten is tampered: ``totalAmount`` moved by some minor units, or GROSS_AMOUNT moved past the
rounding bound. Those must be refused as INVALID_DATA naming both sums (``Case.refusal`` says which).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import strategies as st

from integration.domain import money

CURRENCIES = {"JPY": 0, "USD": 2, "KWD": 3}
WRAPPERS = ("CUSTOM_TAG", "SUB_TOTAL_AMOUNT", "TOTAL_PURCHASE_AMOUNT")


@dataclass
class Case:
    invoice: dict
    currency: str
    modes: dict[str, str] = field(default_factory=dict)        # meter → "revenue" | "quantity"
    prices: dict[str, Decimal] = field(default_factory=dict)   # quantity-mode meter → per-unit amount
    refusal: str | None = None      # None, "total" (totalAmount moved) or "gross" (GROSS_AMOUNT moved)
    stated_sum: Decimal = Decimal(0)   # what the tree explains (the sum a refusal must name)

    @property
    def total(self) -> Decimal:
        return self.invoice["totalAmount"]

    @property
    def places(self) -> int:
        return CURRENCIES[self.currency]


def node(kind: str, description: str, value: Decimal, children: list[dict] | None = None, **extra) -> dict:
    item = {"description": description, "type": kind, "value": value, **extra}
    if children:
        item["lineItems"] = children
    return item


def _split(draw, whole: int, parts: int) -> list[int]:
    cuts = sorted(draw(st.lists(st.integers(0, whole), min_size=parts - 1, max_size=parts - 1)))
    return [b - a for a, b in zip([0, *cuts], [*cuts, whole], strict=False)]


def _nest(draw, nodes: list[dict], depth: int = 0) -> list[dict]:
    """``nodes`` in order, some grouped under wrapper nodes, at most three levels deep."""
    if depth >= 3 or len(nodes) < 2 or draw(st.booleans()):
        return nodes
    cut = draw(st.integers(1, len(nodes) - 1))
    head = nodes[:cut]
    value = money.exact_sum(n["value"] for n in head)
    return [node(draw(st.sampled_from(WRAPPERS)), "Group", value, _nest(draw, head, depth + 1)),
            *_nest(draw, nodes[cut:], depth + 1)]


def _spelled(draw, tree: dict) -> dict:
    """The older docs' spelling for NET/GROSS and the rate cards, at random (the same in the whole tree)."""
    if not draw(st.booleans()):
        return tree

    def respell(item: dict) -> dict:
        kind = item["type"]
        if kind in ("NET_AMOUNT", "GROSS_AMOUNT") or kind.endswith("_RATE_CARD_AMOUNT"):
            kind = kind[:-len("_AMOUNT")] + "_REVENUE"
        out = {**item, "type": kind}
        if "lineItems" in item:
            out["lineItems"] = [respell(child) for child in item["lineItems"]]
        return out
    return respell(tree)


@st.composite
def adjusted_invoices(draw, invoice_id: str = "inv-prop") -> Case:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    places = CURRENCIES[currency]
    unit, fine = money.quantum(places), money.quantum(places + 4)
    case = Case(invoice={}, currency=currency)
    lines: list[dict] = []
    for i in range(draw(st.integers(0, 3))):  # fixed charges: whole units, or split into sub-unit parts
        whole = draw(st.integers(0, 10**6))
        for j, part in enumerate(_split(draw, whole * 10**4, draw(st.integers(1, 3)))):
            lines.append(node("FIXED_FEE_RATE_CARD_AMOUNT", f"Fee {i}.{j}", part * fine))
    usage: list[dict] = []
    for i in range(draw(st.integers(0, 3))):  # usage-synced meters
        meter = f"{invoice_id}-m{i}"
        quantity = draw(st.integers(0, 10**5))
        price = draw(st.integers(1, 10**6)) * fine
        mode = draw(st.sampled_from(["revenue", "quantity"]))
        case.modes[meter] = mode
        if mode == "quantity":
            case.prices[meter] = price
        lines.append(node("USAGE_RATE_CARD_AMOUNT", f"Meter {i}", quantity * price, quantity=Decimal(quantity),
                          valuePerQuantity=price, metadata={"usageMeterId": meter}))
        usage.append(node("USAGE_METER_USAGE", f"Meter {i}", Decimal(quantity), id=meter, quantity=Decimal(quantity)))
    lines_sum = money.exact_sum(line["value"] for line in lines)

    true_up = draw(st.integers(0, 10**4)) * unit if draw(st.booleans()) else Decimal(0)
    below_gross: list[dict] = [node("SUB_TOTAL_AMOUNT", "Sub total", lines_sum, _nest(draw, lines))]
    if true_up:
        below_gross = [node("PRICE_PLAN_AMOUNT", "Price plan", lines_sum + true_up,
                            [*below_gross, node("TRUE_UP_AMOUNT", "True-up", true_up)])]
    exact_gross = lines_sum + true_up
    gross = exact_gross.quantize(unit, rounding=ROUND_HALF_UP)
    if len(lines) > 1 and draw(st.booleans()):  # the platform's own rounding, within one unit a line
        gross += draw(st.integers(-(len(lines) - 1), len(lines) - 1)) * unit
    discount = draw(st.integers(0, max(int(gross / unit), 0))) * unit if draw(st.booleans()) else Decimal(0)
    net = gross - discount

    extras: list[dict] = []
    added = Decimal(0)
    misc = [draw(st.integers(1, 10**4)) * unit for _ in range(draw(st.integers(0, 2)))]
    if misc:
        extras.append(node("TOTAL_MISCELLANEOUS_CHARGES", "Miscellaneous", sum(misc, Decimal(0)),
                           [node("MISCELLANEOUS_CHARGE", f"Setup {k}", m) for k, m in enumerate(misc)]))
        added += sum(misc, Decimal(0))
    if draw(st.booleans()):
        custom = draw(st.integers(1, 10**4)) * unit
        extras.append(node("CUSTOM_AMOUNT", "Rush fee", custom))
        added += custom
    taxes = [draw(st.integers(0, 10**4)) * unit for _ in range(draw(st.integers(0, 2)))]
    if taxes:
        stated = sum(taxes, Decimal(0)) + (unit if draw(st.integers(0, 4)) == 0 else 0)  # parts may not add up
        extras.append(node("TOTAL_TAX_AMOUNT", "Tax", stated,
                           [node("TAX_AMOUNT", f"VAT {k}", t) for k, t in enumerate(taxes)]))
        added += stated
    before_credits = net + added
    if before_credits > 0 and draw(st.booleans()):
        applied = draw(st.integers(0, int(before_credits / unit))) * unit
        granted = applied + draw(st.integers(0, 10**4)) * unit
        extras.append(node("TOTAL_CREDITS", "Credits", applied, [node("SUB_CREDITS", "Prepaid credit", granted)]))
        added -= applied
    total = net + added
    explained = total

    tamper = draw(st.integers(0, 9)) == 0
    if tamper and lines and draw(st.booleans()):
        # Past the reader's bound (one minor unit a line or 0.1 % of the *stated* GROSS_AMOUNT): the
        # moved amount raises that 0.1 % with it, so it moves by twice the share of the exact sum.
        bound = max(unit * len(lines), abs(exact_gross) * Decimal("0.002"))
        gross = (exact_gross + bound + unit).quantize(unit, rounding=ROUND_HALF_UP) + unit
        net, total = gross - discount, gross - discount + added
        case.refusal, explained = "gross", exact_gross
    elif tamper:
        total += draw(st.sampled_from([-3, -1, 1, 2])) * unit
        case.refusal = "total"
    tree = node("NET_AMOUNT", "Total amount due", net, [node("GROSS_AMOUNT", "Sum Total", gross, below_gross)])
    root = node("TOTAL_AMOUNT", "Total Amount", total, [tree, *extras])
    if draw(st.booleans()):
        root = node("GRAND_TOTAL_AMOUNT", "Grand Total Amount", total, [root])
    case.invoice = {"id": invoice_id, "usageInfo": usage, "revenueInfo": _spelled(draw, root), "totalAmount": total,
                    "invoiceDetails": {"account": {"invoiceCurrency": currency}}}
    case.stated_sum = explained
    return case
