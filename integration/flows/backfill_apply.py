"""Carrying out a backfill plan (``integration backfill --apply``) through the inbox, and planning the
invoices whose Zuora twin is missing (``--invoices-since``).

Nothing here calls a write API: each item becomes an event of an existing flow, so rate limits,
retries and the failure list apply as to any webhook. ``create_in_billing`` is an ``account.callout``
(flow 1 creates the billing customer), ``create_in_zuora`` an ``account.created`` (flow 2), ``link``
and an accepted ``candidate`` an ``account.link`` (``integration.flows.links``: it writes both sides
and refuses when either is linked elsewhere by the time it runs), ``push_invoice`` an
``invoice.finalized``. ``linked`` and ``conflict`` are never queued.

Every event's dedupe key is derived from the item (``backfill:<action>:<ids>``), so a repeated run —
after it completed, or after a SIGKILL anywhere — records nothing twice: the inbox answers a known key
with the event already recorded. What a previous run finished is ``linked`` the next time, and is
not queued at all.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from integration import metrics
from integration.billing.port import BillingPlatform
from integration.domain import work
from integration.flows.backfill import PlanItem
from integration.store import mappings, voids
from integration.store.db import Database
from integration.store.inbox import Inbox
from integration.zuora.client import ZuoraClient

SOURCE = "backfill"
_EVENTS = {  # action -> (kind of work, integration.domain.work; PlanItem field naming the object)
    "create_in_billing": (work.ACCOUNT_CALLOUT, "zuora_id"),
    "create_in_zuora": (work.ACCOUNT_CREATED, "billing_id"),
    "link": (work.ACCOUNT_LINK, "zuora_id"),
    "candidate": (work.ACCOUNT_LINK, "zuora_id"),
    "push_invoice": (work.INVOICE_FINALIZED, "invoice_id"),
}
QUEUED_ACTIONS = tuple(_EVENTS)


def dedupe_key(item: PlanItem) -> str:
    """Deterministic per object and action: the same item in any later run is the same event."""
    return f"{SOURCE}:{item.action}:{item.zuora_id}:{item.billing_id}:{item.invoice_id}"


def wants_queue(item: PlanItem, accept_candidates: bool) -> bool:
    return item.action in QUEUED_ACTIONS and (item.action != "candidate" or accept_candidates)


def queue(inbox: Inbox, item: PlanItem, *, accept_candidates: bool = False) -> bool:
    """Record the item's event; True when this call recorded it (False: known already, or not queued)."""
    if not wants_queue(item, accept_candidates):
        return False
    kind, attr = _EVENTS[item.action]
    payload: dict[str, Any] = {"found_by": SOURCE, "action": item.action}
    if kind is work.ACCOUNT_LINK:
        payload["billing_account_id"] = item.billing_id
    # Never coalesced, whatever the kind declares: the item's own dedupe key must land, or a rerun after
    # the pending event ran would record the item again.
    recorded = inbox.record(source=SOURCE, **kind.event(getattr(item, attr)), dedupe_key=dedupe_key(item),
                            payload=payload, coalesce=False)
    if recorded.created:
        metrics.EVENTS_RECEIVED.labels(source=SOURCE, type=kind.type).inc()
    return recorded.created


def plan_invoices(db: Database, billing: BillingPlatform, zuora: ZuoraClient, invoice_link_field: str,
                  since: datetime) -> Iterator[PlanItem]:
    """``push_invoice`` for each finalized billing invoice dated at or after ``since`` whose owner is
    linked and whose Zuora twin is missing (no invoice mapping, and no Zuora invoice naming it in
    ``ZUORA_INVOICE_LINK_FIELD``). Streamed: one list page and one look-up at a time."""
    for row in billing.list_invoices(start=since):
        if row.why_not_pushed() is not None:  # a draft, or a voided invoice (§12): the invoice flow's one rule
            continue
        invoice_id, owner = row.id, row.listed_owner or ""
        account = mappings.find(db, "account", billing_id=owner) if owner else None
        if account is None:
            continue
        if mappings.find(db, "invoice", billing_id=invoice_id) is not None or voids.unpushed_void(db, invoice_id):
            continue
        if zuora.find_invoices(invoice_link_field, invoice_id):
            continue
        yield PlanItem("push_invoice", f"finalized; Zuora has no invoice with {invoice_link_field} = {invoice_id}",
                       account.zuora_id, account.zuora_number or "", owner, invoice_id)
