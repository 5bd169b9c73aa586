"""What a billing invoice adds or takes away between its rate-card lines and its total (CONTRACT §12).

WHY a module of its own: a real invoice is not the sum of its lines. Togai's ``revenueInfo`` tree also
carries a discount (``NET_AMOUNT`` is "Gross revenue - Discounts"), applied credits (``TOTAL_CREDITS``),
taxes (``TOTAL_TAX_AMOUNT``, ``TAX_AMOUNT``), a minimum-commitment true-up (``TRUE_UP_AMOUNT``),
miscellaneous and custom amounts, and its own subtotal (``GROSS_AMOUNT``), which may differ from its
lines by the platform's rounding. The invoice flow, the usage flow and the totals report must explain
the total the very same way, or Zuora is a cent off, or an invoice is pushed that no one can reconcile;
so the reading lives here, once. Pure logic: no store, no clients.

Reading rules (types at any depth, in either spelling: integration.billing.togai.line_items):
- A rate-card line (``*_RATE_CARD_AMOUNT`` with no rate card below it) counts its ``value``; its slabs
  are part of it.
- ``GROSS_AMOUNT`` is the platform's own subtotal and wins over what is below it: where its lines (and
  true-ups and charges below it) differ from it by at most one minor unit per line or 0.1 % of the
  subtotal, whichever is larger, the difference is an adjustment of its own, ``Billing platform
  rounding``, with a warning; a larger difference is INVALID_DATA naming both sums.
- ``NET_AMOUNT`` nets a discount: what is below it less its value. The discount reduces the lines below
  it. A NET_AMOUNT above what it nets (a negative discount) is INVALID_DATA.
- ``TOTAL_CREDITS`` is applied credit and is deducted (``Credits applied``); its ``SUB_CREDITS`` are the
  *granted* values (Togai: "Granted credit value") and never deducted, here or anywhere.
- ``TOTAL_TAX_AMOUNT`` is the tax; its ``TAX_AMOUNT`` children name it, one ``Tax`` adjustment each when
  they add up to it, else one for the total naming them all (the platform's total wins). A
  ``TAX_AMOUNT`` outside such a total is a tax of its own.
- ``TRUE_UP_AMOUNT`` is added as ``Minimum commitment true-up``.
- Miscellaneous and custom amounts (``TOTAL_MISCELLANEOUS_CHARGES`` over ``MISCELLANEOUS_CHARGE``,
  ``CUSTOM_AMOUNT``, ``TOTAL_PRICING_RULE_ADDITION_AMOUNT`` over ``PRICING_RULE_ADDITION_AMOUNT``) are
  added, named as the platform names them (their ``description``), children as with taxes.
- Any other node (TOTAL_AMOUNT, GRAND_TOTAL_AMOUNT, PRICE_PLAN_AMOUNT, SUB_TOTAL_AMOUNT, CUSTOM_TAG…)
  is the sum of what is below it; one with nothing below it adds nothing (it summarises nothing we can
  see). Its own value is not trusted: only ``totalAmount`` is checked.
- Finally the lines and adjustments must add up to ``totalAmount`` exactly; a difference that neither
  a documented field nor the rounding above explains is INVALID_DATA naming both sums.
Zero adjustments are left out: a 0.00 tax is no item.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from integration.billing.amounts import (
    CHARGE,
    CREDITS,
    CREDITS_NAME,
    DISCOUNT,
    DISCOUNT_NAME,
    KINDS,
    LABELS,
    ROUNDING,
    ROUNDING_NAME,
    TAX,
    TAX_NAME,
    TRUE_UP,
    TRUE_UP_NAME,
    Adjustment,
    InvoiceAmounts,
)
from integration.billing.togai.line_items import (
    RATE_CARD_SUFFIX,
    Node,
    lines_below,
    required_amount,
    revenue_roots,
)
from integration.domain import money
from integration.domain.errors import InvalidData

ROUNDING_SHARE = Decimal("0.001")
"""0.1 % of the subtotal: the larger bound of the platform's rounding, with one minor unit per line."""

_TOTALS_OF = {"TOTAL_TAX_AMOUNT": ("TAX_AMOUNT", TAX), "TOTAL_MISCELLANEOUS_CHARGES": ("MISCELLANEOUS_CHARGE", CHARGE),
              "TOTAL_PRICING_RULE_ADDITION_AMOUNT": ("PRICING_RULE_ADDITION_AMOUNT", CHARGE)}
_NAMED_CHARGES = {"MISCELLANEOUS_CHARGE", "CUSTOM_AMOUNT", "PRICING_RULE_ADDITION_AMOUNT"}


def read_amounts(invoice: dict[str, Any], currency: str | None) -> InvoiceAmounts:
    """The invoice's lines and adjustments, checked against ``totalAmount`` (module docstring).

    ``currency`` sets the minor unit of the rounding bound (money.minor_units).
    """
    roots = revenue_roots(invoice)
    lines = [line for root in roots for line in lines_below(root)]
    reader = _Reader(money.quantum(money.minor_units(currency)))
    explained = money.exact_sum(reader.explain(root) for root in roots)
    total = required_amount(invoice, "totalAmount", "invoice")
    if explained != total:
        lines_sum = money.exact_sum(line.value for line in lines)
        if not reader.found:
            raise InvalidData("totalAmount", f"the invoice's {len(lines)} rate-card lines sum to "
                                             f"{money.plain(lines_sum)}, not to its totalAmount {money.plain(total)}")
        named = ", ".join(f"{LABELS[a.kind]} {money.plain(a.amount)}" for a in reader.found)
        raise InvalidData("totalAmount", f"the invoice's {len(lines)} rate-card lines ({money.plain(lines_sum)}) and "
                                         f"its adjustments ({named}) sum to {money.plain(explained)}, not to its "
                                         f"totalAmount {money.plain(total)}")
    ordered = sorted(reader.found, key=lambda a: KINDS.index(a.kind))  # stable: document order within a kind
    return InvoiceAmounts(lines=lines, adjustments=ordered, total=total, warnings=tuple(reader.warnings))


class _Reader:
    """One walk over a revenue tree, collecting adjustments as it explains each node's amount."""

    def __init__(self, unit: Decimal):
        self.unit = unit
        self.found: list[Adjustment] = []
        self.warnings: list[str] = []

    def explain(self, node: Node) -> Decimal:
        """What ``node`` contributes to the invoice total (the rules of the module docstring)."""
        kind = node.type
        if kind.endswith(RATE_CARD_SUFFIX) and not _has_rate_card_below(node):
            return required_amount(node.raw, "value", node.path)
        if kind == "GROSS_AMOUNT" and node.children:
            return self._gross(node)
        if kind == "NET_AMOUNT" and node.children:
            return self._net(node)
        if kind == "TOTAL_CREDITS":
            return self._credits(node)
        if kind in _TOTALS_OF:
            return self._named_total(node, *_TOTALS_OF[kind])
        if kind == "TAX_AMOUNT":
            return self._add(TAX, TAX_NAME, node, detail=_description(node) or "TAX_AMOUNT")
        if kind in _NAMED_CHARGES:
            return self._add(CHARGE, _description(node) or _humanise(kind), node, detail=kind)
        if kind == "TRUE_UP_AMOUNT":
            return self._add(TRUE_UP, TRUE_UP_NAME, node, detail="TRUE_UP_AMOUNT")
        if kind == "SUB_CREDITS":
            return Decimal(0)  # granted credit, not a deduction
        return money.exact_sum(self.explain(child) for child in node.children)

    def _add(self, kind: str, name: str, node: Node, *, detail: str, sign: int = 1) -> Decimal:
        value = required_amount(node.raw, "value", node.path)
        amount = value if sign > 0 else -value
        if amount:
            self.found.append(Adjustment(kind, name, amount, node.path, detail))
        return amount

    def _gross(self, node: Node) -> Decimal:
        stated = required_amount(node.raw, "value", node.path)
        below = money.exact_sum(self.explain(child) for child in node.children)
        difference = money.EXACT.subtract(stated, below)
        if difference:
            count = len(lines_below(node))
            bound = max(self.unit * count, abs(stated) * ROUNDING_SHARE)
            if abs(difference) > bound:
                raise InvalidData(f"{node.path}.value", f"GROSS_AMOUNT {money.plain(stated)} differs from the "
                                                        f"{count} rate-card lines and amounts below it, which sum to "
                                                        f"{money.plain(below)}, by {money.plain(difference)}: more "
                                                        f"than the platform's rounding (at most "
                                                        f"{money.plain(bound)}: one minor unit per line or 0.1 % of "
                                                        f"the subtotal)")
            detail = (f"GROSS_AMOUNT {money.plain(stated)} against its rate-card lines' {money.plain(below)}"
                      f" ({node.path})")
            self.found.append(Adjustment(ROUNDING, ROUNDING_NAME, difference, node.path, detail))
            self.warnings.append(f"billing platform rounding {money.plain(difference)}: {detail}")
        return stated

    def _net(self, node: Node) -> Decimal:
        stated = required_amount(node.raw, "value", node.path)
        below = money.exact_sum(self.explain(child) for child in node.children)
        discount = money.EXACT.subtract(below, stated)
        if discount < 0:
            raise InvalidData(f"{node.path}.value", f"NET_AMOUNT {money.plain(stated)} is more than the "
                                                    f"{money.plain(below)} it nets: a negative discount")
        if discount:
            gross = next((c for c in node.children if c.type == "GROSS_AMOUNT"), None)
            detail = (f"{'GROSS_AMOUNT' if gross is not None else 'the amounts below'} {money.plain(below)} − "
                      f"NET_AMOUNT {money.plain(stated)}")
            reduces = tuple(line.path for line in lines_below(node))
            self.found.append(Adjustment(DISCOUNT, _discount_name(node), -discount, node.path, detail, reduces))
        return stated

    def _credits(self, node: Node) -> Decimal:
        applied = required_amount(node.raw, "value", node.path)
        if applied < 0:
            raise InvalidData(f"{node.path}.value", "TOTAL_CREDITS (credits applied) must not be negative")
        granted = [c for c in node.children if c.type == "SUB_CREDITS"]
        names = ", ".join(_description(c) for c in granted if _description(c))
        detail = f"TOTAL_CREDITS {money.plain(applied)}" + (f": {names}" if names else "")
        return self._add(CREDITS, CREDITS_NAME, node, detail=detail, sign=-1)

    def _named_total(self, node: Node, part_type: str, kind: str) -> Decimal:
        """A total over named parts (taxes, miscellaneous charges): one adjustment per part when they
        add up to the total, else one for the total naming them all: the platform's total wins."""
        stated = required_amount(node.raw, "value", node.path)
        parts = [c for c in node.children if c.type == part_type]
        values = [required_amount(c.raw, "value", c.path) for c in parts]
        if parts and money.exact_sum(values) == stated:
            for part, value in zip(parts, values, strict=True):
                if value:
                    name = TAX_NAME if kind == TAX else (_description(part) or _humanise(part_type))
                    self.found.append(Adjustment(kind, name, value, part.path, _description(part) or part_type))
            return stated
        if stated:
            names = ", ".join(_description(p) for p in parts if _description(p)) or _description(node) or node.type
            name = TAX_NAME if kind == TAX else (_description(node) or _humanise(node.type))
            self.found.append(Adjustment(kind, name, stated, node.path, names))
        return stated


def _has_rate_card_below(node: Node) -> bool:
    stack = list(node.children)
    while stack:
        child = stack.pop()
        if child.type.endswith(RATE_CARD_SUFFIX):
            return True
        stack.extend(child.children)
    return False


def _description(node: Node) -> str:
    raw = node.raw.get("description")
    return raw.strip() if isinstance(raw, str) else ""


def _discount_name(node: Node) -> str:
    """The platform's name or code for the discount where it gives one (``metadata``), else ``Discount``:
    Togai's NET_AMOUNT carries only the invoice's wording ("Total amount due"), no discount name."""
    metadata = node.raw.get("metadata")
    if isinstance(metadata, dict):
        for key in ("discountName", "discountCode", "couponCode", "coupon"):
            value = metadata.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return DISCOUNT_NAME


def _humanise(kind: str) -> str:
    return kind.replace("_", " ").capitalize()
