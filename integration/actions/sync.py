"""Sync now: queue a sync of each named account unless one of it is already pending or running, under
one transaction (``POST /admin/sync`` and the console's sync page)."""
from __future__ import annotations

import logging
from typing import Any

from integration import metrics
from integration.domain import work
from integration.store.inbox import Inbox

log = logging.getLogger("integration.actions")

SYNC_TARGETS = {
    # request field -> the kind of work that syncs one of its accounts; the system in each result is the
    # side whose ID the kind's object key carries
    "zuora_account_ids": work.ACCOUNT_CALLOUT,
    "billing_account_ids": work.ACCOUNT_UPDATED,
}


def queue_syncs(inbox: Inbox, request: dict[str, list[str]], *, via: str) -> list[dict[str, Any]]:
    """One result per ID (Zuora IDs first): ``queued`` with the new event, or ``already_in_progress``
    with the event already in hand. Checking and inserting under one ``BEGIN IMMEDIATE`` keeps two
    concurrent requests from starting two syncs of one account."""
    results: list[dict[str, Any]] = []
    queued_types: list[str] = []
    with inbox.db.transaction() as tx:
        for field, kind in SYNC_TARGETS.items():
            for account_id in request.get(field, []):
                event_id, created = inbox.record_unless_active(
                    tx, source="admin", **kind.event(account_id), payload={"requested_by": "admin"})
                results.append({"system": kind.key.side, "id": account_id,
                                "status": "queued" if created else "already_in_progress", "event_id": event_id})
                if created:
                    queued_types.append(kind.type)
    for event_type in queued_types:  # counted only once committed
        metrics.EVENTS_RECEIVED.labels(source="admin", type=event_type).inc()
    queued = len(queued_types)
    log.info("on-demand sync requested", extra={"queued": queued, "in_progress": len(results) - queued, "via": via})
    return results
