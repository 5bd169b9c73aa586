"""The Zuora sandbox undoes invoices as Zuora does (CONTRACT §12): only a ``Draft`` can be cancelled, only a
``Posted`` one reversed — into a credit memo applied to it — and never one with a payment applied nor a
negative one; the memo date may not precede the invoice date. Refusals in Zuora's v1 error shape."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from integration_sandbox.zuora import create_zuora_sandbox
from tests.test_sandbox_zuora import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeClock,
    assert_zuora_error,
    create_account,
    get_token,
    invoice_body,
    post_json,
    state,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock):
    app = create_zuora_sandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock)
    yield app.test_client()
    app.extensions["zuora_sandbox"].close()


@pytest.fixture
def auth(client) -> dict:
    return {"Authorization": f"Bearer {get_token(client)}"}


BUSINESS, INVALID, NOT_FOUND, UNKNOWN_FIELD = 59210030, 59210020, 59210040, 59210021


def new_invoice(client, auth, **overrides) -> dict:
    account = create_account(client, auth)
    r = post_json(client, "/v1/invoices", invoice_body(account["accountId"], **overrides), auth)
    body = json.loads(r.data, parse_float=Decimal)
    assert body["success"] is True, body
    return body


def put(client, auth, path: str, body=None):
    if body is None:
        return client.put(path, headers=auth)
    return client.put(path, data=json.dumps(body), content_type="application/json", headers=auth)


def decoded(resp) -> dict:
    return json.loads(resp.data, parse_float=Decimal)


def test_a_draft_invoice_is_cancelled_once(client, auth):
    invoice = new_invoice(client, auth, status="Draft")
    r = put(client, auth, f"/v1/invoices/{invoice['id']}/cancel")
    assert r.status_code == 200 and r.get_json() == {"success": True, "id": invoice["id"]}
    got = decoded(client.get(f"/v1/invoices/{invoice['id']}", headers=auth))
    assert (got["status"], got["balance"]) == ("Canceled", Decimal("0"))

    again = put(client, auth, f"/v1/invoices/{invoice['invoiceNumber']}/cancel")
    assert_zuora_error(again, [{"code": BUSINESS, "message": "Only a Draft invoice can be canceled; invoice "
                                                            "INV00000001 is Canceled."}])


def test_a_posted_invoice_cannot_be_cancelled(client, auth):
    invoice = new_invoice(client, auth)
    assert_zuora_error(put(client, auth, f"/v1/invoices/{invoice['id']}/cancel"),
                       [{"code": BUSINESS, "message": "Only a Draft invoice can be canceled; invoice INV00000001 "
                                                      "is Posted."}])


def test_a_posted_invoice_is_reversed_into_a_credit_memo_applied_to_it(client, auth):
    invoice = new_invoice(client, auth)  # 10.30, dated 2026-01-31; the clock says 2026-01-01
    r = put(client, auth, f"/v1/invoices/{invoice['id']}/reverse",
            {"memoDate": "2026-01-31", "applyEffectiveDate": "2026-02-01", "comment": "voided upstream"})
    body = r.get_json()
    assert body["success"] is True and body["id"] == invoice["id"]
    [memo] = state(client)["credit_memos"]
    assert body["creditMemo"] == {"id": memo["id"]}
    assert (memo["invoiceId"], memo["memoNumber"], memo["memoDate"], memo["status"], memo["reasonCode"],
            memo["comments"], Decimal(str(memo["totalAmount"]))) == (
        invoice["id"], "CM00000001", "2026-01-31", "Posted", "Invoice reversal", "voided upstream", Decimal("10.30"))
    got = decoded(client.get(f"/v1/invoices/{invoice['id']}", headers=auth))
    assert (got["status"], got["balance"], got["creditMemoAmount"]) == ("Posted", Decimal("0"), Decimal("10.30"))
    assert "reversed" not in got  # InvoiceResponse has no such field; Object Query's ExpandedInvoice does
    [row] = client.get(f"/object-query/invoices?filter[]=id.EQ:{invoice['id']}", headers=auth).get_json()["data"]
    assert row["reversed"] is True
    memos = client.get(f"/object-query/credit-memos?filter[]=invoiceId.EQ:{invoice['id']}", headers=auth)
    assert [m["id"] for m in memos.get_json()["data"]] == [memo["id"]]

    # Reversed once: the applied credit memo is what stops a second reversal.
    again = put(client, auth, f"/v1/invoices/{invoice['id']}/reverse",
                {"memoDate": "2026-01-31", "applyEffectiveDate": "2026-01-31"})
    assert_zuora_error(again,
                       [{"code": BUSINESS, "message": "Payments and credit memos are applied to invoice INV00000001; "
                                                      "it cannot be reversed."}])
    assert len(state(client)["credit_memos"]) == 1


def test_reversal_dates_default_to_today_and_may_not_precede_the_invoice(client, clock):
    clock.advance(40 * 86400)  # 2026-02-10
    auth = {"Authorization": f"Bearer {get_token(client)}"}
    invoice = new_invoice(client, auth)
    assert_zuora_error(put(client, auth, f"/v1/invoices/{invoice['id']}/reverse", {"memoDate": "2026-01-30"}),
                       [{"code": INVALID, "message": "The memo date 2026-01-30 must be later than or equal to the "
                                                     "invoice date 2026-01-31."}])
    assert_zuora_error(put(client, auth, f"/v1/invoices/{invoice['id']}/reverse",
                           {"memoDate": "2026-02-05", "applyEffectiveDate": "2026-02-04"}),
                       [{"code": INVALID, "message": "The effective date 2026-02-04 must be later than or equal to "
                                                     "the memo date 2026-02-05."}])
    assert put(client, auth, f"/v1/invoices/{invoice['id']}/reverse").get_json()["success"] is True  # no body
    assert state(client)["credit_memos"][0]["memoDate"] == "2026-02-10"


def test_a_draft_is_not_reversed_nor_an_invoice_with_a_payment_nor_a_negative_one(client, auth):
    draft = new_invoice(client, auth, status="Draft")
    assert_zuora_error(put(client, auth, f"/v1/invoices/{draft['id']}/reverse", {}),
                       [{"code": BUSINESS, "message": f"Only a Posted invoice can be reversed; invoice "
                                                      f"{draft['invoiceNumber']} is Draft."}])
    paid = new_invoice(client, auth)
    r = client.post(f"/_sandbox/invoices/{paid['invoiceNumber']}/payments", json={"amount": "5.00"})
    assert r.status_code == 200 and decoded(r)["balance"] == Decimal("5.30")
    assert_zuora_error(put(client, auth, f"/v1/invoices/{paid['id']}/reverse", {}),
                       [{"code": BUSINESS, "message": f"Payments and credit memos are applied to invoice "
                                                      f"{paid['invoiceNumber']}; it cannot be reversed."}])
    negative = new_invoice(client, auth, invoiceItems=[{"amount": "-3.00", "serviceStartDate": "2026-01-01",
                                                         "chargeName": "Refund"}])
    assert_zuora_error(put(client, auth, f"/v1/invoices/{negative['id']}/reverse", {}),
                       [{"code": BUSINESS, "message": f"Invoice {negative['invoiceNumber']} is a negative invoice "
                                                      f"(total amount -3.00); it cannot be reversed."}])
    assert state(client)["credit_memos"] == []


@pytest.mark.parametrize("body, reasons", [
    ({"memoDate": "31/01/2026"}, [{"code": INVALID, "message": "'memoDate' must be a date in yyyy-mm-dd format"}]),
    ({"comment": "x" * 256}, [{"code": INVALID, "message": "'comment' length must be at most 255 characters"}]),
    ({"reasonCode": "Goodwill"}, [{"code": INVALID, "message": "Unable to get the Reason Code by name: Goodwill"}]),
    ({"amount": 1}, [{"code": UNKNOWN_FIELD, "message": "Unknown field 'amount'"}]),
])
def test_a_reversal_request_is_validated(client, auth, body, reasons):
    invoice = new_invoice(client, auth)
    assert_zuora_error(put(client, auth, f"/v1/invoices/{invoice['id']}/reverse", body), reasons)


def test_unknown_invoices_and_bad_payments(client, auth):
    for path in ("/v1/invoices/nope/cancel", "/v1/invoices/nope/reverse"):
        assert_zuora_error(put(client, auth, path), [{"code": NOT_FOUND, "message": "Cannot find entity by key: "
                                                                                     "'nope'."}])
    assert client.put("/v1/invoices/nope/cancel").status_code == 401
    draft = new_invoice(client, auth, status="Draft")
    assert client.post("/_sandbox/invoices/nope/payments", json={}).status_code == 404
    assert client.post(f"/_sandbox/invoices/{draft['id']}/payments", json={}).status_code == 409
    posted = new_invoice(client, auth)
    for payload in ({"amount": "10.31"}, {"amount": "0"}, {"amount": "x"}, {"other": 1}, [1]):
        assert client.post(f"/_sandbox/invoices/{posted['id']}/payments", json=payload).status_code == 400, payload
    r = client.post(f"/_sandbox/invoices/{posted['id']}/payments")  # no body: the whole balance
    assert decoded(r) == {"invoice_id": posted["id"], "paymentAmount": Decimal("10.30"), "balance": Decimal("0")}
