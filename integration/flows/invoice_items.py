"""The Zuora invoice items of a billing invoice: its lines, and its adjustments as CONTRACT §12 maps them.

WHY a module of its own: this is where money changes shape, from the billing platform's exact amounts to
Zuora's items in the currency's minor unit, and it must come out right to the cent whatever the invoice
carries. Kept apart from the flow (integration.flows.invoices), which decides what to push and when.

How (integration.billing.togai.adjustments says what the adjustments are):
- Every amount that goes on the invoice — each line left off usage, each adjustment — is rounded in one
  pass (money.allocate): the total is rounded half-up once and the minor units spread by largest
  remainder, so the items add up to the exact sum rounded, never drifting as items rounded one by one
  would. Amounts that fit the currency go over digit for digit.
- A discount becomes Zuora ``discountItems`` (negative, ``chargeName`` the platform's name for it, else
  ``Discount``) on the items of the lines it reduces, spread in proportion to their amounts, minor units
  by largest remainder (ties: the earlier item), so the shares add up to the discount exactly and none
  exceeds its item. Where no item can carry it — every line it reduces travels as usage, or it is more
  than those items hold, or they already carry Zuora's 10 discounts each — it is an invoice item of its
  own with the negative amount.
- Every other adjustment is an item of its own, after the lines: miscellaneous and custom charges named
  as the platform names them, ``Minimum commitment true-up``, ``Billing platform rounding``, ``Tax``
  (the description names the tax) and ``Credits applied`` (negative). Zero amounts make no item.
- Item ``quantity``/``unitPrice`` are not sent (Zuora would re-derive or check the amount from them);
  the quantity and unit price go into the item's description instead, with the exact amount where
  rounding changed it.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from integration.billing.amounts import DISCOUNT, DISCOUNT_NAME, Adjustment, Line
from integration.domain import money

CHARGE_NAME_MAX = 130
ITEM_DESCRIPTION_MAX = 500
MAX_DISCOUNT_ITEMS = 10
"""Zuora's limit of ``discountItems`` on one invoice item."""
ELLIPSIS = "…"


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters on a word boundary, marked with "…" when cut."""
    if len(text) <= limit:
        return text
    head = text[:limit - len(ELLIPSIS)]
    cut = head.rstrip()
    space = cut.rfind(" ")
    if space >= (limit * 2) // 3:  # a word boundary not too far back; else cut mid-word
        cut = cut[:space].rstrip(" ,;:-–—")
    return cut + ELLIPSIS


def invoice_items(lines: list[Line], *, currency: str | None, start: date, end: date,
                  adjustments: Sequence[Adjustment] = ()) -> list[dict[str, Any]]:
    """The Zuora invoice items of ``lines`` (one each, in order) and ``adjustments`` (module docstring)."""
    places = money.minor_units(currency)
    amounts = money.allocate([line.value for line in lines] + [a.amount for a in adjustments], places)
    period = {"serviceStartDate": start.isoformat(), "serviceEndDate": max(start, end).isoformat()}
    items: list[dict[str, Any]] = []
    for line, item_amount in zip(lines, amounts, strict=False):
        full_name = line.description or _humanise(line.type)
        item = {"amount": item_amount, "chargeName": truncate(full_name, CHARGE_NAME_MAX), **period}
        description = _item_description(line, full_name, item_amount)
        if description:
            item["description"] = description
        items.append(item)
    for adjustment, amount in zip(adjustments, amounts[len(lines):], strict=True):
        if not amount:
            continue
        if adjustment.kind == DISCOUNT and _spread(items[:len(lines)], lines, adjustment, amount, places):
            continue
        item = {"amount": amount, "chargeName": truncate(adjustment.name, CHARGE_NAME_MAX), **period}
        parts = [adjustment.detail] + ([f"exact amount {money.plain(adjustment.amount)}"]
                                       if amount != adjustment.amount else [])
        item["description"] = truncate("; ".join(p for p in parts if p), ITEM_DESCRIPTION_MAX)
        items.append(item)
    return items


def zuora_total(items: list[dict[str, Any]]) -> Decimal:
    """What Zuora's invoice of these items adds up to: the items and every discount on them."""
    return money.exact_sum(money.exact_sum([item["amount"], *(d["amount"] for d in item.get("discountItems", []))])
                           for item in items)


def _spread(items: list[dict[str, Any]], lines: list[Line], discount: Adjustment, amount: Decimal, places: int) -> bool:
    """Put ``amount`` (a negative, whole-minor-unit discount) on the items of the lines it reduces, as
    ``discountItems`` in proportion to their amounts; False where no item can carry it."""
    reduced = set(discount.reduces)
    carriers = [i for i, line in enumerate(lines)
                if line.path in reduced and items[i]["amount"] > 0
                and len(items[i].get("discountItems", [])) < MAX_DISCOUNT_ITEMS]
    held = [_units(items[i]["amount"], places) for i in carriers]
    wanted = _units(-amount, places)
    if not carriers or wanted > sum(held):
        return False
    shares = _largest_remainder(wanted, held)
    unit = money.quantum(places)
    description = truncate(f"Share of the {money.plain(-amount)} discount ({discount.detail}), spread over "
                           f"{len(carriers)} item(s) by amount", ITEM_DESCRIPTION_MAX)
    for i, share in zip(carriers, shares, strict=True):
        if share:
            items[i].setdefault("discountItems", []).append(
                {"amount": -(share * unit), "chargeName": truncate(discount.name or DISCOUNT_NAME, CHARGE_NAME_MAX),
                 "description": description})
    return True


def _units(amount: Decimal, places: int) -> int:
    """A whole-minor-unit amount as an integer count of minor units (exact)."""
    return int(money.EXACT.scaleb(amount, places))


def _largest_remainder(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (whole units, summing to ``total`` exactly): each
    share floored, the units left over going to the largest remainders, ties to the earlier weight."""
    whole = sum(weights)
    floors = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:total - sum(floors)]:
        floors[i] += 1
    return floors


def _item_description(line: Line, full_name: str, item_amount: Decimal) -> str:
    parts = []
    if len(full_name) > CHARGE_NAME_MAX:
        parts.append(full_name)
    if line.quantity is not None and line.value_per_quantity is not None:
        parts.append(f"{money.plain(line.quantity)} × {money.plain(line.value_per_quantity)}")
    if item_amount != line.value:
        parts.append(f"exact amount {money.plain(line.value)}")
    return truncate("; ".join(parts), ITEM_DESCRIPTION_MAX)


def _humanise(kind: str) -> str:
    return kind.replace("_", " ").title()
