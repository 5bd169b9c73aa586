"""The console's session key and server-side sessions (CONTRACT §2, §8; issue 23 items 2 and 3), on
both engines: the key is random, kept once in the store and shared by every process, never derived from
ADMIN_TOKEN (so the cookie the login page hands anyone is no offline oracle for the token); a session
ends everywhere, for every copy of its cookie, on sign-out, token rotation and expiry."""
from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from integration import create_app
from integration.config import Secret
from integration.services import Services
from integration.store import console_sessions, meters, service_keys
from integration.store.db import Database
from integration.store.tx import StoreUnavailable
from tests.conftest import ADMIN_TOKEN
from tests.engines import store_sql
from tests.test_console import csrf_of, sign_in

pytestmark = pytest.mark.both_engines

COOKIE = "console"


def cookie_of(client) -> str:
    cookie = client.get_cookie(COOKIE, path="/console")
    assert cookie is not None, "no console cookie"
    return cookie.value


def reads_cookie(key: str | bytes, cookie: str) -> bool:
    """Whether a cookie verifies under ``key``, exactly as Flask checks one."""
    app = Flask("offline-guesser")
    app.secret_key = key
    try:
        SecureCookieSessionInterface().get_signing_serializer(app).loads(cookie)
    except BadSignature:
        return False
    return True


def stored_keys(services) -> list[tuple[str, str]]:
    return [tuple(r) for r in store_sql(services.db).execute("SELECT name, value FROM service_keys").fetchall()]


def test_the_login_page_cookie_is_no_oracle_for_the_admin_token(client, services):
    client.get("/console/login")
    cookie = cookie_of(client)
    # What the key used to be: derived from the token, so a guess of the token could be checked offline.
    derived = hmac.new(ADMIN_TOKEN.encode(), b"integration-console-session-key", hashlib.sha256).digest()
    assert not reads_cookie(derived, cookie)
    [(name, key)] = stored_keys(services)
    assert name == service_keys.SESSION_KEY and len(key) == 64 and ADMIN_TOKEN not in key
    assert reads_cookie(key, cookie)


def test_the_stored_key_is_shared_by_every_process_and_new_in_every_store(services, config, tmp_path):
    other = Services.from_config(config)  # a second web process: its own pool, the same store
    try:
        first = create_app(services=services).test_client()
        assert sign_in(first).status_code == 302
        second = create_app(services=other).test_client()
        second.set_cookie(COOKIE, cookie_of(first), path="/console")
        assert second.get("/console/").status_code == 200
    finally:
        other.db.close()
    fresh = Database(f"sqlite:///{tmp_path}/another.db")  # another deployment with the same ADMIN_TOKEN
    try:
        fresh.migrate()
        assert service_keys.get_or_create(fresh, service_keys.SESSION_KEY) != stored_keys(services)[0][1]
    finally:
        fresh.close()


def test_processes_starting_together_keep_one_key(services):
    databases = [Database(services.db.url) for _ in range(8)]  # each its own pool, like separate processes
    start, found, errors = threading.Barrier(len(databases)), [], []

    def first_use(db: Database) -> None:
        try:
            start.wait()
            found.append(service_keys.get_or_create(db, service_keys.SESSION_KEY))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for db in databases:
        db.close()
    assert errors == [] and len(found) == len(databases)
    assert len(set(found)) == 1 and stored_keys(services) == [(service_keys.SESSION_KEY, found[0])]


def test_a_configured_key_is_used_and_nothing_is_stored(services):
    services.config = replace(services.config, secret_key=Secret("an-operator-chosen-key-0123456789"))
    client = create_app(services=services).test_client()
    assert sign_in(client).status_code == 302
    assert reads_cookie("an-operator-chosen-key-0123456789", cookie_of(client))
    assert stored_keys(services) == []


def test_a_store_that_cannot_give_the_key_is_a_503_page_and_webhooks_never_ask(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(service_keys, "get_or_create", unreachable)
    response = client.get("/console/login")
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert "The store is busy or unavailable" in response.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200 and client.get_cookie(COOKIE, path="/console") is None


# -- sessions kept on the server (issue 23 item 3) ---------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(app) -> Clock:
    """Console sessions on a clock the test moves."""
    fake = Clock()
    app.extensions["console_sessions"].clock = fake
    return fake


def copy_of(client, app):
    """Another browser holding a copy of ``client``'s console cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie_of(client), path="/console")
    return thief


METER = {"meter_id": "m-1", "zuora_subscription_number": "A-S1", "zuora_charge_number": "C-1", "uom": "Each",
         "mode": "quantity"}


def test_a_cookie_copied_before_sign_out_is_refused_after_it(app, client, services):
    assert sign_in(client).status_code == 302
    thief = copy_of(client, app)
    token = csrf_of(thief, "/console/meters")  # the copy works, and has the page's CSRF token
    assert thief.post("/console/meters", data={**METER, "csrf_token": token}).status_code == 302
    assert meters.get_meter(services.db, "m-1").uom == "Each"

    response = client.post("/console/logout", data={"csrf_token": csrf_of(client, "/console/")})
    assert response.headers["Location"] == "/console/login" and console_sessions.count(services.db) == 0
    for path in ("/console/", "/console/meters", "/console/failures"):
        refused = thief.get(path)
        assert (refused.status_code, refused.headers["Location"]) == (302, "/console/login"), path
    changed = thief.post("/console/meters", data={**METER, "uom": "Hours", "csrf_token": token})
    assert (changed.status_code, changed.headers["Location"]) == (302, "/console/login")
    assert thief.post("/console/meters/delete", data={"meter_id": "m-1", "csrf_token": token}).status_code == 302
    assert meters.get_meter(services.db, "m-1").uom == "Each"  # neither saved nor removed


def test_rotating_the_admin_token_ends_sessions_for_good(app, client, services):
    assert sign_in(client).status_code == 302
    thief = copy_of(client, app)
    original = services.config
    services.config = replace(original, admin_token=Secret("a-rotated-admin-token-0123456789"))
    assert thief.get("/console/").status_code == 302
    services.config = original  # rotating back does not bring the session back
    assert client.get("/console/").status_code == 302
    assert console_sessions.count(services.db) == 0


def test_a_session_ends_after_two_idle_hours_or_twelve_in_all(app, client, clock, services):
    assert sign_in(client).status_code == 302
    thief = copy_of(client, app)
    for _ in range(11):  # a request every hour keeps it alive until the twelfth hour
        clock.advance(hours=1)
        assert client.get("/console/").status_code == 200
    clock.advance(minutes=59)
    assert client.get("/console/").status_code == 200
    clock.advance(minutes=1)
    assert client.get("/console/").status_code == 302 and thief.get("/console/").status_code == 302

    assert sign_in(client).status_code == 302
    clock.advance(hours=1, minutes=59)
    assert client.get("/console/").status_code == 200
    clock.advance(hours=2)
    assert client.get("/console/").status_code == 302


def test_ended_sessions_are_pruned_at_the_next_sign_in(app, clock, services):
    browsers = [app.test_client() for _ in range(3)]
    for browser in browsers:
        assert sign_in(browser).status_code == 302
    assert console_sessions.count(services.db) == 3
    clock.advance(hours=3)
    assert sign_in(browsers[0]).status_code == 302
    assert console_sessions.count(services.db) == 1


def test_signing_in_again_replaces_the_session(app, client, services):
    assert sign_in(client).status_code == 302
    before = copy_of(client, app)
    assert sign_in(client).status_code == 302
    assert console_sessions.count(services.db) == 1
    assert before.get("/console/").status_code == 302 and client.get("/console/").status_code == 200


def test_the_store_keeps_no_usable_session_id(client, services):
    assert sign_in(client).status_code == 302
    [row] = store_sql(services.db).execute("SELECT id_hash, token_fingerprint FROM console_sessions").fetchall()
    cookie = cookie_of(client)
    assert row[0] not in cookie and ADMIN_TOKEN not in row[1] and len(row[0]) == 64
