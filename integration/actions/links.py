"""Link two existing accounts: refused at once when the mapping table says no, else queued as an
``account.link`` event for a worker and waited for (integration.store.links)."""
from __future__ import annotations

import logging

from integration.actions.limits import LINK_WAIT_SECONDS
from integration.store import links as store
from integration.store.inbox import Inbox

log = logging.getLogger("integration.actions")

LinkResult = store.LinkResult


def link(inbox: Inbox, zuora_account: str, billing_account: str, *, via: str,
         timeout: float = LINK_WAIT_SECONDS) -> store.LinkResult:
    """``linked``, ``refused`` (with why, and whether either account is linked elsewhere) or ``queued``
    when no worker finished it within ``timeout`` seconds."""
    result = store.request(inbox, zuora_account, billing_account, timeout=timeout)
    log.info("account link requested", extra={"status": result.status, "event_id": result.event_id, "via": via})
    return result
