"""The look-ups an operator makes: mappings, failures and events a page at a time (or every page, for
the commands), one event with its attempts, and the mapping an event's object has."""
from __future__ import annotations

from typing import Any

from integration.actions.limits import EVENT_ID_MAX, PAGE_DEFAULT, PAGE_MAX
from integration.domain import work
from integration.store import events_list, failures, mappings
from integration.store.db import Database
from integration.store.failures import Failure
from integration.store.inbox import Event, Inbox
from integration.store.mappings import Mapping


def mappings_page(db: Database, *, type: str | None = None, zuora_id: str | None = None,
                  billing_id: str | None = None, limit: int = PAGE_DEFAULT,
                  after: int | None = None) -> tuple[list[Mapping], str | None]:
    """One page of mappings in creation order, and the cursor of the next page (None at the end)."""
    return mappings.page(db, type=type, zuora_id=zuora_id, billing_id=billing_id, limit=limit, after=after)


def all_mappings(db: Database, *, type: str | None = None, zuora_id: str | None = None,
                 billing_id: str | None = None) -> list[Mapping]:
    """Every mapping matching the filters, read a page (PAGE_MAX) at a time."""
    items: list[Mapping] = []
    after = None
    while True:
        page, cursor = mappings_page(db, type=type, zuora_id=zuora_id, billing_id=billing_id, limit=PAGE_MAX,
                                     after=after)
        items += page
        if cursor is None:
            return items
        after = mappings.decode_cursor(cursor)


def failures_page(db: Database, *, object_type: str | None = None, code: str | None = None,
                  limit: int = PAGE_DEFAULT, after: int | None = None) -> tuple[list[Failure], str | None]:
    """One page of the failure list (oldest first), and the cursor of the next page."""
    return failures.page(db, object_type=object_type, code=code, limit=limit, after=after)


def all_failures(db: Database, *, object_type: str | None = None, code: str | None = None) -> list[Failure]:
    """The whole failure list matching the filters, read a page (PAGE_MAX) at a time."""
    items: list[Failure] = []
    after = None
    while True:
        page, cursor = failures_page(db, object_type=object_type, code=code, limit=PAGE_MAX, after=after)
        items += page
        if cursor is None:
            return items
        after = failures.decode_cursor(cursor)


def events_page(db: Database, *, status: str | None = None, source: str | None = None, type: str | None = None,
                object_id: str | None = None, limit: int = PAGE_DEFAULT,
                after: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of inbox events, newest first, and the cursor of the next page."""
    return events_list.page(db, status=status, source=source, type=type, object_id=object_id, limit=limit,
                            after=after)


def find_event(inbox: Inbox, event_id: str) -> Event | None:
    """One event, whatever its status; None when there is none (an ID over EVENT_ID_MAX names none)."""
    return inbox.get(event_id) if len(event_id) <= EVENT_ID_MAX else None


def event_mapping(db: Database, event: Event) -> Mapping | None:
    """The mapping of the object an event is about, if the service has one."""
    if event.object_type == "account":
        if work.side_of(event.object_key) == "zuora":
            return mappings.find(db, "account", zuora_key=event.object_id)
        return mappings.find(db, "account", billing_id=event.object_id)
    if event.object_type in ("invoice", "usage"):
        return mappings.find(db, "invoice", billing_id=event.object_id)
    return None
