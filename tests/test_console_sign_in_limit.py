"""The console's failed sign-in limit (CONTRACT §8), counted in the store on both engines: it holds
across web processes, its wait ends with its window, a success clears it, old failures are
forgotten, and a store that cannot be reached is an HTML 503, not a traceback."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from integration import create_app
from integration.services import Services
from integration.store import sign_ins
from integration.store.tx import StoreUnavailable
from integration.web.console import LoginLimiter
from tests.engines import store_sql
from tests.test_console import sign_in

pytestmark = pytest.mark.both_engines


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def stored_failures(services) -> int:
    return store_sql(services.db).execute("SELECT COUNT(*) FROM console_sign_in_failures").fetchall()[0][0]


def test_failures_on_one_web_process_count_on_every_other(services, config):
    other = Services.from_config(config)  # a second process: its own pool, the same store
    try:
        first, second = create_app(services=services).test_client(), create_app(services=other).test_client()
        for client in (first, second, first, second, first):
            assert sign_in(client, token="wrong").status_code == 401
        response = sign_in(second)  # the right token, but this address has used up its five
        assert response.status_code == 429 and "Too many failed sign-ins" in response.get_data(as_text=True)
        assert sign_in(first, environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 302
    finally:
        other.db.close()


def test_the_wait_ends_with_the_window_and_a_success_clears_it(services):
    clock = Clock()
    limiter = LoginLimiter(services.db, attempts=5, window=300, clock=clock)
    for _ in range(5):
        assert limiter.blocked_for("198.51.100.7") == 0
        limiter.failed("198.51.100.7")
        clock.advance(1)
    assert limiter.blocked_for("198.51.100.7") == pytest.approx(295)  # the oldest of the five leaves at 300 s
    assert limiter.blocked_for("203.0.113.9") == 0
    clock.advance(295.5)
    assert limiter.blocked_for("198.51.100.7") == 0  # four left in the window
    limiter.failed("198.51.100.7")
    assert limiter.blocked_for("198.51.100.7") > 0
    limiter.succeeded("198.51.100.7")
    assert limiter.blocked_for("198.51.100.7") == 0


def test_failures_older_than_the_window_are_forgotten(services):
    clock = Clock()
    limiter = LoginLimiter(services.db, attempts=5, window=300, clock=clock)
    for n in range(40):
        limiter.failed(f"192.0.2.{n}")
    assert stored_failures(services) == 40
    clock.advance(301)
    limiter.failed("192.0.2.99")
    assert stored_failures(services) == 1


def test_a_long_forwarded_address_is_cut_not_refused(services):
    limiter = LoginLimiter(services.db, attempts=1, window=300)
    address = "2001:db8::1, " * 100
    limiter.failed(address)
    assert limiter.blocked_for(address) > 0
    assert len(store_sql(services.db).execute("SELECT address FROM console_sign_in_failures").fetchall()[0][0]) == \
        sign_ins.ADDRESS_MAX


def test_an_unreachable_store_is_an_html_503_on_the_console(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(sign_ins, "recent_failures", unreachable)
    response = sign_in(client)
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert "The store is busy or unavailable" in response.get_data(as_text=True)
