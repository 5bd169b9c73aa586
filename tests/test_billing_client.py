"""BillingClient (Togai-compatible) against requests-mock: auth, duplicates, retries, Decimal amounts, secrets."""
from __future__ import annotations

import json
import logging
import random
from decimal import Decimal

import pytest
import requests
from prometheus_client import REGISTRY

from integration.billing.togai.client import BillingClient, is_duplicate
from integration.domain.errors import (
    AUTH_FAILED,
    BILLING_REJECTED,
    AuthFailed,
    BillingConflict,
    BillingRejected,
    InvalidData,
    MalformedResponse,
    SyncError,
    TransientError,
)
from tests.fakes import FakeClock

BASE = "https://billing.test"
TOKEN = "togai-api-token-ZZZ-999"
CUSTOMER = {"id": "8ad0000000000001", "name": "Acme Corp", "primaryEmail": "ap@acme.test",
            "address": {"country": "US"}, "status": "ACTIVE"}
ACCOUNT = {"id": "8ad0000000000001", "customerId": "8ad0000000000001", "name": "Acme Corp",
           "invoiceCurrency": "USD", "status": "ACTIVE"}


def make_client(clock: FakeClock, **kwargs) -> BillingClient:
    return BillingClient(BASE, TOKEN, clock=clock, sleep=clock.sleep, rng=random.Random(3), **kwargs)


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------------------------------- happy paths

def test_create_customer_sends_bearer_and_exact_json(mock, clock):
    mock.post(f"{BASE}/customers", status_code=201, json=CUSTOMER)
    payload = {"id": "8ad0000000000001", "name": "Acme Corp", "primaryEmail": "ap@acme.test",
               "address": {"country": "US"},
               "account": {"id": "8ad0000000000001", "name": "Acme Corp", "invoiceCurrency": "USD"}}

    assert make_client(clock).create_customer(payload) == CUSTOMER

    sent = mock.request_history[0]
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.text) == payload


def test_get_customer_and_account(mock, clock):
    mock.get(f"{BASE}/customers/8ad0000000000001", json=CUSTOMER)
    mock.get(f"{BASE}/accounts/8ad0000000000001", json=ACCOUNT)
    client = make_client(clock)
    assert client.get_customer("8ad0000000000001")["name"] == "Acme Corp"
    assert client.get_account("8ad0000000000001")["invoiceCurrency"] == "USD"


@pytest.mark.parametrize("method,path", [("get_customer", "/customers/x1"), ("get_account", "/accounts/x1"),
                                         ("get_invoice", "/invoices/x1")])
def test_404_on_get_is_none(mock, clock, method, path):
    mock.get(f"{BASE}{path}", status_code=404, json={"message": "Not found"})
    assert getattr(make_client(clock), method)("x1") is None
    assert len(mock.request_history) == 1


def test_update_account_patches(mock, clock):
    mock.patch(f"{BASE}/accounts/acc%2F1", json={**ACCOUNT, "name": "Acme Inc"})
    result = make_client(clock).update_account("acc/1", {"name": "Acme Inc"})
    assert result["name"] == "Acme Inc"
    assert mock.request_history[0].method == "PATCH"
    assert json.loads(mock.request_history[0].text) == {"name": "Acme Inc"}


def test_update_missing_account_is_rejected_not_none(mock, clock):
    mock.patch(f"{BASE}/accounts/gone", status_code=404, json={"message": "Account gone not found"})
    with pytest.raises(BillingRejected) as caught:
        make_client(clock).update_account("gone", {"name": "x"})
    assert (caught.value.code, caught.value.http_status, str(caught.value)) == (
        BILLING_REJECTED, 404, "Account gone not found")


# ---------------------------------------------------------------------------------------- duplicates

@pytest.mark.parametrize("status,message", [
    (409, "Conflict"),
    (400, "Customer with id 8ad0000000000001 already exists"),
    (422, "Duplicate id: 8ad0000000000001"),
    (400, "Account ID already in use"),
])
def test_duplicate_id_is_billing_conflict(mock, clock, status, message):
    mock.post(f"{BASE}/customers", status_code=status, json={"message": message})
    mock.post(f"{BASE}/accounts", status_code=status, json={"message": message})
    mock.post(f"{BASE}/settings", status_code=status, json={"message": message})
    client = make_client(clock)

    for create in (lambda: client.create_customer({"id": "8ad0000000000001"}),
                   lambda: client.create_account({"id": "8ad0000000000001"}),
                   lambda: client.create_setting({"id": "s1"})):
        with pytest.raises(BillingConflict) as caught:
            create()
        assert isinstance(caught.value, BillingRejected)
        assert caught.value.http_status == status
        assert caught.value.remote_message == message
    assert len(mock.request_history) == 3  # a conflict is an answer, not something to retry


def test_other_400_is_rejected_not_conflict(mock, clock):
    mock.post(f"{BASE}/customers", status_code=400, json={"message": "name: size must be between 3 and 255"})
    with pytest.raises(BillingRejected) as caught:
        make_client(clock).create_customer({"id": "x", "name": "A"})
    assert type(caught.value) is BillingRejected
    assert str(caught.value) == "name: size must be between 3 and 255"
    assert caught.value.http_status == 400
    assert caught.value.retryable is False


def test_is_duplicate_rules():
    assert is_duplicate(409, "")
    assert is_duplicate(400, "customer ALREADY EXISTS")
    assert not is_duplicate(400, "invalid email")
    assert not is_duplicate(500, "already exists")


# ---------------------------------------------------------------------------------------- auth, retries, pacing

def test_401_is_auth_failed_without_retry(mock, clock):
    mock.get(f"{BASE}/customers/c1", status_code=401, json={"message": "Unauthorized"})
    with pytest.raises(AuthFailed) as caught:
        make_client(clock).get_customer("c1")
    assert caught.value.code == AUTH_FAILED
    assert len(mock.request_history) == 1
    assert clock.sleeps == []


def test_429_retry_after_honoured(mock, clock):
    mock.get(f"{BASE}/customers/c1", [{"status_code": 429, "headers": {"Retry-After": "4"},
                                       "json": {"message": "Too many requests"}},
                                      {"json": CUSTOMER}])
    before = sample("integration_remote_rate_limited_total", api="billing")

    assert make_client(clock).get_customer("c1")["id"] == CUSTOMER["id"]

    assert clock.sleeps == [4]
    assert sample("integration_remote_rate_limited_total", api="billing") == before + 1


def test_retry_after_takes_precedence_over_a_spent_windows_reset(mock, clock):
    mock.get(f"{BASE}/customers/c1", [
        {"status_code": 503, "json": {"message": "busy"},
         "headers": {"Retry-After": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "30"}},
        {"json": CUSTOMER, "headers": {"RateLimit-Remaining": "99", "RateLimit-Reset": "29"}},
    ])
    assert make_client(clock).get_customer("c1")["id"] == CUSTOMER["id"]
    assert clock.sleeps == [1]


def test_oversized_billing_answer_is_malformed_naming_the_call(mock, clock):
    from integration.clients.bodies import MAX_BODY_BYTES

    mock.get(f"{BASE}/customers/c1", content=b"[" * (MAX_BODY_BYTES + 1))
    with pytest.raises(MalformedResponse, match=r"^billing GET /customers/\{customer_id\}: response body larger"):
        make_client(clock).get_customer("c1")
    assert len(mock.request_history) == 1


def test_ratelimit_remaining_zero_waits_for_reset(mock, clock):
    mock.get(f"{BASE}/customers/c1", [
        {"json": CUSTOMER, "headers": {"RateLimit-Remaining": "0", "RateLimit-Reset": "5"}},
        {"json": CUSTOMER, "headers": {"RateLimit-Remaining": "99", "RateLimit-Reset": "60"}},
    ])
    client = make_client(clock)
    client.get_customer("c1")
    client.get_customer("c1")
    assert clock.sleeps == [5]


def test_5xx_retried_then_transient(mock, clock):
    mock.post(f"{BASE}/customers", status_code=503, json={"message": "Service Unavailable"})
    with pytest.raises(TransientError) as caught:
        make_client(clock, max_attempts=4).create_customer({"id": "x"})
    assert "HTTP 503: Service Unavailable" in str(caught.value)
    assert len(mock.request_history) == 4
    assert len(clock.sleeps) == 3


@pytest.mark.parametrize("failure", [requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout,
                                     requests.exceptions.ConnectionError])
def test_connection_errors_and_timeouts_retried(mock, clock, failure):
    mock.get(f"{BASE}/invoices/inv1", [{"exc": failure}, {"json": {"id": "inv1", "totalAmount": 1}}])
    assert make_client(clock).get_invoice("inv1")["id"] == "inv1"
    assert len(mock.request_history) == 2


def test_retried_create_that_already_landed_meets_conflict(mock, clock):
    """A create whose answer was lost is retried; the platform then says the ID exists."""
    mock.post(f"{BASE}/customers", [{"exc": requests.exceptions.ReadTimeout},
                                    {"status_code": 409, "json": {"message": "Customer already exists"}}])
    with pytest.raises(BillingConflict):
        make_client(clock).create_customer({"id": "x"})


def test_timeout_passed_to_requests(mock, clock):
    mock.get(f"{BASE}/customers/c1", json=CUSTOMER)
    make_client(clock, timeout=(2, 9)).get_customer("c1")
    assert mock.request_history[0].timeout == (2, 9)


# ---------------------------------------------------------------------------------------- settings

def test_list_settings_filters_and_follows_pages(mock, clock):
    mock.get(f"{BASE}/settings", [
        {"json": {"data": [{"id": "s1", "name": "zuora.accountId", "value": "8ad1"}], "nextToken": "tok2"}},
        {"json": {"data": [{"id": "s2", "name": "zuora.accountNumber", "value": "A1"}]}},
    ])
    rows = make_client(clock).list_settings("ACCOUNT", "acc 1", namespace="zuora")
    assert [r["id"] for r in rows] == ["s1", "s2"]
    first, second = mock.request_history
    from urllib.parse import parse_qs, urlsplit
    assert parse_qs(urlsplit(first.url).query) == {"entity_type": ["ACCOUNT"], "entity_id": ["acc 1"],
                                                   "namespace": ["zuora"], "pageSize": ["50"]}
    assert parse_qs(urlsplit(second.url).query)["nextToken"] == ["tok2"]  # Togai's parameter, case and all


def test_list_settings_validates(mock, clock):
    client = make_client(clock)
    with pytest.raises(InvalidData):
        client.list_settings("account; drop", "a")
    with pytest.raises(InvalidData):
        client.list_settings("ACCOUNT", "")
    mock.get(f"{BASE}/settings", json={"items": []})
    with pytest.raises(MalformedResponse, match="data"):
        client.list_settings("ACCOUNT", "a")


def test_create_setting_and_update_setting(mock, clock):
    setting = {"id": "zuora.accountId", "value": "8ad1", "entityType": "ACCOUNT", "entityId": "acc1",
               "namespace": "USER", "name": "zuora.accountId", "dataType": "STRING"}
    mock.post(f"{BASE}/settings", status_code=201, json=setting)
    mock.patch(f"{BASE}/settings/setting.USER.zuora.ACCOUNT.acc1", status_code=204)
    client = make_client(clock)

    assert client.create_setting(setting) == setting
    assert client.update_setting("setting.USER.zuora.ACCOUNT.acc1", "8ad2") == {
        "id": "setting.USER.zuora.ACCOUNT.acc1", "value": "8ad2"}
    assert json.loads(mock.request_history[1].text) == {"value": "8ad2"}


def test_create_setting_204_returns_what_was_sent(mock, clock):
    mock.post(f"{BASE}/settings", status_code=204)
    setting = {"id": "s1", "value": "v", "entityType": "CUSTOMER", "entityId": "c", "namespace": "USER",
               "name": "n", "dataType": "STRING"}
    assert make_client(clock).create_setting(setting) == setting


# ---------------------------------------------------------------------------------------- invoices and validation

INVOICE_TEXT = """{"id": "inv.20240101.abc", "ownerId": "acc1", "status": "DUE", "finalizingStatus": "FINALIZED",
 "totalAmount": 1234567890123456.78,
 "revenueInfo": {"type": "TOTAL_AMOUNT", "value": 0.1, "lineItems": [
   {"type": "USAGE_RATE_CARD_AMOUNT", "value": 0.30000000000000004, "quantity": 3, "valuePerQuantity": 0.1,
    "metadata": {"usageMeterId": "um.1"}}]}}"""


def test_invoice_amounts_are_decimal(mock, clock):
    mock.get(f"{BASE}/invoices/inv.20240101.abc", text=INVOICE_TEXT)
    invoice = make_client(clock).get_invoice("inv.20240101.abc")
    line = invoice["revenueInfo"]["lineItems"][0]
    assert invoice["totalAmount"] == Decimal("1234567890123456.78")
    assert isinstance(invoice["totalAmount"], Decimal)
    assert line["value"] == Decimal("0.30000000000000004") and isinstance(line["valuePerQuantity"], Decimal)
    assert line["quantity"] == 3


def test_decimal_payloads_sent_exactly(mock, clock):
    mock.patch(f"{BASE}/accounts/a1", json=ACCOUNT)
    make_client(clock).update_account("a1", {"metadata": {"credit": Decimal("0.10")}})
    assert mock.request_history[0].text == '{"metadata":{"credit":0.10}}'


@pytest.mark.parametrize("reply", [{"text": "<html>oops</html>"}, {"json": ["not", "an", "object"]},
                                   {"json": {"name": "no id"}}])
def test_malformed_success_response(mock, clock, reply):
    mock.get(f"{BASE}/customers/c1", **reply)
    with pytest.raises(MalformedResponse) as caught:
        make_client(clock).get_customer("c1")
    assert str(caught.value).startswith("billing GET /customers/{customer_id}: response ")


def test_invalid_ids_refused_before_sending(mock, clock):
    client = make_client(clock)
    for bad in ("", "..", "a\nb", None, "x" * 300):
        with pytest.raises(InvalidData):
            client.get_customer(bad)
    with pytest.raises(InvalidData):
        client.create_customer(["not", "a", "dict"])
    assert mock.request_history == []


# ---------------------------------------------------------------------------------------- metrics, logs, secrets

def test_metrics_count_template_not_id(mock, clock):
    mock.get(f"{BASE}/customers/cust-metrics-9", json=CUSTOMER)
    labels = {"api": "billing", "method": "GET", "endpoint": "/customers/{customer_id}", "status": "200"}
    before = sample("integration_remote_calls_total", **labels)
    make_client(clock).get_customer("cust-metrics-9")
    assert sample("integration_remote_calls_total", **labels) == before + 1


def test_token_never_in_logs_or_exceptions(mock, clock, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "integration"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    mock.get(f"{BASE}/customers/c1", status_code=401, json={"message": f"bad token {TOKEN}"})
    mock.post(f"{BASE}/customers", status_code=400, json={"message": f"echo Bearer {TOKEN}"})
    mock.get(f"{BASE}/accounts/a1", status_code=500, json={"message": f"boom {TOKEN}"})
    client = make_client(clock, max_attempts=2)
    errors = []
    for call in (lambda: client.get_customer("c1"), lambda: client.create_customer({"id": "c1"}),
                 lambda: client.get_account("a1")):
        with pytest.raises(SyncError) as caught:
            call()
        errors.append(caught.value)

    assert [type(e) for e in errors] == [AuthFailed, BillingRejected, TransientError]
    texts = [caplog.text, repr(client)] + [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [str(v) for r in caplog.records for v in vars(r).values()]
    assert all(TOKEN not in t for t in texts)
    assert str(errors[1]) == "echo Bearer ***"


def test_constructor_refuses_bad_configuration():
    with pytest.raises(ValueError, match="base_url must be an http"):
        BillingClient("not a url", TOKEN)
    with pytest.raises(ValueError, match="api_token is required"):
        BillingClient(BASE, "")
