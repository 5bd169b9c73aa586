"""The API clients against the sandboxes over real HTTP: every method end to end, a forced token
expiry, and an injected 429 storm."""
import threading
import time
from decimal import Decimal

import pytest
import requests

from integration.billing.togai.client import BillingClient
from integration.domain.errors import AuthFailed, BillingConflict, ZuoraRejected
from integration.flows.usage import HEADINGS
from integration_sandbox.billing import create_billing_sandbox
from integration_sandbox.server import ServerThread
from integration_sandbox.zuora import create_zuora_sandbox


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


@pytest.fixture
def zuora_env():
    clock = Clock()
    app = create_zuora_sandbox(clock=clock, token_lifetime=3599)
    sandbox = app.extensions["zuora_sandbox"]
    with ServerThread(app) as server:
        client = ZuoraClientFactory(server.url, sandbox)
        yield server, sandbox, client, clock
    sandbox.close()


def ZuoraClientFactory(url, sandbox, **kwargs):
    from integration.zuora.client import ZuoraClient
    return ZuoraClient(url, sandbox.client_id, sandbox.client_secret, **kwargs)


@pytest.fixture
def billing_env():
    app = create_billing_sandbox()
    sandbox = app.extensions["billing_sandbox"]
    with ServerThread(app) as server:
        yield server, sandbox, BillingClient(server.url, sandbox.api_token)
    sandbox.close()


ACCOUNT = {"name": "Live Test Ltd", "currency": "EUR", "billCycleDay": 1, "autoPay": False,
           "billToContact": {"firstName": "Live", "lastName": "Test", "workEmail": "live@example.com",
                             "country": "France"}}


def test_zuora_client_methods_end_to_end(zuora_env):
    server, _sandbox, zuora, _ = zuora_env
    created = zuora.create_account({**ACCOUNT, "BillingAccountId__c": "acc-live"}, idempotency_key="acct-live-1")
    again = zuora.create_account({**ACCOUNT, "BillingAccountId__c": "acc-live"}, idempotency_key="acct-live-1")
    assert again.id == created.id  # replayed, not created twice
    account = zuora.get_account(created.number)
    assert account.id == created.id
    zuora.update_account(created.id, {"name": "Live Test SARL"})
    assert zuora.get_account(created.id).name == "Live Test SARL"
    [found] = zuora.find_accounts("BillingAccountId__c", "acc-live")
    assert found.id == created.id
    assert zuora.find_accounts("BillingAccountId__c", "nobody") == []
    with pytest.raises(ZuoraRejected) as rejected:
        zuora.get_account("A99999999")
    assert rejected.value.remote_code == "50000040"

    invoice = zuora.create_invoice({"accountId": created.id, "invoiceDate": "2026-11-01", "status": "Posted",
                                    "invoiceItems": [{"amount": Decimal("0.1"), "serviceStartDate": "2026-10-01",
                                                      "chargeName": "A"},
                                                     {"amount": Decimal("0.2"), "serviceStartDate": "2026-10-01",
                                                      "chargeName": "B"}]},
                                   idempotency_key="inv-live-1")
    fetched = zuora.get_invoice(invoice.id)
    assert fetched.amount == Decimal("0.3")

    record = zuora.create_usage({"AccountNumber": created.number, "Quantity": Decimal("2.5"), "UOM": "Each",
                                 "StartDateTime": "2026-10-01T00:00:00", "SubscriptionNumber": "A-S1",
                                 "ChargeNumber": "C-1"}, idempotency_key="usage-live-1")
    assert record
    row = dict.fromkeys(HEADINGS, "") | {"ACCOUNT_ID": created.number, "UOM": "Each", "QTY": "7",
                                      "STARTDATE": "10/01/2026", "ENDDATE": "10/31/2026"}
    csv = (",".join(HEADINGS) + "\r\n" + ",".join(row[h] for h in HEADINGS) + "\r\n").encode()
    import_id = zuora.upload_usage(csv, filename="live.csv", idempotency_key="usage-file-live-1")
    status = zuora.wait_for_usage_import(import_id, poll_interval=0.01)
    assert status.status == "Completed"
    usage = requests.get(f"{server.url}/_sandbox/state", timeout=10).json()["usage"]
    assert sorted(Decimal(str(u["Quantity"])) for u in usage) == [Decimal("2.5"), Decimal("7")]


def test_zuora_client_survives_forced_token_expiry_and_revocation(zuora_env):
    server, _sandbox, zuora, clock = zuora_env
    zuora.create_account(ACCOUNT, idempotency_key="acct-exp")
    clock.now += 4000  # the sandbox's token has expired; the client's own clock does not know
    assert zuora.find_accounts("name", "Live Test Ltd")
    requests.post(f"{server.url}/_sandbox/revoke-tokens", timeout=10)
    assert zuora.find_accounts("name", "Live Test Ltd")
    state = requests.get(f"{server.url}/_sandbox/state", timeout=10).json()
    assert state["tokens_issued"] == 3


def storm(url: str, stop: threading.Event, saturated: threading.Event, path: str, headers: dict) -> None:
    """Another tenant's traffic using up the rate limit, so our client meets real 429s."""
    with requests.Session() as session:
        while not stop.is_set():
            if session.get(f"{url}{path}", headers=headers, timeout=5).status_code == 429:
                saturated.set()


def start_storm(*args, seconds: float = 1.5) -> tuple[threading.Event, threading.Thread]:
    """A storm that uses up every window for ``seconds``, then blows over (the client must still
    get every answer, by honouring Retry-After rather than giving up)."""
    stop, saturated = threading.Event(), threading.Event()
    thread = threading.Thread(target=storm, args=(*args[:1], stop, saturated, *args[1:]))
    thread.start()
    assert saturated.wait(10)
    threading.Timer(seconds, stop.set).start()
    return stop, thread


def test_zuora_client_rides_out_a_429_storm():
    app = create_zuora_sandbox()  # real clock: the rate window must move
    sandbox = app.extensions["zuora_sandbox"]
    with ServerThread(app) as server:
        zuora = ZuoraClientFactory(server.url, sandbox, max_retry_seconds=30)
        zuora.create_account(ACCOUNT, idempotency_key="acct-storm")
        requests.post(f"{server.url}/_sandbox/faults", json={"rate_limit": 20, "rate_window_seconds": 1.0},
                      timeout=10)
        stop, thread = start_storm(server.url, "/v1/accounts/A00000001", {})
        try:
            for _ in range(5):
                assert zuora.get_account("A00000001").name == "Live Test Ltd"
        finally:
            stop.set()
            thread.join()
        counters = requests.get(f"{server.url}/_sandbox/faults", timeout=10).json()["counters"]
    sandbox.close()
    assert counters["rate_limited"] > 20  # the storm was real, and every call still got its answer


def test_wrong_zuora_credentials_are_auth_failed(zuora_env):
    server, sandbox, _, _ = zuora_env
    from integration.zuora.client import ZuoraClient
    with pytest.raises(AuthFailed):
        ZuoraClient(server.url, sandbox.client_id, "not-the-secret").get_account("A00000001")


def test_billing_client_methods_end_to_end(billing_env):
    server, _sandbox, billing = billing_env
    customer = {"id": "cust-live", "name": "Live Customer", "primaryEmail": "c@example.com",
                "address": {"line1": "1 Rue", "city": "Paris", "country": "FR"},
                "account": {"id": "acc-live", "name": "Live Customer", "invoiceCurrency": "EUR"}}
    billing.create_customer(customer)
    with pytest.raises(BillingConflict):
        billing.create_customer(customer)
    assert billing.get_customer("cust-live")["name"] == "Live Customer"
    assert billing.get_customer("nobody") is None
    billing.create_account({"id": "acc-two", "customerId": "cust-live", "name": "Second", "invoiceCurrency": "EUR"})
    with pytest.raises(BillingConflict):
        billing.create_account({"id": "acc-two", "customerId": "cust-live", "name": "Second", "invoiceCurrency": "EUR"})
    assert billing.get_account("acc-two")["customerId"] == "cust-live"
    billing.update_account("acc-two", {"name": "Second Account"})
    assert billing.get_account("acc-two")["name"] == "Second Account"
    for i in range(12):  # more than one page of settings
        billing.create_setting({"id": f"s-{i}", "entityType": "ACCOUNT", "entityId": "acc-live",
                                "namespace": "zuora", "name": f"n{i}", "value": str(i), "dataType": "STRING"})
    with pytest.raises(BillingConflict):
        billing.create_setting({"id": "s-0", "entityType": "ACCOUNT", "entityId": "acc-live", "namespace": "zuora",
                                "name": "n0", "value": "0", "dataType": "STRING"})
    billing.update_setting("s-3", "three")
    settings = {s["name"]: s["value"] for s in billing.list_settings("ACCOUNT", "acc-live", "zuora")}
    assert len(settings) == 12 and settings["n3"] == "three"
    requests.post(f"{server.url}/_sandbox/invoices", timeout=10, json={
        "id": "inv-live", "accountId": "acc-live", "startDate": "2026-10-01T00:00:00Z",
        "endDate": "2026-11-01T00:00:00Z", "fixed": [{"description": "A", "amount": 0.1},
                                                     {"description": "B", "amount": 0.2}]}).raise_for_status()
    invoice = billing.get_invoice("inv-live")
    assert invoice["totalAmount"] == Decimal("0.3") and isinstance(invoice["totalAmount"], Decimal)
    assert billing.get_invoice("nope") is None


def test_billing_client_rides_out_a_429_storm(billing_env):
    server, sandbox, billing = billing_env
    requests.post(f"{server.url}/_sandbox/faults", json={"rate_limit": 20, "rate_window_seconds": 1.0}, timeout=10)
    stop, thread = start_storm(server.url, "/customers/x", {"Authorization": f"Bearer {sandbox.api_token}"})
    try:
        for i in range(5):
            assert billing.get_customer(f"nobody-{i}") is None
    finally:
        stop.set()
        thread.join()
    counters = requests.get(f"{server.url}/_sandbox/faults", timeout=10).json()["counters"]
    assert counters["rate_limited"] > 20


def test_clients_pace_themselves_below_the_limit(billing_env):
    """Alone against a limit, the client reads RateLimit-Remaining and waits instead of being refused."""
    server, _sandbox, billing = billing_env
    requests.post(f"{server.url}/_sandbox/faults", json={"rate_limit": 3, "rate_window_seconds": 1.0}, timeout=10)
    for i in range(7):
        assert billing.get_customer(f"nobody-{i}") is None
    counters = requests.get(f"{server.url}/_sandbox/faults", timeout=10).json()["counters"]
    assert counters["rate_limited"] == 0 and counters["requests"] >= 7
