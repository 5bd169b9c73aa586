"""integration.billing: the billing platform as a port. The Togai adapter reads Togai JSON into the model,
decides an invoice's final/void state once, builds Togai's bodies from the model, and BILLING_PLATFORM
chooses it (CONTRACT §13)."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from integration.billing.factory import billing_platform
from integration.billing.model import BillingAccount, NewBillingAccount, NewBillingCustomer, canonical_account, checked
from integration.billing.togai import builders, readers
from integration.billing.togai.platform import TogaiPlatform
from integration.config import ConfigError, load_config
from integration.domain.errors import InvalidData
from tests.test_config import VALID

FIXTURES = Path(__file__).parent / "fixtures" / "togai"


def documented_example() -> dict:
    return json.loads((FIXTURES / "get_invoice_example.json").read_text(), parse_float=Decimal)


def test_billing_platform_defaults_to_togai_and_lago_is_refused_for_now():
    config = load_config(VALID)
    assert config.billing_platform == "togai"
    assert isinstance(billing_platform(config), TogaiPlatform)
    assert load_config({**VALID, "BILLING_PLATFORM": "Togai"}).billing_platform == "togai"
    with pytest.raises(ConfigError) as caught:
        load_config({**VALID, "BILLING_PLATFORM": "lago"})
    assert "not supported yet" in caught.value.problems["BILLING_PLATFORM"]
    with pytest.raises(ConfigError) as caught:
        load_config({**VALID, "BILLING_PLATFORM": "chargebee"})
    assert "togai" in caught.value.problems["BILLING_PLATFORM"]


def test_the_documented_invoice_reads_into_the_model():
    invoice = readers.invoice(documented_example())
    assert invoice.is_finalized and not invoice.is_void and invoice.why_not_pushed() is None
    amounts = checked(invoice.amounts)
    assert amounts.total == Decimal("881.94") and len(amounts.lines) == 2
    assert checked(invoice.invoice_date).tzinfo is not None
    assert isinstance(checked(invoice.service_end), date)


@pytest.mark.parametrize("fields,finalized,void,reason", [
    ({"status": "DUE"}, True, False, None),
    ({"status": "DRAFT", "finalizingStatus": "FINALIZED"}, True, False, None),
    ({"status": "DRAFT"}, False, False, "not finalized (status DRAFT, finalizingStatus None)"),
    ({"status": "VOID", "finalizingStatus": "FINALIZED"}, True, True, "status VOID"),
    ({"status": "MERGED", "finalizingStatus": "FINALIZED"}, True, False, "status MERGED"),
])
def test_an_invoices_state_is_decided_once(fields, finalized, void, reason):
    invoice = readers.invoice({"id": "inv-1", **fields})
    assert (invoice.is_finalized, invoice.is_void, invoice.why_not_pushed()) == (finalized, void, reason)


def test_an_unreadable_field_is_refused_only_where_it_is_asked_for():
    invoice = readers.invoice({"id": "inv-1", "status": "DRAFT", "invoiceDate": "yesterday"})
    assert invoice.why_not_pushed() is not None  # a draft stays a draft, whatever its dates say
    with pytest.raises(InvalidData) as caught:
        checked(invoice.invoice_date)
    assert caught.value.field == "invoiceDate"
    with pytest.raises(InvalidData):
        checked(invoice.owner_id)


@pytest.mark.parametrize("invoice_id", [None, "", "   ", 7, "x" * 256])
def test_an_invoice_without_a_usable_id_is_refused_naming_the_field(invoice_id):
    raw = {"status": "DUE", "ownerId": "acc-1"} | ({} if invoice_id is None else {"id": invoice_id})
    with pytest.raises(InvalidData) as refused:
        readers.invoice(raw)
    assert refused.value.field == "id"


def test_accounts_links_and_times_are_read_into_the_model():
    account = readers.account({"id": "B1", "customerId": "C1", "name": "Acme", "invoiceCurrency": "USD",
                               "address": {"country": "us", "city": "Austin", "other": "x"},
                               "updatedAt": "2026-01-02T03:04:05Z",
                               "settings": [{"id": "B1.zuoraAccountId", "namespace": "zuora",
                                             "name": "zuoraAccountId", "value": "Z1"},
                                            {"id": "s2", "namespace": "other", "name": "zuoraAccountNumber",
                                             "value": "A-9"}]})
    assert account.link is not None and account.link.zuora_ref == "Z1" and account.link.zuora_account_number is None
    assert account.updated_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc) and account.created_at is None
    assert canonical_account(account, None) == {"name": "Acme", "primaryEmail": None,
                                                "address": {"country": "US", "city": "Austin"}}
    assert readers.account({"id": "B2"}).link is None  # not listed with it: read it with read_link
    assert canonical_account(BillingAccount(id="B3"), readers.customer(
        {"id": "C", "name": "Cust", "primaryEmail": "a@b.co"}))["primaryEmail"] == "a@b.co"


def test_a_new_customer_is_built_as_togai_takes_it():
    account = NewBillingAccount(id="Z1", name="Acme", currency="USD", primary_email="a@b.co",
                                address={"country": "US"}, zuora_account_id="Z1", zuora_account_number="A-1")
    body = builders.customer_body(NewBillingCustomer(id="Z1", name="Acme", primary_email="a@b.co",
                                                     address={"country": "US"}, account=account))
    assert body["id"] == "Z1" and body["account"]["invoiceCurrency"] == "USD"
    assert [(s["id"], s["value"]) for s in body["account"]["settings"]] == [
        ("Z1.zuoraAccountId", "Z1"), ("Z1.zuoraAccountNumber", "A-1")]
