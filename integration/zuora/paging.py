"""Zuora's Object Query (``GET /object-query/{resource}``): filters, pages and their bounds.

A filter is ``filter[]=field.OP:value`` (ANDed); a page is at most 99 rows; the next page is named
by ``nextPage``, an opaque cursor. A remote that pages forever (a cursor that repeats, more pages
than a bound) is ``MalformedResponse``: it must not keep a worker forever.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from integration.domain.errors import InvalidData, MalformedResponse

# Zuora's page limits (CONTRACT §12; developer.zuora.com/docs/guides/pagination): Object Query answers at
# most 99 rows a page, every other paged v1 GET list at most 40 (zuora-sdk: ``page_size`` ``le=40``). A
# larger ask is not a bigger page: the guide says it "is treated as 40", the built-in sandbox refuses it.
OBJECT_QUERY_PAGE_SIZE = 99
V1_LIST_PAGE_SIZE = 40
OBJECT_QUERY_MAX_PAGES = 20
USAGE_QUERY_MAX_PAGES = 100
LIST_MAX_PAGES = 200_000  # 19.8 M records: a bound, not a limit any tenant meets
OPERATORS = ("EQ", "NE", "LT", "LE", "GT", "GE", "SW", "IN")

FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")

Filter = tuple[str, str, str]
"""``(field, operator, value)``: one ``filter[]=field.OP:value``."""

GetPage = Callable[[str, list[tuple[str, str]]], dict[str, Any]]
"""``(endpoint, params)`` → the page's JSON object, as the client's ``_call`` validated it."""


def utc_text(when: datetime, name: str) -> str:
    """An aware time as Object Query compares it (``2026-01-02T03:04:05Z``); a naive one is a bug."""
    if when.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def since_filter(updated_since: datetime | None) -> list[Filter]:
    """``updatedDate.GT`` for a time, nothing for None (every record)."""
    if updated_since is None:
        return []
    return [("updatedDate", "GT", utc_text(updated_since, "updated_since"))]


def filter_params(filters: list[Filter]) -> list[tuple[str, str]]:
    """``filter[]`` parameters, each part checked: a field name, a known operator, a plain value."""
    params = []
    for field, op, wanted in filters:
        if not isinstance(field, str) or not FIELD_NAME.match(field):
            raise InvalidData("field", "must be a Zuora field name such as BillingAccountId__c")
        if op not in OPERATORS:
            raise InvalidData("op", f"must be one of {', '.join(OPERATORS)}")
        if not isinstance(wanted, str) or not wanted or any(ch < " " for ch in wanted):
            raise InvalidData("value", "must be a non-empty string without control characters")
        params.append(("filter[]", f"{field}.{op}:{wanted}"))
    return params


def sorted_params(filters: list[Filter], expand: tuple[str, ...]) -> list[tuple[str, str]]:
    """Filters, sorted by ``updatedDate`` then ``id`` (so paging is stable), and ``expand[]`` names."""
    params = filter_params(filters)
    params += [("sort[]", "updatedDate.ASC"), ("sort[]", "id.ASC")]
    for name in expand:
        if not FIELD_NAME.match(name):
            raise InvalidData("expand", "must be Object Query expansion names")
        params.append(("expand[]", name))
    return params


def pages(get: GetPage, resource: str, params: list[tuple[str, str]], max_pages: int
          ) -> Iterator[dict[str, Any]]:
    """Every row of every page, following ``nextPage`` to ``max_pages``."""
    params = [*params, ("pageSize", str(OBJECT_QUERY_PAGE_SIZE))]
    endpoint = f"/object-query/{resource}"
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(max_pages):
        body = get(endpoint, params + ([("cursor", cursor)] if cursor else []))
        yield from query_rows(body, endpoint)
        cursor = body.get("nextPage")
        if not isinstance(cursor, str) or not cursor:
            return
        if cursor in seen:
            raise MalformedResponse(f"Zuora GET {endpoint}: nextPage repeats an earlier cursor")
        seen.add(cursor)
    raise MalformedResponse(f"Zuora GET {endpoint}: more than {max_pages} pages for one query; "
                            f"refusing to guess which {resource} are meant")


def query_rows(body: dict[str, Any], endpoint: str) -> list[dict[str, Any]]:
    """The ``data`` list of one page: every row an object with an ``id``, or ``MalformedResponse``."""
    rows = body.get("data")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and r.get("id") for r in rows):
        raise MalformedResponse(f"Zuora GET {endpoint}: response has no data list of records with id")
    return rows
