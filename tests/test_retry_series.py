"""Retries that really retry (CONTRACT §6): an operator's retry, the scheduled retry and a
MISSING_MAPPING release each start a new attempt series with a new Idempotency-Key, so a fixed
problem is fixed by one retry; every series looks up what an earlier one created, so a success
whose answer was lost is never created twice. Against both sandboxes over real HTTP."""
from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests

from integration import create_app
from integration.domain.errors import (
    MISSING_MAPPING,
    RETRIES_EXHAUSTED,
    ZUORA_REJECTED,
    InvalidData,
)
from integration.domain.times import utcnow
from integration.flows import build_handlers
from integration.flows.usage import holds_marker, usage_description, usage_marker
from integration.store import failures
from integration.store.db import Database
from integration.store.events import idempotency_key
from integration.store.migrate import revisions
from integration.worker.loop import Worker
from integration.worker.scheduled_retry import latest_slot, scheduled_retry_job
from integration.zuora.client import ZuoraClient
from tests.conftest import ADMIN_TOKEN
from tests.engines import store_sql
from tests.legacy_stores import make_old_store, old_files
from tests.test_invoice_flow import ZUORA_ID, ZUORA_SECRET, Stack, only_invoice

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EUR_NOT_ENABLED = "Currency EUR is not enabled"


@pytest.fixture
def stack(sandboxes, tmp_path, database_url):
    """conftest's stack, and the Zuora sandbox's fault switches cleared after each test."""
    s = Stack(sandboxes, tmp_path, database_url)
    yield s
    requests.delete(f"{s.zuora_server.url}/_sandbox/faults", timeout=10)
    s.close()


def zuora_post(stack, route: str, **body) -> dict:
    resp = requests.post(f"{stack.zuora_server.url}{route}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def reject_next_write(stack, code: int) -> None:
    """The next Zuora write is refused with a business-rule reason (and Zuora stores that answer)."""
    zuora_post(stack, "/_sandbox/fail-next", count=1, code=code, message=EUR_NOT_ENABLED)


def lose_next(stack, path: str, **options) -> None:
    zuora_post(stack, "/_sandbox/lose-next", path=path, **options)


def account_created(stack, billing_id: str = "acc-1") -> str:
    return stack.services.inbox.record(source="billing", type="account.created", object_type="account",
                                       object_id=billing_id, object_key=f"billing-account:{billing_id}",
                                       dedupe_key=f"billing:created:{billing_id}").event_id


def zuora_accounts(stack) -> list[dict]:
    return stack.zuora_state()["accounts"]


def history(stack, event_id: str) -> list[tuple]:
    return [(a.series, a.attempt, a.outcome, a.code) for a in stack.services.inbox.history(event_id)]


def operator_retry(stack, *event_ids: str) -> None:
    """POST /admin/failures/retry, as an operator would."""
    client = create_app(services=stack.services).test_client()
    resp = client.post("/admin/failures/retry", headers=AUTH, json={"ids": list(event_ids)})
    assert resp.status_code == 200 and resp.get_json()["retried"] >= len(event_ids)


def scheduled_retry(stack) -> None:
    """Run the scheduled retry's latest slot, with a clock one minute past it."""
    slot = latest_slot(stack.services.config.retry_cron, utcnow())
    job = scheduled_retry_job(stack.services, clock=lambda: slot + timedelta(minutes=1))
    job()
    assert len(job.runs) == 1


RETRIES = {"operator": operator_retry, "scheduled": lambda stack, *_: scheduled_retry(stack)}


# -- (1, 3) rejected → fixed → one retry succeeds ------------------------------------------------------

@pytest.mark.parametrize("retry", RETRIES)
def test_a_rejected_account_is_created_by_one_retry_after_the_fix(stack, retry):
    stack.billing_account("acc-1")
    event_id = account_created(stack)
    reject_next_write(stack, 53100030)
    stack.worker.drain()
    event = stack.event(event_id)
    assert (event.status, event.error_code) == ("failed", ZUORA_REJECTED)
    assert EUR_NOT_ENABLED in event.last_error and zuora_accounts(stack) == []
    first_key = stack.zuora_requests("POST", "/v1/accounts")[0]["idempotency_key"]

    RETRIES[retry](stack, event_id)  # the tenant admin has enabled EUR meanwhile
    stack.worker.drain()

    event = stack.event(event_id)
    assert (event.status, event.series) == ("done", 2)
    [account] = zuora_accounts(stack)
    assert account["basicInfo"]["BillingAccountId__c"] == "acc-1"
    keys = [p["idempotency_key"] for p in stack.zuora_requests("POST", "/v1/accounts")]
    # A new key, or Zuora would have answered with the stored refusal for a day.
    assert keys == [first_key, f"billing-account:acc-1:{event.series_key}"] and keys[0] != keys[1]
    assert history(stack, event_id) == [(1, 1, "failed", ZUORA_REJECTED), (2, 1, "done", None)]
    [row] = stack.mappings("account")
    assert row["zuora_id"] == account["basicInfo"]["id"]


@pytest.mark.parametrize("retry", RETRIES)
def test_a_rejected_invoice_is_created_by_one_retry_after_the_fix(stack, retry):
    stack.linked_account()
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": Decimal("12.34")}])
    event_id = stack.finalized(invoice["id"])
    reject_next_write(stack, 59210030)
    stack.worker.drain()
    assert (stack.event(event_id).status, stack.event(event_id).error_code) == ("failed", ZUORA_REJECTED)
    assert stack.zuora_state()["invoices"] == []

    RETRIES[retry](stack, event_id)
    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    zinv = only_invoice(stack)
    assert (zinv["amount"], zinv["BillingInvoiceId__c"]) == (Decimal("12.34"), invoice["id"])
    keys = [p["idempotency_key"] for p in stack.zuora_requests("POST", "/v1/invoices")]
    assert len(keys) == 2 and keys[1] == f"billing-invoice:{invoice['id']}:{stack.event(event_id).series_key}"
    assert keys[0] != keys[1]
    [row] = stack.mappings("invoice")
    assert row["zuora_id"] == zinv["id"]


# -- (2, 3) a success whose answer was lost → a retry → still exactly one object ----------------------

@pytest.mark.parametrize("retry", RETRIES)
def test_a_lost_account_success_then_a_retry_creates_no_second_account(stack, retry):
    stack.billing_account("acc-1")
    event_id = account_created(stack)
    lose_next(stack, "/v1/accounts", mode="failure")
    stack.worker.drain()
    assert stack.event(event_id).status == "failed"
    [account] = zuora_accounts(stack)  # it was created; we were told otherwise

    RETRIES[retry](stack, event_id)
    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    assert [a["basicInfo"]["id"] for a in zuora_accounts(stack)] == [account["basicInfo"]["id"]]
    assert len(stack.zuora_requests("POST", "/v1/accounts")) == 1  # found by the link field, not re-posted
    [row] = stack.mappings("account")
    assert (row["zuora_id"], row["billing_id"]) == (account["basicInfo"]["id"], "acc-1")


@pytest.mark.parametrize("retry", RETRIES)
def test_a_lost_invoice_success_then_a_retry_creates_no_second_invoice(stack, retry):
    stack.linked_account()
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": Decimal("5.00")}])
    event_id = stack.finalized(invoice["id"])
    lose_next(stack, "/v1/invoices", mode="failure")
    stack.worker.drain()
    assert stack.event(event_id).status == "failed"
    zinv = only_invoice(stack)

    RETRIES[retry](stack, event_id)
    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    assert only_invoice(stack)["id"] == zinv["id"]
    assert len(stack.zuora_requests("POST", "/v1/invoices")) == 1
    [row] = stack.mappings("invoice")
    assert (row["zuora_id"], row["zuora_number"], row["billing_id"]) == (zinv["id"], zinv["invoiceNumber"],
                                                                        invoice["id"])


@pytest.mark.parametrize("retry", RETRIES)
def test_lost_usage_success_then_a_retry_imports_nothing_twice(stack, retry):
    stack.linked_account()
    stack.meter("m-api", "revenue")
    stack.meter("m-gb", "quantity")
    invoice = stack.invoice(usage=[{"meterId": "m-api", "name": "API", "quantity": 3,
                                    "valuePerQuantity": Decimal("0.5")},
                                   {"meterId": "m-gb", "name": "Storage", "quantity": 2,
                                    "valuePerQuantity": Decimal("1")}])
    stack.finalized(invoice["id"])
    lose_next(stack, "/v1/usage", mode="failure")
    stack.worker.drain()
    [usage_event] = stack.events("invoice.usage")
    assert (usage_event["status"], usage_event["error_code"]) == ("failed", ZUORA_REJECTED)
    records = stack.zuora_state()["usage"]
    assert len(records) == 2  # imported; we were told otherwise

    RETRIES[retry](stack, usage_event["id"])
    stack.worker.drain()

    assert stack.event(usage_event["id"]).status == "done"
    assert stack.zuora_state()["usage"] == records
    assert len(stack.zuora_requests("POST", "/v1/usage")) == 1
    rows = {r["billing_id"]: r["zuora_id"] for r in stack.mappings("usage")}
    by_meter = {r["Description"].split("; meter ")[-1].split(";")[0]: r["Id"] for r in records}
    assert rows == {f"{invoice['id']}:m-api": by_meter["m-api"], f"{invoice['id']}:m-gb": by_meter["m-gb"]}


# -- automatic retries inside one series reuse its key ----------------------------------------------------

def test_a_5xx_after_the_write_is_answered_from_zuoras_store_in_the_same_series(stack):
    stack.billing_account("acc-1")
    event_id = account_created(stack)
    lose_next(stack, "/v1/accounts", mode="error", status=503)
    stack.worker.drain()

    event = stack.event(event_id)
    assert (event.status, event.series) == ("done", 1)
    assert len(zuora_accounts(stack)) == 1
    posts = stack.zuora_requests("POST", "/v1/accounts")
    assert [p["status"] for p in posts] == [503, 200]
    assert {p["idempotency_key"] for p in posts} == {f"billing-account:acc-1:{event.series_key}"}


def test_a_timeout_after_the_write_is_answered_from_zuoras_store_in_the_same_series(stack):
    stack.linked_account()
    # A client that gives up reading after 0.3 s; the sandbox holds the answer for 1 s.
    stack.services.__dict__["zuora"] = ZuoraClient(stack.zuora_server.url, ZUORA_ID, ZUORA_SECRET,
                                                   timeout=(5, 0.3), sleep=lambda seconds: None)
    worker = Worker(stack.services.inbox, build_handlers(stack.services), poll_interval=0.01)
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": Decimal("1.00")}])
    event_id = stack.finalized(invoice["id"])
    lose_next(stack, "/v1/invoices", mode="timeout", hold_seconds=1.0)
    worker.drain()

    assert stack.event(event_id).status == "done"
    zinv = only_invoice(stack)
    deadline = time.monotonic() + 10  # the held request is logged when the sandbox lets it go
    while len(posts := stack.zuora_requests("POST", "/v1/invoices")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(posts) == 2 and len({p["idempotency_key"] for p in posts}) == 1
    assert stack.mappings("invoice")[0]["zuora_id"] == zinv["id"]


def test_a_second_event_for_the_same_invoice_after_a_lost_success_finds_it(stack):
    stack.linked_account()
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": Decimal("2.00")}])
    first = stack.finalized(invoice["id"])
    lose_next(stack, "/v1/invoices", mode="failure")
    stack.worker.drain()
    assert stack.event(first).status == "failed"
    store_sql(stack.services.db).execute("UPDATE events SET status = 'deleted' WHERE id = ?", (first,))

    second = stack.finalized(invoice["id"])  # a redelivery: its own event, its own series key
    stack.worker.drain()

    assert stack.event(second).status == "done"
    assert stack.event(second).series_key != stack.event(first).series_key
    assert len(stack.zuora_state()["invoices"]) == 1
    assert len(stack.zuora_requests("POST", "/v1/invoices")) == 1


# -- (4) MISSING_MAPPING release starts a new series -------------------------------------------------------

def test_a_missing_mapping_release_starts_a_new_series(stack):
    stack.billing_account("acc-1")
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": Decimal("3.00")}])
    event_id = stack.finalized(invoice["id"])
    stack.worker.drain()
    waiting = stack.event(event_id)
    assert (waiting.status, waiting.error_code, waiting.series) == ("failed", MISSING_MAPPING, 1)

    stack.zuora_account("acc-1")  # links the account: releases the invoice
    released = stack.event(event_id)
    assert (released.status, released.series, released.attempts) == ("pending", 2, 0)
    assert released.series_key != waiting.series_key
    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    [post] = stack.zuora_requests("POST", "/v1/invoices")
    assert post["idempotency_key"] == f"billing-invoice:{invoice['id']}:{released.series_key}"
    assert history(stack, event_id) == [(1, 1, "failed", MISSING_MAPPING), (2, 1, "done", None)]


# -- (5) history: every series and attempt, a crashed one included ------------------------------------------

def test_history_shows_every_series_and_attempt_including_a_crashed_one(stack):
    stack.billing_account("acc-1")
    event_id = account_created(stack)
    reject_next_write(stack, 53100030)
    stack.worker.drain()                                   # series 1: refused
    failures.retry(stack.services.db, failures.Selector(ids=(event_id,)))
    [claimed] = stack.services.inbox.claim("doomed-worker")  # series 2, attempt 1 ...
    stack.handlers["account.created"](claimed)             # ... creates the account, then is SIGKILLed
    store_sql(stack.services.db).execute(
        "UPDATE events SET lease_expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?", (event_id,))
    stack.worker.drain()                                   # series 2, attempt 2: finds it, links it

    body = create_app(services=stack.services).test_client().get(f"/admin/events/{event_id}", headers=AUTH).get_json()
    assert (body["status"], body["series"], body["attempts"]) == ("done", 2, 2)
    steps = [(h["series"], h["attempt"], h["worker_id"], h["outcome"], h["code"]) for h in body["history"]]
    assert steps == [(1, 1, stack.worker.worker_id, "failed", ZUORA_REJECTED),
                     (2, 1, "doomed-worker", "lost", None),
                     (2, 2, stack.worker.worker_id, "done", None)]
    assert EUR_NOT_ENABLED in body["history"][0]["message"]
    assert all(h["started_at"] <= h["ended_at"] for h in body["history"])
    assert len(zuora_accounts(stack)) == 1
    assert len(stack.zuora_requests("POST", "/v1/accounts")) == 2  # the refused one and the crashed one


def test_a_running_attempt_shows_without_an_end(stack):
    stack.billing_account("acc-1")
    event_id = account_created(stack)
    stack.services.inbox.claim("busy-worker")
    [attempt] = create_app(services=stack.services).test_client().get(
        f"/admin/events/{event_id}", headers=AUTH).get_json()["history"]
    assert (attempt["series"], attempt["attempt"], attempt["worker_id"], attempt["ended_at"], attempt["outcome"]) == (
        1, 1, "busy-worker", None, None)


# -- (6) RETRIES_EXHAUSTED keeps the last remote reason; the scheduled retry picks it up ------------------

def test_transient_trouble_that_outlives_its_attempts_is_retries_exhausted_then_scheduled(stack):
    stack.linked_account()
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": Decimal("4.00")}])
    event_id = stack.finalized(invoice["id"])
    stack.services.inbox.max_attempts = 1
    zuora_post(stack, "/_sandbox/faults", error_rate=1.0, error_status=503)
    stack.worker.drain()
    requests.delete(f"{stack.zuora_server.url}/_sandbox/faults", timeout=10)

    event = stack.event(event_id)
    assert (event.status, event.error_code) == ("failed", RETRIES_EXHAUSTED)
    assert event.last_error.startswith("gave up after 1 attempts: ")
    assert "injected zuora fault" in event.last_error  # the last remote reason
    [attempt] = stack.services.inbox.history(event_id)
    assert (attempt.outcome, attempt.code) == ("failed", RETRIES_EXHAUSTED)
    assert "injected zuora fault" in attempt.message
    listed, _ = failures.page(stack.services.db, code=RETRIES_EXHAUSTED)
    assert [f.id for f in listed] == [event_id]

    scheduled_retry(stack)
    stack.worker.drain()
    assert stack.event(event_id).status == "done"
    assert only_invoice(stack)["amount"] == Decimal("4.00")


# -- keys, descriptions and the migration ------------------------------------------------------------------

def test_a_usage_description_is_cut_before_its_marker_never_through_it():
    description = usage_description("Per-unit amount 0.5; " + "Storage " * 40, "inv_1", "m-gb")
    assert 180 <= len(description) <= 200 and description.endswith("…; meter m-gb; billing invoice inv_1")
    assert holds_marker(description, usage_marker("inv_1", "m-gb"))
    assert not holds_marker(description, usage_marker("nv_1", "m-gb"))
    assert not holds_marker(description, usage_marker("inv_1", "gb"))
    with pytest.raises(InvalidData):
        usage_description("head", "i" * 190, "m-gb")


def test_idempotency_keys_stay_within_zuoras_limit_and_printable():
    assert idempotency_key("billing-invoice", "inv_1", "0a1b") == "billing-invoice:inv_1:0a1b"
    long_key = idempotency_key("billing-invoice", "x" * 300, "0a1b")
    assert len(long_key) <= 255 and long_key.endswith(":0a1b")
    assert long_key != idempotency_key("billing-invoice", "y" * 300, "0a1b")
    odd = idempotency_key("billing-account", "acc-ü", "0a1b")
    assert odd.isascii() and odd.startswith("billing-account:") and odd.endswith(":0a1b")


def test_the_migration_gives_existing_events_a_series_and_a_key(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/old.db")
    migrations = old_files("sqlite")  # the old runner's files: sqlite/0003 gave events their series
    assert make_old_store(db, upto=migrations[1]) == migrations[:2]
    with store_sql(db).conn as conn:
        for n in (1, 2):
            conn.execute("INSERT INTO events (id, source, type, object_type, object_id, object_key, dedupe_key,"
                         " next_attempt_at, created_at, updated_at) VALUES (?, 'billing', 'invoice.finalized',"
                         " 'invoice', ?, ?, ?, 't', 't', 't')", (f"evt_{n}", f"inv{n}", f"billing-invoice:inv{n}",
                                                                f"d{n}"))
    assert db.migrate() == migrations[2:] + list(revisions()[1:])  # then stamped at the baseline
    rows = store_sql(db).execute("SELECT series, series_key FROM events ORDER BY id").fetchall()
    assert [r["series"] for r in rows] == [1, 1]
    assert all(len(r["series_key"]) == 16 for r in rows) and rows[0]["series_key"] != rows[1]["series_key"]
    assert json.loads(json.dumps([dict(r) for r in store_sql(db).execute("SELECT * FROM attempts").fetchall()])) == []
