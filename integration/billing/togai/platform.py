"""The Togai adapter: ``BillingPlatform`` (integration.billing.port) over Togai's REST API.

It owns the client (integration.billing.togai.client), the readers (Togai JSON → model:
integration.billing.togai.readers) and builders (model → Togai JSON: integration.billing.togai.builders),
and the webhook verification (integration.billing.togai.webhooks). The Zuora twin is recorded in the
account's ``zuora`` settings.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from marshmallow import Schema

from integration.billing.model import (
    AccountChanges,
    BillingAccount,
    BillingCustomer,
    BillingInvoice,
    BillingLink,
    NewBillingAccount,
    NewBillingCustomer,
)
from integration.billing.togai import builders, readers
from integration.billing.togai.client import BillingClient
from integration.billing.togai.envelope import BillingEventSchema
from integration.billing.togai.webhooks import DELIVERY_HEADER, webhook_event
from integration.billing.webhook import WebhookEvent
from integration.domain.errors import BillingConflict

ACCOUNT_ENTITY = "ACCOUNT"


class TogaiPlatform:
    """Customers, accounts, their Zuora links, invoices and webhooks on a Togai-compatible platform."""

    name = "togai"
    webhook_schema: type[Schema] = BillingEventSchema
    webhook_delivery_header = DELIVERY_HEADER

    def __init__(self, client: BillingClient):
        self.client = client

    # -- customers and accounts ------------------------------------------------------------------------

    def get_customer(self, customer_id: str) -> BillingCustomer | None:
        raw = self.client.get_customer(customer_id)
        return None if raw is None else readers.customer(raw)

    def get_account(self, account_id: str) -> BillingAccount | None:
        raw = self.client.get_account(account_id)
        return None if raw is None else readers.account(raw)

    def list_accounts(self) -> Iterator[BillingAccount]:
        return (readers.account(row) for row in self.client.list_accounts())

    def create_customer(self, customer: NewBillingCustomer) -> None:
        self.client.create_customer(builders.customer_body(customer))  # the account and its settings inline

    def create_account(self, customer_id: str, account: NewBillingAccount) -> None:
        self.client.create_account({**builders.account_body(account), "customerId": customer_id})

    def update_account(self, account_id: str, changes: AccountChanges) -> None:
        self.client.update_account(account_id, builders.account_patch(changes))

    # -- the link --------------------------------------------------------------------------------------

    def read_link(self, account_id: str) -> BillingLink:
        settings = self.client.list_settings(ACCOUNT_ENTITY, account_id, readers.SETTINGS_NAMESPACE)
        return readers.link_from_settings(settings)

    def write_link(self, account_id: str, zuora_account_id: str, zuora_account_number: str,
                   known: BillingLink | None = None) -> None:
        """The account's settings name its Zuora twin (create, or correct, never duplicate)."""
        existing = (known if known is not None else self.read_link(account_id)).stored
        for wanted in builders.zuora_id_settings(account_id, zuora_account_id, zuora_account_number):
            have = existing.get(wanted["name"])
            if have is None:
                try:
                    self.client.create_setting({**wanted, "entityType": ACCOUNT_ENTITY, "entityId": account_id})
                    continue
                except BillingConflict:
                    have = (wanted["id"], None)
            if have[1] != wanted["value"]:
                self.client.update_setting(have[0], wanted["value"])

    # -- invoices --------------------------------------------------------------------------------------

    def get_invoice(self, invoice_id: str, *, currency: str | None = None) -> BillingInvoice | None:
        raw = self.client.get_invoice(invoice_id)
        return None if raw is None else readers.invoice(raw, currency)

    def list_invoices(self, *, status: str | None = None, owner_id: str | None = None,
                      start: datetime | None = None, end: datetime | None = None) -> Iterator[BillingInvoice]:
        rows = self.client.list_invoices(status=status, owner_id=owner_id, start=start, end=end)
        return (readers.invoice(row) for row in rows)

    # -- webhooks --------------------------------------------------------------------------------------

    def webhook_event(self, envelope: Mapping[str, object], delivery_id: str) -> WebhookEvent:
        return webhook_event(delivery_id, envelope)
