"""Object Query (``/object-query/...``): filters, paging, and the rows per resource."""
from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable

import flask

from .common import CAT_BAD_QUERY, RES_GET, Body, common_error, reason
from .views import account_query_view, invoice_query_view, usage_query_view

if TYPE_CHECKING:
    from .state import ZuoraSandbox


def _query_accounts(sb: ZuoraSandbox) -> tuple[Body, int]:
    """``GET /object-query/accounts``: ``filter[]=<field>.EQ:<value>`` (ANDed), ``pageSize`` 1-99, ``cursor``."""
    filterable = ["id", "accountNumber", "name", "crmId", "status", "currency", *sb.custom_fields]
    with sb.lock:
        rows = [account_query_view(a, sb) for a in sb.accounts.values()]
    return _object_query("accounts", rows, filterable)


def _query_invoices(sb: ZuoraSandbox) -> tuple[Body, int]:
    """``GET /object-query/invoices``: as for accounts, filterable by invoice custom fields too."""
    filterable = ["id", "invoiceNumber", "accountId", "status", *sb.invoice_custom_fields]
    with sb.lock:
        rows = [invoice_query_view(i, sb) for i in sb.invoices.values()]
    return _object_query("invoices", rows, filterable)


def _query_usages(sb: ZuoraSandbox) -> tuple[Body, int]:
    """``GET /object-query/usages``: usage records, filterable by account and import."""
    with sb.lock:
        rows = [usage_query_view(u) for u in sb.usage]
    return _object_query("usages", rows, ["id", "accountId", "accountNumber", "importId", "createdDate"])

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "GE": lambda a, b: a >= b, "GT": lambda a, b: a > b, "LE": lambda a, b: a <= b, "LT": lambda a, b: a < b}


def _parse_instant(value: Any) -> dt.datetime | None:
    """An ISO-8601 date-time with a zone (``Z`` or an offset), else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _object_query(resource: str, rows: list[dict], filterable: Iterable[str]) -> tuple[Body, int]:
    """Object Query over ``rows``: ``filter[]=<field>.<OP>:<value>`` (ANDed, field names case-insensitive,
    only ``filterable`` ones; EQ, and GE/GT/LE/LT on the date-times), ``pageSize`` 1-99, ``cursor`` (an
    offset here), ``nextPage`` when more."""
    args = flask.request.args
    by_lower = {name.lower(): name for name in filterable}

    def bad(message: str) -> tuple[Body, int]:
        return common_error([reason(RES_GET, CAT_BAD_QUERY, message)]), 400

    clauses = []
    for raw in args.getlist("filter[]"):
        m = re.fullmatch(r"([A-Za-z0-9_]+)\.([A-Za-z]+):(.*)", raw, flags=re.S)
        if not m:
            return bad(f"invalid filter '{raw}': expected <field>.<operator>:<value>")
        fld, op, value = m.group(1), m.group(2).upper(), m.group(3)
        if fld.lower() not in by_lower:
            return bad(f"field '{fld}' is not filterable on {resource}")
        name = by_lower[fld.lower()]
        if op == "EQ":
            clauses.append(lambda r, f=name, v=value: r.get(f) is not None and str(r.get(f)) == v)
            continue
        if name not in ("createdDate", "updatedDate"):
            return bad(f"operator '{op}' is not supported by the sandbox (EQ only)")
        if op not in _COMPARISONS:
            return bad(f"operator '{op}' is not supported by the sandbox on '{fld}' (EQ, GE, GT, LE, LT)")
        bound = _parse_instant(value)
        if bound is None:
            return bad(f"'{value}' is not a date-time with a time zone, e.g. 2024-07-01T00:00:00Z")
        clauses.append(lambda r, f=name, b=bound, cmp=_COMPARISONS[op]:
                       _parse_instant(r.get(f)) is not None and cmp(_parse_instant(r.get(f)), b))
    try:
        page_size = int(args.get("pageSize", "10"))
        offset = int(args.get("cursor", "0") or 0)
    except ValueError:
        return bad("pageSize and cursor must be integers")
    if not 1 <= page_size <= 99:
        return bad("pageSize must be between 1 and 99")
    matched = [r for r in rows if all(clause(r) for clause in clauses)]
    page = matched[offset:offset + page_size]
    body: Body = {"data": page}
    if offset + page_size < len(matched):
        body["nextPage"] = str(offset + page_size)
    return body, 200
