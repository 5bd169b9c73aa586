"""Exact money: Decimal parsing, currency precision, and cent-exact allocation.

WHY a module: every amount that crosses to Zuora must be right to the cent, and the two systems
disagree on precision. The billing platform computes revenue at full precision (a line of
3 × 0.333333333333 is 0.999999999999); Zuora keeps each invoice item at its currency's precision
and would round every item on its own, so three such items would come to 0.99 while the billing
invoice says 1.00. ``allocate`` rounds the *total* once and spreads the cents so the parts add up
to it exactly (largest remainder), which is what an accountant means by "to the cent".
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import (
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Context,
    Decimal,
    InvalidOperation,
    localcontext,
)
from typing import Any

# ISO 4217 minor units that differ from 2 (the rest, and unknown codes, use 2).
_MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                     "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


# Amounts the service accepts: below 10^15 in size, at most 30 decimal places. Within those bounds
# every sum of up to millions of amounts fits this context's precision, so no addition ever rounds
# (Python's default context keeps 28 digits and would round silently).
MAX_MAGNITUDE = Decimal(10) ** 15
MAX_PLACES = 30
EXACT = Context(prec=200)


def minor_units(currency: str | None) -> int:
    """Decimal places of a currency's smallest unit (ISO 4217); 2 when unknown."""
    return _MINOR_UNITS.get((currency or "").upper(), 2)


def to_decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a JSON number (already Decimal or int) or a numeric string; else None.

    Floats are refused: a float has already lost the digits this service promises to keep.
    """
    if isinstance(value, (bool, float)):
        return None
    if isinstance(value, (Decimal, int)):
        number = Decimal(value)
    elif isinstance(value, str) and value.strip():
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


def in_bounds(value: Decimal) -> bool:
    """Whether an amount is one this service computes with exactly (see MAX_MAGNITUDE/MAX_PLACES)."""
    exponent = value.as_tuple().exponent
    return isinstance(exponent, int) and abs(value) < MAX_MAGNITUDE and exponent >= -MAX_PLACES


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """The exact sum of in-bounds amounts (never rounded)."""
    total = Decimal(0)
    for value in values:
        total = EXACT.add(total, value)
    return total


def plain(value: Decimal) -> str:
    """A Decimal in plain positional notation, digit for digit (``1E+2`` → ``100``, ``0.30`` kept)."""
    return format(value, "f")


def quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def fits(value: Decimal, places: int) -> bool:
    """Whether ``value`` needs no more than ``places`` decimal places."""
    with localcontext(EXACT):
        return value == value.quantize(quantum(places), rounding=ROUND_DOWN)


def allocate(amounts: Sequence[Decimal], places: int) -> list[Decimal]:
    """Round each amount to ``places`` so that the parts sum exactly to the total rounded half-up.

    Amounts that already fit are kept as they are whenever possible; the cents the rounding of
    the others loses or gains go to the amounts with the largest remainders (ties: the earlier
    line), so the result is deterministic. Exact input comes back unchanged.
    """
    unit = quantum(places)
    if all(fits(a, places) for a in amounts):
        return list(amounts)
    with localcontext(EXACT):
        target = exact_sum(amounts).quantize(unit, rounding=ROUND_HALF_UP)
        floors = [a.quantize(unit, rounding=ROUND_FLOOR) for a in amounts]
        remainders = [a - f for a, f in zip(amounts, floors, strict=True)]  # each in [0, unit)
        short = int((target - exact_sum(floors)) / unit)  # units still to hand out: 0 ≤ short ≤ len
        order = sorted(range(len(amounts)), key=lambda i: (-remainders[i], i))
        result = list(floors)
        for i in order[:short]:
            result[i] += unit
    return result

