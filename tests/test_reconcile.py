"""Reconciliation (CONTRACT §9) against both sandboxes over real HTTP: an invoice whose webhook never came
and a Zuora account whose callout failed every delivery are synced within one interval; a pass that dies
midway loses nothing; already-synced objects cost list calls only; ``integration reconcile`` prints them.

Each test starts the service first (``service_started``: its first pass, which records what the tenants
hold as existing before it, CONTRACT §12) and then loses a webhook; tests/test_onboarding_safety.py has
the tenant that already had data."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from click.testing import CliRunner

from integration.cli import main
from integration.clients.bodies import dumps_json
from integration.store import reconcile as state
from integration.worker.loop import Worker
from integration.worker.reconcile import ReconcileJob, candidates, run_pass
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.stack_helpers import sandbox_billing_account
from tests.test_invoice_flow import BILLING_TOKEN, PERIOD, ZUORA_ID, ZUORA_SECRET, loads

pytestmark = pytest.mark.both_engines


def quiet_invoice(stack, invoice_id: str, account_id: str = "acc-1") -> dict:
    """A finalized billing invoice whose ``invoice.finalized`` webhook is never sent."""
    body = {"accountId": account_id, "id": invoice_id, **PERIOD,
            "fixed": [{"description": "Platform fee", "amount": Decimal("49.99")}]}
    resp = requests.post(f"{stack.billing_server.url}/_sandbox/invoices?webhook=false", data=dumps_json(body),
                         headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 201, resp.text
    return loads(resp.text)


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def service_started(stack) -> None:
    """The service's first reconciliation pass (the worker runs it as it starts): it takes the baseline."""
    first = run_pass(stack.services)
    assert first.baseline and all(ids == [] for ids in first.queued.values())


def run_worker_with(stack, job: ReconcileJob) -> tuple[Worker, threading.Thread]:
    worker = Worker(stack.services.inbox, stack.handlers, poll_interval=0.01, periodic=[job])
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def test_the_sandbox_flag_suppresses_the_webhook(stack):
    stack.billing_account("acc-1")
    quiet_invoice(stack, "inv-quiet")
    events = requests.get(f"{stack.billing_server.url}/_sandbox/state", timeout=10).json()["events"]
    assert [e["type"] for e in events] == ["account.created"]  # the invoice sent nothing
    resp = requests.post(f"{stack.billing_server.url}/_sandbox/invoices?webhook=maybe", json={}, timeout=10)
    assert resp.status_code == 400 and "webhook" in resp.json()["message"]


def test_invoice_whose_webhook_never_came_reaches_zuora_within_one_interval(stack):
    account = stack.linked_account("acc-1")
    service_started(stack)
    invoice = quiet_invoice(stack, "inv-lost")
    job = ReconcileJob(stack.services, interval=timedelta(seconds=1))
    worker, thread = run_worker_with(stack, job)
    try:
        zinvoices = wait_for(lambda: stack.zuora_state()["invoices"])
    finally:
        worker.stop()
        thread.join(10)
        job.wait()
    assert len(zinvoices) == 1
    assert zinvoices[0]["accountId"] == account["accountId"]
    assert zinvoices[0]["BillingInvoiceId__c"] == invoice["id"]
    assert zinvoices[0]["amount"] == Decimal("49.99")
    assert [e["source"] for e in stack.events("invoice.finalized")] == ["reconcile"]


def test_zuora_account_whose_callouts_all_failed_is_synced_the_same_way(stack):
    zuora_url = stack.zuora_server.url
    service_started(stack)
    resp = requests.post(f"{zuora_url}/_sandbox/config", timeout=10, json={
        "callout_url": "http://127.0.0.1:9/callouts", "callout_attempts": 1, "callout_retry_interval": 0})
    assert resp.status_code == 200, resp.text
    try:
        created = stack.services.zuora.create_account(
            {"name": "Ada Lovelace", "currency": "USD", "billCycleDay": 1, "autoPay": False,
             "billToContact": {"firstName": "Ada", "lastName": "Lovelace", "country": "United Kingdom",
                               "workEmail": "ada@example.com"}}, idempotency_key="reconcile-test-ada")
        wait_for(lambda: [c for c in stack.zuora_state()["callouts"]
                          if c["account_id"] == created.id and c["outcome"]])
    finally:
        requests.post(f"{zuora_url}/_sandbox/config", json={"callout_url": None}, timeout=10)
    assert stack.events("account.callout") == []  # nothing ever reached the service

    result = run_pass(stack.services)
    stack.worker.drain()

    assert result.queued["zuora_account"] == [created.id]
    customer = requests.get(f"{stack.billing_server.url}/customers/{created.id}", timeout=10,
                            headers={"Authorization": f"Bearer {BILLING_TOKEN}"})
    assert customer.status_code == 200, customer.text
    assert [m["zuora_id"] for m in stack.mappings("account")] == [created.id]


def test_a_pass_that_dies_midway_loses_nothing_and_the_next_completes_it(stack):
    service_started(stack)
    for account_id in ("acc-a", "acc-b", "acc-c"):
        sandbox_billing_account(stack.billing_server.url, account_id, webhook=False)
    before = state.watermark(stack.services.db)

    def dies_after_one(services, since):
        for n, item in enumerate(candidates(services, since)):
            if n == 1:
                raise ConnectionError("the pass's host died")
            yield item

    with pytest.raises(ConnectionError):
        run_pass(stack.services, source=dies_after_one)
    assert state.watermark(stack.services.db) == before  # not moved: the window is read again
    assert [e["object_id"] for e in stack.events("account.created")] == ["acc-a"]

    second = run_pass(stack.services)
    assert second.queued["billing_account"] == ["acc-b", "acc-c"]  # acc-a already queued: not twice
    assert state.watermark(stack.services.db) == second.started_at
    stack.worker.drain()
    assert sorted(m["billing_id"] for m in stack.mappings("account")) == ["acc-a", "acc-b", "acc-c"]
    assert len(stack.zuora_state()["accounts"]) == 3


def test_already_synced_objects_cost_list_calls_only(stack):
    service_started(stack)
    stack.linked_account("acc-1")
    stack.finalized(stack.invoice(id="inv-synced", fixed=[{"description": "Fee", "amount": Decimal("5.00")}])["id"])
    stack.worker.drain()
    assert len(stack.mappings("invoice")) == 1
    zuora_before = len(stack.zuora_state()["requests"])
    billing_before = len(requests.get(f"{stack.billing_server.url}/_sandbox/state", timeout=10).json()["requests"])

    result = run_pass(stack.services, since=datetime.now(timezone.utc) - timedelta(days=1))

    assert result.found == {"zuora_account": 1, "billing_account": 1, "billing_invoice": 1, "billing_invoice_void": 0}
    assert all(ids == [] for ids in result.queued.values())
    zuora_new = stack.zuora_state()["requests"][zuora_before:]
    billing_new = requests.get(f"{stack.billing_server.url}/_sandbox/state", timeout=10).json()["requests"][
        billing_before:]
    assert {(r["method"], r["path"]) for r in zuora_new} == {("GET", "/object-query/accounts")}
    assert {(r["method"], r["path"]) for r in billing_new} == {("GET", "/accounts"), ("GET", "/invoices")}


def test_reconcile_command_prints_what_it_queued(stack, monkeypatch):
    env = {"DATABASE_URL": stack.services.config.database_url, "ZUORA_BASE_URL": stack.zuora_server.url,
           "ZUORA_CLIENT_ID": ZUORA_ID, "ZUORA_CLIENT_SECRET": ZUORA_SECRET,
           "BILLING_BASE_URL": stack.billing_server.url, "BILLING_API_TOKEN": BILLING_TOKEN,
           "BILLING_WEBHOOK_SECRET": WEBHOOK_SECRET, "ADMIN_TOKEN": ADMIN_TOKEN, "ZUORA_CALLOUT_AUTH": "none"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    started = CliRunner().invoke(main, ["reconcile"])  # the first pass: a baseline, nothing queued
    assert started.exit_code == 0, started.output
    assert started.output.splitlines() == [
        "first pass: recorded 0 zuora accounts, 0 billing accounts, 0 billing invoices as existing before the "
        "service; nothing queued (onboard them with integration backfill; later passes sync what is new)"]
    sandbox_billing_account(stack.billing_server.url, "acc-cli", webhook=False)
    before = state.watermark(stack.services.db)

    looked_back = CliRunner().invoke(main, ["reconcile", "--since", "2020-01-01T00:00:00Z"])
    assert looked_back.exit_code == 0, looked_back.output
    assert "queued billing account acc-cli" in looked_back.output
    assert state.watermark(stack.services.db) == before  # --since never moves the watermark

    again = CliRunner().invoke(main, ["reconcile"])
    assert again.exit_code == 0, again.output
    assert "billing accounts: 1 read, 0 queued" in again.output  # its event is already in hand
    assert state.watermark(stack.services.db) > before

    bad = CliRunner().invoke(main, ["reconcile", "--since", "yesterday"])
    assert bad.exit_code == 2 and "ISO-8601" in bad.output
