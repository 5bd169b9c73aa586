"""Onboarding safety (CONTRACT §12, §9) against both sandboxes over real HTTP, on both engines: the service
started on a tenant pair that already has data — accounts on both sides, twins by link field and twins
only by email, accounts with no twin, a finalized invoice — creates nothing on either side through two
reconciliation passes (Togai's accounts carry no timestamps: the first pass records what it saw as the
baseline); ``integration backfill`` then plans and links them; and what is created after the start is
synced by reconciliation as before. A first pass that dies midway, and two racing, still queue nothing."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import requests
from click.testing import CliRunner

from integration.cli import main
from integration.store import reconcile as state
from integration.worker.reconcile import candidates, run_pass
from tests.stack_helpers import sandbox_billing_account
from tests.test_backfill import billing, env_of, zuora
from tests.test_invoice_flow import BILLING_TOKEN
from tests.test_reconcile import quiet_invoice

pytestmark = pytest.mark.both_engines

BILLING_AUTH = {"Authorization": f"Bearer {BILLING_TOKEN}"}


@pytest.fixture
def backfill(stack, monkeypatch):
    for name, value in env_of(stack).items():
        monkeypatch.setenv(name, value)

    def invoke(*args: str) -> str:
        result = CliRunner().invoke(main, ["backfill", *args])
        assert result.exit_code == 0, result.output
        return result.output
    return invoke


def existing_tenants(stack) -> dict[str, str]:
    """What a real onboarding meets: accounts on both sides before the service ever ran. Returns the Zuora
    IDs by role. No webhook or callout ever reaches the service for any of them."""
    ids = {}
    for n in (1, 2):
        billing(stack, f"b-field-{n}")
        ids[f"field-{n}"] = zuora(stack, f"Field{n}", link=f"b-field-{n}")  # twins by ZUORA_LINK_FIELD
        billing(stack, f"b-email-{n}", email=f"twin{n}@example.com")
        ids[f"email-{n}"] = zuora(stack, f"Email{n}", email=f"twin{n}@example.com")  # twins only by email
    ids["zuora-only"] = zuora(stack, "ZuoraOnly")
    billing(stack, "b-only")
    quiet_invoice(stack, "inv-old", account_id="b-field-1")  # finalized before the service started
    return ids


def tenant_size(stack) -> tuple[int, int, int, int]:
    """(Zuora accounts, Zuora invoices, billing customers, billing accounts) as the sandboxes hold them."""
    zuora_state = stack.zuora_state()
    billing_state = requests.get(f"{stack.billing_server.url}/_sandbox/state", timeout=10).json()
    return (len(zuora_state["accounts"]), len(zuora_state["invoices"]), len(billing_state["customers"]),
            len(billing_state["accounts"]))


def writes(stack) -> list[tuple[str, str]]:
    """Every write either sandbox received (method, path)."""
    zuora_requests = stack.zuora_state()["requests"]
    billing_requests = requests.get(f"{stack.billing_server.url}/_sandbox/state", timeout=10).json()["requests"]
    return [(r["method"], r["path"]) for r in zuora_requests + billing_requests
            if r["method"] not in ("GET", "HEAD") and r["path"] != "/oauth/token"]


def all_events(stack) -> list[dict]:
    return [e for t in ("account.callout", "account.created", "account.link", "invoice.finalized")
            for e in stack.events(t)]


def test_starting_on_a_tenant_with_data_creates_nothing_and_backfill_then_links_it(stack, backfill):
    ids = existing_tenants(stack)
    before, written = tenant_size(stack), writes(stack)
    assert before == (5, 0, 5, 5)

    first, second = run_pass(stack.services), run_pass(stack.services)  # the service started; two passes
    stack.worker.drain()

    assert first.baseline and first.found == {"zuora_account": 5, "billing_account": 5, "billing_invoice": 1,
                                              "billing_invoice_void": 0}
    assert not second.baseline and second.found["billing_account"] == 5 and second.found["zuora_account"] == 5
    assert first.queued == second.queued == {"zuora_account": [], "billing_account": [], "billing_invoice": [],
                                             "billing_invoice_void": []}
    assert tenant_size(stack) == before and writes(stack) == written  # nothing created or written on either side
    assert all_events(stack) == [] and stack.mappings("account") == []
    assert state.baseline_counts(stack.services.db) == {"zuora_account": 5, "billing_account": 5,
                                                        "billing_invoice": 1}

    plan = backfill("--match-email").splitlines()[-1]
    assert "link 2" in plan and "candidate 2" in plan and "create_in_billing 1" in plan and "create_in_zuora 1" in plan
    backfill("--apply", "--match-email", "--accept-candidates")
    stack.worker.drain()
    linked = {m["zuora_id"]: m["billing_id"] for m in stack.mappings("account")}
    assert {role: linked.get(zid) for role, zid in ids.items() if role != "zuora-only"} == {
        "field-1": "b-field-1", "field-2": "b-field-2", "email-1": "b-email-1", "email-2": "b-email-2"}
    assert linked[ids["zuora-only"]] == ids["zuora-only"] and "b-only" in linked.values()
    assert tenant_size(stack) == (6, 0, 6, 6)  # only the two accounts that had no twin got one, once each

    # After the start, reconciliation is the net under lost webhooks and callouts as before.
    sandbox_billing_account(stack.billing_server.url, "b-new", webhook=False)
    new_zuora = zuora(stack, "New")
    quiet_invoice(stack, "inv-new", account_id="b-field-1")
    third = run_pass(stack.services)
    assert third.queued == {"zuora_account": [new_zuora], "billing_account": ["b-new"],
                            "billing_invoice": ["inv-new"], "billing_invoice_void": []}
    stack.worker.drain()
    linked = {m["zuora_id"]: m["billing_id"] for m in stack.mappings("account")}
    assert linked[new_zuora] == new_zuora and "b-new" in linked.values()
    assert [i["BillingInvoiceId__c"] for i in stack.zuora_state()["invoices"]] == ["inv-new"]  # inv-old: backfill's
    assert [e for e in all_events(stack) if e["status"] != "done"] == []
    assert all(ids == [] for ids in run_pass(stack.services).queued.values())


def test_a_first_pass_that_dies_midway_is_taken_again_and_queues_nothing(stack):
    existing_tenants(stack)

    def dies_after_three(services, since):
        for n, item in enumerate(candidates(services, since)):
            if n == 3:
                raise ConnectionError("the pass's host died")
            yield item

    with pytest.raises(ConnectionError):
        run_pass(stack.services, source=dies_after_three)
    assert state.baseline_taken(stack.services.db) is None  # not complete: the next pass takes it again
    assert sum(state.baseline_counts(stack.services.db).values()) <= 3  # recorded in batches: maybe none yet
    assert all_events(stack) == []

    again = run_pass(stack.services)
    assert again.baseline and all(ids == [] for ids in again.queued.values())
    taken = state.baseline_taken(stack.services.db)
    assert taken is not None and abs((taken - again.started_at).total_seconds()) < 1  # as of the pass's start
    assert state.baseline_counts(stack.services.db) == {"zuora_account": 5, "billing_account": 5,
                                                        "billing_invoice": 1}
    later = run_pass(stack.services)
    assert not later.baseline and all(ids == [] for ids in later.queued.values())
    assert all_events(stack) == []


def test_two_first_passes_racing_queue_nothing_and_record_each_object_once(stack):
    existing_tenants(stack)
    for n in range(30):
        sandbox_billing_account(stack.billing_server.url, f"b-bulk-{n:02d}", webhook=False)
    gate = threading.Barrier(2)
    results, errors = [], []

    def one_pass() -> None:
        try:
            gate.wait(10)
            results.append(run_pass(stack.services))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(results) == 2
    assert all(ids == [] for result in results for ids in result.queued.values())
    assert state.baseline_counts(stack.services.db) == {"zuora_account": 5, "billing_account": 35,
                                                        "billing_invoice": 1}
    assert all_events(stack) == []


def test_a_draft_that_existed_before_is_synced_once_finalized_after_the_start(stack):
    stack.linked_account("acc-1")
    draft = stack.invoice(id="inv-draft", finalize=False, fixed=[{"description": "Fee", "amount": Decimal("12.34")}])
    assert run_pass(stack.services).baseline  # the draft is not recorded: only what could be pushed was
    assert state.baseline_counts(stack.services.db)["billing_invoice"] == 0

    resp = requests.post(f"{stack.billing_server.url}/_sandbox/invoices/{draft['id']}/finalize", json={},
                         timeout=10)
    assert resp.status_code == 200, resp.text  # its invoice.finalized never reaches the service
    assert run_pass(stack.services).queued["billing_invoice"] == ["inv-draft"]
    stack.worker.drain()
    [pushed] = stack.zuora_state()["invoices"]
    assert (pushed["BillingInvoiceId__c"], pushed["amount"]) == ("inv-draft", Decimal("12.34"))


def test_hostile_ids_are_recorded_as_given_and_never_match_another(stack):
    # IDs are the vendors'; the baseline stores them as text, exactly, under their kind: a billing account
    # whose ID equals a Zuora account's ID is not taken for it, and a look-alike never matches.
    odd = "b-ünï'; DROP TABLE reconcile_baseline;--"
    sandbox_billing_account(stack.billing_server.url, odd, customer_id="c-odd", webhook=False)
    zid = zuora(stack, "Lonely")
    assert run_pass(stack.services).baseline
    sandbox_billing_account(stack.billing_server.url, zid, customer_id="c-zid", webhook=False)  # the Zuora ID
    sandbox_billing_account(stack.billing_server.url, odd[:-1], customer_id="c-odd-2", webhook=False)
    queued = run_pass(stack.services).queued["billing_account"]
    assert sorted(queued) == sorted([zid, odd[:-1]])
    assert state.baseline_counts(stack.services.db) == {"zuora_account": 1, "billing_account": 1,
                                                        "billing_invoice": 0}
