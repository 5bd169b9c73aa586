"""The internal model → Togai JSON: the bodies the Togai adapter sends.

WHY a module of its own: the shapes Togai's API takes (a customer with its account inline, the Zuora
twin as account ``settings``) are the adapter's business; the flows hand it model objects.
"""
from __future__ import annotations

from typing import Any

from integration.billing.model import AccountChanges, NewBillingAccount, NewBillingCustomer
from integration.billing.togai.readers import SETTINGS_NAMESPACE, ZUORA_ID_SETTING, ZUORA_NUMBER_SETTING


def zuora_id_settings(billing_account_id: str, zuora_id: str, zuora_number: str) -> list[dict[str, str]]:
    """The settings that record a billing account's Zuora twin (deterministic IDs: a retry meets
    its own setting, not a second one)."""
    return [
        {"id": f"{billing_account_id}.{ZUORA_ID_SETTING}", "namespace": SETTINGS_NAMESPACE,
         "name": ZUORA_ID_SETTING, "value": zuora_id, "dataType": "STRING"},
        {"id": f"{billing_account_id}.{ZUORA_NUMBER_SETTING}", "namespace": SETTINGS_NAMESPACE,
         "name": ZUORA_NUMBER_SETTING, "value": zuora_number, "dataType": "STRING"},
    ]


def account_body(account: NewBillingAccount) -> dict[str, Any]:
    """The account inside ``POST /customers`` (and, with ``customerId``, ``POST /accounts``)."""
    return {"id": account.id, "name": account.name, "invoiceCurrency": account.currency,
            "primaryEmail": account.primary_email, "address": dict(account.address),
            "settings": zuora_id_settings(account.id, account.zuora_account_id, account.zuora_account_number)}


def customer_body(customer: NewBillingCustomer) -> dict[str, Any]:
    """``POST /customers`` for a Zuora account: customer ID = Zuora account ID, one account of the same ID,
    the Zuora IDs in the account's settings."""
    return {"id": customer.id, "name": customer.name, "primaryEmail": customer.primary_email,
            "address": dict(customer.address), "account": account_body(customer.account)}


def account_patch(changes: AccountChanges) -> dict[str, Any]:
    """``PATCH /accounts/{id}`` with only the fields that change."""
    patch: dict[str, Any] = {"name": changes.name, "primaryEmail": changes.primary_email,
                             "address": dict(changes.address) if changes.address is not None else None}
    return {key: value for key, value in patch.items() if value is not None}
