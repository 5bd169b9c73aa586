"""The billing-platform client (Togai-compatible REST, Bearer token) the flows call.

Same promise as the Zuora client: a method returns the validated object it was asked for, or
raises ``TransientError`` (retry later), ``BillingRejected``, ``BillingConflict``, ``AuthFailed``
or ``MalformedResponse``. Retrying, pacing, metrics and logs come from ``integration.clients.http``.

``BillingConflict`` matters most: the flows create customers, accounts and settings under IDs
they choose (the Zuora account ID), so a retried create meets "that ID exists" instead of making
a duplicate, and the flow then fetches and links. Togai's spec documents no 409, only
``{"message"}`` errors on 400, so a duplicate is recognised by a 409 *or* a 400/422 whose message
says the ID is taken.
"""
from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import requests

from integration.clients.answers import (
    is_transient_status,
    require_object,
    transient_answer,
)
from integration.clients.bodies import dumps_json, json_or_none
from integration.clients.http import RemoteClient
from integration.domain.errors import (
    BillingConflict,
    BillingRejected,
    InvalidData,
    MalformedResponse,
)

SETTINGS_MAX_PAGES = 20
# Togai's page limits (its OpenAPI document): listInvoices "Max page size cannot be more than 50" (a
# larger one is a 422); getAccounts, getCustomers and listSetting document ``pageSize`` with no maximum,
# so they are read 50 a page too: the one size every list is documented to accept.
INVOICES_PAGE_SIZE = 50
SETTINGS_PAGE_SIZE = ACCOUNTS_PAGE_SIZE = INVOICES_PAGE_SIZE
LIST_MAX_PAGES = 400_000  # 20 M objects: a bound against a remote that pages forever
_DUPLICATE_HINT = re.compile(r"already\s+exist|duplicate|conflict|not\s+unique|unique\s+constraint|already\s+in\s+use"
                             r"|already\s+taken", re.IGNORECASE)
_ENTITY_TYPE = re.compile(r"^[A-Z][A-Z_]{0,63}$")


def is_duplicate(status: int, message: str) -> bool:
    """Whether a refused create means "an object with that ID exists" (409, or 400/422 saying so)."""
    return status == 409 or (status in (400, 422) and bool(_DUPLICATE_HINT.search(message or "")))


class BillingClient(RemoteClient):
    """Customers, accounts, settings and invoices on a Togai-compatible billing platform."""

    api = "billing"

    def __init__(self, base_url: str, api_token: str, *, timeout: float | tuple[float, float] = (5, 30),
                 max_concurrency: int = 40, max_retry_seconds: float = 60.0, max_attempts: int = 6,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 session: requests.Session | None = None, rng: random.Random | None = None):
        super().__init__(base_url, timeout=timeout, max_concurrency=max_concurrency,
                         max_retry_seconds=max_retry_seconds, max_attempts=max_attempts, clock=clock,
                         sleep=sleep, session=session, rng=rng)
        if not api_token:
            raise ValueError("BillingClient: api_token is required")
        self._api_token = api_token

    # ------------------------------------------------------------------ customers and accounts

    def create_customer(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /customers`` (with its account, if given); an existing ``id`` → ``BillingConflict``."""
        return self._write("POST", "/customers", {}, payload, ("id",), conflict=True)

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        """``GET /customers/{customer_id}``; ``None`` when there is no such customer."""
        return self._get("/customers/{customer_id}", customer_id=customer_id)

    def create_account(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /accounts`` for an existing customer; an existing ``id`` → ``BillingConflict``."""
        return self._write("POST", "/accounts", {}, payload, ("id",), conflict=True)

    def get_account(self, account_id: str) -> dict[str, Any] | None:
        """``GET /accounts/{account_id}``; ``None`` when there is no such account."""
        return self._get("/accounts/{account_id}", account_id=account_id)

    def update_account(self, account_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /accounts/{account_id}``; returns the updated account."""
        return self._write("PATCH", "/accounts/{account_id}", {"account_id": account_id}, patch, ("id",))

    # ------------------------------------------------------------------ settings

    def list_settings(self, entity_type: str, entity_id: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """``GET /settings?entity_type=&entity_id=&namespace=``, every page (to a bound)."""
        if not isinstance(entity_type, str) or not _ENTITY_TYPE.match(entity_type):
            raise InvalidData("entity_type", "must be an upper-case entity type such as ACCOUNT")
        if not isinstance(entity_id, str) or not entity_id.strip():
            raise InvalidData("entity_id", "must be a non-empty string")
        if namespace is not None and (not isinstance(namespace, str) or not namespace.strip()):
            raise InvalidData("namespace", "must be a non-empty string when given")
        endpoint = "/settings"
        found: list[dict[str, Any]] = []
        next_token: str | None = None
        for _ in range(SETTINGS_MAX_PAGES):
            params = {"entity_type": entity_type, "entity_id": entity_id, "pageSize": str(SETTINGS_PAGE_SIZE)}
            if namespace is not None:
                params["namespace"] = namespace
            if next_token:
                params["nextToken"] = next_token  # Togai's list endpoints page with nextToken
            body = self._call("GET", endpoint, self.url(endpoint), self._reader("GET", endpoint, ()),
                              params=params)
            rows = body.get("data")
            if not isinstance(rows, list) or not all(isinstance(r, dict) and r.get("id") for r in rows):
                raise MalformedResponse(f"billing GET {endpoint}: response has no data list of settings with id")
            found.extend(rows)
            next_token = body.get("nextToken")
            if not isinstance(next_token, str) or not next_token:
                return found
        raise MalformedResponse(f"billing GET {endpoint}: more than {SETTINGS_MAX_PAGES} pages of settings "
                                f"for one entity")

    def create_setting(self, setting: dict[str, Any]) -> dict[str, Any]:
        """``POST /settings``; an existing ``id`` → ``BillingConflict``.

        Togai may answer 204 without a body; the setting as sent is then the result.
        """
        if not isinstance(setting, Mapping):
            raise InvalidData("setting", "must be a JSON object")
        return self._write("POST", "/settings", {}, setting, ("id",), conflict=True,
                           on_empty=lambda: dict(setting))

    def update_setting(self, setting_id: str, value: str) -> dict[str, Any]:
        """``PATCH /settings/{setting_id}`` with a new ``value``; a 204 yields ``{"id", "value"}``."""
        if not isinstance(value, str):
            raise InvalidData("value", "setting values are strings")
        return self._write("PATCH", "/settings/{setting_id}", {"setting_id": setting_id}, {"value": value},
                           ("id",), on_empty=lambda: {"id": setting_id, "value": value})

    # ------------------------------------------------------------------ invoices

    def get_invoice(self, invoice_id: str) -> dict[str, Any] | None:
        """``GET /invoices/{invoice_id}``; every decimal amount is a ``Decimal``; ``None`` when unknown."""
        return self._get("/invoices/{invoice_id}", invoice_id=invoice_id)

    def list_invoices(self, *, status: str | None = None, owner_id: str | None = None,
                      start: datetime | None = None, end: datetime | None = None) -> Iterator[dict[str, Any]]:
        """``GET /invoices`` (Togai's listInvoices) filtered by ``status``, owner account and the time
        range ``[start, end)`` (epoch milliseconds on the wire), streamed page by page (``nextToken``).
        The rows are invoice summaries: fetch one with ``get_invoice`` for its line items."""
        params: dict[str, str] = {}
        if status is not None:
            if not isinstance(status, str) or not _ENTITY_TYPE.match(status):
                raise InvalidData("status", "must be an upper-case invoice status such as DUE")
            params["status"] = status
        if owner_id is not None:
            if not isinstance(owner_id, str) or not owner_id.strip():
                raise InvalidData("owner_id", "must be a non-empty string")
            params["owner_id"] = owner_id
        for name, moment in (("start_time", start), ("end_time", end)):
            if moment is not None:
                if moment.tzinfo is None:
                    raise InvalidData(name, "must be timezone-aware")
                params[name] = str(int(moment.timestamp() * 1000))
        return self._list("/invoices", params, INVOICES_PAGE_SIZE)

    def list_accounts(self) -> Iterator[dict[str, Any]]:
        """``GET /accounts`` (getAccounts), every account oldest first, streamed page by page."""
        return self._list("/accounts", {}, ACCOUNTS_PAGE_SIZE)

    def _list(self, endpoint: str, params: dict[str, str], size: int,
              max_pages: int = LIST_MAX_PAGES) -> Iterator[dict[str, Any]]:
        """One Togai list, page by page: each row validated (an object with an ``id``); a ``nextToken``
        that repeats, or more than ``max_pages`` pages, is ``MalformedResponse``, never an endless loop."""
        next_token: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            query = dict(params, pageSize=str(size), **({"nextToken": next_token} if next_token else {}))
            body = self._call("GET", endpoint, self.url(endpoint), self._reader("GET", endpoint, ()), params=query)
            rows = body.get("data")
            if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("id"), str)
                                                     and r["id"] for r in rows):
                raise MalformedResponse(f"billing GET {endpoint}: response has no data list of objects with id")
            yield from rows
            next_token = body.get("nextToken")
            if not isinstance(next_token, str) or not next_token:
                return
            if next_token in seen:
                raise MalformedResponse(f"billing GET {endpoint}: nextToken repeats an earlier one")
            seen.add(next_token)
        raise MalformedResponse(f"billing GET {endpoint}: more than {max_pages} pages")

    # ------------------------------------------------------------------ plumbing

    def _get(self, endpoint: str, **params: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._call("GET", endpoint, self.url(endpoint, **params),
                                                  self._reader("GET", endpoint, ("id",), none_on_404=True))
        return found

    def _write(self, method: str, endpoint: str, params: dict[str, str], payload: Any, fields: tuple[str, ...], *,
               conflict: bool = False, on_empty: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
        if not isinstance(payload, Mapping):
            raise InvalidData("payload", "must be a JSON object")
        return self._call(method, endpoint, self.url(endpoint, **params),
                          self._reader(method, endpoint, fields, conflict=conflict, on_empty=on_empty),
                          data=dumps_json(payload), headers={"Content-Type": "application/json"})

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_token}"}

    def _secrets(self) -> Iterable[str]:
        return (self._api_token,)

    def _reader(self, method: str, endpoint: str, fields: tuple[str, ...], *, none_on_404: bool = False,
                conflict: bool = False, on_empty: Callable[[], dict[str, Any]] | None = None
                ) -> Callable[[requests.Response], Any]:
        """The ``interpret`` callback for one call: result, or the error that says what to do next."""
        where = f"billing {method} {endpoint}"

        def interpret(resp: requests.Response) -> Any:
            status = resp.status_code
            body = json_or_none(resp)
            if is_transient_status(status):
                detail = self._message(body, "")
                raise transient_answer(where, resp, f": {detail}" if detail else "")
            if status == 404 and none_on_404:
                return None
            if 400 <= status < 500:
                message = self._message(body, f"HTTP {status}")
                if conflict and is_duplicate(status, message):
                    raise BillingConflict(message, http_status=status)
                raise BillingRejected(message, http_status=status)
            if not 200 <= status < 300:
                raise MalformedResponse(f"{where}: unexpected HTTP {status}")
            if on_empty is not None and (status == 204 or not resp.content):
                return on_empty()
            return require_object(body, fields, where)

        return interpret

    def _message(self, body: Any, default: str) -> str:
        if isinstance(body, Mapping) and isinstance(body.get("message"), str) and body["message"].strip():
            return self.clean(body["message"])
        return default
