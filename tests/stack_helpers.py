"""Helpers for tests that run the service against the sandboxes (integration_sandbox.local_stack)."""
from __future__ import annotations

import requests

from tests.engines import store_sql


def create_zuora_account(stack, name="Ada Lovelace", email="ada@example.com", country="United Kingdom",
                         currency="USD", **extra) -> dict:
    """Create an account through the Zuora sandbox API, as a Zuora user would (it sends a callout)."""
    contact = {"firstName": name.split()[0], "lastName": name.split()[-1], "country": country,
               "city": "London", "address1": "12 St James's Square", "zipCode": "SW1Y 4LB"}
    if email:
        contact["workEmail"] = email
    contact.update(extra.pop("contact", {}))
    body = {"name": name, "currency": currency, "billCycleDay": 1, "autoPay": False,
            "billToContact": contact, **extra}
    resp = stack.zuora_api().post(f"{stack.zuora_url}/v1/accounts", json=body, timeout=10)
    data = resp.json()
    assert data.get("success") is True, data
    return data


def sandbox_billing_account(billing_url: str, account_id: str = "acc-1", *, customer_id: str | None = None,
                            name: str = "Grace Hopper Inc", email: str = "grace@example.com", country: str = "US",
                            currency: str = "USD", webhook: bool = True, **account_extra) -> dict:
    """A customer with one account on the billing sandbox at ``billing_url``, through its control route;
    it emits ``account.created`` unless ``webhook=False`` (as if the webhook were lost)."""
    address = {"line1": "1 Navy Way", "city": "Arlington", "state": "VA", "postalCode": "22202", "country": country}
    resp = requests.post(f"{billing_url}/_sandbox/accounts{'' if webhook else '?webhook=false'}", timeout=10, json={
        "customer": {"id": customer_id or f"cust-{account_id}", "name": name, "primaryEmail": email,
                     "address": address},
        "account": {"id": account_id, "name": name, "invoiceCurrency": currency, **account_extra}})
    assert resp.status_code == 201, resp.text
    return resp.json()


def create_billing_account(stack, account_id="acc-1", customer_id="cust-1", **options) -> dict:
    """Create a customer and account on the stack's billing sandbox (it emits account.created)."""
    return sandbox_billing_account(stack.billing_url, account_id, customer_id=customer_id, **options)


def zuora_accounts(stack) -> list[dict]:
    return stack.zuora_state()["accounts"]


def billing_requests(stack, method: str, path_prefix: str) -> list[dict]:
    return [r for r in stack.billing_state()["requests"]
            if r["method"] == method and r["path"].startswith(path_prefix)]


def zuora_requests(stack, method: str, path_prefix: str) -> list[dict]:
    return [r for r in stack.zuora_state()["requests"]
            if r["method"] == method and r["path"].startswith(path_prefix)]


def events(stack) -> list[dict]:
    rows = store_sql(stack.services.db).execute("SELECT * FROM events ORDER BY created_at").fetchall()
    return [dict(r) for r in rows]


def mappings(stack, type="account") -> list[dict]:
    rows = store_sql(stack.services.db).execute("SELECT * FROM id_mappings WHERE type = ? ORDER BY id",
                                                (type,)).fetchall()
    return [dict(r) for r in rows]
