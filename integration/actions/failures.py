"""Retry or delete failed events by selector (IDs, an object type, or all), counted and logged here
whichever door the operator used (the admin API, the console, ``integration failures``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from integration import metrics
from integration.store import events_list
from integration.store import failures as store
from integration.store.db import Database

log = logging.getLogger("integration.actions")

Selector = store.Selector


@dataclass(frozen=True)
class Acted:
    """How many failed events an action changed and, for a selection by IDs, those of the IDs that name
    no event or a deleted one (found before acting, so a delete does not report its own work)."""

    count: int
    not_found: list[str] | None = None

    def as_json(self, verb: str) -> dict[str, object]:
        """The admin API's result: ``{"retried": n}`` or ``{"deleted": n}``, with ``not_found`` for IDs."""
        return {verb: self.count, **({"not_found": self.not_found} if self.not_found is not None else {})}


def _not_found(db: Database, selector: store.Selector) -> list[str] | None:
    return events_list.not_actionable(db, selector.ids) if selector.ids else None


def retry(db: Database, selector: store.Selector, *, via: str) -> Acted:
    """Put the selected failed events back in the queue, due now (an invoice's failed usage with it)."""
    missing = _not_found(db, selector)
    retried = store.retry(db, selector)
    metrics.FAILURES_RETRIED.labels(trigger="admin").inc(retried)
    log.info("failures retried by an operator", extra={"retried": retried, "via": via})
    return Acted(retried, missing)


def delete(db: Database, selector: store.Selector, *, via: str) -> Acted:
    """Mark the selected failed events deleted: off the list, never run, kept for audit."""
    missing = _not_found(db, selector)
    deleted = store.delete(db, selector)
    metrics.FAILURES_DELETED.inc(deleted)
    log.info("failures deleted by an operator", extra={"deleted": deleted, "via": via})
    return Acted(deleted, missing)
