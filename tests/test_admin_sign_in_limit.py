"""Wrong ``/admin/*`` bearer tokens are limited and logged like the console's failed sign-ins (issue 23
item 2), on both engines: counted per client address before they are checked, in the same bucket as the
console's sign-in, a 429 JSON with Retry-After over the limit, and a log line without the token."""
from __future__ import annotations

import json
import logging

import pytest

from integration import create_app
from integration.logs import JsonFormatter
from integration.services import Services
from integration.store import sign_ins
from integration.store.tx import StoreUnavailable
from tests.conftest import ADMIN_TOKEN
from tests.test_console import sign_in
from tests.test_console_sign_in_limit import in_parallel

pytestmark = pytest.mark.both_engines

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer a-wrong-guess-of-the-admin-token"}


def test_wrong_tokens_are_limited_per_address_with_a_429_and_logged_without_the_token(client, caplog):
    caplog.set_level(logging.WARNING, logger="integration.admin")
    for _ in range(5):
        assert client.get("/admin/meters", headers=WRONG).status_code == 401
    refused = client.get("/admin/meters", headers=AUTH)  # even the right token, from this address
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 300
    assert refused.get_json()["error"] == "too_many_attempts" and "try again in" in refused.get_json()["detail"]
    assert client.get("/admin/nowhere", headers=AUTH).status_code == 429  # unknown admin paths too
    assert client.get("/admin/meters", headers=AUTH, environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200

    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "integration.admin"]
    assert sum('"admin request refused: wrong token"' in line for line in lines) == 5
    assert sum('"admin request refused: too many wrong tokens"' in line for line in lines) == 2
    assert all(json.loads(line)["client"] == "127.0.0.1" for line in lines)
    assert not any(secret in line for line in lines for secret in (ADMIN_TOKEN, "a-wrong-guess"))


def test_the_console_and_the_admin_api_share_one_budget_per_address(client):
    for _ in range(3):
        assert sign_in(client, token="wrong").status_code == 401
    for _ in range(2):
        assert client.get("/admin/failures", headers=WRONG).status_code == 401
    assert sign_in(client).status_code == 429 and client.get("/admin/failures", headers=AUTH).status_code == 429


def test_forty_parallel_wrong_tokens_get_five_real_checks(services, config):
    # Two web processes, each with its own pool (at most 15 connections: PostgreSQL's 100 are shared with the
    # rest of the suite), 20 threads each; 40 writers queue on one row, which on a loaded machine takes > 5 s.
    processes = [services, Services.from_config(config)]
    for process in processes:
        process.db.busy_timeout = 60
    try:
        clients = [create_app(services=processes[i % 2]).test_client() for i in range(40)]
        statuses = in_parallel(lambda i: clients[i].get("/admin/meters", headers={
            "Authorization": f"Bearer wrong-guess-{i}"}).status_code, 40)
    finally:
        for other in processes[1:]:
            other.db.close()
    assert sorted(statuses) == [401] * 5 + [429] * 35


def test_right_tokens_do_not_count_and_no_token_is_no_guess(client, services):
    for _ in range(20):
        assert client.get("/admin/meters", headers=AUTH).status_code == 200
        assert client.get("/admin/meters", headers={"Authorization": f"Basic {ADMIN_TOKEN}"}).status_code == 401
        assert client.get("/admin/meters").status_code == 401
    assert [b["attempts"] for b in sign_ins.buckets(services.db)] == [0]
    for _ in range(5):
        assert client.get("/admin/meters", headers=WRONG).status_code == 401
    assert client.get("/admin/meters", headers=AUTH).status_code == 429


def test_a_store_that_cannot_count_is_a_503_json_never_a_500(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(sign_ins, "count_attempt", unreachable)
    for path in ("/admin/meters", "/admin/nowhere"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 503 and response.get_json()["error"] == "store_unavailable", path
    assert client.get("/admin/meters").status_code == 401  # no token: the store is never asked
