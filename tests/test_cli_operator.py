"""The operator commands (CONTRACT §1) end to end, as subprocesses: failures list|retry|delete,
mappings list|export, link, events show — tables, --json, CSV, and exit codes."""
import csv
import io
import json
import subprocess

import pytest
import requests

from integration.services import Services
from integration.store import mappings
from integration_sandbox.local_stack import LocalStack
from tests.conftest import make_config
from tests.stack_helpers import create_billing_account, create_zuora_account
from tests.test_admin_api import failed_event


@pytest.fixture
def store(tmp_path):
    services = Services.from_config(make_config(tmp_path))
    services.db.migrate()
    yield services
    services.db.close()


def cli(integration_cmd, env, *args):
    return subprocess.run([*integration_cmd, *args], env=env, capture_output=True, text=True, timeout=60)


def statuses(services):
    return {r["id"]: r["status"] for r in services.db.utils().execute("SELECT id, status FROM events").fetchall()}


def test_failures_list_as_a_table_and_as_json(store, integration_cmd, subprocess_env):
    a = failed_event(store, "A1", message="Unknown field \x1b[31m'X__c'")
    b = failed_event(store, "I1", object_type="invoice", type="invoice.finalized", code="INVALID_DATA")
    table = cli(integration_cmd, subprocess_env, "failures", "list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "OBJECT_TYPE", "OBJECT_ID", "CODE", "ATTEMPTS", "LAST_FAILED_AT", "MESSAGE"]
    assert a in lines[1] and b in lines[2] and lines[-1] == "2 failure(s)"
    assert "\x1b" not in table.stdout  # a hostile message cannot drive the terminal
    data = json.loads(cli(integration_cmd, subprocess_env, "failures", "list", "--code", "INVALID_DATA",
                          "--json").stdout)
    assert [f["id"] for f in data["data"]] == [b] and data["next"] is None
    assert set(data["data"][0]) == {"id", "object_type", "object_id", "source", "code", "message", "attempts",
                                    "first_failed_at", "last_failed_at"}


def test_failures_retry_and_delete_with_each_selector_and_honest_exit_codes(store, integration_cmd, subprocess_env):
    a, b = failed_event(store, "A1"), failed_event(store, "A2")
    invoice = failed_event(store, "I1", object_type="invoice", type="invoice.finalized")
    done = cli(integration_cmd, subprocess_env, "failures", "retry", "--id", a, "--json")
    assert (done.returncode, json.loads(done.stdout)) == (0, {"retried": 1, "not_found": []})
    partly = cli(integration_cmd, subprocess_env, "failures", "retry", "--id", b, "--id", "evt_nope")
    assert partly.returncode == 1
    assert partly.stdout.strip() == "retried 1 failure(s); not found: evt_nope"
    deleted = cli(integration_cmd, subprocess_env, "failures", "delete", "--object-type", "invoice")
    assert (deleted.returncode, deleted.stdout.strip()) == (0, "deleted 1 failure(s)")
    assert statuses(store) == {a: "pending", b: "pending", invoice: "deleted"}
    nothing = cli(integration_cmd, subprocess_env, "failures", "retry", "--all", "--json")
    assert (nothing.returncode, json.loads(nothing.stdout)) == (0, {"retried": 0})


@pytest.mark.parametrize("args, says", [
    ([], "give exactly one of --id (repeatable), --object-type or --all"),  # the CLI's own sentence
    (["--all", "--object-type", "account"], "give exactly one of --id (repeatable), --object-type or --all"),
    (["--id", "evt 1"], "'evt 1' is not an event ID"),
    (["--object-type", "planet"], "--object-type"),  # click's Choice wording: only the option it names counts
])
def test_failures_selector_mistakes_are_usage_errors(store, integration_cmd, subprocess_env, args, says):
    event_id = failed_event(store, "A1")
    result = cli(integration_cmd, subprocess_env, "failures", "delete", *args)
    assert result.returncode == 2 and says in result.stderr and result.stdout == "", result.stderr
    assert statuses(store) == {event_id: "failed"}


def test_missing_configuration_is_exit_2_naming_the_variable(store, integration_cmd, subprocess_env):
    env = {k: v for k, v in subprocess_env.items() if k != "ADMIN_TOKEN"}
    result = cli(integration_cmd, env, "failures", "list")
    assert result.returncode == 2 and "ADMIN_TOKEN" in result.stderr and result.stdout == ""


def test_mappings_list_and_export(store, integration_cmd, subprocess_env):
    with store.db.transaction() as conn:
        mappings.link("account", zuora_id="Z1", zuora_number="A001", billing_id="B1", origin="zuora")(conn)
        mappings.link("invoice", zuora_id="ZI1", billing_id="BI1", billing_parent_id="BI1", origin="billing")(conn)
    table = cli(integration_cmd, subprocess_env, "mappings", "list", "--type", "account")
    assert table.returncode == 0 and "Z1" in table.stdout and "ZI1" not in table.stdout
    assert table.stdout.splitlines()[-1] == "1 mapping(s)"
    by_number = json.loads(cli(integration_cmd, subprocess_env, "mappings", "list", "--zuora-id", "A001",
                               "--json").stdout)
    assert [m["billing_id"] for m in by_number["data"]] == ["B1"]
    export = cli(integration_cmd, subprocess_env, "mappings", "export")
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    assert [(r["type"], r["zuora_id"], r["billing_id"], r["origin"]) for r in rows] == [
        ("account", "Z1", "B1", "zuora"), ("invoice", "ZI1", "BI1", "billing")]
    assert export.stderr.strip() == "exported 2 mapping(s)"
    assert cli(integration_cmd, subprocess_env, "mappings", "list", "--billing-id", "a b").returncode == 2


def test_events_show_with_history(store, integration_cmd, subprocess_env):
    event_id = failed_event(store, "A1", message="Zuora said no")
    shown = cli(integration_cmd, subprocess_env, "events", "show", event_id)
    assert shown.returncode == 0
    assert f"id:               {event_id}" in shown.stdout and "status:           failed" in shown.stdout
    assert "SERIES  ATTEMPT" in shown.stdout and "Zuora said no" in shown.stdout
    document = json.loads(cli(integration_cmd, subprocess_env, "events", "show", event_id, "--json").stdout)
    assert document["history"][0]["outcome"] == "failed" and document["history"][0]["code"] == "ZUORA_REJECTED"
    missing = cli(integration_cmd, subprocess_env, "events", "show", "evt_nope")
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: no event evt_nope")


# -- link, against the sandboxes with a worker running ----------------------------------------------------

@pytest.fixture
def quiet_stack(tmp_path):
    """Both sandboxes and a worker; their webhooks switched off, so accounts stay unlinked until linked."""
    with LocalStack(tmp_path / "stack") as stack:
        requests.post(f"{stack.zuora_url}/_sandbox/config", json={"callout_url": None}, timeout=10).raise_for_status()
        requests.post(f"{stack.billing_url}/_sandbox/config", json={"webhook_url": None},
                      timeout=10).raise_for_status()
        yield stack


def stack_env(stack, subprocess_env):
    env = dict(subprocess_env)
    c = stack.config
    env.update({"DATABASE_URL": c.database_url, "ZUORA_BASE_URL": c.zuora_base_url, "ZUORA_CLIENT_ID":
                c.zuora_client_id, "ZUORA_CLIENT_SECRET": c.zuora_client_secret.reveal(),
                "BILLING_BASE_URL": c.billing_base_url, "BILLING_API_TOKEN": c.billing_api_token.reveal(),
                "ADMIN_TOKEN": stack.admin_token})
    return env


def test_link_writes_both_sides_and_refuses_a_second_partner(quiet_stack, integration_cmd, subprocess_env):
    stack = quiet_stack
    zuora = create_zuora_account(stack, name="Ada Lovelace")
    create_billing_account(stack, account_id="acc-ada", customer_id="cust-ada", name="Ada Lovelace")
    create_billing_account(stack, account_id="acc-other", customer_id="cust-other", name="Someone Else")
    env = stack_env(stack, subprocess_env)
    result = cli(integration_cmd, env, "link", "--zuora-account", zuora["accountNumber"],
                 "--billing-account", "acc-ada")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"linked Zuora account {zuora['accountNumber']} to billing account acc-ada")
    [row] = [dict(r) for r in stack.services.db.utils().execute("SELECT * FROM id_mappings").fetchall()]
    assert (row["zuora_id"], row["billing_id"], row["origin"]) == (zuora["accountId"], "acc-ada", "linked")
    [account] = [a for a in stack.zuora_state()["accounts"] if a["basicInfo"]["id"] == zuora["accountId"]]
    assert account["basicInfo"]["BillingAccountId__c"] == "acc-ada"
    settings = {s["name"]: s["value"] for s in stack.billing_state()["settings"] if s["entityId"] == "acc-ada"}
    assert settings["zuoraAccountId"] == zuora["accountId"]
    refused = cli(integration_cmd, env, "link", "--zuora-account", zuora["accountId"], "--billing-account", "acc-other")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == (f"error: not linked: Zuora account {zuora['accountId']} is already linked to"
                                      " billing account acc-ada")


def test_link_refused_by_the_remote_link_field(quiet_stack, integration_cmd, subprocess_env):
    stack = quiet_stack
    zuora = create_zuora_account(stack, name="Grace Hopper", BillingAccountId__c="acc-elsewhere")
    create_billing_account(stack, account_id="acc-grace", customer_id="cust-grace", name="Grace Hopper")
    result = cli(integration_cmd, stack_env(stack, subprocess_env), "link", "--zuora-account", zuora["accountId"],
                 "--billing-account", "acc-grace")
    assert result.returncode == 1
    assert "is already linked to billing account acc-elsewhere" in result.stderr
    assert stack.services.db.utils().execute("SELECT COUNT(*) FROM id_mappings").fetchall()[0][0] == 0
    # The refused request is kept for audit, off the failure list.
    rows = stack.services.db.utils().execute("SELECT status FROM events").fetchall()
    assert [r["status"] for r in rows] == ["deleted"]
