"""The limit on guessing ADMIN_TOKEN at the console's sign-in (CONTRACT §8; issue 23 item 4), counted in
the store on both engines: each attempt is counted before its token is checked, atomically, so parallel
guesses get no more checks than the limit; a blocked bucket refuses every attempt; and no one is blocked
for another's failures — per address, and per browser that signed in before (a known-device cookie)."""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from integration import create_app
from integration.config import Secret
from integration.services import Services
from integration.store import sign_ins
from integration.store.db import Database
from integration.store.tx import StoreUnavailable
from integration.web.console_session import DEVICE_COOKIE
from integration.web.sign_in_limit import SignInLimiter
from tests.conftest import ADMIN_TOKEN
from tests.test_console import csrf_of, sign_in

pytestmark = pytest.mark.both_engines

WINDOW = timedelta(seconds=300)


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def in_parallel(work, n: int) -> list:
    """Run ``work(i)`` on ``n`` threads released together; their results (any exception fails the test)."""
    start, results, errors = threading.Barrier(n), [None] * n, []

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def test_forty_parallel_attempts_are_numbered_one_to_forty_by_the_store(services):
    databases = [Database(services.db.url, busy_timeout=60) for _ in range(2)]  # two processes' pools (≤ 15 each)
    try:
        numbers = in_parallel(lambda i: sign_ins.count_attempt(databases[i % 2], "address:198.51.100.7",
                                                               datetime.now(timezone.utc), WINDOW).number, 40)
    finally:
        for db in databases:
            db.close()
    assert sorted(numbers) == list(range(1, 41))  # no two attempts ever read the same count


def test_forty_parallel_wrong_tokens_from_one_address_get_five_real_checks(services, config, monkeypatch):
    # Two web processes, each with its own pool (at most 15 connections: PostgreSQL's 100 are shared with the
    # rest of the suite), 20 threads each; 40 writers queue on one row, which on a loaded machine takes > 5 s.
    processes = [services, Services.from_config(config)]
    for process in processes:
        process.db.busy_timeout = 60
    try:
        clients = [create_app(services=processes[i % 2]).test_client() for i in range(40)]
        tokens = [csrf_of(c) for c in clients]
        checks = []
        real_compare = __import__("hmac").compare_digest

        def counting_compare(a, b):
            if b == ADMIN_TOKEN.encode():  # a check of the token (CSRF checks compare too)
                checks.append(a)
            return real_compare(a, b)

        monkeypatch.setattr("hmac.compare_digest", counting_compare)
        statuses = in_parallel(lambda i: clients[i].post("/console/login", data={
            "token": f"wrong-guess-{i}", "csrf_token": tokens[i]}).status_code, 40)
    finally:
        for other in processes[1:]:
            other.db.close()
    assert sorted(statuses) == [401] * 5 + [429] * 35
    assert len(checks) == 5


def test_attempts_on_one_web_process_count_on_every_other(services, config):
    other = Services.from_config(config)  # a second process: its own pool, the same store
    try:
        first, second = create_app(services=services).test_client(), create_app(services=other).test_client()
        for client in (first, second, first, second, first):
            assert sign_in(client, token="wrong").status_code == 401
        response = sign_in(second)  # the right token, but this address has used up its five
        assert response.status_code == 429 and "Too many failed sign-ins" in response.get_data(as_text=True)
        assert 1 <= int(response.headers["Retry-After"]) <= 300
        assert sign_in(first, environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 302
    finally:
        other.db.close()


def test_the_wait_ends_with_the_window_and_a_right_token_does_not_count(services):
    clock = Clock()
    limiter = SignInLimiter(services.db, attempts=5, window=300, clock=clock)
    for _ in range(5):
        assert limiter.attempt("address:198.51.100.7").wait == 0
        clock.advance(1)
    assert limiter.attempt("address:198.51.100.7").wait == 295  # the window started with the first attempt
    assert limiter.attempt("address:203.0.113.9").wait == 0
    clock.advance(295.5)
    assert limiter.attempt("address:198.51.100.7").wait == 0  # a new window
    for _ in range(3):
        limiter.attempt("address:198.51.100.7")
    right = limiter.attempt("address:198.51.100.7")
    assert right.wait == 0
    limiter.succeeded(right)  # the fifth was the right token: it gives its attempt back
    assert limiter.attempt("address:198.51.100.7").wait == 0
    assert limiter.attempt("address:198.51.100.7").wait == 300


def test_a_refund_never_reaches_into_a_later_window(services):
    clock = Clock()
    limiter = SignInLimiter(services.db, attempts=1, window=300, clock=clock)
    slow = limiter.attempt("address:198.51.100.7")  # its check takes until the next window
    clock.advance(301)
    assert limiter.attempt("address:198.51.100.7").wait == 0
    limiter.succeeded(slow)
    assert limiter.attempt("address:198.51.100.7").wait > 0


def test_windows_that_ran_out_are_forgotten(services):
    clock = Clock()
    limiter = SignInLimiter(services.db, attempts=5, window=300, clock=clock)
    for n in range(40):
        limiter.attempt(f"address:192.0.2.{n}")
    assert len(sign_ins.buckets(services.db)) == 40
    clock.advance(301)
    limiter.attempt("address:192.0.2.99")
    assert [b["bucket"] for b in sign_ins.buckets(services.db)] == ["address:192.0.2.99"]


def test_a_long_forwarded_address_is_cut_not_refused(services):
    limiter = SignInLimiter(services.db, attempts=1, window=300)
    bucket = "address:" + "2001:db8::1, " * 100
    assert limiter.attempt(bucket).wait == 0 and limiter.attempt(bucket).wait > 0
    assert [len(b["bucket"]) for b in sign_ins.buckets(services.db)] == [sign_ins.BUCKET_MAX]


def test_an_unreachable_store_is_an_html_503_on_the_console(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(sign_ins, "count_attempt", unreachable)
    response = sign_in(client)
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert "The store is busy or unavailable" in response.get_data(as_text=True)


# -- the lock-out rule -------------------------------------------------------------------------------------

def block_the_address(app, times: int = 6) -> None:
    attacker = app.test_client()
    for _ in range(times):
        sign_in(attacker, token="a-wrong-guess")


def test_a_browser_that_signed_in_before_is_not_locked_out_by_its_address(app, client):
    assert sign_in(client).status_code == 302
    assert client.get_cookie(DEVICE_COOKIE, path="/console") is not None
    client.post("/console/logout", data={"csrf_token": csrf_of(client, "/console/")})
    block_the_address(app)  # an attacker behind the same address (or the same untrusted proxy)
    attacker = app.test_client()
    assert sign_in(attacker).status_code == 429  # even the right token: the address is blocked
    assert sign_in(client).status_code == 302  # the operator's browser is not
    assert client.get("/console/").status_code == 200


def test_a_known_device_has_a_limit_of_its_own(app, client):
    assert sign_in(client).status_code == 302
    for _ in range(5):
        assert sign_in(client, token="wrong").status_code == 401
    assert sign_in(client).status_code == 429  # its own five are used up: even the right token waits
    assert sign_in(app.test_client()).status_code == 302  # while its address's bucket is untouched


def test_a_forged_expired_or_rotated_device_cookie_is_no_device(app, services):
    clock = Clock()
    devices = app.extensions["console_known_devices"]
    devices.clock = clock
    operator = app.test_client()
    assert sign_in(operator).status_code == 302
    real = operator.get_cookie(DEVICE_COOKIE, path="/console").value
    _, device_id, issued, mac = real.split(".")
    forged = [f"v1.{device_id}.{issued}.{'0' * 64}", f"v1.{'A' * 32}.{issued}.{mac}", "v1", "x" * 4000, ""]
    block_the_address(app)
    for cookie in forged:
        attacker = app.test_client()
        attacker.set_cookie(DEVICE_COOKIE, cookie, path="/console")
        assert sign_in(attacker).status_code == 429, cookie

    holder = app.test_client()
    holder.set_cookie(DEVICE_COOKIE, real, path="/console")
    clock.advance(31 * 86400)
    assert sign_in(holder).status_code == 429  # thirty days on, it has expired
    clock.advance(-31 * 86400)
    services.config = replace(services.config, admin_token=Secret("a-rotated-admin-token-0123456789"))
    assert sign_in(holder, token="a-rotated-admin-token-0123456789").status_code == 429  # void with the old token


def test_a_proxy_that_is_not_trusted_is_logged_once(client, caplog):
    caplog.set_level(logging.WARNING, logger="integration.web")
    for _ in range(2):
        sign_in(client, token="wrong", headers={"X-Forwarded-For": "203.0.113.5"})
    warned = [r for r in caplog.records if "INTEGRATION_TRUST_PROXY is off" in r.getMessage()]
    assert len(warned) == 1
