"""Retry storms against the Zuora sandbox over real HTTP: the client waits what the server asked, no more.

The client and the sandbox share one fake clock: the client's injected ``sleep`` records each wait
and moves that clock, which also moves the sandbox's rate window and token expiry. So the waits are
asserted exactly (the sum of requested sleeps, not wall time) and nothing really waits.

The storm comes from the sandbox's fault switches: ``inject_statuses`` answers the next requests with
429/503 (``Retry-After: 1``; an injected 429 reports its rate window spent, with ``RateLimit-Reset``
a minute away, the shape where taking the larger of the two waits cost a minute per 429),
``/_sandbox/revoke-tokens`` makes the held token fail with 401, ``/_sandbox/fail-next`` makes writes
answer Zuora business errors.
"""
from __future__ import annotations

import random
import time

import pytest
import requests

from integration.domain.errors import TransientError, ZuoraRejected
from integration.flows import build_handlers
from integration.services import Services
from integration.worker.loop import Worker
from integration.zuora.client import ZuoraClient
from integration_sandbox.local_stack import LocalStack
from integration_sandbox.server import ServerThread
from integration_sandbox.zuora import create_zuora_sandbox
from tests.fakes import FakeClock
from tests.stack_helpers import create_billing_account, events, mappings, zuora_accounts

ACCOUNT = {"name": "Storm Test Ltd", "currency": "EUR", "billCycleDay": 1, "autoPay": False,
           "billToContact": {"firstName": "Storm", "lastName": "Test", "workEmail": "storm@example.com",
                             "country": "France"}}
STORM = [429, 503, 429]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now=time.time())  # epoch seconds: the sandbox stamps tokens and requests with it


@pytest.fixture
def zuora(clock):
    app = create_zuora_sandbox(clock=clock)
    sandbox = app.extensions["zuora_sandbox"]
    with ServerThread(app) as server:
        client = ZuoraClient(server.url, sandbox.client_id, sandbox.client_secret, clock=clock, sleep=clock.sleep,
                             rng=random.Random(11))
        yield server.url, client
    sandbox.close()


def storm(url: str, statuses: list[int], **faults) -> None:
    """The next requests answer ``statuses``; the token the client holds is revoked."""
    requests.post(f"{url}/_sandbox/faults", json={"inject_statuses": statuses, "rate_window_seconds": 60,
                                                  **faults}, timeout=10).raise_for_status()
    requests.post(f"{url}/_sandbox/revoke-tokens", timeout=10).raise_for_status()


def counters(url: str) -> dict:
    return requests.get(f"{url}/_sandbox/faults", timeout=10).json()["counters"]


def test_storm_of_429_and_503_with_retry_after_and_a_revoked_token_costs_three_seconds(zuora, clock):
    url, client = zuora
    created = client.create_account(ACCOUNT, idempotency_key="acct-before-storm")  # now holds a token
    storm(url, STORM)

    account = client.get_account(created.number)

    assert account.id == created.id
    assert clock.sleeps == [1, 1, 1]  # each Retry-After exactly; never the minute-away RateLimit-Reset
    assert sum(clock.sleeps) == 3
    assert counters(url)["injected_errors"] == 3
    state = requests.get(f"{url}/_sandbox/state", timeout=10).json()
    assert state["tokens_issued"] == 2  # the revoked token was replaced once, without a wait


def test_zuora_style_429_without_retry_after_waits_the_reset(zuora, clock):
    """Zuora's own 429 sample has ratelimit-* and no Retry-After: the spent window's reset is the wait."""
    url, client = zuora
    client.find_accounts("BillingAccountId__c", "warm-up")
    requests.post(f"{url}/_sandbox/faults", json={"inject_statuses": [429], "retry_after": None,
                                                  "rate_window_seconds": 5}, timeout=10).raise_for_status()

    assert client.find_accounts("BillingAccountId__c", "nobody") == []

    assert clock.sleeps == [5]


def test_a_storm_longer_than_the_attempts_hands_the_inbox_one_second(zuora, clock):
    """Giving up, the client passes on the server's Retry-After (1 s), not its minute-away reset."""
    url, client = zuora
    client.find_accounts("BillingAccountId__c", "warm-up")
    storm(url, [429] * 10)

    with pytest.raises(TransientError) as caught:
        client.find_accounts("BillingAccountId__c", "nobody")

    assert caught.value.retry_after == 1
    assert clock.sleeps == [1] * 5  # six attempts, five waits of exactly what was asked


@pytest.mark.parametrize("code, repeats, outcome", [
    (53100050, 1, "done"), (53100061, 1, "done"), (53100070, 1, "done"), (53100099, 1, "done"),
    (53100060, 2, "done"), (53100060, 3, "rejected"), (53100020, 1, "rejected"), (53100040, 1, "rejected"),
])
def test_zuora_error_categories_over_http(zuora, clock, code, repeats, outcome):
    """fail-next makes the next ``repeats`` writes answer HTTP 200 ``success: false`` with ``code``.

    A PUT, because it carries no Idempotency-Key: Zuora stores a POST's failure under its key and
    replays it to a repeat with the same key, so only a keyless call shows what a repeat can do.
    """
    url, client = zuora
    created = client.create_account(ACCOUNT, idempotency_key="acct-categories")
    requests.post(f"{url}/_sandbox/fail-next", json={"count": repeats, "code": code, "message": "injected"},
                  timeout=10).raise_for_status()
    if outcome == "done":
        client.update_account(created.id, {"name": "Renamed Ltd"})
        assert client.get_account(created.id).name == "Renamed Ltd"
        assert len(clock.sleeps) == repeats
    else:
        with pytest.raises(ZuoraRejected) as caught:
            client.update_account(created.id, {"name": "Renamed Ltd"})
        assert caught.value.remote_code == str(code)
        assert len(clock.sleeps) == repeats - 1  # 60: two repeats, then refused; the others: refused at once
    puts = [r for r in requests.get(f"{url}/_sandbox/state", timeout=10).json()["requests"] if r["method"] == "PUT"]
    assert len(puts) == repeats + (outcome == "done")


def test_account_flow_rides_out_the_storm_in_one_event_attempt(tmp_path, clock):
    """Flow 2 (billing account → Zuora account) meets the storm and a revoked token, and still finishes
    on its first event attempt, having waited three seconds in all."""
    with LocalStack(tmp_path, workers=0, zuora_options={"clock": clock}) as stack:
        requests.post(f"{stack.zuora_url}/_sandbox/config", json={"callout_url": None}, timeout=10)
        services = Services(config=stack.config, db=stack.services.db, inbox=stack.services.inbox)
        services.zuora = ZuoraClient(stack.zuora_url, stack.zuora_sandbox.client_id,
                                     stack.zuora_sandbox.client_secret, clock=clock, sleep=clock.sleep)
        services.zuora.find_accounts("BillingAccountId__c", "warm-up")  # the worker's client holds a token
        create_billing_account(stack, account_id="acc-storm", customer_id="cust-storm")
        assert stack.billing_sandbox.wait_for_deliveries(10)
        storm(stack.zuora_url, STORM)

        assert Worker(services.inbox, build_handlers(services)).run_once()

        [event] = events(stack)
        assert (event["status"], event["attempts"], event["error_code"]) == ("done", 1, None)
        [account] = zuora_accounts(stack)
        assert account["basicInfo"]["BillingAccountId__c"] == "acc-storm"
        [row] = mappings(stack)
        assert row["billing_id"] == "acc-storm" and row["zuora_id"] == account["basicInfo"]["id"]
        assert clock.sleeps == [1, 1, 1]
        assert counters(stack.zuora_url)["injected_errors"] == 3


def test_a_keyed_post_refused_with_try_again_is_repeated_under_a_fresh_key(zuora, clock):
    """Zuora stores a POST's answer under its Idempotency-Key, failures included: a repeat under the
    same key would get "try again" back for a day. A ``success: false`` answer says nothing was
    created, so the client repeats under a fresh key derived from the first, and one account results."""
    url, client = zuora
    requests.post(f"{url}/_sandbox/fail-next", json={"count": 1, "code": 53100050, "message": "lock competition"},
                  timeout=10).raise_for_status()

    created = client.create_account(ACCOUNT, idempotency_key="billing-account:acc-rekey:s1")

    posts = [r for r in requests.get(f"{url}/_sandbox/state", timeout=10).json()["requests"]
             if r["method"] == "POST" and r["path"] == "/v1/accounts"]
    keys = [r["idempotency_key"] for r in posts]
    assert len(keys) == 2 and keys[0] == "billing-account:acc-rekey:s1"
    assert keys[1].startswith("billing-account:acc-rekey:s1~retry-") and keys[1] != keys[0]
    assert client.get_account(created.id).name == ACCOUNT["name"]
    accounts = requests.get(f"{url}/_sandbox/state", timeout=10).json()["accounts"]
    assert len(accounts) == 1


def test_a_keyed_post_whose_answer_is_a_5xx_keeps_its_key(zuora, clock):
    """A 5xx may hide a success: the repeat keeps the key, so Zuora's stored result answers it."""
    url, client = zuora
    requests.post(f"{url}/_sandbox/faults", json={"inject_statuses": [503]}, timeout=10).raise_for_status()
    client.create_account(ACCOUNT, idempotency_key="billing-account:acc-same:s1")
    posts = [r for r in requests.get(f"{url}/_sandbox/state", timeout=10).json()["requests"]
             if r["method"] == "POST" and r["path"] == "/v1/accounts"]
    assert [r["idempotency_key"] for r in posts] == ["billing-account:acc-same:s1"] * len(posts)
