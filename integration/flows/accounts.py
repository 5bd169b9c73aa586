"""Flows 1 and 2 (CONTRACT §6.1–6.2): accounts both ways, linked before anything is created.

Order of the checks, in both directions: a mapping row → the other side's own link data (the
Zuora link field; the Zuora IDs in the billing settings) → deterministic IDs (the billing
customer and account ID *is* the Zuora account ID; Zuora POSTs carry an ``Idempotency-Key`` from
the billing account ID) → only then create. A linked account only gets the fields that differ,
and a write that would change nothing is skipped: that ends every echo.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any

from integration.billing.model import (
    AccountChanges,
    BillingAccount,
    BillingCustomer,
    BillingLink,
    NewBillingAccount,
    NewBillingCustomer,
    canonical_account,
)
from integration.billing.port import BillingPlatform
from integration.domain import work
from integration.domain.account_fields import (
    billing_customer_fields,
    billing_patch,
    canonical_from_zuora,
    zuora_account_payload,
    zuora_update,
)
from integration.domain.errors import BillingConflict, BillingRejected, ZuoraRejected
from integration.flows.outcome import Outcome, Write
from integration.services import Services
from integration.store import mappings
from integration.store.inbox import Event
from integration.zuora.model import ZuoraAccount

log = logging.getLogger("integration.flows.accounts")


def new_customer(fields: dict[str, Any]) -> NewBillingCustomer:
    """The billing customer and account to create for a Zuora account (``billing_customer_fields``)."""
    account = NewBillingAccount(id=fields["account_id"], name=fields["name"], currency=fields["currency"],
                                primary_email=fields["primaryEmail"], address=fields["address"],
                                zuora_account_id=fields["id"], zuora_account_number=fields["number"])
    return NewBillingCustomer(id=fields["id"], name=fields["name"], primary_email=fields["primaryEmail"],
                              address=fields["address"], account=account)


class AccountFlows:
    """Both account flows over one process's clients and store."""

    def __init__(self, services: Services):
        self.db = services.db
        self.inbox = services.inbox
        self.zuora = services.zuora
        self.billing: BillingPlatform = services.billing
        self.link_field = services.config.zuora_link_field

    # -- flow 1: Zuora → billing ---------------------------------------------------------------------

    def from_zuora(self, event: Event) -> Outcome:
        """A Zuora callout (or an on-demand sync) for one Zuora account."""
        account = self.zuora.get_account(event.object_id)
        zuora_id, zuora_number = account.id, account.number

        mapping = mappings.find(self.db, "account", zuora_key=zuora_id)
        if mapping:
            changed = self._push_to_billing(account, mapping.billing_id)
            return Outcome(summary=f"already linked to {mapping.billing_id}; "
                                   + (f"updated {', '.join(changed)}" if changed else "nothing changed"))

        linked_id = account.custom_field(self.link_field)
        if linked_id and self.billing.get_account(linked_id) is not None:
            self._ensure_zuora_settings(linked_id, zuora_id, zuora_number)
            return Outcome(writes=[self._link(zuora_id, zuora_number, linked_id, None, "linked")],
                           summary=f"linked to existing billing account {linked_id} via {self.link_field}")

        billing_id = zuora_id  # deterministic: a retry meets a conflict, never a duplicate
        customer = new_customer(billing_customer_fields(account, billing_id))
        origin = "zuora"
        try:
            self.billing.create_customer(customer)  # the account and its link to Zuora come inline
        except BillingConflict:
            origin = "linked"
            self._adopt_existing_customer(customer)
            self._ensure_zuora_settings(billing_id, zuora_id, zuora_number)
        if account.custom_field(self.link_field) != billing_id:
            self.zuora.update_account(zuora_id, {self.link_field: billing_id})
        return Outcome(writes=[self._link(zuora_id, zuora_number, billing_id, customer.id, origin)],
                       summary=f"billing customer and account {billing_id} ({origin})")

    def _adopt_existing_customer(self, customer: NewBillingCustomer) -> None:
        """The customer ID is taken: by our own earlier try, or by someone who used the Zuora ID on
        purpose. Either way it is this account's twin; make sure its account exists too."""
        if self.billing.get_account(customer.account.id) is None:
            # BillingConflict: created meanwhile by a concurrent run: fine, it is the same account
            with contextlib.suppress(BillingConflict):
                self.billing.create_account(customer.id, customer.account)

    def _push_to_billing(self, zuora_account: ZuoraAccount, billing_id: str) -> list[str]:
        account = self.billing.get_account(billing_id)
        if account is None:
            raise BillingRejected(f"billing account {billing_id}, linked to Zuora account "
                                  f"{zuora_account.id}, does not exist", 404)
        customer = self._customer_if_needed(account)
        patch = billing_patch(canonical_account(account, customer), canonical_from_zuora(zuora_account))
        if patch:
            self.billing.update_account(billing_id, AccountChanges.from_canonical(patch))
        return sorted(patch)

    def _customer_if_needed(self, account: BillingAccount) -> BillingCustomer | None:
        """The customer, only when the account leans on it for email or address."""
        if account.primary_email and account.address:
            return None
        return self.billing.get_customer(account.customer_id) if account.customer_id else None

    def _zuora_settings(self, billing_id: str) -> BillingLink:
        """The Zuora twin the billing account names in its own data (Togai: its ``zuora`` settings)."""
        return self.billing.read_link(billing_id)

    def _ensure_zuora_settings(self, billing_id: str, zuora_id: str, zuora_number: str,
                               settings: BillingLink | None = None) -> None:
        """The billing account names its Zuora twin (create, or correct, never duplicate).
        ``settings``: the account's link when the caller has just read it."""
        self.billing.write_link(billing_id, zuora_id, zuora_number, settings)

    # -- flow 2: billing → Zuora ---------------------------------------------------------------------

    def from_billing(self, event: Event) -> Outcome:
        """``account.created`` / ``account.updated`` (or an on-demand sync) for one billing account."""
        billing_id = event.object_id
        account = self.billing.get_account(billing_id)
        if account is None:
            raise BillingRejected(f"billing account {billing_id} not found", 404)
        customer = self.billing.get_customer(account.customer_id) if account.customer_id else None
        wanted = canonical_account(account, customer)

        mapping = mappings.find(self.db, "account", billing_id=billing_id)
        if mapping:
            changed = self._push_to_zuora(mapping.zuora_id, wanted)
            return Outcome(summary=f"already linked to Zuora {mapping.zuora_id}; "
                                   + (f"updated {', '.join(changed)}" if changed else "nothing changed"))

        settings = self._zuora_settings(billing_id)
        twin = self._find_zuora_twin(billing_id, settings)
        if twin is not None:
            if twin.custom_field(self.link_field) != billing_id:
                self.zuora.update_account(twin.id, {self.link_field: billing_id})
            self._ensure_zuora_settings(billing_id, twin.id, twin.number, settings)
            changed = self._push_to_zuora(twin.id, wanted, twin)
            return Outcome(writes=[self._link(twin.id, twin.number, billing_id,
                                              account.customer_id, "linked")],
                           summary=f"linked to existing Zuora account {twin.id}"
                                   + (f", updated {', '.join(changed)}" if changed else ""))

        # The twin look-up above ran first, so this key's series cannot create a second account
        # for one that an earlier series (or another event) created and never recorded.
        created = self.zuora.create_account(zuora_account_payload(wanted, account.invoice_currency, billing_id,
                                                                  self.link_field),
                                            idempotency_key=event.idempotency_key(work.BILLING_ACCOUNT.prefix,
                                                                                  billing_id))
        zuora_id, zuora_number = created.id, created.number
        self._ensure_zuora_settings(billing_id, zuora_id, zuora_number, settings)
        return Outcome(writes=[self._link(zuora_id, zuora_number, billing_id, account.customer_id, "billing")],
                       summary=f"Zuora account {zuora_number} created")

    def _find_zuora_twin(self, billing_id: str, settings: BillingLink) -> ZuoraAccount | None:
        """A Zuora account already linked to this billing account: by the billing settings, or by the
        link field (which also finds an account we created in a run that crashed before recording it)."""
        zuora_id = settings.zuora_account_id
        if zuora_id:
            try:
                return self.zuora.get_account(zuora_id)
            except ZuoraRejected:
                log.warning("billing settings name a Zuora account that does not exist",
                            extra={"billing_id": billing_id, "zuora_id": zuora_id})
        for row in self.zuora.find_accounts(self.link_field, billing_id):
            return self.zuora.get_account(row.id)
        return None

    def _push_to_zuora(self, zuora_id: str, wanted: dict[str, Any], current: ZuoraAccount | None = None) -> list[str]:
        current = current or self.zuora.get_account(zuora_id)
        update = zuora_update(current, wanted)
        if update:
            self.zuora.update_account(zuora_id, update)
        return sorted(update)

    # -- shared ----------------------------------------------------------------------------------------

    def _link(self, zuora_id: str, zuora_number: str, billing_id: str, customer_id: str | None, origin: str) -> Write:
        return mappings.link("account", zuora_id=zuora_id, zuora_number=zuora_number, billing_id=billing_id,
                             billing_customer_id=customer_id, origin=origin, inbox=self.inbox)
