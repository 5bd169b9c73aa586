"""ZuoraClient against requests-mock: OAuth, retries, pacing, Zuora's error shapes, headers, secrets.

No test really waits: the client gets a fake clock whose ``sleep`` records the wait and moves time.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from datetime import date
from decimal import Decimal

import pytest
import requests
from prometheus_client import REGISTRY, generate_latest

from integration.context import current_event_id
from integration.domain.errors import (
    AUTH_FAILED,
    ZUORA_REJECTED,
    AuthFailed,
    InvalidData,
    MalformedResponse,
    SyncError,
    TransientError,
    ZuoraRejected,
)
from integration.zuora.answers import category, is_transient_code
from integration.zuora.client import DEFAULT_ZUORA_VERSION, ZuoraClient, track_id
from tests.fakes import FakeClock

BASE = "https://zuora.test"
TOKEN_URL = f"{BASE}/oauth/token"
SECRET = "s3cr3t-Client-Secret-value"
ACCESS = "access-token-AAAA-1111"
ACCOUNT = {"success": True, "basicInfo": {"id": "8ad0000000000001", "accountNumber": "A00000001", "name": "Acme"}}


def token_reply(*tokens: str, expires_in: int = 3599):
    """Token endpoint answers handing out ``tokens`` in turn."""
    return [{"json": {"access_token": t, "expires_in": expires_in, "token_type": "bearer", "jti": "j"},
             "status_code": 200} for t in tokens]


def make_client(clock: FakeClock, **kwargs) -> ZuoraClient:
    kwargs.setdefault("max_attempts", 6)
    return ZuoraClient(BASE, "client-id-0000", SECRET, clock=clock, sleep=clock.sleep, rng=random.Random(7),
                       **kwargs)


def token_calls(mock) -> list:
    return [r for r in mock.request_history if r.url == TOKEN_URL]


def api_calls(mock) -> list:
    return [r for r in mock.request_history if r.url != TOKEN_URL]


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------------------------------- OAuth

def test_token_fetched_with_client_credentials_form_and_reused(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", json=ACCOUNT)
    client = make_client(clock)

    assert client.get_account("A00000001").id == "8ad0000000000001"
    client.get_account("A00000001")

    assert len(token_calls(mock)) == 1
    form = dict(pair.split("=") for pair in token_calls(mock)[0].text.split("&"))
    assert form == {"grant_type": "client_credentials", "client_id": "client-id-0000", "client_secret": SECRET}
    assert "Authorization" not in token_calls(mock)[0].headers
    assert all(r.headers["Authorization"] == f"Bearer {ACCESS}" for r in api_calls(mock))


def test_twenty_threads_share_one_token_fetch(mock, clock):
    def slow_token(request, context):
        time.sleep(0.05)  # widens the race window; the assertion does not depend on it
        return {"access_token": ACCESS, "expires_in": 3599, "token_type": "bearer"}

    mock.post(TOKEN_URL, json=slow_token)
    mock.get(f"{BASE}/v1/accounts/A00000001", json=ACCOUNT)
    client = make_client(clock)
    start = threading.Barrier(20)
    errors: list[BaseException] = []

    def worker():
        start.wait()
        try:
            client.get_account("A00000001")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)

    assert errors == []
    assert len(token_calls(mock)) == 1
    assert len(api_calls(mock)) == 20


def test_token_replaced_shortly_before_expiry_by_injected_clock(mock, clock):
    mock.post(TOKEN_URL, token_reply("tok-1", "tok-2"))
    mock.get(f"{BASE}/v1/accounts/A00000001", json=ACCOUNT)
    client = make_client(clock)

    client.get_account("A00000001")
    clock.now += 3599 - 60 - 1  # one second inside the 60 s margin's safe side
    client.get_account("A00000001")
    assert len(token_calls(mock)) == 1

    clock.now += 2  # now within 60 s of expiry
    client.get_account("A00000001")
    assert len(token_calls(mock)) == 2
    assert api_calls(mock)[-1].headers["Authorization"] == "Bearer tok-2"


def test_401_refreshes_token_once_and_repeats_the_call(mock, clock):
    mock.post(TOKEN_URL, token_reply("tok-old", "tok-new"))
    mock.get(f"{BASE}/v1/accounts/A00000001", [
        {"status_code": 401, "json": {"message": "Authentication error"}},
        {"status_code": 200, "json": ACCOUNT},
    ])
    client = make_client(clock)

    assert client.get_account("A00000001").number == "A00000001"
    assert len(token_calls(mock)) == 2
    assert [r.headers["Authorization"] for r in api_calls(mock)] == ["Bearer tok-old", "Bearer tok-new"]
    assert clock.sleeps == []  # a refresh is not a backoff


def test_second_401_is_auth_failed(mock, clock):
    mock.post(TOKEN_URL, token_reply("tok-1", "tok-2", "tok-3"))
    mock.get(f"{BASE}/v1/accounts/A00000001", status_code=401, json={"message": "Authentication error"})
    client = make_client(clock)

    with pytest.raises(AuthFailed) as caught:
        client.get_account("A00000001")

    assert caught.value.code == AUTH_FAILED
    assert caught.value.retryable is False
    assert "Authentication error" in str(caught.value)
    assert len(token_calls(mock)) == 2
    assert len(api_calls(mock)) == 2


@pytest.mark.parametrize("status", [400, 401])
def test_token_endpoint_refusal_is_auth_failed_without_api_call(mock, clock, status):
    mock.post(TOKEN_URL, status_code=status, json={"message": "Authentication error"})
    mock.get(f"{BASE}/v1/accounts/A00000001", json=ACCOUNT)

    with pytest.raises(AuthFailed) as caught:
        make_client(clock).get_account("A00000001")

    assert caught.value.code == AUTH_FAILED
    assert f"HTTP {status}" in str(caught.value)
    assert len(token_calls(mock)) == 1
    assert api_calls(mock) == []


def test_token_endpoint_outage_is_retried(mock, clock):
    mock.post(TOKEN_URL, [{"status_code": 503, "text": "down"}, *token_reply(ACCESS)])
    mock.get(f"{BASE}/v1/accounts/A00000001", json=ACCOUNT)

    make_client(clock).get_account("A00000001")

    assert len(token_calls(mock)) == 2
    assert len(clock.sleeps) == 1


def test_token_response_without_access_token_is_malformed(mock, clock):
    mock.post(TOKEN_URL, json={"expires_in": 3599})
    with pytest.raises(MalformedResponse, match="access_token"):
        make_client(clock).get_account("A00000001")


# ---------------------------------------------------------------------------------------- retries and pacing

def test_429_waits_exactly_retry_after(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", [
        {"status_code": 429, "headers": {"Retry-After": "7"}},
        {"status_code": 200, "json": ACCOUNT},
    ])
    before = sample("integration_remote_rate_limited_total", api="zuora")

    make_client(clock).get_account("A00000001")

    assert clock.sleeps == [7]  # never sooner, and no jitter on top
    assert sample("integration_remote_rate_limited_total", api="zuora") == before + 1


def test_429_retry_after_takes_precedence_over_ratelimit_reset(mock, clock):
    """IETF draft: Retry-After MUST take precedence. Retry-After 1 with RateLimit-Reset 11 waits 1 s, in
    the retry loop and in the pacer alike (the test used to expect the reset: CONTRACT §5 changed)."""
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", [
        {"status_code": 429, "headers": {"RateLimit-Remaining": "0", "RateLimit-Reset": "11", "Retry-After": "1"}},
        {"status_code": 200, "json": ACCOUNT, "headers": {"RateLimit-Remaining": "0", "RateLimit-Reset": "10"}},
        {"status_code": 200, "json": ACCOUNT},
    ])
    client = make_client(clock)
    client.get_account("A00000001")
    assert clock.sleeps == [1]
    client.get_account("A00000001")  # this answer named no Retry-After: its spent window is the wait
    assert clock.sleeps == [1, 10]


def test_zuora_sample_429_without_retry_after_waits_ratelimit_reset(mock, clock):
    """Zuora's rate-limit guide's 429: lower-case ratelimit-* headers and no Retry-After."""
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", [
        {"status_code": 429, "headers": {"ratelimit-limit": "50000, 50000;w=60", "ratelimit-remaining": "0",
                                         "ratelimit-reset": "9"}},
        {"status_code": 200, "json": ACCOUNT},
    ])
    make_client(clock).get_account("A00000001")
    assert clock.sleeps == [9]


def test_429_with_budget_left_and_no_retry_after_uses_jittered_backoff(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", [
        {"status_code": 429, "headers": {"RateLimit-Remaining": "12", "RateLimit-Reset": "40"}},
        {"status_code": 200, "json": ACCOUNT},
    ])
    make_client(clock).get_account("A00000001")
    assert len(clock.sleeps) == 1 and 0 <= clock.sleeps[0] <= 0.5


def test_exhausted_429s_hand_the_inbox_the_retry_after(mock, clock):
    """Giving up, the client tells the inbox what the server asked (1 s), not the 600 s reset."""
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", status_code=429,
             headers={"Retry-After": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "600"})
    with pytest.raises(TransientError) as caught:
        make_client(clock, max_attempts=3).get_account("A00000001")
    assert caught.value.retry_after == 1
    assert clock.sleeps == [1, 1]
    assert len(api_calls(mock)) == 3


def test_ratelimit_remaining_zero_waits_for_reset_before_next_call(mock, clock):
    seen_at: list[float] = []

    def account(request, context):
        seen_at.append(clock.now)
        context.headers["RateLimit-Remaining"] = "0" if len(seen_at) == 1 else "100"
        context.headers["RateLimit-Reset"] = "12"
        return ACCOUNT

    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", json=account)
    client = make_client(clock)

    client.get_account("A00000001")
    assert clock.sleeps == []
    client.get_account("A00000001")
    client.get_account("A00000001")

    assert clock.sleeps == [12]
    assert seen_at[1] - seen_at[0] == 12  # the second call went out only after the reset
    assert seen_at[2] == seen_at[1]  # a fresh budget means no more waiting


def test_reset_beyond_retry_budget_is_transient_not_a_long_sleep(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "600"},
             json=ACCOUNT)
    client = make_client(clock)
    client.get_account("A00000001")

    with pytest.raises(TransientError) as caught:
        client.get_account("A00000001")

    assert caught.value.retry_after == pytest.approx(600)
    assert len(api_calls(mock)) == 1
    assert all(s < 60 for s in clock.sleeps)


def test_concurrency_limit_remaining_zero_waits_a_second(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", [
        {"json": ACCOUNT, "headers": {"Concurrency-Limit-Remaining": "0"}},
        {"json": ACCOUNT, "headers": {"Concurrency-Limit-Remaining": "39"}},
    ])
    client = make_client(clock)
    client.get_account("A00000001")
    client.get_account("A00000001")
    assert clock.sleeps == [1.0]


def test_5xx_retried_then_surfaced_as_transient(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", status_code=503, json={"reasons": [{"code": "SystemError",
                                                                                   "message": "unavailable"}]})

    with pytest.raises(TransientError) as caught:
        make_client(clock, max_attempts=3).get_account("A00000001")

    assert caught.value.retryable is True
    assert "HTTP 503" in str(caught.value) and "3 attempts" in str(caught.value)
    assert len(api_calls(mock)) == 3
    assert len(clock.sleeps) == 2
    # full jitter: each wait is within [0, base * 2**n]
    assert 0 <= clock.sleeps[0] <= 0.5 and 0 <= clock.sleeps[1] <= 1.0


def test_retry_budget_in_seconds_is_respected(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", status_code=503, headers={"Retry-After": "20"})

    with pytest.raises(TransientError) as caught:
        make_client(clock, max_retry_seconds=45).get_account("A00000001")

    assert clock.sleeps == [20, 20]  # a third wait would pass 45 s
    assert caught.value.retry_after == 20


@pytest.mark.parametrize("failure", [requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout,
                                     requests.exceptions.ConnectionError])
def test_connection_errors_and_timeouts_are_retried(mock, clock, failure):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", [{"exc": failure}, {"json": ACCOUNT}])

    assert make_client(clock).get_account("A00000001").id
    assert len(api_calls(mock)) == 2


def test_persistent_timeout_becomes_transient_error(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", exc=requests.exceptions.ReadTimeout)
    with pytest.raises(TransientError, match="timed out"):
        make_client(clock, max_attempts=2).get_account("A00000001")
    assert len(api_calls(mock)) == 2


def test_timeouts_are_passed_to_requests(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A00000001", json=ACCOUNT)
    make_client(clock, timeout=(3, 17)).get_account("A00000001")
    assert all(r.timeout == (3, 17) for r in mock.request_history)


# ---------------------------------------------------------------------------------------- error shapes

def test_http_200_success_false_is_rejected_with_code_message_process_id(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/accounts", json={"success": False, "processId": "CBCFED6580B4E076",
                                           "reasons": [{"code": 53100320,
                                                        "message": "'termType' value should be one of: TERMED"}]})

    with pytest.raises(ZuoraRejected) as caught:
        make_client(clock).create_account({"name": "Acme"}, idempotency_key="acct-1")

    err = caught.value
    assert (err.code, err.remote_code, err.process_id, err.http_status) == (ZUORA_REJECTED, "53100320",
                                                                             "CBCFED6580B4E076", 200)
    assert err.remote_message == "'termType' value should be one of: TERMED"
    assert str(err) == "53100320: 'termType' value should be one of: TERMED (processId CBCFED6580B4E076)"
    assert err.retryable is False
    assert len(api_calls(mock)) == 1


@pytest.mark.parametrize("code", [58730222, "58730222"])
def test_code_as_number_or_string(mock, clock, code):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/invoices", status_code=400,
              json={"success": False, "processId": "738CBB9234B47A47", "requestId": "d7479cf6",
                    "reasons": [{"code": code, "message": "orderDate may not be null"}]})

    with pytest.raises(ZuoraRejected) as caught:
        make_client(clock).create_invoice({"accountId": "a"}, idempotency_key="inv-1")

    assert caught.value.remote_code == "58730222"
    assert caught.value.http_status == 400
    assert caught.value.process_id == "738CBB9234B47A47"


def test_object_api_errors_shape(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/object/usage", status_code=400, json={
        "Success": False, "Errors": [{"Code": "INVALID_VALUE", "Message": "The account number 123x is invalid."}]})

    with pytest.raises(ZuoraRejected) as caught:
        make_client(clock).create_usage({"AccountNumber": "123x"}, idempotency_key="u-1")

    assert caught.value.remote_code == "INVALID_VALUE"
    assert caught.value.remote_message == "The account number 123x is invalid."
    assert caught.value.http_status == 400


def test_object_api_success_false_on_200(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/object/usage", json={"Success": False, "Errors": [{"Code": "MISSING_REQUIRED_VALUE",
                                                                             "Message": "UOM is required"}]})
    with pytest.raises(ZuoraRejected, match="MISSING_REQUIRED_VALUE: UOM is required"):
        make_client(clock).create_usage({"AccountNumber": "A1"}, idempotency_key="u-1")


@pytest.mark.parametrize("code", ["53100350", 53100361, "50000070", "53100399"])
def test_transient_categories_are_retried(mock, clock, code):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/accounts", [
        {"json": {"success": False, "reasons": [{"code": code, "message": "try again"}]},
         "headers": {"Retry-After": "3"}},
        {"json": {"success": True, "accountId": "8ad1", "accountNumber": "A00000009"}},
    ])

    result = make_client(clock).create_account({"name": "Acme"}, idempotency_key="acct-9")

    assert result.id == "8ad1"
    assert len(api_calls(mock)) == 2
    assert clock.sleeps == [3]


@pytest.mark.parametrize("code", ["50000040", "53100320", "50000010", "90000011"])
def test_other_categories_are_not_retried(mock, clock, code):
    """The category is the LAST two digits: 50000040 is "not found", whatever its leading 50."""
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/nope", status_code=404,
             json={"success": False, "reasons": [{"code": code, "message": "Cannot find entity by key: 'nope'."}]})

    with pytest.raises(ZuoraRejected) as caught:
        make_client(clock).get_account("nope")

    assert caught.value.remote_code == code
    assert caught.value.http_status == 404
    assert len(api_calls(mock)) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("category_digits", ["10", "11", "20", "21", "22", "23", "27", "30", "40", "45", "90"])
def test_every_non_retry_category_is_rejected_at_once(mock, clock, category_digits):
    """CONTRACT §5: only 50/61/70/99 are transient (and 60, a little); every other category is refused."""
    code = f"531000{category_digits}"
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/accounts", json={"success": False, "processId": "P1",
                                           "reasons": [{"code": code, "message": "no"}]})
    with pytest.raises(ZuoraRejected) as caught:
        make_client(clock).create_account({"name": "Acme"}, idempotency_key="acct-1")
    assert caught.value.remote_code == code
    assert len(api_calls(mock)) == 1 and clock.sleeps == []


def test_internal_error_category_60_is_retried_twice_then_rejected(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/accounts", json={"success": False, "processId": "P60",
                                           "reasons": [{"code": "53100060", "message": "internal error"}]})
    with pytest.raises(ZuoraRejected) as caught:
        make_client(clock, max_attempts=6).create_account({"name": "Acme"}, idempotency_key="acct-60")
    assert (caught.value.code, caught.value.remote_code, caught.value.process_id) == (ZUORA_REJECTED, "53100060",
                                                                                      "P60")
    assert len(api_calls(mock)) == 3  # the first try and two repeats, well inside max_attempts
    assert len(clock.sleeps) == 2


def test_internal_error_that_passes_on_a_repeat_succeeds(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    internal = {"json": {"success": False, "reasons": [{"code": 53100060, "message": "internal error"}]}}
    mock.post(f"{BASE}/v1/accounts", [internal, internal,
                                      {"json": {"success": True, "accountId": "8ad1", "accountNumber": "A1"}}])
    assert make_client(clock).create_account({"name": "Acme"}, idempotency_key="k").id == "8ad1"
    assert len(api_calls(mock)) == 3


def test_internal_error_allowance_is_per_call(mock, clock):
    """Two calls each get their own two repeats: the count lives with the call, not the client."""
    mock.post(TOKEN_URL, token_reply(ACCESS))
    internal = {"json": {"success": False, "reasons": [{"code": "53100060", "message": "internal error"}]}}
    done = {"json": {"success": True, "accountId": "8ad1", "accountNumber": "A1"}}
    mock.post(f"{BASE}/v1/accounts", [internal, internal, done, internal, internal, done])
    client = make_client(clock)
    client.create_account({"name": "Acme"}, idempotency_key="k1")
    client.create_account({"name": "Acme"}, idempotency_key="k2")
    assert len(api_calls(mock)) == 6


def test_a_permanent_reason_next_to_a_transient_one_is_rejected(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/accounts", json={"success": False, "reasons": [
        {"code": "53100050", "message": "locked"}, {"code": "53100020", "message": "bad value"}]})
    with pytest.raises(ZuoraRejected):
        make_client(clock).create_account({"name": "Acme"}, idempotency_key="k")
    assert len(api_calls(mock)) == 1


def test_oversized_zuora_answer_is_malformed_naming_the_call(mock, clock):
    from integration.clients.bodies import MAX_BODY_BYTES

    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A1", content=b" " * (MAX_BODY_BYTES + 1))
    with pytest.raises(MalformedResponse, match=r"^zuora GET /v1/accounts/\{key\}: response body larger than"):
        make_client(clock).get_account("A1")
    assert len(api_calls(mock)) == 1


def test_category_helpers():
    assert category("50000040") == "40" and category("53100350") == "50"
    assert category("5000004") is None and category("SystemError") is None
    assert is_transient_code("LOCK_COMPETITION") and not is_transient_code("INVALID_VALUE")
    assert not is_transient_code(None)


def test_transient_category_exhausted_is_transient_error(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.put(f"{BASE}/v1/accounts/A1", json={"success": False, "reasons": [{"code": "50000050",
                                                                             "message": "lock contention"}]})
    with pytest.raises(TransientError, match="lock contention"):
        make_client(clock, max_attempts=2).update_account("A1", {"notes": "x"})
    assert len(api_calls(mock)) == 2


def test_plain_4xx_without_zuora_shape_is_rejected(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/object/usage", status_code=400, json={"message": "Error - unrecognised fields"})
    with pytest.raises(ZuoraRejected) as caught:
        make_client(clock).create_usage({"Foo": 1}, idempotency_key="u")
    assert caught.value.remote_message == "Error - unrecognised fields"
    assert caught.value.remote_code is None


# ---------------------------------------------------------------------------------------- idempotency and headers

def test_idempotency_key_identical_across_retries_of_one_push(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/invoices", [
        {"exc": requests.exceptions.ReadTimeout},
        {"status_code": 502, "text": "<html>bad gateway</html>"},
        {"json": {"success": True, "id": "inv-id", "invoiceNumber": "INV00000155"}},
    ])

    result = make_client(clock).create_invoice({"accountId": "a", "invoiceItems": []},
                                               idempotency_key="invoice:bill-inv-42:v1")

    assert result.number == "INV00000155"
    keys = [r.headers.get("Idempotency-Key") for r in api_calls(mock)]
    assert keys == ["invoice:bill-inv-42:v1"] * 3
    assert len({r.text for r in api_calls(mock)}) == 1  # the same body each time


def test_no_idempotency_key_on_get_put_or_token(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A1", json=ACCOUNT)
    mock.put(f"{BASE}/v1/accounts/A1", json={"success": True})
    client = make_client(clock)

    client.get_account("A1")
    assert client.update_account("A1", {"BillingAccountId__c": "acc_1"}) is None

    assert all("Idempotency-Key" not in r.headers for r in mock.request_history)
    assert json.loads(api_calls(mock)[1].text) == {"BillingAccountId__c": "acc_1"}


@pytest.mark.parametrize("key", ["", "x" * 256, "line\nbreak", 42, None])
def test_invalid_idempotency_key_refused_before_sending(mock, clock, key):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    with pytest.raises(InvalidData) as caught:
        make_client(clock).create_account({"name": "Acme"}, idempotency_key=key)
    assert caught.value.field == "idempotency_key"
    assert mock.request_history == []


def test_idempotency_key_of_255_chars_is_accepted(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/accounts", json={"success": True, "accountId": "a", "accountNumber": "A1"})
    make_client(clock).create_account({"name": "Acme"}, idempotency_key="k" * 255)
    assert api_calls(mock)[0].headers["Idempotency-Key"] == "k" * 255


def test_409_in_progress_is_retried_and_409_with_original_result_is_returned(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/accounts", [
        {"status_code": 409, "json": {"message": "request with this idempotency key is in progress"}},
        {"status_code": 409, "json": {"success": True, "accountId": "8ad1", "accountNumber": "A00000009"}},
    ])
    result = make_client(clock).create_account({"name": "Acme"}, idempotency_key="acct-9")
    assert result.number == "A00000009"
    assert len(api_calls(mock)) == 2 and len(clock.sleeps) == 1


def test_zuora_headers_on_every_call(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A1", json=ACCOUNT)
    entity = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    client = make_client(clock, entity_id=entity)

    token = current_event_id.set("evt:42;'x\"")
    try:
        client.get_account("A1")
    finally:
        current_event_id.reset(token)
    client.get_account("A1")

    with_event, without_event = api_calls(mock)
    assert with_event.headers["Zuora-Track-Id"] == "evt42x"
    assert with_event.headers["Zuora-Entity-Ids"] == entity
    assert with_event.headers["Zuora-Version"] == DEFAULT_ZUORA_VERSION == "2025-08-12"
    assert "Zuora-Track-Id" not in without_event.headers
    assert token_calls(mock)[0].headers["Zuora-Entity-Ids"] == entity
    assert "Zuora-Entity-Ids" not in make_client(clock)._default_headers()


def test_track_id_rules():
    assert track_id("a" * 100) == "a" * 64
    assert track_id("évènement-1") == "vnement-1"
    assert track_id(None) is None and track_id(":;") is None


def test_custom_zuora_version_is_sent(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A1", json=ACCOUNT)
    make_client(clock, zuora_version="211.0").get_account("A1")
    assert api_calls(mock)[0].headers["Zuora-Version"] == "211.0"


def test_redirect_is_not_followed_and_is_malformed(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A1", status_code=302, headers={"Location": "https://elsewhere.test/"})
    with pytest.raises(MalformedResponse, match="unexpected HTTP 302"):
        make_client(clock).get_account("A1")
    assert [r.hostname for r in mock.request_history] == ["zuora.test", "zuora.test"]


def test_hostile_key_cannot_change_the_path(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/..%2Fusage", json=ACCOUNT)
    client = make_client(clock)
    client.get_account("../usage")
    assert api_calls(mock)[0].path == "/v1/accounts/..%2fusage"
    with pytest.raises(InvalidData):
        client.get_account("..")
    with pytest.raises(InvalidData):
        client.get_account("")


# ---------------------------------------------------------------------------------------- validation

def test_non_json_success_is_malformed(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A1", text="<html>maintenance</html>")
    with pytest.raises(MalformedResponse) as caught:
        make_client(clock).get_account("A1")
    assert str(caught.value) == "Zuora GET /v1/accounts/{key}: response is not a JSON object"
    assert caught.value.code == "UNKNOWN"


def test_missing_returned_field_is_malformed(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A1", json={"success": True, "basicInfo": {"id": "x"}})
    mock.post(f"{BASE}/v1/accounts", json={"success": True, "accountNumber": "A1"})
    client = make_client(clock)
    with pytest.raises(MalformedResponse, match=r"GET /v1/accounts/\{key\}: response has no basicInfo.accountNumber"):
        client.get_account("A1")
    with pytest.raises(MalformedResponse, match="POST /v1/accounts: response has no accountId"):
        client.create_account({"name": "Acme"}, idempotency_key="k")


def test_amounts_are_exact_decimals_both_ways(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/invoices", json={"success": True, "id": "i1", "invoiceNumber": "INV1"})
    mock.get(f"{BASE}/v1/invoices/i1", text='{"success": true, "id": "i1", "amount": 0.30000000000000004, '
                                            '"balance": 12345678901234567.89}')
    client = make_client(clock)
    client.create_invoice({"accountId": "a", "invoiceItems": [{"amount": Decimal("12345678901234567.89")}]},
                          idempotency_key="k")
    invoice = client.get_invoice("i1")

    assert '"amount":12345678901234567.89' in api_calls(mock)[0].text
    assert invoice.amount == Decimal("0.30000000000000004")
    assert invoice.balance == Decimal("12345678901234567.89")


# ---------------------------------------------------------------------------------------- object query and usage

def test_find_accounts_filters_and_follows_pages(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/object-query/accounts", [
        {"json": {"data": [{"id": "a1", "accountNumber": "A1"}], "nextPage": "CURSOR=="}},
        {"json": {"data": [{"id": "a2", "accountNumber": "A2"}]}},
    ])
    rows = make_client(clock).find_accounts("BillingAccountId__c", "acc 1/x")
    assert [r.id for r in rows] == ["a1", "a2"]
    first, second = api_calls(mock)
    assert first.qs["filter[]"] == ["billingaccountid__c.eq:acc 1/x"]  # requests-mock lower-cases qs
    assert "filter%5B%5D=BillingAccountId__c.EQ%3Aacc+1%2Fx" in first.url
    assert second.qs["cursor"] == ["cursor=="]


def test_find_accounts_validates_field_and_response(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/object-query/accounts", json={"nextPage": None})
    client = make_client(clock)
    with pytest.raises(InvalidData):
        client.find_accounts("name.EQ:x&filter[]=id", "v")
    with pytest.raises(MalformedResponse, match="data"):
        client.find_accounts("crmId", "v")


def test_create_usage_record(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/object/usage", json={"Id": "8ad0abb", "Success": True})
    record = {"AccountNumber": "A1", "Quantity": Decimal("200.5"), "UOM": "Each",
              "StartDateTime": "2024-06-01T00:00:00Z"}
    assert make_client(clock).create_usage(record, idempotency_key="usage:inv-1:meter-1") == "8ad0abb"
    assert api_calls(mock)[0].headers["Idempotency-Key"] == "usage:inv-1:meter-1"
    assert '"Quantity":200.5' in api_calls(mock)[0].text


def test_upload_usage_and_wait_until_completed(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/usage", json={"checkImportStatus": "/v1/usage/2c92a0fe00cc/status", "size": 316,
                                        "success": True})
    mock.get(f"{BASE}/v1/usage/2c92a0fe00cc/status", [
        {"json": {"importStatus": "Pending", "success": True}},
        {"json": {"importStatus": "Processing", "success": True}},
        {"json": {"importStatus": "Completed", "success": True}},
    ])
    client = make_client(clock)
    csv = b"ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\nA1,Each,3,01/01/2025,,,,\n"

    import_id = client.upload_usage(csv, filename="usage-inv-1.csv", idempotency_key="usagefile:inv-1")
    result = client.wait_for_usage_import(import_id, poll_interval=2.0)

    assert import_id == "2c92a0fe00cc"
    assert result.status == "Completed"
    assert clock.sleeps == [0.2, 0.4]  # from a tenth of poll_interval, doubling up to it
    upload = api_calls(mock)[0]
    assert upload.headers["Idempotency-Key"] == "usagefile:inv-1"
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="file"; filename="usage-inv-1.csv"' in upload.body and csv in upload.body


def test_failed_usage_import_is_rejected_with_its_reason(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/usage/imp1/status", json={"importStatus": "Failed", "success": True,
                                                  "message": "Line 2: account A9 does not exist"})
    with pytest.raises(ZuoraRejected) as caught:
        make_client(clock).wait_for_usage_import("/v1/usage/imp1/status")
    assert caught.value.remote_message == "Line 2: account A9 does not exist"


def test_usage_import_timeout_is_transient(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/usage/imp1/status", json={"importStatus": "Processing", "success": True})
    with pytest.raises(TransientError, match="still Processing after 10 s"):
        make_client(clock).wait_for_usage_import("imp1", timeout=10, poll_interval=1.0)
    assert sum(clock.sleeps) <= 10


def test_upload_usage_validates_file_before_sending(mock, clock):
    client = make_client(clock)
    with pytest.raises(InvalidData, match="4194304"):
        client.upload_usage(b"x" * 4_194_305, filename="u.csv", idempotency_key="k")
    with pytest.raises(InvalidData):
        client.upload_usage(b"a", filename="x" * 51 + ".csv", idempotency_key="k")
    with pytest.raises(InvalidData):
        client.upload_usage(b"", filename="u.csv", idempotency_key="k")
    assert mock.request_history == []


def test_upload_usage_refuses_a_foreign_status_path(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.post(f"{BASE}/v1/usage", json={"checkImportStatus": "https://evil.test/x", "success": True})
    with pytest.raises(MalformedResponse, match="checkImportStatus"):
        make_client(clock).upload_usage(b"a", filename="u.csv", idempotency_key="k")


# ---------------------------------------------------------------------------------------- metrics, logs, secrets

def test_metrics_use_the_endpoint_template(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A-metrics-1", [{"status_code": 500}, {"json": ACCOUNT}])
    labels = {"api": "zuora", "method": "GET", "endpoint": "/v1/accounts/{key}"}
    ok_before = sample("integration_remote_calls_total", status="200", **labels)
    err_before = sample("integration_remote_calls_total", status="500", **labels)
    count_before = sample("integration_remote_call_seconds_count", **labels)

    make_client(clock).get_account("A-metrics-1")

    assert sample("integration_remote_calls_total", status="200", **labels) == ok_before + 1
    assert sample("integration_remote_calls_total", status="500", **labels) == err_before + 1
    assert sample("integration_remote_call_seconds_count", **labels) == count_before + 2
    assert b"A-metrics-1" not in generate_latest()


def test_one_log_line_per_attempt_with_extras(mock, clock, caplog):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.get(f"{BASE}/v1/accounts/A1", [{"status_code": 503}, {"json": ACCOUNT}])
    caplog.set_level(logging.INFO, logger="integration.remote")
    token = current_event_id.set("evt-7")
    try:
        make_client(clock).get_account("A1")
    finally:
        current_event_id.reset(token)

    lines = [r for r in caplog.records if r.name == "integration.remote" and r.endpoint == "/v1/accounts/{key}"]
    assert [(r.status, r.attempt, r.levelno) for r in lines] == [("503", 1, logging.WARNING),
                                                                 ("200", 2, logging.INFO)]
    assert all(r.api == "zuora" and r.method == "GET" and r.event_id == "evt-7" and isinstance(r.duration_ms, int)
               for r in lines)


def test_secrets_never_in_logs_exceptions_or_repr(mock, clock, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "authlib", "requests", "integration"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    mock.post(TOKEN_URL, token_reply(ACCESS, ACCESS + "-2"))
    mock.get(f"{BASE}/v1/accounts/A1", status_code=401,
             json={"message": f"Authentication error for {ACCESS} / {SECRET}"})
    mock.post(f"{BASE}/v1/accounts", json={"success": False, "reasons": [
        {"code": "53100320", "message": f"echo {SECRET} and {ACCESS}-2"}]})
    client = make_client(clock)
    failures = []
    for call in (lambda: client.get_account("A1"),
                 lambda: client.create_account({"name": "x"}, idempotency_key="k")):
        with pytest.raises(SyncError) as caught:
            call()
        failures.append(caught.value)

    texts = [caplog.text, repr(client)]
    texts += [str(e) for e in failures] + [repr(e) for e in failures]
    texts += [str(v) for r in caplog.records for v in vars(r).values()]
    for text in texts:
        assert SECRET not in text
        assert ACCESS not in text
    assert isinstance(failures[0], AuthFailed) and isinstance(failures[1], ZuoraRejected)


def test_secret_not_logged_over_real_http(caplog):
    """urllib3 logs at DEBUG only over a real socket, so this one talks to a local server."""
    from flask import Flask, jsonify, request

    from integration_sandbox.server import ServerThread

    app = Flask("fake-zuora")

    @app.post("/oauth/token")
    def token():
        ok = request.form.get("client_secret") == SECRET
        return (jsonify(access_token=ACCESS, expires_in=3599, token_type="bearer") if ok
                else (jsonify(message="Authentication error"), 401))

    @app.get("/v1/accounts/<key>")
    def account(key):
        if request.headers.get("Authorization") != f"Bearer {ACCESS}":
            return jsonify(message="Authentication error"), 401
        return jsonify(ACCOUNT)

    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "authlib", "requests", "werkzeug"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    with ServerThread(app) as server:
        clock = FakeClock()
        client = ZuoraClient(server.url, "client-id", SECRET, clock=clock, sleep=clock.sleep)
        assert client.get_account("A1").id == "8ad0000000000001"
        with pytest.raises(AuthFailed) as caught:
            ZuoraClient(server.url, "client-id", SECRET + "-wrong", clock=clock,
                        sleep=clock.sleep).get_account("A1")

    assert any(r.name.startswith("urllib3") for r in caplog.records)  # the check below saw real logs
    assert SECRET not in caplog.text and ACCESS not in caplog.text
    assert SECRET not in str(caught.value)


def test_constructor_refuses_bad_configuration():
    with pytest.raises(ValueError, match="base_url must be an http"):
        ZuoraClient("ftp://zuora.test", "id", "secret")
    with pytest.raises(ValueError, match="client_id and client_secret are required") as caught:
        ZuoraClient(BASE, "id", "")
    assert "secret" not in str(caught.value).replace("client_secret", "")


# -- undoing an invoice (CONTRACT §12) ------------------------------------------------------------------

def test_reverse_sends_its_dates_unkeyed_and_needs_a_credit_memo_or_a_job(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    url = f"{BASE}/v1/invoices/8ad0inv/reverse"
    mock.put(url, [{"json": {"success": True, "creditMemo": {"id": "cm-1"}}},
                   {"json": {"success": True, "jobId": "job-1", "jobStatus": "Processing"}},
                   {"json": {"success": True}}])
    client = make_client(clock)
    day = date(2026, 2, 1)
    assert client.reverse_invoice("8ad0inv", memo_date=day, apply_effective_date=day,
                                  comment="voided").credit_memo_id == "cm-1"
    sent = api_calls(mock)[0]
    assert sent.json() == {"memoDate": "2026-02-01", "applyEffectiveDate": "2026-02-01", "comment": "voided"}
    assert "Idempotency-Key" not in sent.headers  # Zuora: no key on PUT
    assert client.reverse_invoice("8ad0inv", memo_date=day, apply_effective_date=day).job_id == "job-1"
    with pytest.raises(MalformedResponse, match=r"neither creditMemo\.id nor jobId"):
        client.reverse_invoice("8ad0inv", memo_date=day, apply_effective_date=day)


def test_a_refused_cancel_is_zuora_rejected_with_zuoras_reason(mock, clock):
    mock.post(TOKEN_URL, token_reply(ACCESS))
    mock.put(f"{BASE}/v1/invoices/8ad0inv/cancel", json={
        "success": False, "processId": "P1", "reasons": [{"code": 59210030, "message": "Only a Draft invoice can be "
                                                                                       "canceled"}]})
    with pytest.raises(ZuoraRejected) as refused:
        make_client(clock).cancel_invoice("8ad0inv")
    assert (refused.value.remote_code, refused.value.code) == ("59210030", ZUORA_REJECTED)
    assert "Only a Draft invoice can be canceled" in refused.value.remote_message
    assert len(api_calls(mock)) == 1  # a business refusal is not repeated
