"""The operator's link of two existing accounts (``integration link``, ``POST /admin/links``): the
store's side of the check that neither account is already linked to someone else."""
from __future__ import annotations

import time
from dataclasses import dataclass

from integration.domain.errors import INVALID_DATA
from integration.store import failures, mappings
from integration.store.db import Database
from integration.store.inbox import Inbox


def conflict(db: Database, zuora_account: str, billing_account: str) -> str | None:
    """One line saying which of the two is linked elsewhere, or None (free, or already this pair)."""
    by_zuora = mappings.find(db, "account", zuora_key=zuora_account)
    by_billing = mappings.find(db, "account", billing_id=billing_account)
    if by_zuora is not None and by_zuora.billing_id != billing_account:
        return f"Zuora account {zuora_account} is already linked to billing account {by_zuora.billing_id}"
    if by_billing is not None and zuora_account not in (by_billing.zuora_id, by_billing.zuora_number):
        return f"billing account {billing_account} is already linked to Zuora account {by_billing.zuora_id}"
    return None


EVENT_TYPE = "account.link"
"""Handled by integration.flows.links (the worker writes both sides; the web and the commands only queue)."""


@dataclass(frozen=True)
class LinkResult:
    """``status``: ``linked`` (done), ``refused`` (``message`` says why), or ``queued`` (not finished in time)."""

    status: str
    event_id: str | None
    message: str = ""
    linked_elsewhere: bool = False


def request(inbox: Inbox, zuora_account: str, billing_account: str, *, timeout: float) -> LinkResult:
    """Refuse at once when the mapping table already says no; else queue the link for the worker and
    wait (polling the store) until it is done or refused, at most ``timeout`` seconds.

    A refused link is marked ``deleted`` (kept for audit): it was an operator's question answered
    no, not a sync failure to retry.
    """
    problem = conflict(inbox.db, zuora_account, billing_account)
    if problem:
        return LinkResult("refused", None, problem, linked_elsewhere=True)
    recorded = inbox.record(source="admin", type=EVENT_TYPE, object_type="account", object_id=zuora_account,
                            object_key=f"zuora-account:{zuora_account}", coalesce=False,
                            payload={"billing_account_id": billing_account, "requested_by": "admin"})
    deadline = time.monotonic() + timeout
    while True:
        event = inbox.get(recorded.event_id)
        if event is not None and event.status == "done":
            return LinkResult("linked", event.id, f"linked Zuora account {zuora_account} to billing account"
                                                  f" {billing_account}")
        if event is not None and event.status == "failed":
            failures.delete(inbox.db, failures.Selector(ids=(event.id,)))
            # The flow's LinkRefused is INVALID_DATA; a rejection (an account that does not exist) is not.
            return LinkResult("refused", event.id, event.last_error or "refused",
                              linked_elsewhere=event.error_code == INVALID_DATA)
        if time.monotonic() >= deadline:
            return LinkResult("queued", recorded.event_id, "queued; no worker has finished it yet")
        time.sleep(0.1)
