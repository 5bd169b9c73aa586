"""Zuora's JSON → the typed objects of integration.zuora.model: what is read, and what is refused."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from integration.domain.errors import MalformedResponse
from integration.zuora import readers
from integration.zuora.model import ZuoraContact

WHERE = "Zuora GET /v1/accounts/{key}"


def test_an_account_reads_its_basics_contacts_currency_and_link_field():
    account = readers.account({
        "basicInfo": {"id": "8ad1", "accountNumber": "A1", "name": "Acme", "status": "Active",
                      "BillingAccountId__c": "acc-1", "crmId": None},
        "billingAndPayment": {"currency": "EUR", "additionalEmailAddresses": ["a@x.test", 3]},
        "billToContact": {"firstName": "Ada", "lastName": "Lovelace", "workEmail": "ada@x.test", "zipCode": 75001},
        "soldToContact": None}, WHERE)
    assert (account.id, account.number, account.name, account.status, account.currency) == \
        ("8ad1", "A1", "Acme", "Active", "EUR")
    assert account.custom_field("BillingAccountId__c") == "acc-1"
    assert account.custom_field("crmId") is None
    assert account.bill_to == ZuoraContact(first_name="Ada", last_name="Lovelace", work_email="ada@x.test",
                                           zip_code="75001")
    assert account.sold_to is None
    assert account.additional_emails == ("a@x.test",)


@pytest.mark.parametrize("body, message", [
    ({"basicInfo": {"accountNumber": "A1"}}, r"basicInfo: response has no id"),
    ({"basicInfo": {"id": "8ad1", "accountNumber": ""}}, r"basicInfo: response has no accountNumber"),
    ({"basicInfo": {"id": "8ad1", "accountNumber": "A1", "name": ["x"]}}, r"name is not text"),
    ({"basicInfo": {"id": "8ad1", "accountNumber": "A1"}, "billToContact": "x"}, r"billToContact is not an object"),
    ({"basicInfo": "x"}, r"basicInfo is not an object"),
])
def test_a_malformed_account_is_refused_with_the_call_and_the_field(body, message):
    with pytest.raises(MalformedResponse, match=message):
        readers.account(body, WHERE)


def test_an_object_query_row_reads_its_top_level_fields_and_the_expanded_bill_to():
    account = readers.account_row({"id": "8ad1", "accountNumber": "A1", "currency": "USD",
                                   "updatedDate": "2026-01-02T03:04:05-08:00", "BillingAccountId__c": "acc-1",
                                   "billTo": {"personalEmail": "p@x.test"}}, "q")
    assert account.updated == datetime(2026, 1, 2, 11, 4, 5, tzinfo=timezone.utc)
    assert account.custom_field("BillingAccountId__c") == "acc-1"
    assert account.bill_to is not None and account.bill_to.personal_email == "p@x.test"


def test_an_invoice_reads_dates_amounts_and_reversed():
    invoice = readers.invoice({"id": "i1", "invoiceNumber": "INV1", "status": "Posted", "invoiceDate": "2026-11-01",
                               "reversed": True, "amount": Decimal("0.30"), "balance": "12.5"}, "q")
    assert (invoice.number, invoice.status, invoice.invoice_date, invoice.reversed) == \
        ("INV1", "Posted", date(2026, 11, 1), True)
    assert (invoice.amount, invoice.balance) == (Decimal("0.30"), Decimal("12.5"))
    assert readers.invoice({"id": "i2", "invoiceDate": "soon", "reversed": "true"}, "q").invoice_date is None
    assert readers.invoice({"id": "i2", "reversed": "true"}, "q").reversed is False
    with pytest.raises(MalformedResponse, match="q: response has no id"):
        readers.invoice({"invoiceNumber": "INV1"}, "q")


def test_an_invoice_item_without_a_numeric_charge_amount_is_refused_by_name():
    item = readers.invoice_item({"id": "it1", "chargeName": "A", "chargeAmount": Decimal("1.10"),
                                 "processingType": "Discount", "appliedToItemId": "it0"}, "i1", "w")
    assert (item.charge_amount, item.processing_type, item.applied_to_item_id) == (Decimal("1.10"), "Discount", "it0")
    with pytest.raises(MalformedResponse, match=r"^Zuora invoice i1: item it2 has no numeric chargeAmount$"):
        readers.invoice_item({"id": "it2", "chargeAmount": "n/a"}, "i1", "w")


def test_usage_credit_memos_creates_and_undo_answers():
    usage = readers.usage({"id": "u1", "description": "d", "quantity": 7, "createdDate": "2026-01-01T00:00:00Z"}, "q")
    assert (usage.quantity, usage.created) == (Decimal(7), datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert readers.usage({"id": "u2"}, "q").quantity is None
    assert readers.credit_memo({"id": "m1", "reasonCode": "Invoice reversal"}, "q").reason_code == "Invoice reversal"
    created = readers.created({"accountId": "8ad1", "accountNumber": "A1"}, "accountId", "accountNumber", "w")
    assert (created.id, created.number) == ("8ad1", "A1")
    with pytest.raises(MalformedResponse, match="w: response has no invoiceNumber"):
        readers.created({"id": "i1"}, "id", "invoiceNumber", "w")
    undo = readers.undo({"creditMemo": {"id": "m1"}, "jobId": "j1", "jobStatus": "Pending"}, "w")
    assert (undo.credit_memo_id, undo.job_id, undo.job_status) == ("m1", "j1", "Pending")
    assert readers.undo({"creditMemo": {"id": ""}}, "w").credit_memo_id is None
