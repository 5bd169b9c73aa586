"""Accounts: ``/accounts`` (create, get, update; ``invoiceCurrency`` is immutable)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from .common import (
    BASE_CURRENCY,
    SETTINGS_PAGE_DEFAULT,
    SETTINGS_PAGE_MAX,
    ApiError,
    _togai_id,
    paginate,
)
from .schemas import CreateAccountSchema, UpdateAccountSchema, load


class AccountsMixin:
    """Accounts of :class:`~integration_sandbox.billing.state.BillingSandbox`."""

    # -- accounts --

    def create_account(self, payload: Any, *, via_api: bool = True) -> dict:
        """``POST /accounts``: another account under an existing customer."""
        data = load(CreateAccountSchema(), payload)
        with self._lock:
            customer = self._customers.get(data["customerId"])
            if customer is None:
                raise ApiError(404, f"Customer with id '{data['customerId']}' not found")
            self._check_new_account(data["id"])
            settings = [dict(s, entityType="ACCOUNT", entityId=data["id"])
                        for s in data.get("settings", [])]
            self._check_new_settings(settings)
            account = self._store_account(data, customer, self._clock())
            for setting in settings:
                self._store_setting(setting)
            self._emit("account.created", account["id"], via_api=via_api)
            return self.account_view(account)

    def list_accounts(self, args: Any) -> dict:
        """``GET /accounts`` (getAccounts): oldest first, paged by ``nextToken``."""
        with self._lock:
            return paginate(list(self._accounts.values()), args, default=SETTINGS_PAGE_DEFAULT,
                            maximum=SETTINGS_PAGE_MAX, view=self.account_view)

    def get_account(self, account_id: str) -> dict:
        with self._lock:
            return self.account_view(self._account(account_id))

    def update_account(self, account_id: str, payload: Any, *, via_api: bool = True) -> dict:
        """``PATCH /accounts/{id}``; emits ``account.updated`` only when something changed."""
        data = load(UpdateAccountSchema(), payload)
        with self._lock:
            account = self._account(account_id)
            currency = data.get("invoiceCurrency")
            if currency is not None and currency != account["invoiceCurrency"]:
                raise ApiError(400, "invoiceCurrency of an account cannot be changed")
            before = self.account_view(account)
            for key, given in data.items():
                value = list(dict.fromkeys(t.lower() for t in given)) if key == "tags" else given
                account[key] = dict(value) if isinstance(value, dict) else value
            view = self.account_view(account)
            if view != before:
                account["updatedAt"] = self._clock()
                self._emit("account.updated", account_id, via_api=via_api)
            return view

    def _store_account(self, data: dict, customer: dict, now: datetime) -> dict:
        account = {"id": data["id"], "togaiAccountId": _togai_id("acc"),
                   "togaiCustomerId": customer["togaiCustomerId"], "customerId": customer["id"],
                   "name": data["name"], "invoiceCurrency": data.get("invoiceCurrency", BASE_CURRENCY),
                   "status": data.get("status", "ACTIVE"), "createdAt": now, "updatedAt": now}
        for key in ("aliases", "netTermDays", "address", "primaryEmail", "billingInformation",
                    "metadata"):
            if key in data:
                account[key] = data[key]
        if "tags" in data:
            account["tags"] = list(dict.fromkeys(t.lower() for t in data["tags"]))
        self._accounts[account["id"]] = account
        return account

    def _check_new_account(self, account_id: str) -> None:
        if account_id in self._accounts:
            raise ApiError(400, f"Account with id '{account_id}' already exists")

    def _account(self, account_id: str) -> dict:
        account = self._accounts.get(account_id)
        if account is None:
            raise ApiError(404, f"Account with id '{account_id}' not found")
        return account

    def account_view(self, account: dict) -> dict:
        """Togai's ``Account``, with the account's current settings."""
        view = {key: account[key] for key in ("id", "togaiAccountId", "togaiCustomerId", "name",
                                              "customerId", "invoiceCurrency")}
        if "aliases" in account:
            view["aliases"] = [{"alias": alias} for alias in account["aliases"]]
        for key in ("netTermDays", "address", "primaryEmail", "billingInformation"):
            if key in account:
                view[key] = account[key]
        view["status"] = account["status"]
        settings = [self._entity_setting(s) for s in self._entity_settings.get(("ACCOUNT", account["id"]), {}).values()]
        if settings:
            view["settings"] = settings
        for key in ("metadata", "tags"):
            if key in account:
                view[key] = account[key]
        return view
