"""The Zuora REST client the flows call: the calls they need, idempotent pushes, Zuora's headers.

Zuora answers business errors with HTTP 200 and ``success: false`` as often as with a 4xx, the
older ``/v1/object/*`` calls spell it ``Success``/``Errors``, and an error code's last two digits
say whether retrying can help (reference/zuora-api.md §9). This client folds all of that into the
one promise the flows rely on: a method returns what it was asked for, validated, or raises a
``TransientError`` (retry later), ``ZuoraRejected`` (Zuora said no), ``AuthFailed`` or
``MalformedResponse``. Reading Zuora's answers is ``integration.zuora.answers``'s job, the OAuth
token ``integration.zuora.oauth``'s, Object Query's pages ``integration.zuora.paging``'s and a usage
upload's ``integration.zuora.usage_import``'s; retrying, pacing, metrics and logging are
``integration.clients.http``'s.

One instance serves the whole process: it holds one OAuth token, shared by every thread and
refreshed by exactly one of them shortly before it expires (Zuora: "avoid generating a new
token for each call"; the token endpoint is rate-limited per IP).
"""
from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

import requests

from integration.clients.bodies import dumps_json
from integration.clients.http import RemoteClient, header_value
from integration.context import current_event_id
from integration.domain.errors import InvalidData, MalformedResponse
from integration.zuora import readers, usage_import
from integration.zuora.answers import IDEMPOTENCY_KEY_MAX, reader
from integration.zuora.model import (
    ZuoraAccount,
    ZuoraCreated,
    ZuoraCreditMemo,
    ZuoraInvoice,
    ZuoraInvoiceItem,
    ZuoraUndo,
    ZuoraUsage,
    ZuoraUsageImport,
)
from integration.zuora.oauth import TOKEN_ENDPOINT, ZuoraToken
from integration.zuora.paging import (
    LIST_MAX_PAGES,
    OBJECT_QUERY_MAX_PAGES,
    USAGE_QUERY_MAX_PAGES,
    V1_LIST_PAGE_SIZE,
    Filter,
    filter_params,
    pages,
    since_filter,
    sorted_params,
    utc_text,
)

DEFAULT_ZUORA_VERSION = "2025-08-12"
"""The minor API version pinned on every v1 call: the latest per reference §6 (and zuora-sdk 3.21's).

Without the header a never-upgraded tenant answers as 186.0, so response shapes would depend on
the tenant's history; pinning makes them depend on this code only.
"""

INVOICE_ITEM_PAGE_SIZE = V1_LIST_PAGE_SIZE
# A standalone invoice holds at most 1,000 items, each with at most 10 discount items (reference §3):
# 11,000 rows, read 40 at a time, is the most pages one invoice can need.
INVOICE_ITEM_MAX_PAGES = -(-1_000 * 11 // INVOICE_ITEM_PAGE_SIZE)
TRACK_ID_MAX = 64

_QUERY_ACCOUNTS = "Zuora GET /object-query/accounts"
_QUERY_INVOICES = "Zuora GET /object-query/invoices"
_TRACK_ID_FORBIDDEN = re.compile(r"[^ -~]|[:;\"']")


def track_id(event_id: str | None) -> str | None:
    """``Zuora-Track-Id`` for an event: ≤64 US-ASCII characters without ``: ; " '`` (reference §6)."""
    if not event_id:
        return None
    cleaned = _TRACK_ID_FORBIDDEN.sub("", str(event_id))[:TRACK_ID_MAX].strip()
    return cleaned or None


class ZuoraClient(RemoteClient):
    """Zuora v1 REST calls used by the sync flows; see the module docstring for the promise it keeps."""

    api = "zuora"

    def __init__(self, base_url: str, client_id: str, client_secret: str, *, entity_id: str | None = None,
                 zuora_version: str = DEFAULT_ZUORA_VERSION, timeout: float | tuple[float, float] = (5, 30),
                 max_concurrency: int = 40, max_retry_seconds: float = 60.0, max_attempts: int = 6,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 session: requests.Session | None = None, rng: random.Random | None = None):
        super().__init__(base_url, timeout=timeout, max_concurrency=max_concurrency,
                         max_retry_seconds=max_retry_seconds, max_attempts=max_attempts, clock=clock,
                         sleep=sleep, session=session, rng=rng)
        if not client_id or not client_secret:
            raise ValueError("ZuoraClient: client_id and client_secret are required")
        self.entity_id = entity_id or None
        self.zuora_version = zuora_version
        self._client_secret = client_secret
        self._token = ZuoraToken(self.base_url + TOKEN_ENDPOINT, client_id, client_secret, send=self._send,
                                 clock=clock, clean=self.clean)

    def __repr__(self) -> str:
        return f"ZuoraClient(base_url={self.base_url!r}, entity_id={self.entity_id!r})"

    # ------------------------------------------------------------------ accounts

    def get_account(self, key: str) -> ZuoraAccount:
        """``GET /v1/accounts/{key}`` (ID or number); not found is ``ZuoraRejected`` with Zuora's code."""
        endpoint = "/v1/accounts/{key}"
        body = self._call("GET", endpoint, self.url(endpoint, key=key),
                          self._reader("GET", endpoint, ("basicInfo.id", "basicInfo.accountNumber")))
        return readers.account(body, f"Zuora GET {endpoint}")

    def create_account(self, payload: dict[str, Any], *, idempotency_key: str) -> ZuoraCreated:
        """``POST /v1/accounts``; the new account's ID and number (``accountId``, ``accountNumber``)."""
        body = self._post("/v1/accounts", payload, idempotency_key, ("accountId", "accountNumber"))
        return readers.created(body, "accountId", "accountNumber", "Zuora POST /v1/accounts")

    def update_account(self, key: str, payload: dict[str, Any]) -> None:
        """``PUT /v1/accounts/{key}``. PUT is idempotent by nature, so Zuora takes no key for it."""
        endpoint = "/v1/accounts/{key}"
        self._call("PUT", endpoint, self.url(endpoint, key=key), self._reader("PUT", endpoint, ()),
                   data=self._json(payload, "payload"), headers={"Content-Type": "application/json"})

    def find_accounts(self, field: str, value: str) -> list[ZuoraAccount]:
        """Accounts whose ``field`` equals ``value`` via Object Query (``filter[]=field.EQ:value``).

        Used to find an account by the link custom field, so the flows can recognise an account
        they created before a crash lost the mapping row. Pages are followed to a bound.
        """
        return [readers.account_row(row, _QUERY_ACCOUNTS) for row in self._object_query("accounts", field, value)]

    def find_invoices(self, field: str, value: str) -> list[ZuoraInvoice]:
        """Invoices whose ``field`` (e.g. the invoice link custom field) equals ``value``, via Object
        Query: how a new attempt series finds the invoice an earlier one created but never recorded."""
        return [readers.invoice(row, _QUERY_INVOICES) for row in self._object_query("invoices", field, value)]

    def find_usages(self, account_id: str, *, created_since: datetime) -> list[ZuoraUsage]:
        """The usage records of one account created at or after ``created_since`` (Object Query
        ``usages`` filtered by ``accountId`` and ``createdDate.GE``), so the usage flow can push only
        what the account does not hold yet without reading the account's whole history."""
        since = utc_text(created_since, "created_since")
        rows = self._object_query("usages", [("accountId", "EQ", account_id), ("createdDate", "GE", since)],
                                  max_pages=USAGE_QUERY_MAX_PAGES)
        return [readers.usage(row, "Zuora GET /object-query/usages") for row in rows]

    def list_accounts(self, *, updated_since: datetime | None = None, expand: tuple[str, ...] = ()
                      ) -> Iterator[ZuoraAccount]:
        """Every account (or those with ``updatedDate`` after ``updated_since``), oldest change first,
        streamed page by page (``pageSize`` 99, ``cursor``/``nextPage``): a tenant of any size is read
        without holding it. ``expand`` e.g. ``("billTo",)`` adds the bill-to contact (for emails)."""
        rows = self._iter_object_query("accounts", since_filter(updated_since), expand=expand)
        return (readers.account_row(row, _QUERY_ACCOUNTS) for row in rows)

    def list_invoices(self, *, updated_since: datetime | None = None,
                      filters: list[Filter] | None = None, expand: tuple[str, ...] = ()
                      ) -> Iterator[ZuoraInvoice]:
        """Invoices matching ``filters`` (ANDed ``field.OP:value``) and changed after ``updated_since``,
        streamed page by page like ``list_accounts``."""
        rows = self._iter_object_query("invoices", [*(filters or []), *since_filter(updated_since)], expand=expand)
        return (readers.invoice(row, _QUERY_INVOICES) for row in rows)

    def _iter_object_query(self, resource: str, filters: list[Filter], *, expand: tuple[str, ...] = (),
                           max_pages: int = LIST_MAX_PAGES) -> Iterator[dict[str, Any]]:
        """``GET /object-query/{resource}``, one page at a time, sorted by ``updatedDate`` then ``id`` so
        paging is stable; a cursor that repeats or more than ``max_pages`` pages is ``MalformedResponse``
        (``integration.zuora.paging``)."""
        yield from pages(self._get_page, resource, sorted_params(filters, expand), max_pages)

    def _object_query(self, resource: str, filters: str | list[Filter], value: str | None = None,
                      *, max_pages: int = OBJECT_QUERY_MAX_PAGES) -> list[dict[str, Any]]:
        """``GET /object-query/{resource}`` with ``filter[]=field.OP:value`` per filter (ANDed), every
        page up to ``max_pages``. ``(resource, field, value)`` is the one-``EQ`` shorthand."""
        if isinstance(filters, str):
            filters = [(filters, "EQ", value or "")]  # an empty value is refused as InvalidData below
        return list(pages(self._get_page, resource, filter_params(filters), max_pages))

    def _get_page(self, endpoint: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        return self._call("GET", endpoint, self.url(endpoint), self._reader("GET", endpoint, ()), params=params)

    # ------------------------------------------------------------------ invoices

    def create_invoice(self, payload: dict[str, Any], *, idempotency_key: str) -> ZuoraCreated:
        """``POST /v1/invoices`` (standalone invoice); the new invoice's ``id`` and ``invoiceNumber``."""
        body = self._post("/v1/invoices", payload, idempotency_key, ("id", "invoiceNumber"))
        return readers.created(body, "id", "invoiceNumber", "Zuora POST /v1/invoices")

    def get_invoice(self, invoice_id: str) -> ZuoraInvoice:
        """``GET /v1/invoices/{invoice_id}``; amounts come back as ``Decimal``."""
        endpoint = "/v1/invoices/{invoice_id}"
        body = self._call("GET", endpoint, self.url(endpoint, invoice_id=invoice_id),
                          self._reader("GET", endpoint, ("id",)))
        return readers.invoice(body, f"Zuora GET {endpoint}")

    def get_invoice_items(self, invoice_id: str) -> list[ZuoraInvoiceItem]:
        """``GET /v1/invoices/{invoice_id}/items``: the items as Zuora holds them now (``chargeAmount``
        as ``Decimal``), what the totals report compares with the billing invoice. Read ``pageSize`` 40
        (Zuora's v1 maximum) a page, ``page`` 1, 2, … while Zuora answers a ``nextPage``, to a bound.
        The page number is ours, never the ``nextPage`` URL: a remote cannot send us elsewhere."""
        endpoint = "/v1/invoices/{invoice_id}/items"
        items: list[ZuoraInvoiceItem] = []
        for page in range(1, INVOICE_ITEM_MAX_PAGES + 1):
            body = self._call("GET", endpoint, self.url(endpoint, invoice_id=invoice_id),
                              self._reader("GET", endpoint, ()),
                              params={"page": str(page), "pageSize": str(INVOICE_ITEM_PAGE_SIZE)})
            rows = body.get("invoiceItems")
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise MalformedResponse(f"Zuora GET {endpoint}: response has no invoiceItems list")
            items.extend(readers.invoice_item(row, invoice_id, f"Zuora GET {endpoint}") for row in rows)
            if not body.get("nextPage") or not rows:
                return items
        raise MalformedResponse(f"Zuora GET {endpoint}: more than {INVOICE_ITEM_MAX_PAGES} pages of items")

    def query_invoice(self, invoice_id: str) -> ZuoraInvoice | None:
        """One invoice as Object Query shows it (``status``, ``invoiceDate``, ``reversed``…), or None."""
        rows = self._object_query("invoices", [("id", "EQ", invoice_id)])
        return readers.invoice(rows[0], _QUERY_INVOICES) if rows else None

    def find_credit_memos(self, invoice_id: str) -> list[ZuoraCreditMemo]:
        """The credit memos made from one invoice (Object Query ``credit-memos`` by ``invoiceId``)."""
        return [readers.credit_memo(row, "Zuora GET /object-query/credit-memos")
                for row in self._object_query("credit-memos", [("invoiceId", "EQ", invoice_id)])]

    def cancel_invoice(self, invoice_id: str) -> ZuoraUndo:
        """``PUT /v1/invoices/{id}/cancel`` (a ``Draft``): ``AsyncOperationResponse`` (a ``jobId`` from 1,000
        items). PUT takes no Idempotency-Key: a repeat of a cancel that took effect is refused; read back."""
        endpoint = "/v1/invoices/{invoice_id}/cancel"
        body = self._call("PUT", endpoint, self.url(endpoint, invoice_id=invoice_id), self._reader("PUT", endpoint, ()))
        return readers.undo(body, f"Zuora PUT {endpoint}")

    def reverse_invoice(self, invoice_id: str, *, memo_date: date, apply_effective_date: date,
                        comment: str | None = None) -> ZuoraUndo:
        """``PUT /v1/invoices/{id}/reverse`` (a ``Posted`` one): a credit memo applied to it. The answer holds
        ``creditMemo.id``, or a ``jobId`` (asynchronous over 2,000 items). Not keyed, as ``cancel_invoice``."""
        endpoint = "/v1/invoices/{invoice_id}/reverse"
        payload = {"memoDate": memo_date.isoformat(), "applyEffectiveDate": apply_effective_date.isoformat(),
                   **({"comment": comment} if comment else {})}
        body = self._call("PUT", endpoint, self.url(endpoint, invoice_id=invoice_id), self._reader("PUT", endpoint, ()),
                          data=self._json(payload, "payload"), headers={"Content-Type": "application/json"})
        answer = readers.undo(body, f"Zuora PUT {endpoint}")
        if answer.credit_memo_id is None and not body.get("jobId"):
            raise MalformedResponse(f"Zuora PUT {endpoint}: response has neither creditMemo.id nor jobId")
        return answer

    # ------------------------------------------------------------------ usage

    def create_usage(self, record: dict[str, Any], *, idempotency_key: str) -> str:
        """``POST /v1/object/usage``: one PascalCase usage record; the new record's ``Id``."""
        body = self._post("/v1/object/usage", record, idempotency_key, ("Id",))
        return readers.required_text(body, "Id", "Zuora POST /v1/object/usage")

    def upload_usage(self, csv_bytes: bytes, *, filename: str, idempotency_key: str) -> str:
        """``POST /v1/usage`` (multipart CSV, imported atomically); returns the import ID to poll
        (``integration.zuora.usage_import``: the file checked first, the ID read from the answer)."""
        name = usage_import.checked_file(csv_bytes, filename)
        endpoint = "/v1/usage"
        headers = {"Idempotency-Key": self._idempotency_key(idempotency_key)}
        body = self._call("POST", endpoint, self.url(endpoint),
                          self._reader("POST", endpoint, ("checkImportStatus",), idempotent=True, keyed=headers),
                          headers=headers, files={"file": (name, bytes(csv_bytes), "text/csv")})
        return usage_import.import_id(body["checkImportStatus"], endpoint)

    def wait_for_usage_import(self, import_id: str, *, timeout: float = 300, poll_interval: float = 1.0
                              ) -> ZuoraUsageImport:
        """Poll an upload until Zuora says ``Completed``; the import is atomic, so that means every record.

        Polls start at a tenth of ``poll_interval`` and double up to it: a small file is done in well
        under a second, so the worker is not held a full interval for it; a large one is not polled
        more than once per ``poll_interval``.

        ``Failed``/``Canceled`` → ``ZuoraRejected`` carrying the import's own reason. Still pending
        after ``timeout`` → ``TransientError``: the flow is retried later and, re-uploading with
        the same idempotency key, gets the same import back to poll.
        """
        import_id = usage_import.bare_id(import_id)
        endpoint = "/v1/usage/{import_id}/status"
        url = self.url(endpoint, import_id=import_id)
        status = usage_import.wait(lambda: self._call("GET", endpoint, url, self._reader("GET", endpoint, ())),
                                   import_id, endpoint, clock=self._clock, sleep=self._sleep, clean=self.clean,
                                   timeout=timeout, poll_interval=poll_interval)
        return ZuoraUsageImport(id=import_id, status=status)

    # ------------------------------------------------------------------ request plumbing

    def _post(self, endpoint: str, payload: dict[str, Any], idempotency_key: str, fields: tuple[str, ...]
              ) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Idempotency-Key": self._idempotency_key(idempotency_key)}
        return self._call("POST", endpoint, self.url(endpoint),
                          self._reader("POST", endpoint, fields, idempotent=True, keyed=headers),
                          data=self._json(payload, "payload"), headers=headers)

    @staticmethod
    def _json(payload: Any, name: str) -> bytes:
        if not isinstance(payload, Mapping):
            raise InvalidData(name, "must be a JSON object")
        return dumps_json(payload)

    @staticmethod
    def _idempotency_key(key: Any) -> str:
        """The caller's key, checked: Zuora accepts ≤255 characters, and a header must be printable ASCII."""
        return header_value("idempotency_key", key, max_length=IDEMPOTENCY_KEY_MAX)

    def _default_headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "Zuora-Version": self.zuora_version, **self._tenant_headers()}

    def _tenant_headers(self) -> dict[str, str]:
        """The entity (when set) and the current event's track ID, on every call and token request."""
        headers = {}
        if self.entity_id:
            headers["Zuora-Entity-Ids"] = self.entity_id
        track = track_id(current_event_id.get())
        if track:
            headers["Zuora-Track-Id"] = track
        return headers

    def _secrets(self) -> Iterable[str]:
        return (self._client_secret, *self._token.secrets())

    def _reader(self, method: str, endpoint: str, fields: tuple[str, ...], *, idempotent: bool = False,
                keyed: dict[str, str] | None = None) -> Callable[[requests.Response], dict[str, Any]]:
        """The ``interpret`` callback for one call (``answers.reader``), named and scrubbed as this client."""
        return reader(f"Zuora {method} {endpoint}", fields, self.clean, idempotent=idempotent, keyed=keyed)

    # ------------------------------------------------------------------ OAuth

    def authenticate(self) -> None:
        """Fetch a token now unless one is held (``integration check``); the errors are the flows'."""
        self._auth_headers()

    def _auth_headers(self) -> dict[str, str]:
        return self._token.header(self._token_request_headers)

    def _refresh_auth(self, used: Mapping[str, str]) -> bool:
        """A 401: forget the token that failed (unless another thread already replaced it); repeat once."""
        self._token.forget(used)
        return True

    def _token_request_headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded",
                **self._tenant_headers()}
