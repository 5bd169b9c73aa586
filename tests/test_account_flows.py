"""Flows 1 and 2 against the sandboxes over real HTTP, with the worker running."""
import threading

import pytest
import requests

from integration.domain.errors import INVALID_DATA
from integration.flows.accounts import AccountFlows
from integration_sandbox.local_stack import CALLOUT_USERNAME, LocalStack
from tests.engines import store_sql
from tests.stack_helpers import (
    billing_requests,
    create_billing_account,
    create_zuora_account,
    events,
    mappings,
    zuora_accounts,
    zuora_requests,
)

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

@pytest.fixture
def stack(tmp_path, database_url):
    with LocalStack(tmp_path, config_overrides={"database_url": database_url}) as stack:
        yield stack


def settings_of(stack, account_id):
    return {s["name"]: s["value"] for s in stack.billing_state()["settings"]
            if s["entityType"] == "ACCOUNT" and s["entityId"] == account_id and s["namespace"] == "zuora"}


def test_zuora_callout_creates_one_billing_customer_and_links_both_ways(stack):
    created = create_zuora_account(stack, name="Ada Lovelace", email="ada@example.com", country="United Kingdom")
    zuora_id, number = created["accountId"], created["accountNumber"]
    stack.wait_idle()

    billing = stack.billing_state()
    [customer] = billing["customers"]
    [account] = billing["accounts"]
    assert customer["id"] == account["id"] == account["customerId"] == zuora_id
    assert (customer["name"], customer["primaryEmail"]) == ("Ada Lovelace", "ada@example.com")
    assert customer["address"] == {"line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4LB",
                                   "country": "GB"}
    assert account["invoiceCurrency"] == "USD"
    assert settings_of(stack, zuora_id) == {"zuoraAccountId": zuora_id, "zuoraAccountNumber": number}
    [zuora_account] = zuora_accounts(stack)
    assert zuora_account["basicInfo"]["BillingAccountId__c"] == zuora_id
    [row] = mappings(stack)
    assert (row["zuora_id"], row["zuora_number"], row["billing_id"], row["billing_customer_id"], row["origin"]) == (
        zuora_id, number, zuora_id, zuora_id, "zuora")
    # The billing platform's own account.created echo found the link and created nothing.
    assert {e["type"]: e["status"] for e in events(stack)} == {"account.callout": "done", "account.created": "done"}
    assert len(billing_requests(stack, "POST", "/customers")) == 1
    assert len(zuora_requests(stack, "POST", "/v1/accounts")) == 1  # the user's own create only


def test_billing_account_becomes_one_zuora_account_and_the_echo_callout_creates_nothing(stack):
    create_billing_account(stack, account_id="acc-1", customer_id="cust-1", name="Grace Hopper",
                           email="grace@example.com", country="US")
    stack.wait_idle()

    [zuora_account] = zuora_accounts(stack)
    basic, contact = zuora_account["basicInfo"], zuora_account["billToContact"]
    assert basic["name"] == "Grace Hopper"
    assert basic["BillingAccountId__c"] == "acc-1"
    assert zuora_account["billingAndPayment"]["currency"] == "USD"
    assert zuora_account["billingAndPayment"]["autoPay"] is False
    assert (contact["firstName"], contact["lastName"], contact["workEmail"], contact["country"], contact["state"]) == (
        "Grace", "Hopper", "grace@example.com", "United States", "VA")
    assert settings_of(stack, "acc-1") == {"zuoraAccountId": basic["id"], "zuoraAccountNumber": basic["accountNumber"]}
    [row] = mappings(stack)
    assert (row["zuora_id"], row["billing_id"], row["billing_customer_id"], row["origin"]) == (
        basic["id"], "acc-1", "cust-1", "billing")
    # Zuora's own account-created callout arrived (after a Basic challenge) and created nothing.
    callouts = stack.zuora_state()["callouts"]
    assert [c["outcome"] for c in callouts] == ["challenged", "delivered"]
    assert {(e["type"], e["status"]) for e in events(stack)} == {("account.created", "done"),
                                                                  ("account.callout", "done")}
    billing = stack.billing_state()
    assert len(billing["customers"]) == 1 and len(billing["accounts"]) == 1
    post = zuora_requests(stack, "POST", "/v1/accounts")
    # The key is the billing account's and its event's attempt series' (a fresh random token).
    [created_event] = [e for e in events(stack) if e["type"] == "account.created"]
    assert len(post) == 1 and post[0]["idempotency_key"] == f"billing-account:acc-1:{created_event['series_key']}"


def test_twenty_concurrent_duplicate_callouts_with_two_workers_make_one_customer(tmp_path, database_url):
    with LocalStack(tmp_path, workers=2, config_overrides={"database_url": database_url}) as stack:
        requests.post(f"{stack.zuora_url}/_sandbox/config", json={"callout_url": None}, timeout=10)  # we send them
        created = create_zuora_account(stack)
        auth = (CALLOUT_USERNAME, stack.callout_password)
        barrier = threading.Barrier(20)
        statuses = []

        def callout(i):
            barrier.wait()
            r = requests.post(f"{stack.service_url}/webhooks/zuora", json={"AccountId": created["accountId"]},
                              auth=auth, headers={"Zuora-Notification-Id": f"n-{i}"}, timeout=30)
            statuses.append(r.status_code)

        threads = [threading.Thread(target=callout, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 20
        stack.wait_idle()
        billing = stack.billing_state()
        assert len(billing["customers"]) == 1 and len(billing["accounts"]) == 1
        assert len(mappings(stack)) == 1
        assert all(e["status"] == "done" for e in events(stack))


def test_crash_between_billing_create_and_mapping_write_links_on_rerun(tmp_path, database_url):
    with LocalStack(tmp_path, workers=0, config_overrides={"database_url": database_url}) as stack:
        requests.post(f"{stack.zuora_url}/_sandbox/config", json={"callout_url": None}, timeout=10)
        created = create_zuora_account(stack)
        event_id = stack.services.inbox.record(
            source="zuora", type="account.callout", object_type="account", object_id=created["accountId"],
            object_key=f"zuora-account:{created['accountId']}").event_id
        [event] = stack.services.inbox.claim("doomed-worker")
        AccountFlows(stack.services).from_zuora(event)  # remote writes happen; the outcome is never committed
        assert len(stack.billing_state()["customers"]) == 1 and mappings(stack) == []

        worker = stack.start_worker()
        store_sql(stack.services.db).execute(  # the dead worker's lease runs out
            "UPDATE events SET lease_expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?", (event_id,))
        worker.wake()
        stack.wait_idle()
        billing = stack.billing_state()
        assert len(billing["customers"]) == 1 and len(billing["accounts"]) == 1
        [row] = mappings(stack)
        assert row["zuora_id"] == created["accountId"] and row["origin"] == "linked"
        assert stack.services.inbox.get(event_id).status == "done"


def test_crash_between_zuora_create_and_mapping_write_links_on_rerun(tmp_path, database_url):
    with LocalStack(tmp_path, workers=0, config_overrides={"database_url": database_url}) as stack:
        requests.post(f"{stack.zuora_url}/_sandbox/config", json={"callout_url": None}, timeout=10)
        create_billing_account(stack)
        assert stack.billing_sandbox.wait_for_deliveries(10)
        [event] = stack.services.inbox.claim("doomed-worker")
        AccountFlows(stack.services).from_billing(event)
        assert len(zuora_accounts(stack)) == 1 and mappings(stack) == []
        store_sql(stack.services.db).execute(
            "UPDATE events SET lease_expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?", (event.id,))
        stack.start_worker()
        stack.wait_idle()
        assert len(zuora_accounts(stack)) == 1
        [row] = mappings(stack)
        assert row["billing_id"] == "acc-1"


def test_existing_twins_with_matching_link_data_are_linked_not_duplicated(tmp_path, database_url):
    with LocalStack(tmp_path, workers=0, config_overrides={"database_url": database_url}) as stack:
        requests.post(f"{stack.zuora_url}/_sandbox/config", json={"callout_url": None}, timeout=10)
        requests.post(f"{stack.billing_url}/_sandbox/config", json={"webhook_url": None}, timeout=10)
        # A billing account and a Zuora account that already point at each other by the link field.
        create_billing_account(stack, account_id="acc-9", customer_id="cust-9")
        created = create_zuora_account(stack, name="Grace Hopper", email="grace@example.com",
                                       BillingAccountId__c="acc-9")
        stack.services.inbox.record(source="zuora", type="account.callout", object_type="account",
                                    object_id=created["accountNumber"],  # a number works as well as an ID
                                    object_key=f"zuora-account:{created['accountNumber']}")
        stack.services.inbox.record(source="billing", type="account.created", object_type="account",
                                    object_id="acc-9", object_key="billing-account:acc-9")
        stack.start_worker()
        stack.wait_idle()
        assert len(zuora_accounts(stack)) == 1
        assert len(stack.billing_state()["customers"]) == 1
        [row] = mappings(stack)
        assert (row["zuora_id"], row["billing_id"], row["origin"]) == (created["accountId"], "acc-9", "linked")
        assert settings_of(stack, "acc-9")["zuoraAccountId"] == created["accountId"]
        assert all(e["status"] == "done" for e in events(stack))


def test_unicode_names_and_addresses_survive_both_ways(stack):
    create_zuora_account(stack, name="Zoë Ångström-Østergård", email="zoe@exämple.com".replace("ä", "a"),
                         country="Germany", contact={"city": "München", "address1": "Straße 1"})
    create_billing_account(stack, account_id="acc-jp", customer_id="cust-jp", name="山田 太郎",
                           email="taro@example.jp", country="JP")
    stack.wait_idle()
    billing = {a["id"]: a for a in stack.billing_state()["accounts"]}
    zuora = {a["basicInfo"]["name"]: a for a in zuora_accounts(stack)}
    zoe = next(a for a in billing.values() if a["name"] == "Zoë Ångström-Østergård")
    assert zoe["address"]["city"] == "München" and zoe["address"]["line1"] == "Straße 1"
    assert zoe["address"]["country"] == "DE"
    taro = zuora["山田 太郎"]["billToContact"]
    assert (taro["firstName"], taro["lastName"], taro["country"]) == ("山田", "太郎", "Japan")
    assert len(mappings(stack)) == 2


def test_zuora_account_without_email_fails_with_invalid_data_naming_the_field(stack):
    create_zuora_account(stack, name="No Mail Ltd", email=None)
    stack.wait_idle()
    [event] = [e for e in events(stack) if e["type"] == "account.callout"]
    assert (event["status"], event["error_code"]) == ("failed", INVALID_DATA)
    assert event["last_error"].startswith("billToContact.workEmail: ")
    assert stack.billing_state()["customers"] == []


def test_short_zuora_name_gets_its_account_number(stack):
    created = create_zuora_account(stack, name="Al", email="al@example.com")
    stack.wait_idle()
    [customer] = stack.billing_state()["customers"]
    assert customer["name"] == f"Al ({created['accountNumber']})"


def test_update_ping_pong_stops_after_one_round(stack):
    created = create_zuora_account(stack, name="Ada Lovelace")
    stack.wait_idle()
    zuora_id = created["accountId"]
    puts_before = len(zuora_requests(stack, "PUT", "/v1/accounts"))
    # A user changes the account in Zuora; a callout (here: resent by the sandbox) syncs it.
    stack.zuora_api().put(f"{stack.zuora_url}/v1/accounts/{zuora_id}", timeout=10,
                          json={"name": "Ada King", "billToContact": {"city": "Ockham", "country": "GB"}})
    requests.post(f"{stack.zuora_url}/_sandbox/callouts", json={"AccountId": zuora_id}, timeout=10)
    stack.wait_idle()
    [account] = stack.billing_state()["accounts"]
    assert account["name"] == "Ada King" and account["address"]["city"] == "Ockham"
    patches = billing_requests(stack, "PATCH", "/accounts")
    assert len(patches) == 1
    # The billing platform's account.updated came back and wrote nothing to Zuora.
    updated = [e for e in events(stack) if e["type"] == "account.updated"]
    assert [e["status"] for e in updated] == ["done"]
    assert len(zuora_requests(stack, "PUT", "/v1/accounts")) == puts_before + 1  # the user's own PUT only
    assert len(billing_requests(stack, "PATCH", "/accounts")) == 1


def test_billing_update_reaches_zuora_once(stack):
    create_billing_account(stack, account_id="acc-u", customer_id="cust-u", name="Grace Hopper")
    stack.wait_idle()
    requests.patch(f"{stack.billing_url}/_sandbox/accounts/acc-u", timeout=10,
                   json={"name": "Grace B. Hopper", "primaryEmail": "admiral@example.com"})
    stack.wait_idle()
    [zuora_account] = zuora_accounts(stack)
    assert zuora_account["basicInfo"]["name"] == "Grace B. Hopper"
    assert zuora_account["billToContact"]["workEmail"] == "admiral@example.com"
    assert len(zuora_requests(stack, "PUT", "/v1/accounts")) == 1  # the update, once; the echo wrote nothing
