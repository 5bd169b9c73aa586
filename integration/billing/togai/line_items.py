"""Togai's invoice line-item trees, read in one place (the Togai adapter): the revenue lines and the meter usage.

WHY a module of its own: ``usageInfo`` (a list) and ``revenueInfo`` (one root) are trees of the same
recursive ``InvoiceLineItem`` (children in ``lineItems``), and Togai's documents disagree on their
shape (reference/billing-platforms.md §A.4, §E): the type list puts ``USAGE_METER_USAGE`` entries
under a ``TOTAL_USAGE`` parent, the get-invoice example returns them flat with the usage in ``value``
and no ``quantity``; ``revenueInfo`` nests GRAND_TOTAL_AMOUNT → TOTAL_AMOUNT → NET_AMOUNT →
GROSS_AMOUNT → rate cards → slabs, and an older docs version spells the types ``…_REVENUE``. The
invoice flow (lines) and the usage flow (meter quantities) must read the very same tree the very
same way, or a meter's revenue is billed twice or not at all; so the walk lives here, once.

Pure logic: no store, no clients, no Flask. Every input is hostile: a tree deeper than
``MAX_DEPTH``, larger than ``MAX_NODES``, or with a node that is not a line item is INVALID_DATA
naming the path (``revenueInfo.lineItems[0].lineItems[3]``), never a crash.

Reading rules:
- Types are compared in their current spelling: a legacy ``X_REVENUE`` reads as ``X_AMOUNT``
  (``USAGE_RATE_CARD_REVENUE`` is ``USAGE_RATE_CARD_AMOUNT``). ``Line.type`` is the current spelling.
- A revenue line is a ``*_RATE_CARD_AMOUNT`` node with no rate card below it, at any depth. Its
  ``*_SLAB_AMOUNT`` descendants are its slab breakdown: part of the line, never lines themselves
  (their values are already in the rate card's ``value``).
- A meter entry is a ``USAGE_METER_USAGE`` node of ``usageInfo`` at any depth; its meter is its
  ``id`` (CONTRACT §6.4), or ``metadata.usageMeterId`` when it has no ``id``. Its quantity is
  ``quantity``, else ``value`` (Togai's example carries the usage in ``value`` only).
- ``units`` on revenue nodes is the currency (``"USD"`` in Togai's example): it stays on the
  ``Line`` as given and is never read as the usage's unit, which comes from the meter entry alone.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from integration.billing.amounts import Line, MeterUsage, Slab
from integration.domain import money
from integration.domain.errors import InvalidData

MAX_DEPTH = 32
"""Levels below a root; Togai's deepest documented tree has 6 (GRAND_TOTAL … SLAB)."""
MAX_NODES = 200_000
"""Line items in one tree; far above an invoice of 20,000 meters (the sandbox's bound) with slabs."""
MAX_TYPE_LENGTH = 100

RATE_CARD_SUFFIX = "_RATE_CARD_AMOUNT"
SLAB_SUFFIX = "_SLAB_AMOUNT"
METER_USAGE = "USAGE_METER_USAGE"
_LEGACY_SUFFIX, _CURRENT_SUFFIX = "_REVENUE", "_AMOUNT"


# -- the walk ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    """One parsed line item: where it sits, its type in today's spelling, its raw JSON and its children."""

    path: str
    type: str                         # current spelling
    raw: dict[str, Any]
    children: tuple[Node, ...]


def current_type(kind: str) -> str:
    """A line-item type in today's spelling: ``NET_REVENUE`` → ``NET_AMOUNT``; others unchanged."""
    if kind.endswith(_LEGACY_SUFFIX):
        return kind[:-len(_LEGACY_SUFFIX)] + _CURRENT_SUFFIX
    return kind


def _roots(raw: Any, path: str) -> list[tuple[Any, str]]:
    """The top-level nodes of a tree field: one root object, or a list of them (absent: none)."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        return [(raw, path)]
    if isinstance(raw, list):
        return [(node, f"{path}[{i}]") for i, node in enumerate(raw)]
    raise InvalidData(path, "must be a line item or a list of line items")


def _forest(raw: Any, path: str) -> list[Node]:
    """The tree(s) of one invoice field, checked for shape, depth and size before anything is read."""
    budget = [MAX_NODES]
    return [_parse(node, node_path, 0, budget) for node, node_path in _roots(raw, path)]


def _parse(node: Any, path: str, depth: int, budget: list[int]) -> Node:
    if not isinstance(node, dict):
        raise InvalidData(path, "must be a line item object")
    if depth > MAX_DEPTH:
        raise InvalidData(path, f"line items nested deeper than {MAX_DEPTH} levels")
    budget[0] -= 1
    if budget[0] < 0:
        raise InvalidData(path, f"more than {MAX_NODES:,} line items in one tree")
    kind = node.get("type")
    if not isinstance(kind, str) or not kind.strip() or len(kind) > MAX_TYPE_LENGTH:
        raise InvalidData(f"{path}.type", f"must be a line item type of at most {MAX_TYPE_LENGTH} characters")
    children = node.get("lineItems")
    if children is None:
        children = []
    if not isinstance(children, list):
        raise InvalidData(f"{path}.lineItems", "must be a list")
    return Node(path=path, type=current_type(kind), raw=node,
                 children=tuple(_parse(child, f"{path}.lineItems[{i}]", depth + 1, budget)
                                for i, child in enumerate(children)))


def _preorder(nodes: tuple[Node, ...] | list[Node]) -> Iterator[Node]:
    for node in nodes:
        yield node
        yield from _preorder(node.children)


# -- revenue lines -------------------------------------------------------------------------------------

def revenue_roots(invoice: dict[str, Any]) -> list[Node]:
    """The parsed ``revenueInfo`` tree(s), checked for shape, depth and size (what adjustments read)."""
    return _forest(invoice.get("revenueInfo"), "revenueInfo")


def invoice_lines(invoice: dict[str, Any]) -> list[Line]:
    """Every revenue line of ``revenueInfo``, in document order (see the module's reading rules)."""
    return [line for root in revenue_roots(invoice) for line in lines_below(root)]


def lines_below(node: Node) -> list[Line]:
    """The revenue lines at or below ``node``, in document order."""
    return _lines(node)


def _is_rate_card(node: Node) -> bool:
    return node.type.endswith(RATE_CARD_SUFFIX)


def _lines(node: Node) -> list[Line]:
    found = [line for child in node.children for line in _lines(child)]
    if found or not _is_rate_card(node):
        return found
    return [_line(node)]


def _line(node: Node) -> Line:
    raw, path = node.raw, node.path
    metadata = raw.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    meter_id = metadata.get("usageMeterId")
    if meter_id is not None and (not isinstance(meter_id, str) or not meter_id.strip()):
        raise InvalidData(f"{path}.metadata.usageMeterId", "must be a non-empty string")
    slabs = tuple(Slab(path=n.path, value=required_amount(n.raw, "value", n.path),
                       quantity=amount(n.raw, "quantity", n.path),
                       value_per_quantity=amount(n.raw, "valuePerQuantity", n.path))
                  for n in _preorder(node.children) if n.type.endswith(SLAB_SUFFIX))
    return Line(path=path, type=node.type, description=_text(raw.get("description")),
                value=required_amount(raw, "value", path),
                quantity=amount(raw, "quantity", path),
                value_per_quantity=amount(raw, "valuePerQuantity", path),
                meter_id=meter_id, units=_text(raw.get("units")) or None, slabs=slabs)


def amount(node: dict[str, Any], key: str, path: str) -> Decimal | None:
    """An exact, bounded number from the billing payload, None when absent; INVALID_DATA naming the field otherwise."""
    raw = node.get(key)
    if raw is None:
        return None
    return _exact(raw, f"{path}.{key}")


def required_amount(node: dict[str, Any], key: str, path: str) -> Decimal:
    """As ``amount``, but a missing field is INVALID_DATA too: the caller gets a Decimal, never None."""
    raw = node.get(key)
    if raw is None:
        raise InvalidData(f"{path}.{key}", "is missing")
    return _exact(raw, f"{path}.{key}")


def _exact(raw: Any, field: str) -> Decimal:
    value = money.to_decimal(raw)
    if value is None or not money.in_bounds(value):
        raise InvalidData(field, f"must be an exact number below 10^15 with at most {money.MAX_PLACES} decimal places")
    return value


def _text(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else ""


# -- meter usage ---------------------------------------------------------------------------------------

def meter_entries(invoice: dict[str, Any]) -> list[MeterUsage]:
    """Every ``USAGE_METER_USAGE`` entry of ``usageInfo`` at any depth, in document order."""
    return [_meter_usage(node) for node in _preorder(_forest(invoice.get("usageInfo"), "usageInfo"))
            if node.type == METER_USAGE]


def _meter_usage(node: Node) -> MeterUsage:
    raw, path = node.raw, node.path
    meter_id, id_path = raw.get("id"), f"{path}.id"
    if meter_id is None and isinstance(raw.get("metadata"), dict):
        meter_id, id_path = raw["metadata"].get("usageMeterId"), f"{path}.metadata.usageMeterId"
    if meter_id is not None and (not isinstance(meter_id, str) or not meter_id.strip()):
        raise InvalidData(id_path, "must be a non-empty string")
    key = "quantity" if raw.get("quantity") is not None else "value"
    return MeterUsage(path=path, meter_id=meter_id, description=_text(raw.get("description")),
                      quantity=amount(raw, key, path), quantity_field=f"{path}.{key}",
                      units=_text(raw.get("units")) or None)


def meter_usage(invoice: dict[str, Any]) -> dict[str, list[MeterUsage]]:
    """The meter entries of ``usageInfo`` by meter ID (entries naming no meter are left out)."""
    found: dict[str, list[MeterUsage]] = {}
    for entry in meter_entries(invoice):
        if entry.meter_id is not None:
            found.setdefault(entry.meter_id, []).append(entry)
    return found
