"""``integration backfill`` (CONTRACT §9) against both sandboxes over real HTTP: every action planned for a
constructed pair of tenants, the CSV report, ``--apply`` creating each missing twin exactly once (and a
second run doing nothing), a SIGKILLed run resuming, conflicts never written, candidates only when
accepted, and ``--invoices-since`` pushing a missing invoice once."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import requests
from click.testing import CliRunner

from integration.cli import main
from integration.clients.bodies import dumps_json
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.stack_helpers import sandbox_billing_account
from tests.test_invoice_flow import BILLING_TOKEN, PERIOD, ZUORA_ID, ZUORA_SECRET

pytestmark = pytest.mark.both_engines


def env_of(stack) -> dict[str, str]:
    return {"DATABASE_URL": stack.services.config.database_url, "ZUORA_BASE_URL": stack.zuora_server.url,
            "ZUORA_CLIENT_ID": ZUORA_ID, "ZUORA_CLIENT_SECRET": ZUORA_SECRET,
            "BILLING_BASE_URL": stack.billing_server.url, "BILLING_API_TOKEN": BILLING_TOKEN,
            "BILLING_WEBHOOK_SECRET": WEBHOOK_SECRET, "ADMIN_TOKEN": ADMIN_TOKEN, "ZUORA_CALLOUT_AUTH": "none"}


@pytest.fixture
def run(stack, monkeypatch):
    for name, value in env_of(stack).items():
        monkeypatch.setenv(name, value)

    def invoke(*args: str):
        result = CliRunner().invoke(main, ["backfill", *args])
        assert result.exit_code == 0, result.output
        return result
    return invoke


def zuora(stack, name: str, *, link: str | None = None, email: str | None = None) -> str:
    contact = {"firstName": "Ada", "lastName": name, "country": "United States",
               "workEmail": email or f"{name.lower()}@example.com"}
    body = {"name": name, "currency": "USD", "billCycleDay": 1, "autoPay": False, "billToContact": contact}
    if link:
        body["BillingAccountId__c"] = link
    return stack.services.zuora.create_account(body, idempotency_key=f"backfill-test:{name}").id


def billing(stack, account_id: str, *, email: str = "someone@example.com", names_zuora: str | None = None) -> None:
    settings = [{"id": f"zid-{account_id}", "namespace": "zuora", "name": "zuoraAccountId", "value": names_zuora,
                 "dataType": "STRING"}] if names_zuora else None
    sandbox_billing_account(stack.billing_server.url, account_id, name=f"Account {account_id}", email=email,
                            webhook=False, **({"settings": settings} if settings else {}))


def tenants(stack) -> dict[str, str]:
    """One account pair (or single account) per action; returns the Zuora IDs by role."""
    stack.linked_account("b-linked")
    ids = {"linked": stack.mappings("account")[0]["zuora_id"]}
    billing(stack, "b-by-field")
    ids["by_field"] = zuora(stack, "ByField", link="b-by-field")
    ids["by_settings"] = zuora(stack, "BySettings")
    billing(stack, "b-by-settings", names_zuora=ids["by_settings"])
    ids["same_id"] = zuora(stack, "SameId")
    billing(stack, ids["same_id"])
    ids["dangling"] = zuora(stack, "Dangling", link="b-missing")
    billing(stack, "b-shared")
    ids["shared1"] = zuora(stack, "Shared1", link="b-shared")
    ids["shared2"] = zuora(stack, "Shared2", link="b-shared")
    billing(stack, "b-names-nobody", names_zuora="2c9-not-there")
    ids["email"] = zuora(stack, "Email", email="twin@example.com")
    billing(stack, "b-email", email="twin@example.com")
    ids["lonely"] = zuora(stack, "Lonely")
    billing(stack, "b-lonely")
    return ids


def report_rows(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_each_action_is_planned_with_its_reason_in_the_report(stack, run, tmp_path):
    ids = tenants(stack)
    out = tmp_path / "plan.csv"
    result = run("--match-email", "--report", str(out))
    rows = report_rows(out)
    by_zuora = {r["zuora_account_id"]: r for r in rows if r["zuora_account_id"]}
    by_billing = {r["billing_account_id"]: r for r in rows if r["billing_account_id"]}
    assert by_zuora[ids["linked"]]["action"] == "linked"
    by_field = by_zuora[ids["by_field"]]
    assert (by_field["action"], by_field["billing_account_id"]) == ("link", "b-by-field")
    assert (by_zuora[ids["by_settings"]]["action"], by_zuora[ids["by_settings"]]["billing_account_id"]) == (
        "link", "b-by-settings")
    assert by_zuora[ids["same_id"]]["action"] == "link" and "ID" in by_zuora[ids["same_id"]]["reason"]
    assert by_zuora[ids["dangling"]]["action"] == "conflict" and "does not exist" in by_zuora[ids["dangling"]]["reason"]
    assert by_zuora[ids["shared1"]]["action"] == by_zuora[ids["shared2"]]["action"] == "conflict"
    assert "2 Zuora accounts" in by_zuora[ids["shared1"]]["reason"]
    assert by_billing["b-names-nobody"]["action"] == "conflict"
    assert (by_zuora[ids["email"]]["action"], by_zuora[ids["email"]]["billing_account_id"]) == ("candidate", "b-email")
    assert by_zuora[ids["lonely"]]["action"] == "create_in_billing"
    assert by_billing["b-lonely"]["action"] == "create_in_zuora"
    assert len(rows) == 11  # one per account, a pair counted once
    assert "dry run" in result.output.splitlines()[-1] and "conflict 4" in result.output
    assert stack.events("account.callout") == stack.events("account.created") == stack.events("account.link") == []

    without_email = run("--from", "billing")
    assert "candidate" not in without_email.output and "create_in_billing" not in without_email.output


def test_apply_creates_each_missing_twin_once_and_a_second_run_does_nothing(stack, run):
    ids = tenants(stack)
    zuora_before = len(stack.zuora_state()["accounts"])
    first = run("--apply", "--match-email")
    assert "queued 5," in first.output.splitlines()[-1]  # by_field, by_settings, same_id links; lonely; b-lonely
    stack.worker.drain()
    failed = [dict(e) for t in ("account.callout", "account.created", "account.link") for e in stack.events(t)
              if e["status"] != "done"]
    assert [(e["error_code"], e["last_error"]) for e in failed] == []
    # Each missing twin exists once: a billing customer for "Lonely", a Zuora account for b-lonely.
    billing_state = requests.get(f"{stack.billing_server.url}/_sandbox/state", timeout=10).json()
    assert [a["id"] for a in billing_state["accounts"]].count(ids["lonely"]) == 1
    zuora_accounts = stack.zuora_state()["accounts"]
    assert len(zuora_accounts) == zuora_before + 1
    linked = {m["zuora_id"]: m["billing_id"] for m in stack.mappings("account")}
    assert linked[ids["by_field"]] == "b-by-field" and linked[ids["by_settings"]] == "b-by-settings"
    assert linked[ids["same_id"]] == ids["same_id"] and linked[ids["lonely"]] == ids["lonely"]
    assert "b-lonely" in linked.values()
    # Conflicts were never written; the candidate was not linked without --accept-candidates.
    for key in ("dangling", "shared1", "shared2", "email"):
        assert ids[key] not in linked
    assert "b-shared" not in linked.values() and "b-email" not in linked.values()

    events_before = sum(len(stack.events(kind)) for kind in ("account.callout", "account.created", "account.link"))
    second = run("--apply", "--match-email")
    assert "queued 0, already queued 0" in second.output.splitlines()[-1]
    assert len(stack.events("account.callout") + stack.events("account.created")
               + stack.events("account.link")) == events_before

    accepted = run("--apply", "--match-email", "--accept-candidates")
    assert "queued 1," in accepted.output.splitlines()[-1]
    stack.worker.drain()
    assert {m["zuora_id"]: m["billing_id"] for m in stack.mappings("account")}[ids["email"]] == "b-email"


def test_accept_candidates_needs_apply(stack, run):
    result = CliRunner().invoke(main, ["backfill", "--accept-candidates"])
    assert result.exit_code == 2 and "--apply" in result.output


def test_invoices_since_pushes_a_missing_invoice_once(stack, run):
    stack.linked_account("acc-1")
    body = {"accountId": "acc-1", "id": "inv-old", **PERIOD,
            "fixed": [{"description": "Platform fee", "amount": Decimal("49.99")}]}
    resp = requests.post(f"{stack.billing_server.url}/_sandbox/invoices?webhook=false", data=dumps_json(body),
                         headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 201, resp.text
    dry = run("--invoices-since", "2000-01-01")
    assert "push_invoice 1" in dry.output.splitlines()[-1]
    run("--apply", "--invoices-since", "2000-01-01")
    run("--apply", "--invoices-since", "2000-01-01")
    assert [e["source"] for e in stack.events("invoice.finalized")] == ["backfill"]
    stack.worker.drain()
    assert [i["BillingInvoiceId__c"] for i in stack.zuora_state()["invoices"]] == ["inv-old"]
    after = run("--invoices-since", "2000-01-01")
    assert "push_invoice" not in after.output
    bad = CliRunner().invoke(main, ["backfill", "--invoices-since", "last week"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


def test_a_sigkilled_apply_resumes_and_queues_each_object_once(stack, tmp_path):
    total = 300  # one committed transaction each: the run is still queueing when the first is seen
    for n in range(total):
        billing(stack, f"b-kill-{n:03d}")
    child = subprocess.Popen([sys.executable, "-m", "integration", "backfill", "--apply"],
                             env={**os.environ, **env_of(stack)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not stack.events("account.created"):  # a read: it never holds the run up
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        assert time.monotonic() < deadline, "the run never queued anything"
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    queued = len(stack.events("account.created"))
    assert 0 < queued < total
    resumed = subprocess.run([sys.executable, "-m", "integration", "backfill", "--apply"], capture_output=True,
                             text=True, env={**os.environ, **env_of(stack)}, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    events = stack.events("account.created")
    assert sorted(e["object_id"] for e in events) == [f"b-kill-{n:03d}" for n in range(total)]
    assert f"queued {total - queued}, already queued {queued}" in resumed.stdout
