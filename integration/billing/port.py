"""The billing platform as a port: what the flows, backfill, reconciliation and the totals report ask of it.

WHY a protocol: the flows speak the internal model (integration.billing.model) and this interface only;
an adapter (integration.billing.togai; Lago next) owns its client, its payload readers and builders and
its webhook verification. ``BILLING_PLATFORM`` chooses one (integration.billing.factory).

Errors are the domain's (integration.domain.errors): ``TransientError`` (retry later), ``BillingRejected``,
``BillingConflict`` (a create met an object of the same ID), ``AuthFailed``, ``MalformedResponse`` and
``InvalidData``.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Protocol

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
from integration.billing.webhook import WebhookEvent


class BillingPlatform(Protocol):
    """One billing platform's API, in the internal model."""

    # -- customers and accounts
    def get_customer(self, customer_id: str) -> BillingCustomer | None:
        """The customer, None when there is none."""
        ...

    def get_account(self, account_id: str) -> BillingAccount | None:
        """The account, None when there is none."""
        ...

    def list_accounts(self) -> Iterator[BillingAccount]:
        """Every account, page by page, each with its ``link`` where the list carries it."""
        ...

    def create_customer(self, customer: NewBillingCustomer) -> None:
        """Create the customer and its account, linked; ``BillingConflict`` when its ID exists."""
        ...

    def create_account(self, customer_id: str, account: NewBillingAccount) -> None:
        """Create an account of an existing customer, linked; ``BillingConflict`` when its ID exists."""
        ...

    def update_account(self, account_id: str, changes: AccountChanges) -> None:
        """Overwrite the account's fields that ``changes`` names."""
        ...

    # -- the link to the Zuora twin, in the platform's own data
    def read_link(self, account_id: str) -> BillingLink:
        """The Zuora twin the account names (an empty link when it names none)."""
        ...

    def write_link(self, account_id: str, zuora_account_id: str, zuora_account_number: str,
                   known: BillingLink | None = None) -> None:
        """Make the account name its Zuora twin: create or correct, never duplicate. ``known``: the link
        just read with ``read_link``, so that it is not read again."""
        ...

    # -- invoices
    def get_invoice(self, invoice_id: str, *, currency: str | None = None) -> BillingInvoice | None:
        """The invoice, whole; None when unknown. ``currency``: the one its amounts are read in where the
        invoice names none."""
        ...

    def list_invoices(self, *, status: str | None = None, owner_id: str | None = None,
                      start: datetime | None = None, end: datetime | None = None) -> Iterator[BillingInvoice]:
        """Invoice summaries (no amounts: fetch one with ``get_invoice``), dated in ``[start, end)``."""
        ...

    # -- webhooks (their signatures are checked before the app sees them: ``WebhookVerifier``)
    webhook_schema: type[Schema]
    """The marshmallow schema of the platform's webhook envelope: the web validates a body with it (a 400
    naming the field) before ``webhook_event`` reads it, and ``/openapi.json`` documents it."""

    webhook_delivery_header: str
    """The request header that names one delivery (the same on every retry of it): the dedupe key."""

    def webhook_event(self, envelope: Mapping[str, object], delivery_id: str) -> WebhookEvent:
        """A verified webhook's envelope (validated with ``webhook_schema``) and its delivery ID (the
        ``webhook_delivery_header``, checked by the web) as an internal event."""
        ...
