"""Invoices that carry more than rate cards: discounts, credits, taxes, true-ups, miscellaneous and
custom amounts, and the platform's own rounding of its subtotal — in Togai's line-item types.

WHY a module of its own: real Togai invoices carry these amounts between their lines and their total
(CONTRACT §12; the ``InvoiceLineItem`` type list in Togai's OpenAPI document), and the service can only be
tested against them if the sandbox serves them. Two ways in, both through ``POST /_sandbox/invoices``:

- ``adjustments`` (compact): the sandbox builds the tree. Amounts are exact; nothing is rounded unless
  ``grossAmount`` says so.
- ``document``: a Togai ``Invoice`` whose ``usageInfo``, ``revenueInfo`` and ``totalAmount`` are served
  as given (Togai's own get-invoice example, say), numbers digit for digit. The sandbox does not check
  that such a document adds up: serving what a real platform might is the point.

The tree the compact form builds (the documented shape's GRAND_TOTAL_AMOUNT root added on top, every node
with ``units`` = the currency, in the ``documented`` and ``legacy`` shapes)::

    TOTAL_AMOUNT                        NET + misc + custom + taxes − applied credits (= totalAmount)
      NET_AMOUNT                        GROSS − discount  (Togai: "Gross revenue - Discounts")
        GROSS_AMOUNT                    grossAmount, else SUB_TOTAL + true-up (the platform's subtotal)
          PRICE_PLAN_AMOUNT             SUB_TOTAL + true-up (nested shapes; documented: its children
            SUB_TOTAL_AMOUNT > leaves    sit under GROSS_AMOUNT directly, as in Togai's example)
            TRUE_UP_AMOUNT              minimum commitment − SUB_TOTAL
      MISCELLANEOUS_CHARGE…             under TOTAL_MISCELLANEOUS_CHARGES
      CUSTOM_AMOUNT…
      TOTAL_TAX_AMOUNT > TAX_AMOUNT…
      TOTAL_CREDITS > SUB_CREDITS…      TOTAL_CREDITS = Σ applied; each SUB_CREDITS carries the
                                        *granted* value (Togai: "Granted credit value"), not a deduction

Where Togai's documents are silent about the nesting of these types, this is the sandbox's reading;
the service must not depend on it (it reads every type at any depth).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from .invoices import _line, invoice_leaves, invoice_trees, legacy_spelling, usage_tree


def _sum(values: Any) -> Decimal:
    return sum(values, Decimal(0))


def adjusted_revenue_info(leaves: list[dict], adjustments: dict, *, documented: bool,
                          currency: str) -> tuple[dict, Decimal]:
    """The ``revenueInfo`` tree of an invoice with ``adjustments`` (module docstring) and its total."""
    units = currency if documented else None
    sub_total = _sum(leaf["value"] for leaf in leaves)
    true_up = adjustments.get("trueUp", Decimal(0))
    below_gross = list(leaves)
    if true_up:
        below_gross.append(_line("TRUE_UP_AMOUNT", "Minimum commitment true-up", true_up, units=units))
    if not documented:
        sub = _line("SUB_TOTAL_AMOUNT", "Sub total", sub_total, children=leaves)
        below_gross = [_line("PRICE_PLAN_AMOUNT", "Price plan amount", sub_total + true_up,
                             children=[sub, *below_gross[len(leaves):]])]
    gross_value = adjustments.get("grossAmount", sub_total + true_up)
    gross = _line("GROSS_AMOUNT", "Sum Total", gross_value, units=units, children=below_gross)
    net_value = gross_value - adjustments.get("discount", Decimal(0))
    net = _line("NET_AMOUNT", "Total amount due", net_value, units=units, children=[gross])
    extras, total = _extras(adjustments, units)
    total += net_value
    root = _line("TOTAL_AMOUNT", "Total Amount", total, units=units, children=[net, *extras])
    if documented:
        root = _line("GRAND_TOTAL_AMOUNT", "Grand Total Amount", total, units=units, children=[root])
    return root, total


def _extras(adjustments: dict, units: str | None) -> tuple[list[dict], Decimal]:
    """The nodes beside NET_AMOUNT under the total, and what they add to it."""
    nodes: list[dict] = []
    added = Decimal(0)
    misc = adjustments.get("miscellaneous", [])
    if misc:
        value = _sum(m["amount"] for m in misc)
        nodes.append(_line("TOTAL_MISCELLANEOUS_CHARGES", "Miscellaneous charges", value, units=units, children=[
            _line("MISCELLANEOUS_CHARGE", m["description"], m["amount"], units=units) for m in misc]))
        added += value
    for custom in adjustments.get("custom", []):
        nodes.append(_line("CUSTOM_AMOUNT", custom["description"], custom["amount"], units=units))
        added += custom["amount"]
    taxes = adjustments.get("taxes", [])
    if taxes:
        value = _sum(t["amount"] for t in taxes)
        nodes.append(_line("TOTAL_TAX_AMOUNT", "Total tax", value, units=units, children=[
            _line("TAX_AMOUNT", t["description"], t["amount"], units=units) for t in taxes]))
        added += value
    credits = adjustments.get("credits", [])
    if credits:
        applied = _sum(c["applied"] for c in credits)
        nodes.append(_line("TOTAL_CREDITS", "Credits", applied, units=units, children=[
            _line("SUB_CREDITS", c["description"], c["granted"], units=units) for c in credits]))
        added -= applied
    return nodes, added


def spec_trees(spec: dict, currency: str) -> tuple[list[dict], Any, Decimal]:
    """(``usageInfo``, ``revenueInfo``, ``totalAmount``) of a ``POST /_sandbox/invoices`` spec: its
    ``document`` as given, or the trees of its lines in its shape, with its ``adjustments`` if any."""
    document = spec.get("document")
    if document is not None:
        return document.get("usageInfo") or [], document["revenueInfo"], document["totalAmount"]
    adjustments, shape = spec.get("adjustments"), spec["shape"]
    if not adjustments:
        return invoice_trees(spec["fixed"], spec["usage"], shape=shape, currency=currency)
    leaves = invoice_leaves(spec["fixed"], spec["usage"], shape=shape, currency=currency)
    documented = shape in ("documented", "legacy")
    revenue, total = adjusted_revenue_info(leaves, adjustments, documented=documented, currency=currency)
    if shape == "legacy":
        revenue = legacy_spelling(revenue)
    return usage_tree(spec["usage"], shape), revenue, total
