import base64
import hashlib
import hmac
import json
import sqlite3
import threading

import pytest

from integration import create_app
from integration.config import Secret
from integration.services import Services
from integration.store.db import Database
from tests.conftest import make_config
from tests.validation_errors import assert_refusal

AUTH = {"Authorization": "Basic " + base64.b64encode(b"zuora:callout-password-2b8e").decode()}


def post(client, body, headers=None, content_type="application/json", auth=True):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/webhooks/zuora", data=data, content_type=content_type,
                       headers={**(AUTH if auth else {}), **(headers or {})})


def events(services):
    return [dict(r) for r in services.db.utils().execute("SELECT * FROM events").fetchall()]


def test_accepted_callout_is_stored_before_200(client, services):
    resp = post(client, {"AccountId": "8ad09be48db5aba7018db604f5ad2a20", "Other": "ignored"},
                headers={"Zuora-Notification-Id": "n-1"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body == {"success": True, "accepted": True, "event_id": body["event_id"]}
    [event] = events(services)
    assert (event["id"], event["source"], event["type"], event["object_id"], event["status"]) == (
        body["event_id"], "zuora", "account.callout", "8ad09be48db5aba7018db604f5ad2a20", "pending")
    assert event["dedupe_key"] == "zuora:n-1"


def test_repeat_notification_answers_200_and_creates_no_work(client, services):
    first = post(client, {"AccountId": "A1"}, headers={"Zuora-Notification-Id": "n-1"}).get_json()
    again = post(client, {"AccountId": "A1"}, headers={"Zuora-Notification-Id": "n-1"})
    assert again.status_code == 200 and again.get_json() == first
    assert len(events(services)) == 1


def test_second_callout_for_pending_account_does_not_add_work(client, services):
    first = post(client, {"AccountId": "A1"}, headers={"Zuora-Notification-Id": "n-1"}).get_json()
    second = post(client, {"AccountId": "A1"}, headers={"Zuora-Notification-Id": "n-2"}).get_json()
    assert second["event_id"] == first["event_id"]
    assert len(events(services)) == 1


@pytest.mark.parametrize("body,detail", [
    (b"{not json", {"body": ["Not valid JSON."]}),
    (b"\xff\xfe", {"body": ["Not valid JSON."]}),
    (b"[1, 2]", {"body": ["Must be a JSON object."]}),
    (b'"A1"', {"body": ["Must be a JSON object."]}),
    (b"{}", {"AccountId"}),  # a set: marshmallow's words, only the fields count
    (b'{"AccountId": ""}', {"AccountId"}),
    (json.dumps({"AccountId": "x" * 65}).encode(), {"AccountId"}),
    (b'{"AccountId": "A 1"}', {"AccountId": ["must not contain whitespace"]}),
    (b'{"AccountId": 12345}', {"AccountId"}),
    (b'{"AccountId": null}', {"AccountId"}),
])
def test_malformed_body_is_400_naming_the_field(client, services, body, detail):
    resp = post(client, body)
    assert resp.status_code == 400
    assert_refusal(resp.get_json(), "invalid_payload", detail)
    assert events(services) == []


@pytest.mark.parametrize("authorization,reason", [
    (None, "missing_credentials"),
    ("", "missing_credentials"),
    ("Basic " + base64.b64encode(b"zuora:wrong").decode(), "wrong_credentials"),
    ("Basic " + base64.b64encode(b"someone:callout-password-2b8e").decode(), "wrong_credentials"),
    ("Basic " + base64.b64encode(b"zuora:").decode(), "wrong_credentials"),
    ("Bearer " + base64.b64encode(b"zuora:callout-password-2b8e").decode(), "malformed_credentials"),
    ("Basic not*base64", "malformed_credentials"),
    ("Basic " + base64.b64encode(b"no colon").decode(), "malformed_credentials"),
], ids=["no header", "empty header", "wrong password", "wrong user", "empty password", "not Basic",
        "not base64", "no colon"])
def test_refused_credentials_get_a_basic_challenge_and_their_reason(client, services, authorization, reason):
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = post(client, {"AccountId": "A1"}, headers=headers, auth=False)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="zuora-callouts"'
    answer = resp.get_json()
    assert list(answer) == ["error", "reason", "detail"]
    assert (answer["error"], answer["reason"]) == ("unauthorized", reason)
    assert isinstance(answer["detail"], str) and answer["detail"]
    assert events(services) == []


def test_oversized_body_is_413(client, services):
    resp = post(client, json.dumps({"AccountId": "A1", "pad": "x" * 70_000}))
    assert resp.status_code == 413
    assert resp.get_json() == {"error": "payload_too_large", "detail": "the body may be at most 65536 bytes"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_content_type_is_415(client, content_type):
    resp = post(client, '{"AccountId": "A1"}', content_type=content_type)
    assert resp.status_code == 415
    assert resp.get_json() == {"error": "unsupported_media_type", "detail": "the body must be application/json"}


def test_json_with_charset_is_accepted(client):
    assert post(client, {"AccountId": "A1"}, content_type="application/json; charset=utf-8").status_code == 200


@pytest.fixture
def hmac_client(tmp_path):
    def build(fmt="BASE64", algorithm="SHA-256"):
        config = make_config(tmp_path, zuora_callout_username=None, zuora_callout_password=None,
                             zuora_callout_hmac_secret=Secret("hmac-key-31415"), zuora_callout_hmac_format=fmt,
                             zuora_callout_hmac_algorithm=algorithm)
        services = Services.from_config(config)
        services.db.migrate()
        return create_app(services=services).test_client()
    return build


def hmac_of(body: bytes, fmt="BASE64", algorithm="SHA-256", key=b"hmac-key-31415") -> str:
    digest = hmac.new(key, body, getattr(hashlib, algorithm.replace("-", "").lower())).digest()
    return digest.hex() if fmt == "HEX" else base64.b64encode(digest).decode()


@pytest.mark.parametrize("fmt,algorithm", [("BASE64", "SHA-256"), ("HEX", "SHA-512"), ("BASE64", "SHA-384")])
def test_hmac_signed_callouts(hmac_client, fmt, algorithm):
    client = hmac_client(fmt, algorithm)
    body = b'{"AccountId": "A1"}'
    signature = hmac_of(body, fmt, algorithm)
    ok = post(client, body, headers={"X-Zuora-Signature": signature}, auth=False)
    assert ok.status_code == 200
    if fmt == "HEX":
        assert post(client, body, headers={"X-Zuora-Signature": signature.upper()}, auth=False).status_code == 200
    wrong = hmac_of(body, fmt, algorithm, key=b"another-key")
    for headers, reason in [({}, "missing_signature"), ({"X-Zuora-Signature": " "}, "missing_signature"),
                            ({"X-Zuora-Signature": "bm9wZQ=="}, "malformed_signature_header"),
                            ({"X-Zuora-Signature": "!?" * 32}, "malformed_signature_header"),
                            ({"X-Zuora-Signature": signature[:-4]}, "malformed_signature_header"),
                            ({"X-Zuora-Signature": wrong}, "signature_mismatch")]:
        resp = post(client, body, headers=headers, auth=False)
        assert resp.status_code == 401
        answer = resp.get_json()
        assert list(answer) == ["error", "reason", "detail"]
        assert (answer["error"], answer["reason"]) == ("invalid_signature", reason), headers
        assert "X-Zuora-Signature" in answer["detail"]
    tampered = post(client, b'{"AccountId": "A2"}', headers={"X-Zuora-Signature": signature}, auth=False)
    assert tampered.status_code == 401 and tampered.get_json()["reason"] == "signature_mismatch"


def test_store_that_cannot_commit_answers_503(tmp_path):
    config = make_config(tmp_path)
    services = Services.from_config(config)
    services.db.migrate()
    services.db.busy_timeout = 0.2
    services.inbox.db = services.db
    client = create_app(services=services).test_client()
    # Another process holds the write lock past our busy timeout: the store cannot commit.
    blocker = sqlite3.connect(services.db.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        resp = post(client, {"AccountId": "A1"}, headers={"Zuora-Notification-Id": "n-503"})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert resp.status_code == 503
    assert resp.get_json() == {"error": "store_unavailable", "detail": "the event could not be stored; retry later"}
    # Zuora retries the same notification: now it is stored.
    assert post(client, {"AccountId": "A1"}, headers={"Zuora-Notification-Id": "n-503"}).status_code == 200


def test_100_concurrent_posts_of_one_notification_leave_one_event(services):
    import requests

    from integration_sandbox.server import ServerThread
    app = create_app(services=services)
    with ServerThread(app) as server:
        results, barrier = [], threading.Barrier(100)

        def send():
            barrier.wait()
            r = requests.post(f"{server.url}/webhooks/zuora", json={"AccountId": "A-dup"},
                              headers={**AUTH, "Zuora-Notification-Id": "same-notification"}, timeout=30)
            results.append((r.status_code, r.json()["event_id"]))

        threads = [threading.Thread(target=send) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 100
    assert {status for status, _ in results} == {200}
    assert len({event_id for _, event_id in results}) == 1
    assert Database(services.config.database_url).utils().execute("SELECT COUNT(*) FROM events").fetchall()[0][0] == 1


# -- identifiers, store failures, refusals (the front door) -----------------------------------------------

NOT_PRINTABLE = {"lone surrogate": "A\ud800", "NUL": "A\x00", "ESC": "A\x1b[31m", "DEL": "A\x7f",
                 "C1 control": "A\x85", "zero-width space": "A\u200b", "right-to-left override": "A\u202e",
                 "byte-order mark": "\ufeffA", "private use": "A\ue000", "unassigned": "A\u0378",
                 "line separator": "A\u2028", "paragraph separator": "A\u2029", "tab": "A\tB"}


@pytest.mark.parametrize("account_id", NOT_PRINTABLE.values(), ids=NOT_PRINTABLE.keys())
def test_account_id_must_be_printable(client, services, account_id):
    resp = post(client, json.dumps({"AccountId": account_id}).encode())  # JSON escapes: "\ud800" stays lone
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["error"] == "invalid_payload" and list(body["detail"]) == ["AccountId"]
    assert events(services) == []


@pytest.mark.parametrize("value", ["n\x00", "n\x1b", "n\x7f", "n\x85", "n 1"], ids=["NUL", "ESC", "DEL", "C1", "space"])
def test_notification_id_header_must_be_printable(client, services, value):
    resp = post(client, {"AccountId": "A1"}, headers={"Zuora-Notification-Id": value})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_header"
    assert list(resp.get_json()["detail"]) == ["Zuora-Notification-Id"]
    assert events(services) == []


def _on_engine(services, monkeypatch, event_name, listener):
    """Attach a listener to the store's engine (built now or later), as a driver fault would act."""
    from sqlalchemy import event
    services.db.close()
    engine_here = services.db._engine_here

    def wrapped():
        engine = engine_here()
        if not event.contains(engine, event_name, listener):
            event.listen(engine, event_name, listener)
        return engine
    monkeypatch.setattr(services.db, "_engine_here", wrapped)


def _read_only(services, tmp_path, monkeypatch):
    def query_only(dbapi_connection, record):
        dbapi_connection.execute("PRAGMA query_only = ON")  # SQLITE_READONLY on any write
    _on_engine(services, monkeypatch, "connect", query_only)


def _gone(services, tmp_path, monkeypatch):
    import shutil
    services.db.close()
    shutil.rmtree(tmp_path)  # the next connection finds an empty, unmigrated file


def _raising(exc):
    """The driver raises ``exc`` on the event's insert (the store sees a real driver error)."""
    def install(services, tmp_path, monkeypatch):
        def fail(conn, cursor, statement, parameters, context, executemany):
            if statement.startswith("INSERT INTO events"):
                raise exc
        _on_engine(services, monkeypatch, "before_cursor_execute", fail)
    return install


STORE_FAILURES = {
    "read-only": _read_only,
    "gone": _gone,
    "full": _raising(sqlite3.OperationalError("database or disk is full")),
    "disk I/O error": _raising(sqlite3.OperationalError("disk I/O error")),
    "corrupt": _raising(sqlite3.DatabaseError("database disk image is malformed")),
}


@pytest.mark.parametrize("break_store", STORE_FAILURES.values(), ids=STORE_FAILURES.keys())
def test_any_store_failure_is_503_never_500(client, services, tmp_path, monkeypatch, caplog, break_store):
    break_store(services, tmp_path, monkeypatch)
    resp = post(client, {"AccountId": "A1"}, headers={"Zuora-Notification-Id": "n-broken"})
    assert resp.status_code == 503
    assert resp.get_json() == {"error": "store_unavailable", "detail": "the event could not be stored; retry later"}
    assert not [r for r in caplog.records if r.exc_info]  # an expected condition, not a traceback


def test_405_carries_allow(client):
    resp = client.get("/webhooks/zuora")
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}
    assert resp.get_json()["error"] == "method_not_allowed"


def test_refusals_are_counted_by_route_and_reason(client):
    from prometheus_client import REGISTRY

    def count(reason):
        return REGISTRY.get_sample_value("integration_webhook_refused_total",
                                         {"route": "/webhooks/zuora", "reason": reason}) or 0.0

    reasons = ("missing_credentials", "wrong_credentials", "unsupported_media_type", "invalid_payload")
    before = {reason: count(reason) for reason in reasons}
    post(client, {"AccountId": "A1"}, auth=False)
    post(client, {"AccountId": "A1"}, auth=False, headers={"Authorization": "Basic " + base64.b64encode(
        b"zuora:wrong").decode()})
    post(client, "x", content_type="text/plain")
    post(client, {"AccountId": "A\x00"})
    assert {reason: count(reason) - before[reason] for reason in reasons} == dict.fromkeys(reasons, 1)
