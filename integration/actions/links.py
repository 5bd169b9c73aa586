"""Link two existing accounts (``integration link``, ``POST /admin/links``, the console's link form).

``request`` decides at once, in one store transaction: refused when the mapping table already links
either account elsewhere (nothing is queued), else an ``account.link`` event queued for a worker.
Nothing more can be decided without the remote APIs (does each account exist, what is the Zuora
account's ID behind a number, does a remote link field name a third account), and the web may not call
them, so the worker's link flow (integration.flows.links) does the rest: it writes the link on both sides
and records the mapping, or refuses. The admin API and the console answer with the queued event at once
and never wait; only the command, which is no web request, waits for the worker (``wait``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from integration.actions.limits import LINK_WAIT_SECONDS
from integration.domain import work
from integration.store import failures
from integration.store import links as store
from integration.store.inbox import Inbox

log = logging.getLogger("integration.actions")

POLL_SECONDS = 0.1
"""How often ``wait`` reads the event (the command's wait only)."""


@dataclass(frozen=True)
class LinkResult:
    """``status``: ``queued`` (``event_id`` is the ``account.link`` event), ``linked`` (done), or
    ``refused`` (``message`` says why: an account linked elsewhere, or one that does not exist)."""

    status: str
    event_id: str | None
    message: str = ""


def request(inbox: Inbox, zuora_account: str, billing_account: str, *, via: str) -> LinkResult:
    """``refused`` at once when the mapping table links either account elsewhere, else ``queued``:
    the check and the insert in one transaction, no remote call and no wait."""
    with inbox.db.transaction() as tx:
        problem = store.conflict(tx, zuora_account, billing_account)
        recorded = None if problem else inbox.record(
            source="admin", **work.ACCOUNT_LINK.event(zuora_account), conn=tx,
            payload={"billing_account_id": billing_account, "requested_by": "admin"})
    if recorded is None:
        result = LinkResult("refused", None, problem or "")
    else:
        result = LinkResult("queued", recorded.event_id, "queued; a worker writes the link on both sides")
    log.info("account link requested", extra={"status": result.status, "event_id": result.event_id, "via": via})
    return result


def wait(inbox: Inbox, queued: LinkResult, *, timeout: float = LINK_WAIT_SECONDS) -> LinkResult:
    """For the command only (it polls the store; a web request must never call it): wait at most
    ``timeout`` seconds for the worker to finish the queued link. ``linked``; ``refused`` with the
    worker's reason (the event is then marked ``deleted``, kept for audit: an operator's question
    answered no, seen by the operator, is no sync failure to retry); or ``queued`` as it was."""
    if queued.status != "queued" or queued.event_id is None:
        return queued
    deadline = time.monotonic() + timeout
    while True:
        event = inbox.get(queued.event_id)
        if event is not None and event.status == "done":
            return LinkResult("linked", event.id, f"linked Zuora account {event.object_id} to billing account"
                                                  f" {event.payload['billing_account_id']}")
        if event is not None and event.status == "failed":
            failures.delete(inbox.db, failures.Selector(ids=(event.id,)))
            return LinkResult("refused", event.id, event.last_error or "refused")
        if time.monotonic() >= deadline:
            return LinkResult("queued", queued.event_id, "queued; no worker has finished it yet")
        time.sleep(POLL_SECONDS)
