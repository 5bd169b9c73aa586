"""Shared pieces of the billing sandbox: limits, Togai's error type, IDs, paging tokens."""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

EVENT_TYPES = ("account.created", "account.updated", "invoice.finalized")
SETTING_DATA_TYPES = ("STRING", "NUMERIC", "JSON", "JSON_LOGIC")
# docs/settings.mdx says ten entity types carry settings; the spec names none, these are Togai's entities.
SETTING_ENTITY_TYPES = ("ORGANIZATION", "CUSTOMER", "ACCOUNT", "USAGE_METER", "PRICE_PLAN", "ADDON",
                        "FEATURE", "EVENT_SCHEMA", "INVOICE", "INVOICE_GROUP")
INVOICE_STATUSES = ("DRAFT", "DUE", "PAID", "VOID", "UN_COLLECTIBLE", "REFUND_INITIATED",
                    "REFUND_COMPLETED", "MERGED", "PARTIALLY_PAID")
BASE_CURRENCY = "USD"  # "invoiceCurrency ... Defaults to Base currency"
MAX_BODY_BYTES = 1024 * 1024
REQUEST_LOG_SIZE = 1000
SETTINGS_PAGE_DEFAULT, SETTINGS_PAGE_MAX = 10, 50
# listInvoices: "Max page size cannot be more than 50. Also 50 is the default page size"
INVOICES_PAGE_DEFAULT = INVOICES_PAGE_MAX = 50
DELIVERY_TIMEOUT = (3.05, 10.0)  # connect, read (seconds)
_NUMERIC = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


class ApiError(Exception):
    """A refusal answered as ``{"message": message}`` with ``status`` (Togai's error shape)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

# -- helpers -----------------------------------------------------------------------------------------

def _system_clock() -> datetime:
    return datetime.now(timezone.utc)


def _togai_id(prefix: str) -> str:
    """IDs in Togai's style, e.g. ``cus.1zYnCiM9Bpg.1zYn``."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    head = "".join(secrets.choice(alphabet) for _ in range(11))
    tail = "".join(secrets.choice(alphabet) for _ in range(5))
    return f"{prefix}.{head}.{tail}"


def new_webhook_secret() -> str:
    """A fresh Standard Webhooks secret (``whsec_`` + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def billing_address(address: dict) -> str:
    """Togai's ``billingAddress`` string (≤1000 chars) from the structured address."""
    keys = ("line1", "line2", "city", "state", "postalCode", "country")
    return ", ".join(address[k] for k in keys if address.get(k))[:1000]


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(400, "Invalid nextToken") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ApiError(400, "Invalid nextToken")
    return offset


def page_size(raw: str | None, default: int, maximum: int, *, over_limit: int = 400) -> int:
    """``pageSize`` from the query string: 1..maximum, ``default`` when absent; else 400 — or
    ``over_limit`` for a well-formed size above ``maximum`` (listInvoices documents 422, "Unable to
    process the query parameters provided. Please check our docs for the api limits")."""
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw) or int(raw) < 1:
        raise ApiError(400, f"pageSize must be an integer from 1 to {maximum}")
    if int(raw) > maximum:
        raise ApiError(over_limit, f"pageSize must be an integer from 1 to {maximum}")
    return int(raw)


def paginate(items: list, args: Any, *, default: int, maximum: int, context: bool = True,
             view: Callable[[Any], dict] | None = None, over_limit: int = 400) -> dict:
    """One page of ``items`` in Togai's paged shape: ``data``, ``nextToken`` when more, and (where the
    response schema has it) ``context``. The token is an opaque offset. ``view`` (the API shape of
    one stored object) is applied to the page only, so paging a tenant of 20,000 accounts costs a
    page's views per request, not the whole tenant's. A page larger than ``maximum`` is refused
    (``over_limit``), never served: a client asking for more than Togai gives must fail here first."""
    size = page_size(args.get("pageSize"), default, maximum, over_limit=over_limit)
    offset = _decode_token(args["nextToken"]) if args.get("nextToken") else 0
    page = items[offset:offset + size]
    body: dict[str, Any] = {"data": [view(item) for item in page] if view is not None else page}
    if offset + size < len(items):
        body["nextToken"] = _encode_token(offset + size)
    if context:
        body["context"] = {"pageSize": size, "sortOrder": "ASC"}
    return body
