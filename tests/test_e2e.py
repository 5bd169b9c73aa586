"""End to end, as processes: load through the real webhooks while workers are killed, faults are
injected and workers are told to stop — then every object must be synced exactly once, checked
against the sandboxes' own records and the mapping table."""
from __future__ import annotations

import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

from tests.e2e_stack import ProcessStack
from tests.engines import store_sql

pytestmark = [pytest.mark.slow, pytest.mark.both_engines]

METERS = {"api-calls": ("quantity", "C-00000001", "Each"), "storage-gb": ("revenue", "C-00000002", "USD")}


def create_zuora_accounts(stack: ProcessStack, count: int, prefix: str = "Zuora Customer") -> list[str]:
    token = stack.zuora_token()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def one(i: int) -> str:
        body = {"name": f"{prefix} {i:04d}", "currency": "USD", "billCycleDay": 1, "autoPay": False,
                "billToContact": {"firstName": "Test", "lastName": f"Customer{i}", "workEmail": f"z{i}@example.com",
                                  "country": "Germany", "city": "Berlin"}}
        # As a careful Zuora user would: retry injected faults under one Idempotency-Key.
        for _ in range(30):
            resp = session.post(f"{stack.zuora.url}/v1/accounts", json=body, timeout=30,
                                headers={"Idempotency-Key": f"e2e-{prefix}-{i}"})
            data = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else {}
            if data.get("success"):
                return data["accountId"]
            time.sleep(0.1)
        raise AssertionError(f"could not create Zuora account {i}: {resp.status_code} {resp.text[:200]}")

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def create_billing_accounts(stack: ProcessStack, count: int) -> list[str]:
    def one(i: int) -> str:
        r = requests.post(f"{stack.billing.url}/_sandbox/accounts", timeout=30, json={
            "customer": {"id": f"cust-{i}", "name": f"Billing Customer {i:04d}", "primaryEmail": f"b{i}@example.com",
                         "address": {"line1": f"{i} Main St", "city": "Austin", "state": "TX", "country": "US"}},
            "account": {"id": f"acc-{i}", "name": f"Billing Customer {i:04d}", "invoiceCurrency": "USD"}})
        assert r.status_code in (200, 201), r.text
        return f"acc-{i}"

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def configure_meters(stack: ProcessStack) -> None:
    for meter_id, (mode, charge, uom) in METERS.items():
        r = stack.admin("PUT", f"/admin/meters/{meter_id}", json={
            "zuora_subscription_number": "A-S00000001", "zuora_charge_number": charge, "uom": uom, "mode": mode})
        assert r.status_code in (200, 201), r.text


def create_invoices(stack: ProcessStack, account_ids: list[str]) -> dict[str, Decimal]:
    """One finalized invoice per account: two fixed lines and usage on both synced meters.
    Returns the expected Zuora invoice total per billing invoice ID."""
    expected = {}

    def one(item):
        i, account_id = item
        invoice_id = f"inv-{i}"
        r = requests.post(f"{stack.billing.url}/_sandbox/invoices", timeout=30, json={
            "id": invoice_id, "accountId": account_id, "startDate": "2026-10-01T00:00:00Z",
            "endDate": "2026-11-01T00:00:00Z", "status": "DUE",
            "fixed": [{"description": "Platform fee", "amount": 0.1}, {"description": "Seats", "amount": 0.2}],
            "usage": [{"meterId": "api-calls", "name": "API calls", "quantity": 1000 + i, "units": "calls",
                       "valuePerQuantity": 0.001},
                      {"meterId": "storage-gb", "name": "Storage", "quantity": 3, "units": "GB",
                       "valuePerQuantity": 0.333333}]})
        assert r.status_code in (200, 201), r.text
        expected[invoice_id] = Decimal("0.3")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, enumerate(account_ids)))
    return expected


def assert_synced_exactly_once(stack: ProcessStack, zuora_ids: list[str], billing_ids: list[str],
                               invoices: dict[str, Decimal]) -> None:
    zuora, billing = stack.zuora_state(), stack.billing_state()
    # Accounts: one billing customer per Zuora account, one Zuora account per billing account.
    customers = [c["id"] for c in billing["customers"]]
    assert sorted(c for c in customers if c in set(zuora_ids)) == sorted(zuora_ids)
    assert len(customers) == len(set(customers)) == len(zuora_ids) + len(billing_ids)
    link_values = [a["basicInfo"].get("BillingAccountId__c") for a in zuora["accounts"]]
    assert len(zuora["accounts"]) == len(zuora_ids) + len(billing_ids)
    assert sorted(v for v in link_values if v in set(billing_ids)) == sorted(billing_ids)
    assert len(set(link_values)) == len(link_values)  # every Zuora account links to a different billing account
    # Invoices: exactly one Zuora invoice per billing invoice, to the cent.
    assert len(zuora["invoices"]) == len(invoices)
    invoice_rows = store_sql(stack.db).execute(
        "SELECT zuora_id, billing_id FROM id_mappings WHERE type = 'invoice'").fetchall()
    assert sorted(r["billing_id"] for r in invoice_rows) == sorted(invoices)
    by_id = {i["id"]: i for i in zuora["invoices"]}
    for row in invoice_rows:
        items = by_id[row["zuora_id"]]["invoiceItems"]
        assert sum(Decimal(str(item["amount"])) for item in items) == invoices[row["billing_id"]]
    # Usage: one record per synced meter per invoice, never twice.
    usage = zuora["usage"]
    assert len(usage) == 2 * len(invoices)
    keys = [(u["AccountNumber"], u["ChargeNumber"]) for u in usage]
    assert len(set(keys)) == len(keys)
    revenue = [Decimal(str(u["Quantity"])) for u in usage if u["ChargeNumber"] == "C-00000002"]
    assert set(revenue) == {Decimal("0.999999")}
    # The mapping table matches.
    counts = {r["type"]: r["n"] for r in store_sql(stack.db).execute(
        "SELECT type, COUNT(*) AS n FROM id_mappings GROUP BY type").fetchall()}
    assert counts == {"account": len(zuora_ids) + len(billing_ids), "invoice": len(invoices),
                      "usage": 2 * len(invoices)}
    failures = stack.admin("GET", "/admin/failures").json()["data"]
    assert failures == []


def test_load_with_workers_killed_at_random_syncs_everything_once(tmp_path, database_url):
    rng = random.Random(20261123)
    with ProcessStack(tmp_path, web_workers=3, database_url=database_url) as stack:
        stack.start_worker()
        stack.start_worker()
        configure_meters(stack)
        loading = threading.Event()
        loading.set()

        def killer():
            while loading.is_set() or stack.kills < 10:
                time.sleep(rng.uniform(0.2, 0.6))
                live = stack.live_workers()
                if live:
                    stack.kill_worker(rng.choice(live))
                stack.start_worker()
                if stack.kills >= 30:
                    break

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        zuora_ids = create_zuora_accounts(stack, 200)
        billing_ids = create_billing_accounts(stack, 100)
        invoices = create_invoices(stack, billing_ids)
        loading.clear()
        thread.join(timeout=120)
        while len(stack.live_workers()) < 2:
            stack.start_worker()
        stack.wait_settled(180, expect_events=200 + 100 + 100)
        assert stack.kills >= 10
        assert_synced_exactly_once(stack, zuora_ids, billing_ids, invoices)
        logs = stack.log_text()
        for secret in (stack.zuora_sb.client_secret, stack.billing_sb.api_token, stack.billing_sb.webhook_secret,
                       stack.callout_password, stack.admin_token):
            assert secret not in logs


@pytest.mark.postgresql_only
def test_several_hosts_on_postgresql_with_workers_and_a_web_process_killed(tmp_path, database_url):
    """CONTRACT §10: 2 `serve --no-worker` behind a balancer and 3 `worker` processes share one
    PostgreSQL; workers are SIGKILLed at random at least 15 times and one web process once. Every
    object exists exactly once on each sandbox and in the mapping table, no event is lost, none is
    left running, and the database never held two running events of one object (its index)."""
    rng = random.Random(20261129)
    with ProcessStack(tmp_path, web_workers=1, database_url=database_url, web_processes=2) as stack:
        for _ in range(3):
            stack.start_worker()
        configure_meters(stack)
        loading = threading.Event()
        loading.set()

        def killer():
            while loading.is_set() or stack.kills < 15:
                time.sleep(rng.uniform(0.2, 0.5))
                live = stack.live_workers()
                if live:
                    stack.kill_worker(rng.choice(live))
                while len(stack.live_workers()) < 3:
                    stack.start_worker()
                if stack.kills >= 40:
                    break

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        zuora_ids = create_zuora_accounts(stack, 150)
        stack.kill_web(1)  # a web host dies mid-load; the balancer routes around it
        zuora_ids += create_zuora_accounts(stack, 150, prefix="Second Wave")
        billing_ids = create_billing_accounts(stack, 150)
        invoices = create_invoices(stack, billing_ids)
        loading.clear()
        thread.join(timeout=120)
        stack.wait_settled(150, expect_events=300 + 150 + 150)
        assert stack.kills >= 15
        assert stack.webs[1].poll() is not None and stack.webs[0].poll() is None
        assert_synced_exactly_once(stack, zuora_ids, billing_ids, invoices)
        assert stack.statuses() == {"done": sum(stack.statuses().values())}


def test_sandbox_faults_do_not_change_the_end_state(tmp_path, database_url):
    with ProcessStack(tmp_path, http_timeout=1.0, database_url=database_url) as stack:
        for _ in range(4):  # retries inside the clients hold a worker; more of them keep the test short
            stack.start_worker()
        configure_meters(stack)
        faults = {"error_rate": 0.10, "error_status": 503, "hang_rate": 0.05, "hang_seconds": 2.0, "seed": 7}
        for url in (stack.zuora.url, stack.billing.url):
            requests.post(f"{url}/_sandbox/faults", json=faults, timeout=10).raise_for_status()
        zuora_ids = create_zuora_accounts(stack, 20)
        billing_ids = create_billing_accounts(stack, 10)
        stack.wait_settled(120, expect_events=20 + 10)
        # A 429 storm on Zuora while the invoices arrive, then every token revoked mid-load.
        requests.post(f"{stack.zuora.url}/_sandbox/faults", json={"rate_limit": 2, "rate_window_seconds": 1.0},
                      timeout=10).raise_for_status()
        invoices = create_invoices(stack, billing_ids)
        zuora_counters = lambda: requests.get(f"{stack.zuora.url}/_sandbox/faults", timeout=10).json()["counters"]  # noqa: E731
        stack.wait_until(lambda: zuora_counters()["rate_limited"] > 0, 60, "rate-limited")
        tokens = stack.zuora_state()["tokens_issued"]
        requests.post(f"{stack.zuora.url}/_sandbox/revoke-tokens", timeout=10).raise_for_status()
        stack.wait_until(lambda: stack.zuora_state()["tokens_issued"] > tokens, 60, "re-authenticated")
        requests.post(f"{stack.zuora.url}/_sandbox/faults", json={"rate_limit": None}, timeout=10).raise_for_status()
        stack.wait_settled(180, expect_events=20 + 10 + 10)
        stats = requests.get(f"{stack.zuora.url}/_sandbox/faults", timeout=10).json()["counters"]
        assert stats["injected_errors"] > 0 and stats["hangs"] > 0 and stats["rate_limited"] > 0, stats
        assert stack.zuora_state()["tokens_issued"] >= 2  # the revocation forced a fresh token
        for url in (stack.zuora.url, stack.billing.url):
            requests.delete(f"{url}/_sandbox/faults", timeout=10)
        assert_synced_exactly_once(stack, zuora_ids, billing_ids, invoices)


def test_sigterm_during_load_loses_nothing(tmp_path, database_url):
    with ProcessStack(tmp_path, database_url=database_url) as stack:
        worker = stack.start_worker()
        zuora_ids = create_zuora_accounts(stack, 60)
        # SIGTERM once the worker is at work (its handlers are installed by then), not after a guess.
        stack.wait_until(lambda: stack.statuses().get("done", 0) >= 1, 60, "working")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0  # finished the event in hand, then left
        mid = stack.statuses()
        assert mid.get("running", 0) == 0  # nothing left half-done under a dead lease
        stack.start_worker()
        stack.wait_settled(120, expect_events=60)
        customers = {c["id"] for c in stack.billing_state()["customers"]}
        assert customers == set(zuora_ids)
        assert stack.statuses() == {"done": len(store_sql(stack.db).execute("SELECT id FROM events").fetchall())}
