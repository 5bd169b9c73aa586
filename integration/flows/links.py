"""Linking two accounts that already exist (``integration link``, ``POST /admin/links``, the console).

The operator names a Zuora account and a billing account; the worker runs this flow for the queued
``account.link`` event (the web room may not call the remote APIs itself). It refuses — a permanent
failure with a message that says why — when either account does not exist or is already linked to a
different account: in our mapping table, in the Zuora link field, or in the billing settings.
Otherwise it writes the link on both sides (the Zuora link field, the billing account's ``zuora``
settings) and records the mapping with origin ``linked``, in the event's completing transaction.
"""
from __future__ import annotations

from integration.domain.errors import INVALID_DATA, BillingRejected, SyncError
from integration.flows.accounts import AccountFlows
from integration.flows.outcome import Outcome
from integration.store import links
from integration.store.inbox import Event


class LinkRefused(SyncError):
    """One of the two accounts is linked elsewhere: a human must decide, nothing was written."""

    code = INVALID_DATA


class LinkFlow(AccountFlows):
    """Shares the account flows' clients and their settings writer."""

    def handle(self, event: Event) -> Outcome:
        billing_id = event.payload["billing_account_id"]
        problem = links.conflict(self.db, event.object_id, billing_id)
        if problem:
            raise LinkRefused(problem)
        zuora = self.zuora.get_account(event.object_id)  # ZuoraRejected when it does not exist
        zuora_id, zuora_number = zuora.id, zuora.number
        billing = self.billing.get_account(billing_id)
        if billing is None:
            raise BillingRejected(f"billing account {billing_id} does not exist", 404)
        named = zuora.custom_field(self.link_field)
        if named and named != billing_id:
            raise LinkRefused(f"Zuora account {zuora_id} is already linked to billing account {named}"
                              f" ({self.link_field})")
        settings = self._zuora_settings(billing_id)
        twin = settings.zuora_account_id
        if twin and twin not in (zuora_id, zuora_number):
            raise LinkRefused(f"billing account {billing_id} is already linked to Zuora account {twin}"
                              " (its zuora settings)")
        if named != billing_id:
            self.zuora.update_account(zuora_id, {self.link_field: billing_id})
        self._ensure_zuora_settings(billing_id, zuora_id, zuora_number, settings)
        return Outcome(writes=[self._link(zuora_id, zuora_number, billing_id, billing.customer_id, "linked")],
                       summary=f"linked Zuora account {zuora_id} to billing account {billing_id}")
