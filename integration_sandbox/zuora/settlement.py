"""Undoing an invoice: ``PUT /v1/invoices/{key}/cancel``, ``PUT /v1/invoices/{key}/reverse`` (a credit
memo, Invoice Settlement) and ``/object-query/credit-memos``.

WHY the restrictions are enforced: the service voids its Zuora twins through these two calls (CONTRACT
§12), and a sandbox that reversed anything would let it ship a flow that fails on every real tenant.
Zuora's "Reverse an invoice" refuses when payments or credit memos are applied to the invoice, when the
invoice is split, when it is not ``Posted`` and when its total is negative; the memo date may not
precede the invoice date, nor the apply-effective date the memo date; the reason code must exist (the
default is ``Invoice reversal``). "Cancel an invoice" takes a ``Draft``. Refusals come in Zuora's v1
business-error shape (HTTP 200 ``success: false``, 8-digit reason codes).

Sandbox choices: the reason-code resource prefix is the invoices' (``592100``); a reversal is always
synchronous (Zuora goes asynchronous above 2,000 items, the sandbox holds at most 1,000) and creates no
debit memo (the sandbox has no discount charges); ``Invoice reversal`` is the one reason code; a
payment is applied with ``POST /_sandbox/invoices/{key}/payments`` (the sandbox has no payment methods),
which is how a test makes a reversal meet Zuora's "payment applied" refusal.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import flask

from .common import (
    CAT_BUSINESS,
    CAT_INVALID,
    CAT_MALFORMED,
    CAT_NOT_FOUND,
    RES_INVOICE,
    SANDBOX_USER_ID,
    Body,
    _new_id,
    _parse_date,
    _to_decimal,
    _utc_iso,
    common_error,
    reason,
)
from .idempotency import _api, _json_body
from .object_query import _query_credit_memos
from .validation import Problems

if TYPE_CHECKING:
    from .state import ZuoraSandbox

REVERSAL_REASON_CODE = "Invoice reversal"
REVERSE_KEYS = ("applyEffectiveDate", "comment", "memoDate", "reasonCode")
COMMENT_MAX = 255


def _register_settlement_routes(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.put("/v1/invoices/<key>/cancel")
    @_api(sb, write=True, resource=RES_INVOICE)
    def cancel_invoice(key: str) -> tuple[Body, int]:
        with sb.lock:
            return cancel(sb, key), 200

    @app.put("/v1/invoices/<key>/reverse")
    @_api(sb, write=True, resource=RES_INVOICE)
    def reverse_invoice(key: str) -> tuple[Body, int]:
        body: Any = {}
        if flask.request.get_data(cache=True):  # every field is optional: no body is an empty one
            body, error = _json_body(RES_INVOICE)
            if error:
                return error, 200
        with sb.lock:
            return reverse(sb, key, body), 200

    @app.get("/object-query/credit-memos")
    @_api(sb)
    def query_credit_memos() -> tuple[Body, int]:
        return _query_credit_memos(sb)


def _not_found(key: str) -> Body:
    return common_error([reason(RES_INVOICE, CAT_NOT_FOUND, f"Cannot find entity by key: '{key}'.")])


def _refused(message: str, category: int = CAT_BUSINESS) -> Body:
    return common_error([reason(RES_INVOICE, category, message)])


def cancel(sb: ZuoraSandbox, key: str) -> Body:
    """Cancel a draft invoice (caller holds the lock): ``AsyncOperationResponse``, done at once."""
    invoice = sb.find_invoice(key)
    if invoice is None:
        return _not_found(key)
    if invoice["status"] != "Draft":
        return _refused(f"Only a Draft invoice can be canceled; invoice {invoice['invoiceNumber']} is "
                        f"{invoice['status']}.")
    invoice.update(status="Canceled", balance=Decimal("0"), updatedDate=_utc_iso(sb.now()),
                   updatedById=SANDBOX_USER_ID)
    return {"success": True, "id": invoice["id"]}


def reverse(sb: ZuoraSandbox, key: str, body: Any) -> Body:
    """Reverse a posted invoice into a credit memo applied to it (caller holds the lock):
    ``ReverseInvoiceResponse`` with ``creditMemo.id``."""
    p = Problems(RES_INVOICE)
    if not isinstance(body, dict):
        p.add(CAT_MALFORMED, "The request body must be a JSON object")
        return common_error(p.reasons)
    p.unknown_keys(body, REVERSE_KEYS)
    dates: dict[str, dt.date | None] = {}
    for name in ("memoDate", "applyEffectiveDate"):
        dates[name] = _parse_date(body[name]) if body.get(name) is not None else None
        if body.get(name) is not None and dates[name] is None:
            p.add(CAT_INVALID, f"'{name}' must be a date in yyyy-mm-dd format")
    comment = p.string(body, "comment", "comment", max_len=COMMENT_MAX)
    reason_code = p.string(body, "reasonCode", "reasonCode")
    if reason_code not in (None, "", REVERSAL_REASON_CODE):
        p.add(CAT_INVALID, f"Unable to get the Reason Code by name: {reason_code}")
    if p:
        return common_error(p.reasons)
    invoice = sb.find_invoice(key)
    if invoice is None:
        return _not_found(key)
    refusal = _why_not_reversible(invoice)
    if refusal:
        return _refused(refusal)
    today = dt.datetime.fromtimestamp(sb.now(), dt.timezone.utc).date()
    memo_date = dates["memoDate"] or today
    effective = dates["applyEffectiveDate"] or today
    if memo_date < dt.date.fromisoformat(invoice["invoiceDate"]):
        return _refused(f"The memo date {memo_date} must be later than or equal to the invoice date "
                        f"{invoice['invoiceDate']}.", CAT_INVALID)
    if effective < memo_date:
        return _refused(f"The effective date {effective} must be later than or equal to the memo date "
                        f"{memo_date}.", CAT_INVALID)
    memo = _credit_memo(sb, invoice, memo_date, comment, reason_code or REVERSAL_REASON_CODE)
    now = _utc_iso(sb.now())
    invoice.update(creditMemoAmount=invoice["amount"], balance=Decimal("0"), reversed=True, updatedDate=now,
                   updatedById=SANDBOX_USER_ID)
    return {"success": True, "id": invoice["id"], "creditMemo": {"id": memo["id"]}}


def _why_not_reversible(invoice: dict) -> str | None:
    """Zuora's documented restrictions on reversing, in its order; None when the invoice may be reversed."""
    number = invoice["invoiceNumber"]
    if invoice.get("paymentAmount", 0) > 0 or invoice.get("creditMemoAmount", 0) > 0:
        return f"Payments and credit memos are applied to invoice {number}; it cannot be reversed."
    if invoice.get("isSplit"):
        return f"Invoice {number} is split; it cannot be reversed."
    if invoice["status"] != "Posted":
        return f"Only a Posted invoice can be reversed; invoice {number} is {invoice['status']}."
    if invoice["amount"] < 0:
        return f"Invoice {number} is a negative invoice (total amount {invoice['amount']}); it cannot be reversed."
    return None


def _credit_memo(sb: ZuoraSandbox, invoice: dict, memo_date: dt.date, comment: str | None, reason_code: str) -> dict:
    sb.memo_seq += 1
    now = _utc_iso(sb.now())
    memo = {"id": _new_id(), "memoNumber": f"CM{sb.memo_seq:08d}", "accountId": invoice["accountId"],
            "invoiceId": invoice["id"], "currency": invoice["currency"], "totalAmount": invoice["amount"],
            "appliedAmount": invoice["amount"], "balance": Decimal("0"), "refundAmount": Decimal("0"),
            "memoDate": memo_date.isoformat(), "status": "Posted",
            "reasonCode": reason_code, "comments": comment, "reversed": False, "source": "API",
            "sourceType": "Standalone", "postedOn": now, "postedById": SANDBOX_USER_ID, "createdDate": now,
            "createdById": SANDBOX_USER_ID, "updatedDate": now, "updatedById": SANDBOX_USER_ID}
    sb.credit_memos[memo["id"]] = memo
    return memo


def apply_payment(sb: ZuoraSandbox, key: str, payload: Any) -> tuple[Body, int]:
    """``POST /_sandbox/invoices/{key}/payments`` ``{"amount"}`` (default: the whole balance): a payment
    applied to a posted invoice, as a customer paying it would leave it (caller holds the lock)."""
    invoice = sb.find_invoice(key)
    if invoice is None:
        return {"error": "not_found", "detail": f"no invoice {key}"}, 404
    if not isinstance(payload, dict) or set(payload) - {"amount"}:
        return {"error": "invalid_request", "detail": 'body must be {} or {"amount": "<decimal>"}'}, 400
    amount = _to_decimal(payload["amount"]) if "amount" in payload else invoice["balance"]
    if invoice["status"] != "Posted":
        return {"error": "invalid_request", "detail": f"invoice {key} is {invoice['status']}, not Posted"}, 409
    if amount is None or not Decimal("0") < amount <= invoice["balance"]:
        return {"error": "invalid_request", "detail": f"amount must be more than 0 and at most the balance "
                                                      f"{invoice['balance']}"}, 400
    invoice.update(paymentAmount=invoice.get("paymentAmount", Decimal("0")) + amount,
                   balance=invoice["balance"] - amount, updatedDate=_utc_iso(sb.now()))
    return {"invoice_id": invoice["id"], "paymentAmount": invoice["paymentAmount"],
            "balance": invoice["balance"]}, 200
