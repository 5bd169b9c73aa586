"""Exact-decimal JSON and the invoice builder of the billing sandbox.

WHY a module of its own: money must survive the round trip digit for digit. Togai's ``Invoice`` carries
``totalAmount``, ``value``, ``quantity`` and ``valuePerQuantity`` as JSON *numbers*; a sandbox that
passed them through ``float`` would hide exactly the rounding bugs the service must not have (0.1 + 0.2
is 0.30000000000000004 in binary). So every number the sandbox reads is parsed as ``decimal.Decimal``,
and every ``Decimal`` it writes is emitted as a JSON number spelled from its own digits.

The invoice builder turns the compact spec of ``POST /_sandbox/invoices`` into Togai's ``Invoice`` shape
(``usageInfo[]`` of ``USAGE_METER_USAGE`` entries, a ``revenueInfo`` tree whose leaves are
``*_RATE_CARD_AMOUNT`` line items). Togai's own documents disagree on how deep and how spelled those
trees are (reference/billing-platforms.md §A.4, §E), so the spec's ``shape`` picks one; the amounts,
total and meters are the same in every shape:

- ``nested`` (default): flat ``usageInfo`` entries with ``quantity`` (and ``value`` = the quantity);
  ``revenueInfo`` TOTAL_AMOUNT > NET_AMOUNT > PRICE_PLAN_AMOUNT > SUB_TOTAL_AMOUNT > rate cards.
- ``flat``: ``usageInfo`` as in Togai's get-invoice example: the usage in ``value``, no ``quantity``,
  ``units`` "USAGE_UNITS" unless the spec gives units; ``revenueInfo`` as ``nested``.
- ``total_usage``: the meter entries under one ``TOTAL_USAGE`` parent, as Togai's type list describes.
- ``documented``: Togai's example throughout: ``usageInfo`` as ``flat``; ``revenueInfo``
  GRAND_TOTAL_AMOUNT > TOTAL_AMOUNT > NET_AMOUNT > GROSS_AMOUNT > rate cards, every node with
  ``units`` = the invoice currency ("USD"); a usage rate card carries its ``value`` only, its quantity
  and price are in ``USAGE_RATE_CARD_SLAB_AMOUNT`` children (slabs of ``SLAB_SIZE`` units).
- ``legacy``: ``documented`` in the older docs' spelling: NET_REVENUE, GROSS_REVENUE,
  ``*_RATE_CARD_REVENUE``, ``*_RATE_CARD_SLAB_REVENUE``.

Every meter entry keeps ``id`` = the meter ID (CONTRACT §6.4), though Togai's example shows none.

Rounding: none. Togai computes revenue at full precision and its docs only say sub-cent amounts are
rounded (down) when they are synced to a payment processor; the Invoice API returns the unrounded numbers.
So a usage line's ``value`` is exactly ``quantity × valuePerQuantity`` and ``totalAmount`` is exactly the
sum of the leaves. A consumer that needs currency precision (Zuora) must round itself, deliberately."""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from flask.json.provider import JSONProvider

# Leaf line-item types a fixed line may take (all end in _RATE_CARD_AMOUNT, like Togai's rate cards).
FIXED_LINE_TYPES = (
    "FIXED_FEE_RATE_CARD_AMOUNT",
    "LICENSE_RATE_CARD_AMOUNT",
    "BILLING_ENTITLEMENT_RATE_CARD_AMOUNT",
    "CREDIT_GRANT_RATE_CARD_AMOUNT",
    "ENTITLEMENT_OVERAGE_RATE_CARD_AMOUNT",
)
USAGE_LINE_TYPE = "USAGE_RATE_CARD_AMOUNT"
USAGE_SLAB_TYPE = "USAGE_RATE_CARD_SLAB_AMOUNT"
SHAPES = ("nested", "flat", "total_usage", "documented", "legacy")
DEFAULT_SHAPE = "nested"
SLAB_SIZE = Decimal(1000)
"""Units in each slab of the ``documented``/``legacy`` shapes (the last slab takes the rest)."""
DOCUMENTED_USAGE_UNITS = "USAGE_UNITS"  # the units of the meter entries in Togai's get-invoice example
# The older docs' spelling of the revenue types (reference/billing-platforms.md §E).
_LEGACY_TYPES = ("NET_AMOUNT", "GROSS_AMOUNT")

# Decimals whose digits would expand past this many characters in plain notation are written in
# exponent notation (still a valid JSON number), so a hostile 1e999999 cannot blow up a response.
_PLAIN_NOTATION_LIMIT = 40


# -- exact JSON ----------------------------------------------------------------------------------------

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_loads(data: str | bytes) -> Any:
    """Parse JSON with every non-integer number as ``Decimal``; NaN/Infinity are refused."""
    return json.loads(data, parse_float=Decimal, parse_constant=_reject_constant)


def decimal_text(value: Decimal) -> str:
    """The JSON number spelling of a finite Decimal, from its own digits (no float on the way)."""
    if not value.is_finite():
        raise ValueError("NaN and Infinity cannot be written as JSON numbers")
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # "n"/"N"/"F" only for NaN and Infinity, refused above
        raise ValueError(f"not a finite number: {value}")
    if abs(exponent) > _PLAIN_NOTATION_LIMIT or abs(value.adjusted()) > _PLAIN_NOTATION_LIMIT:
        return str(value)  # e.g. "1E+999999": exponent form is valid JSON
    return format(value, "f")


def json_dumps(obj: Any) -> str:
    """Compact JSON where ``Decimal`` becomes a number and aware ``datetime`` an ISO-8601 UTC string."""
    parts: list[str] = []
    _encode(obj, parts)
    return "".join(parts)


def _encode(obj: Any, out: list[str]) -> None:
    if isinstance(obj, Decimal):
        out.append(decimal_text(obj))
    elif isinstance(obj, dict):
        out.append("{")
        for i, (key, value) in enumerate(obj.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _encode(value, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _encode(value, out)
        out.append("]")
    elif isinstance(obj, datetime):
        out.append(json.dumps(iso(obj)))
    else:  # str, int, bool, None, and float (repr is the shortest round-trip spelling)
        out.append(json.dumps(obj, allow_nan=False))


class DecimalJSONProvider(JSONProvider):
    """Flask JSON provider: requests parse numbers as Decimal, responses write Decimal as numbers."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return json_dumps(obj)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return json_loads(s)


# -- time ----------------------------------------------------------------------------------------------

def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, the form Togai's examples use."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- invoice tree --------------------------------------------------------------------------------------

def _line(type_: str, description: str, value: Decimal, *, id_: str | None = None,
          quantity: Decimal | None = None, value_per_quantity: Decimal | None = None,
          units: str | None = None, metadata: dict | None = None,
          children: list[dict] | None = None) -> dict:
    """One InvoiceLineItem; optional keys are left out rather than sent as null, as Togai does."""
    item: dict[str, Any] = {}
    if id_ is not None:
        item["id"] = id_
    item["description"] = description
    item["type"] = type_
    if value_per_quantity is not None:
        item["valuePerQuantity"] = value_per_quantity
    if quantity is not None:
        item["quantity"] = quantity
    if units is not None:
        item["units"] = units
    item["value"] = value
    if metadata:
        item["metadata"] = metadata
    if children:
        item["lineItems"] = children
    return item


def fixed_leaf(spec: dict, index: int) -> dict:
    """A fixed-fee (or license, …) leaf: ``amount`` or ``quantity × valuePerQuantity``, exact."""
    if "amount" in spec:
        value = spec["amount"]
        quantity = spec.get("quantity", Decimal(1))
        per_quantity = spec.get("valuePerQuantity", value)
    else:
        quantity, per_quantity = spec["quantity"], spec["valuePerQuantity"]
        value = quantity * per_quantity
    return _line(spec.get("type", FIXED_LINE_TYPES[0]), spec["description"], value,
                 id_=spec.get("id", f"addon.sandbox.{index + 1}"), quantity=quantity,
                 value_per_quantity=per_quantity)


def usage_leaf(spec: dict, index: int) -> dict:
    """A usage rate-card leaf: value = quantity × valuePerQuantity exactly; meter in metadata."""
    value = spec["quantity"] * spec["valuePerQuantity"]
    return _line(USAGE_LINE_TYPE, spec.get("description", spec["name"]), value,
                 id_=spec.get("id", f"urc.sandbox.{index + 1}"), quantity=spec["quantity"],
                 value_per_quantity=spec["valuePerQuantity"], units=spec.get("units"),
                 metadata={"usageMeterId": spec["meterId"]})


def usage_info(usage: Iterable[dict]) -> list[dict]:
    """``usageInfo[]``: one USAGE_METER_USAGE entry per meter; ``id`` is the meter ID.

    Togai's InvoiceLineItem has no ``name`` field, so the meter's name is the ``description``;
    ``value`` is the usage itself (the quantity), not money.
    """
    return [_line("USAGE_METER_USAGE", spec["name"], spec["quantity"], id_=spec["meterId"],
                  quantity=spec["quantity"], units=spec.get("units")) for spec in usage]


def revenue_info(leaves: list[dict]) -> tuple[dict, Decimal]:
    """The nested ``revenueInfo`` tree and its exact total.

    TOTAL_AMOUNT > NET_AMOUNT > PRICE_PLAN_AMOUNT > SUB_TOTAL_AMOUNT > leaves: deep on purpose, so a
    consumer that only looks one level down finds no lines.
    """
    total = sum((leaf["value"] for leaf in leaves), Decimal(0))
    sub_total = _line("SUB_TOTAL_AMOUNT", "Sub total", total, children=leaves)
    price_plan = _line("PRICE_PLAN_AMOUNT", "Price plan amount", total, children=[sub_total])
    net = _line("NET_AMOUNT", "Net amount", total, children=[price_plan])
    return _line("TOTAL_AMOUNT", "Total amount", total, children=[net]), total


def invoice_trees(fixed: list[dict], usage: list[dict], *, shape: str = DEFAULT_SHAPE,
                  currency: str = "USD") -> tuple[list[dict], dict, Decimal]:
    """(``usageInfo``, ``revenueInfo``, total) of an invoice in one of ``SHAPES`` (module docstring)."""
    leaves = invoice_leaves(fixed, usage, shape=shape, currency=currency)
    if shape in ("documented", "legacy"):
        revenue, total = documented_revenue_info(leaves, currency)
        if shape == "legacy":
            revenue = legacy_spelling(revenue)
    else:
        revenue, total = revenue_info(leaves)
    return usage_tree(usage, shape), revenue, total


def invoice_leaves(fixed: list[dict], usage: list[dict], *, shape: str, currency: str) -> list[dict]:
    """The rate cards of an invoice in ``shape``: fixed lines first, then one per usage line."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}")
    if shape in ("documented", "legacy"):
        return ([{**fixed_leaf(spec, i), "units": currency} for i, spec in enumerate(fixed)]
                + [sliced_usage_leaf(spec, i, currency) for i, spec in enumerate(usage)])
    return [fixed_leaf(spec, i) for i, spec in enumerate(fixed)] + [usage_leaf(spec, i) for i, spec in enumerate(usage)]


def usage_tree(usage: list[dict], shape: str) -> list[dict]:
    """``usageInfo`` in ``shape``: flat as in Togai's example, under TOTAL_USAGE, or with quantities."""
    if shape in ("flat", "documented", "legacy"):
        return flat_usage_info(usage)
    if shape == "total_usage":
        return total_usage_info(usage)
    return usage_info(usage)


def flat_usage_info(usage: Iterable[dict]) -> list[dict]:
    """Meter entries as Togai's get-invoice example returns them: the usage in ``value``, no ``quantity``."""
    return [_line("USAGE_METER_USAGE", spec["name"], spec["quantity"], id_=spec["meterId"],
                  units=spec.get("units", DOCUMENTED_USAGE_UNITS)) for spec in usage]


def total_usage_info(usage: list[dict]) -> list[dict]:
    """The meter entries under one ``TOTAL_USAGE`` parent ("List of all the usage meter usages")."""
    if not usage:
        return []
    entries = usage_info(usage)
    total = sum((spec["quantity"] for spec in usage), Decimal(0))
    return [_line("TOTAL_USAGE", "Total usage", total, children=entries)]


def sliced_usage_leaf(spec: dict, index: int, currency: str) -> dict:
    """A usage rate card as in Togai's example: its ``value`` only, quantity and price in its slabs."""
    quantity, price = spec["quantity"], spec["valuePerQuantity"]
    parts = [min(quantity, SLAB_SIZE)] + ([quantity - SLAB_SIZE] if quantity > SLAB_SIZE else [])
    slabs = [_line(USAGE_SLAB_TYPE, f"Slab {n}", part * price, quantity=part, value_per_quantity=price,
                   units=currency) for n, part in enumerate(parts, start=1)]
    return _line(USAGE_LINE_TYPE, spec.get("description", spec["name"]),
                 sum((slab["value"] for slab in slabs), Decimal(0)),
                 id_=spec.get("id", f"urc.sandbox.{index + 1}"), units=currency,
                 metadata={"usageMeterId": spec["meterId"]}, children=slabs)


def documented_revenue_info(leaves: list[dict], currency: str) -> tuple[dict, Decimal]:
    """GRAND_TOTAL_AMOUNT > TOTAL_AMOUNT > NET_AMOUNT > GROSS_AMOUNT > rate cards, as in Togai's example
    (without its discount: here every level carries the same total, so the invoice adds up)."""
    total = sum((leaf["value"] for leaf in leaves), Decimal(0))
    gross = _line("GROSS_AMOUNT", "Sum Total", total, units=currency, children=leaves)
    net = _line("NET_AMOUNT", "Total amount due", total, units=currency, children=[gross])
    total_node = _line("TOTAL_AMOUNT", "Total Amount", total, units=currency, children=[net])
    return _line("GRAND_TOTAL_AMOUNT", "Grand Total Amount", total, units=currency, children=[total_node]), total


def legacy_spelling(node: dict) -> dict:
    """A copy of a revenue tree with the older docs' type names (NET_REVENUE, …_RATE_CARD_REVENUE)."""
    kind = node["type"]
    if kind in _LEGACY_TYPES or kind.endswith(("_RATE_CARD_AMOUNT", "_SLAB_AMOUNT")):
        kind = kind[:-len("_AMOUNT")] + "_REVENUE"
    copy = {**node, "type": kind}
    if "lineItems" in node:
        copy["lineItems"] = [legacy_spelling(child) for child in node["lineItems"]]
    return copy


def inclusive_end(end: datetime) -> datetime:
    """``endDateInclusive``: the last millisecond before the exclusive ``endDate``."""
    return end - timedelta(milliseconds=1)
