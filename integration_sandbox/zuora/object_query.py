"""Object Query (``/object-query/...``): filters, sort, fields, expand, paging, and the rows per resource.

WHY: Zuora documents ``filter[]`` (EQ, NE, LT, LE, GT, GE, SW, IN; ``createdDate``/``updatedDate`` are
filterable on every object), ``sort[]``, ``fields[]``, ``expand[]``, ``includeNullFields``, ``pageSize``
1-99 and ``cursor``/``nextPage``; a sandbox that ignored any of them silently would let a client rely on
what the tenant does differently. Anything the sandbox cannot answer is a 400 in Object Query's
documented error shape (``CommonErrorResponse``: ``{"code": <int>, "message": ...}``), never ignored.

``pageSize`` above 99 is refused here as Zuora refuses it (CONTRACT §12), so a client that asks a real
tenant for more fails in a test first. Zuora's pagination guide gives Object Query 99 (other paged v1
lists 40); zuora-sdk 3.21's parameter text says 1-50, the generic wording of cursor-paged lists, and
its ``le=50`` is the SDK's own check, not the tenant's.

Sandbox choices: only the fields listed per resource are filterable and sortable (on Zuora, the indexed
ones); ``cursor`` is an offset; null fields are left out unless ``includeNullFields=true``, as on Zuora.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import flask

from .common import (
    CAT_BAD_QUERY,
    CAT_NOT_FOUND,
    OBJECT_QUERY_PAGE_SIZE_DEFAULT,
    OBJECT_QUERY_PAGE_SIZE_MAX,
    RES_GET,
    Body,
)
from .discounts import read_back
from .views import (
    account_query_view,
    expanded_contact_view,
    expanded_item_view,
    invoice_query_view,
    invoice_view,
    usage_query_view,
)

if TYPE_CHECKING:
    from .state import ZuoraSandbox

OPERATORS = ("EQ", "NE", "LT", "LE", "GT", "GE", "SW", "IN")
INSTANT_FIELDS = ("createdDate", "updatedDate")
Row = tuple[dict, dict]  # (the row as Object Query shows it, the stored object it came from)


@dataclass(frozen=True)
class Resource:
    """One queryable object: its name, the filterable (and sortable) fields, and its expansions
    (lower-case ``expand[]`` value -> (key in the row, stored object -> expanded value))."""

    name: str
    filterable: tuple[str, ...]
    expansions: dict[str, tuple[str, Callable[[dict], Any]]]


class QueryError(Exception):
    """A query the sandbox refuses: 400 (or ``status``) in Object Query's error shape."""

    def __init__(self, message: str, status: int = 400, category: int = CAT_BAD_QUERY):
        super().__init__(message)
        self.status, self.category = status, category

    def body(self) -> Body:
        return {"code": RES_GET * 100 + self.category, "message": str(self)}


def _accounts(sb: ZuoraSandbox) -> tuple[Resource, list[Row]]:
    def invoices(a: dict) -> list[dict]:
        return [invoice_view(i) for i in sb.invoices.values() if i["accountId"] == a["id"]]

    def usages(a: dict) -> list[dict]:
        return [usage_query_view(u) for u in sb.usage if u["AccountId"] == a["id"]]

    resource = Resource("accounts", ("id", "accountNumber", "name", "crmId", "status", "currency", *INSTANT_FIELDS,
                                     *sorted(sb.custom_fields)),
                        {"billto": ("billTo", lambda a: expanded_contact_view(a["contacts"][a["billToContactId"]],
                                                                              a["id"])),
                         "soldto": ("soldTo", lambda a: expanded_contact_view(a["contacts"][a["soldToContactId"]],
                                                                              a["id"])),
                         "shipto": ("shipTo", lambda a: expanded_contact_view(
                             a["contacts"][a.get("shipToContactId") or a["soldToContactId"]], a["id"])),
                         "invoices": ("invoices", invoices), "usages": ("usages", usages)})
    return resource, [(account_query_view(a, sb), a) for a in sb.accounts.values()]


def _invoices(sb: ZuoraSandbox) -> tuple[Resource, list[Row]]:
    resource = Resource("invoices", ("id", "invoiceNumber", "accountId", "status", "invoiceDate", "dueDate",
                                     *INSTANT_FIELDS, *sorted(sb.invoice_custom_fields)),
                        {"account": ("account", lambda i: account_query_view(sb.accounts[i["accountId"]], sb)),
                         "invoiceitems": ("invoiceItems",
                                          lambda i: [expanded_item_view(x, i) for x in read_back(i["items"])])})
    return resource, [(invoice_query_view(i, sb), i) for i in sb.invoices.values()]


def _usages(sb: ZuoraSandbox) -> tuple[Resource, list[Row]]:
    resource = Resource("usages", ("id", "accountId", "accountNumber", "importId", *INSTANT_FIELDS),
                        {"account": ("account", lambda u: account_query_view(sb.accounts[u["AccountId"]], sb))})
    return resource, [(usage_query_view(u), u) for u in sb.usage]


def _credit_memos(sb: ZuoraSandbox) -> tuple[Resource, list[Row]]:
    resource = Resource("credit-memos", ("id", "memoNumber", "accountId", "invoiceId", "status", "memoDate",
                                         "reasonCode", *INSTANT_FIELDS),
                        {"account": ("account", lambda m: account_query_view(sb.accounts[m["accountId"]], sb))})
    return resource, [(dict(m), m) for m in sb.credit_memos.values()]


def _answer(run: Callable[[], Body]) -> tuple[Body, int]:
    try:
        return run(), 200
    except QueryError as exc:
        return exc.body(), exc.status


def _query_accounts(sb: ZuoraSandbox) -> tuple[Body, int]:
    """``GET /object-query/accounts``."""
    with sb.lock:
        return _answer(lambda: query(*_accounts(sb)))


def _query_account_by_key(sb: ZuoraSandbox, key: str) -> tuple[Body, int]:
    """``GET /object-query/accounts/{key}`` (ID or number): one row, ``fields[]``/``expand[]`` apply."""
    with sb.lock:
        resource, rows = _accounts(sb)
        found = [r for r in rows if key in (r[1]["id"], r[1]["accountNumber"])]

        def one() -> Body:
            if not found:
                raise QueryError(f"Cannot find entity by key: '{key}'.", 404, CAT_NOT_FOUND)
            fields, expand, include_null = _shape_args(resource, flask.request.args)
            return _shape(resource, found[0], fields, expand, include_null)
        return _answer(one)


def _query_invoices(sb: ZuoraSandbox) -> tuple[Body, int]:
    """``GET /object-query/invoices``."""
    with sb.lock:
        return _answer(lambda: query(*_invoices(sb)))


def _query_credit_memos(sb: ZuoraSandbox) -> tuple[Body, int]:
    """``GET /object-query/credit-memos``."""
    with sb.lock:
        return _answer(lambda: query(*_credit_memos(sb)))


def _query_usages(sb: ZuoraSandbox) -> tuple[Body, int]:
    """``GET /object-query/usages``."""
    with sb.lock:
        return _answer(lambda: query(*_usages(sb)))


# -- the query language ----------------------------------------------------------------------------------

def _parse_instant(value: Any) -> dt.datetime | None:
    """An ISO-8601 date-time with a zone (``Z`` or an offset), else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _names(resource: Resource, raw: str, what: str, allowed: tuple[str, ...]) -> str:
    by_lower = {name.lower(): name for name in allowed}
    if raw.lower() not in by_lower:
        raise QueryError(f"field '{raw}' is not {what} on {resource.name}")
    return by_lower[raw.lower()]


def _comparable(field: str, row_value: Any, wanted: str) -> tuple[Any, Any]:
    """Both sides in one type: instants for createdDate/updatedDate, numbers for numbers, else text."""
    if field in INSTANT_FIELDS:
        bound = _parse_instant(wanted)
        if bound is None:
            raise QueryError(f"'{wanted}' is not a date-time with a time zone, e.g. 2024-07-01T00:00:00Z")
        return _parse_instant(row_value), bound
    if isinstance(row_value, (int, Decimal)) and not isinstance(row_value, bool):
        try:
            return Decimal(row_value), Decimal(wanted)
        except InvalidOperation:
            raise QueryError(f"'{wanted}' is not a number") from None
    return _text(row_value), wanted


def _clause(resource: Resource, raw: str) -> Callable[[dict], bool]:
    m = re.fullmatch(r"([A-Za-z0-9_]+)\.([A-Za-z]+):(.*)", raw, flags=re.S)
    if not m:
        raise QueryError(f"invalid filter '{raw}': expected <field>.<operator>:<value>")
    field = _names(resource, m.group(1), "filterable", resource.filterable)
    op, wanted = m.group(2).upper(), m.group(3)
    if op not in OPERATORS:
        raise QueryError(f"operator '{op}' is not one of {', '.join(OPERATORS)}")
    if op == "IN":
        choices = {v.strip() for v in wanted.strip().removeprefix("[").removesuffix("]").split(",") if v.strip()}
        return lambda r: r.get(field) is not None and _text(r[field]) in choices
    if op == "SW":
        return lambda r: r.get(field) is not None and _text(r[field]).startswith(wanted)
    if field in INSTANT_FIELDS:
        _comparable(field, None, wanted)  # refuse a bad bound even when no row would be compared
    compare: Callable[[Any, Any], bool] = {
        "EQ": lambda a, b: a == b, "NE": lambda a, b: a != b, "LT": lambda a, b: a < b,
        "LE": lambda a, b: a <= b, "GT": lambda a, b: a > b, "GE": lambda a, b: a >= b}[op]

    def test(r: dict) -> bool:
        if r.get(field) is None:
            return False
        left, right = _comparable(field, r[field], wanted)
        return left is not None and compare(left, right)
    return test


def _list_arg(args: Any, name: str) -> list[str]:
    """``name[]`` repeated or comma-separated (both forms are in Zuora's examples)."""
    return [part.strip() for raw in args.getlist(name) for part in raw.split(",") if part.strip()]


def _shape_args(resource: Resource, args: Any) -> tuple[list[str] | None, list[str], bool]:
    expand = []
    for raw in _list_arg(args, "expand[]"):
        if raw.lower() not in resource.expansions:
            raise QueryError(f"expand[] '{raw}' is not supported by the sandbox on {resource.name} "
                             f"(one of: {', '.join(key for key, _ in resource.expansions.values())})")
        expand.append(raw.lower())
    fields = _list_arg(args, "fields[]") or None
    include_null = args.get("includeNullFields", "false").lower()
    if include_null not in ("true", "false"):
        raise QueryError("includeNullFields must be true or false")
    return fields, expand, include_null == "true"


def _shape(resource: Resource, row: Row, fields: list[str] | None, expand: list[str], include_null: bool) -> dict:
    shown, stored = row
    if fields is not None:
        known = {name.lower(): name for name in shown}
        missing = [f for f in fields if f.lower() not in known]
        if missing:
            raise QueryError(f"fields[] '{missing[0]}' is not a field of {resource.name}")
        shown = {known[f.lower()]: shown[known[f.lower()]] for f in fields}
    out = {k: v for k, v in shown.items() if include_null or v is not None}
    for name in expand:
        key, build = resource.expansions[name]
        out[key] = build(stored)
    return out


def query(resource: Resource, rows: list[Row]) -> Body:
    """Answer the current request's query over ``rows`` (caller holds the lock)."""
    args = flask.request.args
    clauses = [_clause(resource, raw) for raw in args.getlist("filter[]")]
    sorts = []
    for raw in _list_arg(args, "sort[]"):
        name, _, direction = raw.rpartition(".")
        if not name or direction.upper() not in ("ASC", "DESC"):
            raise QueryError(f"invalid sort '{raw}': expected <field>.ASC or <field>.DESC")
        sorts.append((_names(resource, name, "sortable", resource.filterable), direction.upper() == "DESC"))
    fields, expand, include_null = _shape_args(resource, args)
    try:
        page_size = int(args.get("pageSize", str(OBJECT_QUERY_PAGE_SIZE_DEFAULT)))
        offset = int(args.get("cursor", "0") or 0)
    except ValueError:
        raise QueryError("pageSize and cursor must be integers") from None
    if not 1 <= page_size <= OBJECT_QUERY_PAGE_SIZE_MAX:
        raise QueryError(f"pageSize must be between 1 and {OBJECT_QUERY_PAGE_SIZE_MAX}")
    if offset < 0:
        raise QueryError("cursor is not one this query answered")
    matched = [r for r in rows if all(clause(r[0]) for clause in clauses)]
    for name, descending in reversed(sorts):  # stable sorts, last key first
        present = [r for r in matched if r[0].get(name) is not None]
        present.sort(key=lambda r, n=name: _comparable(n, r[0][n], _text(r[0][n]))[0], reverse=descending)
        matched = present + [r for r in matched if r[0].get(name) is None]  # nulls last
    body: Body = {"data": [_shape(resource, r, fields, expand, include_null) for r in
                           matched[offset:offset + page_size]]}
    if offset + page_size < len(matched):
        body["nextPage"] = str(offset + page_size)
    return body
