"""The operator's link of two existing accounts (``integration link``, ``POST /admin/links``): the
store's side of the check that neither account is already linked to someone else. The request itself
(check and queue in one transaction, and the command's wait) is integration.actions.links."""
from __future__ import annotations

from integration.store import mappings
from integration.store.db import Database
from integration.store.tx import Tx


def conflict(db: Database | Tx, zuora_account: str, billing_account: str) -> str | None:
    """One line saying which of the two is linked elsewhere, or None (free, or already this pair); a
    read of its own, or inside the caller's transaction."""
    by_zuora = mappings.find(db, "account", zuora_key=zuora_account)
    by_billing = mappings.find(db, "account", billing_id=billing_account)
    if by_zuora is not None and by_zuora.billing_id != billing_account:
        return f"Zuora account {zuora_account} is already linked to billing account {by_zuora.billing_id}"
    if by_billing is not None and zuora_account not in (by_billing.zuora_id, by_billing.zuora_number):
        return f"billing account {billing_account} is already linked to Zuora account {by_billing.zuora_id}"
    return None
