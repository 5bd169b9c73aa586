"""A billing invoice's money in the internal model: its lines, its meter usage and its adjustments (CONTRACT §12).

WHY a module of its own: every adapter reads its platform's invoice into these same shapes (Togai's
``revenueInfo`` trees: integration.billing.togai.line_items and .adjustments), and the flows, the usage
flow and the totals report compute with these alone, so a second platform is a second reader, never a
second invoice flow. Amounts are exact ``Decimal`` in the invoice's currency (``BillingInvoice.currency``).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from integration.domain.errors import InvalidData

CHARGE, TRUE_UP, ROUNDING, DISCOUNT, TAX, CREDITS = "charge", "true_up", "rounding", "discount", "tax", "credits"
KINDS = (CHARGE, TRUE_UP, ROUNDING, DISCOUNT, TAX, CREDITS)
"""The kinds, in the order their items follow the lines on the Zuora invoice."""
LABELS = {CHARGE: "miscellaneous and custom charges", TRUE_UP: "minimum commitment true-up",
          ROUNDING: "billing platform rounding", DISCOUNT: "discount", TAX: "tax", CREDITS: "credits applied"}
ROUNDING_NAME, TRUE_UP_NAME, TAX_NAME = "Billing platform rounding", "Minimum commitment true-up", "Tax"
CREDITS_NAME, DISCOUNT_NAME = "Credits applied", "Discount"


@dataclass(frozen=True)
class Slab:
    """One slab (tier) of a revenue line: its amount, quantity and per-unit amount."""

    path: str
    value: Decimal
    quantity: Decimal | None
    value_per_quantity: Decimal | None


@dataclass(frozen=True)
class Line:
    """One revenue line of a billing invoice (Togai: a ``*_RATE_CARD_AMOUNT`` node of ``revenueInfo``)."""

    path: str                         # where it sits in the platform's invoice, for error messages
    type: str                         # the platform's kind of line (Togai: current spelling, …_AMOUNT)
    description: str
    value: Decimal                    # the amount
    quantity: Decimal | None
    value_per_quantity: Decimal | None
    meter_id: str | None              # the usage meter it bills, if any
    units: str | None                 # as given (Togai puts the currency here on revenue lines)
    slabs: tuple[Slab, ...] = ()      # the slab breakdown below it, in document order

    def unit_prices(self) -> set[Decimal]:
        """The per-unit amounts of this line: its own ``valuePerQuantity``, else its slabs'."""
        if self.value_per_quantity is not None:
            return {self.value_per_quantity}
        return {s.value_per_quantity for s in self.slabs if s.value_per_quantity is not None}


@dataclass(frozen=True)
class MeterUsage:
    """One meter's usage entry on an invoice (Togai: a ``USAGE_METER_USAGE`` entry of ``usageInfo``)."""

    path: str
    meter_id: str | None              # None: the entry names no meter (as in Togai's own example)
    description: str
    quantity: Decimal | None          # None when the entry carries none
    quantity_field: str               # the path of the field the quantity came from
    units: str | None                 # the usage's unit ("USAGE_UNITS", "calls"…)


@dataclass(frozen=True)
class Adjustment:
    """One amount between the lines and the total, as it changes the total (discounts and credits < 0)."""

    kind: str                       # one of KINDS
    name: str                       # the Zuora item's chargeName: the platform's name, or §12's
    amount: Decimal
    path: str                       # where it was read from
    detail: str                     # what the item's description says about where it came from
    reduces: tuple[str, ...] = ()   # a discount: the paths of the lines it reduces


@dataclass(frozen=True)
class InvoiceAmounts:
    """A billing invoice's money, explained: lines + adjustments == total, exactly."""

    lines: list[Line]
    adjustments: list[Adjustment]
    total: Decimal
    warnings: tuple[str, ...] = ()

    def by_kind(self, kind: str) -> list[Adjustment]:
        return [a for a in self.adjustments if a.kind == kind]


def usage_quantity(usage: dict[str, list[MeterUsage]], meter_id: str) -> tuple[Decimal, str | None]:
    """(quantity, units) of the meter's one usage entry.

    No entry, two entries (which one would be billed?), or a quantity that is missing, negative or
    not an exact number is INVALID_DATA naming where.
    """
    entries = usage.get(meter_id) or []
    if not entries:
        raise InvalidData("usageInfo", f"no USAGE_METER_USAGE entry for meter {meter_id}, whose settings say "
                                       f"mode quantity")
    if len(entries) > 1:
        raise InvalidData(entries[1].path, f"meter {meter_id} has {len(entries)} USAGE_METER_USAGE entries "
                                           f"({', '.join(e.path for e in entries[:3])}); which to bill is ambiguous")
    entry = entries[0]
    if entry.quantity is None or entry.quantity < 0:
        raise InvalidData(entry.quantity_field, "must be an exact number ≥ 0")
    return entry.quantity, entry.units
