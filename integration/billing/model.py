"""The internal model of the billing platform: what the flows read and write, whatever the platform.

WHY: the flows, backfill, reconciliation and the totals report speak this model only; each adapter
(integration.billing.togai, later Lago) reads its platform's JSON into it and builds its platform's
JSON from it. Frozen dataclasses: a value read from the platform is never changed on the way.

Money is ``Decimal`` in the invoice's ``currency`` (integration.billing.amounts); times are aware UTC.

"Read eagerly, complain lazily": an invoice field that only some flows need (its dates, its owner, its
amounts) holds either its value or the ``InvalidData`` that reading it raised, and ``checked()`` raises
that error where the flow asks for the field, exactly where the flow has always refused such an invoice,
so a draft with an unreadable total is still "not finalized", not a failure.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from integration.billing.amounts import InvoiceAmounts, MeterUsage
from integration.domain.errors import InvalidData

T = TypeVar("T")

ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postalCode", "country", "phoneNumber")
"""The address in canonical form (integration.domain.account_fields): country as ISO alpha-2."""


def checked(value: T | InvalidData) -> T:
    """The field's value, or its reading error raised (see the module docstring)."""
    if isinstance(value, InvalidData):
        raise value
    return value


def currency_code(value: object) -> str | None:
    """A three-letter currency code, else None."""
    return value if isinstance(value, str) and len(value) == 3 and value.isalpha() else None


# -- customers and accounts --------------------------------------------------------------------------

@dataclass(frozen=True)
class BillingLink:
    """The Zuora twin a billing account names in its own data (Togai: its ``zuora`` settings).

    ``stored`` is the adapter's record of where each part lives (Togai: setting name → (setting ID,
    value)), so a link written right after it was read costs no second read.
    """

    zuora_account_id: str | None = None
    zuora_account_number: str | None = None
    stored: Mapping[str, tuple[str, str | None]] = field(default_factory=dict, compare=False)

    @property
    def zuora_ref(self) -> str | None:
        """The Zuora account it names: its ID, else its number."""
        return self.zuora_account_id or self.zuora_account_number


@dataclass(frozen=True)
class BillingCustomer:
    """A billing customer: the fallback for an account's email and address."""

    id: str
    name: str | None = None
    primary_email: str | None = None
    address: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BillingAccount:
    """A billing account: the twin of one Zuora account.

    ``link`` is what a *listed* account carries inline (None: not read with it; read it with
    ``BillingPlatform.read_link``). ``created_at``/``updated_at``: None where the platform gives none
    (Togai's accounts carry no timestamps).
    """

    id: str
    customer_id: str | None = None
    name: str | None = None
    primary_email: str | None = None
    address: Mapping[str, str] = field(default_factory=dict)
    invoice_currency: str | None = None
    link: BillingLink | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def canonical_account(account: BillingAccount, customer: BillingCustomer | None) -> dict[str, object]:
    """The account (falling back to its customer for name, email and address) in the canonical form that
    integration.domain.account_fields compares with a Zuora account's."""
    address = account.address or (customer.address if customer else {})
    cleaned = {k: address[k] for k in ADDRESS_FIELDS if address.get(k) not in (None, "")}
    if "country" in cleaned:
        cleaned["country"] = cleaned["country"].upper()
    return {"name": (account.name or (customer.name if customer else None) or "").strip(),
            "primaryEmail": account.primary_email or (customer.primary_email if customer else None),
            "address": cleaned}


@dataclass(frozen=True)
class AccountChanges:
    """The fields of an existing account to overwrite (None: leave as it is)."""

    name: str | None = None
    primary_email: str | None = None
    address: Mapping[str, object] | None = None

    @classmethod
    def from_canonical(cls, patch: Mapping[str, object]) -> AccountChanges:
        """From the canonical fields that differ (integration.domain.account_fields.billing_patch)."""
        name, email, address = patch.get("name"), patch.get("primaryEmail"), patch.get("address")
        return cls(name=name if isinstance(name, str) else None,
                   primary_email=email if isinstance(email, str) else None,
                   address=address if isinstance(address, Mapping) else None)


@dataclass(frozen=True)
class NewBillingAccount:
    """An account to create, linked to its Zuora twin from the start."""

    id: str
    name: str
    currency: str
    primary_email: str
    address: Mapping[str, object]
    zuora_account_id: str
    zuora_account_number: str


@dataclass(frozen=True)
class NewBillingCustomer:
    """A customer to create with its one account (flow 1: both IDs are the Zuora account ID)."""

    id: str
    name: str
    primary_email: str
    address: Mapping[str, object]
    account: NewBillingAccount


# -- invoices ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BillingInvoice:
    """A billing invoice, whole (``BillingPlatform.get_invoice``) or as a list summary (no amounts).

    The one rule of "is it final, is it void" (CONTRACT §6.3, §12) is the adapter's, decided once when it
    reads the invoice: ``is_void``, ``is_finalized`` and ``not_pushed_because`` (None when the invoice is to
    be pushed; else the reason in the platform's words). ``status`` is the platform's own word, for messages.
    """

    id: str
    status: str | None
    is_void: bool
    is_finalized: bool
    not_pushed_because: str | None
    currency: str | None
    owner_id: str | InvalidData
    listed_owner: str | None
    invoice_date: datetime | InvalidData
    due_date: datetime | InvalidData | None
    start_date: datetime | InvalidData
    service_end: date | InvalidData
    amounts: InvoiceAmounts | InvalidData
    unchecked_amounts: InvoiceAmounts | InvalidData
    usage: dict[str, list[MeterUsage]] | InvalidData
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def why_not_pushed(self) -> str | None:
        """None when the invoice is final and to be pushed (CONTRACT §6.3), else the reason it is left alone."""
        return self.not_pushed_because
