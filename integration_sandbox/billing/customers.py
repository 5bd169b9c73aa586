"""Customers: ``/customers`` (Togai's create-with-account, get, update)."""
from __future__ import annotations

from typing import Any

from .common import (
    SETTINGS_PAGE_DEFAULT,
    SETTINGS_PAGE_MAX,
    ApiError,
    _togai_id,
    billing_address,
    paginate,
)
from .schemas import CreateCustomerSchema, UpdateCustomerSchema, load


class CustomersMixin:
    """Customers of :class:`~integration_sandbox.billing.state.BillingSandbox`."""

    # -- customers and accounts ------------------------------------------------------------------

    def create_customer(self, payload: Any, *, via_api: bool = True) -> dict:
        """``POST /customers``: customer, its account (auto-created when absent) and inline settings."""
        data = load(CreateCustomerSchema(), payload)
        account_data = data.get("account") or {
            "id": data["id"], "name": data["name"], "primaryEmail": data["primaryEmail"],
            "address": dict(data["address"])}
        with self._lock:
            if data["id"] in self._customers:
                raise ApiError(400, f"Customer with id '{data['id']}' already exists")
            self._check_new_account(account_data["id"])
            customer_settings = [dict(s, entityType="CUSTOMER", entityId=data["id"])
                                 for s in data.get("settings", [])]
            account_settings = [dict(s, entityType="ACCOUNT", entityId=account_data["id"])
                                for s in account_data.get("settings", [])]
            self._check_new_settings(customer_settings + account_settings)
            now = self._clock()
            customer = {"id": data["id"], "togaiCustomerId": _togai_id("cus"), "name": data["name"],
                        "primaryEmail": data["primaryEmail"], "address": dict(data["address"]),
                        "status": "ACTIVE", "createdAt": now, "updatedAt": now}
            self._customers[customer["id"]] = customer
            account = self._store_account(account_data, customer, now)
            for setting in customer_settings + account_settings:
                self._store_setting(setting)
            # CreateCustomerResponse (additionalProperties: false) has no status or timestamps.
            response = {k: v for k, v in self.customer_view(customer).items()
                        if k not in ("status", "createdAt", "updatedAt")}
            if customer_settings:
                response["settings"] = [self._entity_setting(s) for s in customer_settings]
            response["account"] = self.account_view(account)
            self._emit("account.created", account["id"], via_api=via_api)
            return response

    def list_customers(self, args: Any) -> dict:
        """``GET /customers`` (getCustomers): oldest first, paged by ``nextToken``."""
        with self._lock:
            return paginate(list(self._customers.values()), args, default=SETTINGS_PAGE_DEFAULT,
                            maximum=SETTINGS_PAGE_MAX, view=self.customer_view)

    def get_customer(self, customer_id: str) -> dict:
        with self._lock:
            return self.customer_view(self._customer(customer_id))

    def update_customer(self, customer_id: str, payload: Any) -> dict:
        data = load(UpdateCustomerSchema(), payload)
        with self._lock:
            customer = self._customer(customer_id)
            before = self.customer_view(customer)
            customer.update({k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()})
            if self.customer_view(customer) != before:
                customer["updatedAt"] = self._clock()
            return self.customer_view(customer)

    def _customer(self, customer_id: str) -> dict:
        customer = self._customers.get(customer_id)
        if customer is None:
            raise ApiError(404, f"Customer with id '{customer_id}' not found")
        return customer

    @staticmethod
    def customer_view(customer: dict) -> dict:
        """Togai's ``Customer``."""
        return {"id": customer["id"], "togaiCustomerId": customer["togaiCustomerId"],
                "name": customer["name"], "primaryEmail": customer["primaryEmail"],
                "billingAddress": billing_address(customer["address"]),
                "address": dict(customer["address"]), "status": customer["status"],
                "createdAt": customer["createdAt"], "updatedAt": customer["updatedAt"]}
