"""The admin API (CONTRACT §4): auth on every route, events, meters, on-demand sync, hostile bodies."""
import re

import pytest

from integration.store import failures as failures_module
from integration.store.db import StoreUnavailable
from integration.web.openapi import build_spec
from tests.conftest import ADMIN_TOKEN
from tests.validation_errors import assert_refusal

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PATH_VALUES = {"event_id": "evt_0123", "meter_id": "meter-1"}


def admin_operations():
    """Every (method, path) under /admin in the OpenAPI document: a new route can't skip auth."""
    operations = []
    for path, methods in build_spec()["paths"].items():
        if path.startswith("/admin/"):
            concrete = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
            operations += [(method.upper(), concrete) for method in methods]
    return operations


ADMIN_OPERATIONS = admin_operations()
BAD_CREDENTIALS = {
    "no header": {},
    "wrong token": {"Authorization": "Bearer not-the-admin-token"},
    "empty bearer": {"Authorization": "Bearer "},
    "token prefix": {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
    "token with suffix": {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    "basic scheme": {"Authorization": f"Basic {ADMIN_TOKEN}"},
    "no scheme": {"Authorization": ADMIN_TOKEN},
    "non-ascii": {"Authorization": "Bearer tökén"},
}
KEY_PREFIX = {"account": "zuora-account", "invoice": "billing-invoice", "usage": "billing-invoice-usage"}


def pending_event(services, object_id="A1", *, object_type="account", type="account.callout", source="zuora",
                  key_prefix=None):
    return services.inbox.record(source=source, type=type, object_type=object_type, object_id=object_id,
                                 object_key=f"{key_prefix or KEY_PREFIX[object_type]}:{object_id}").event_id


def failed_event(services, object_id="A1", *, code="ZUORA_REJECTED", message="refused", **kinds):
    event_id = pending_event(services, object_id, **kinds)
    claimed = services.inbox.claim("test-worker", limit=50)
    assert [e.id for e in claimed] == [event_id]
    services.inbox.fail(event_id, "test-worker", code, message)
    return event_id


def count(services, sql="SELECT COUNT(*) FROM events"):
    return services.db.utils().execute(sql).fetchall()[0][0]


# -- auth ------------------------------------------------------------------------------------------------

def test_the_document_lists_every_admin_operation():
    assert sorted(ADMIN_OPERATIONS) == sorted([
        ("GET", "/admin/mappings"), ("GET", "/admin/events/evt_0123"), ("GET", "/admin/failures"),
        ("DELETE", "/admin/failures"), ("POST", "/admin/failures/retry"), ("GET", "/admin/meters"),
        ("PUT", "/admin/meters/meter-1"), ("POST", "/admin/sync"), ("GET", "/admin/events"),
        ("DELETE", "/admin/meters/meter-1"), ("POST", "/admin/links"), ("GET", "/admin/reports/totals")])


@pytest.mark.parametrize("method,path", ADMIN_OPERATIONS)
@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_every_admin_route_refuses_bad_credentials(client, services, method, path, credentials):
    failed_event(services, "A1")
    response = client.open(path, method=method, headers=credentials,
                           json={"all": True, "zuora_account_ids": ["A2"]} if method != "GET" else None)
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized", "detail": "a valid admin bearer token is required"}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="admin"'
    # Nothing happened: the failure is still there, no sync was queued, no meter written.
    assert count(services) == 1
    assert count(services, "SELECT COUNT(*) FROM events WHERE status = 'failed'") == 1
    assert count(services, "SELECT COUNT(*) FROM meter_settings") == 0


@pytest.mark.parametrize("method,path", ADMIN_OPERATIONS)
def test_the_right_token_passes_on_every_route(client, method, path):
    response = client.open(path, method=method, headers=AUTH, json={})
    assert response.status_code in (200, 400, 404)
    assert response.is_json


def test_bearer_scheme_is_case_insensitive(client):
    response = client.get("/admin/meters", headers={"Authorization": f"bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200


# -- hostile bodies ----------------------------------------------------------------------------------------

BODY_ROUTES = [("POST", "/admin/failures/retry"), ("DELETE", "/admin/failures"), ("POST", "/admin/sync"),
               ("PUT", "/admin/meters/meter-1")]


@pytest.mark.parametrize("method,path", BODY_ROUTES)
@pytest.mark.parametrize("body,detail", [
    (b"{not json", {"body": ["Not valid JSON."]}),
    (b"", {"body": ["Not valid JSON."]}),
    (b"\xff\xfe\x00", {"body": ["Not valid JSON."]}),
    (b"[" * 500 + b"]" * 500, {"body": ["Must be a JSON object."]}),
    (b"[" * 30000 + b"]" * 30000, {"body": ["Not valid JSON."]}),  # deeper than the parser's recursion limit
    (b"null", {"body": ["Must be a JSON object."]}),
    (b'["all"]', {"body": ["Must be a JSON object."]}),
    (b'"x"', {"body": ["Must be a JSON object."]}),
])
def test_bad_json_bodies_are_400_invalid_payload(client, method, path, body, detail):
    response = client.open(path, method=method, headers={**AUTH, "Content-Type": "application/json"}, data=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_payload", "detail": detail}


def test_a_json_body_without_json_content_type_is_read(client, services):
    response = client.post("/admin/sync", headers=AUTH, data='{"zuora_account_ids": ["A1"]}',
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.get_json()["results"][0]["status"] == "queued"


def test_oversized_body_is_413_json(client):
    response = client.post("/admin/sync", headers=AUTH, data=b'{"x": "' + b"a" * 70_000 + b'"}',
                           content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"


def test_busy_store_is_503_not_500(client, monkeypatch):
    def locked(*args, **kwargs):
        raise StoreUnavailable("database is locked")
    monkeypatch.setattr(failures_module, "retry", locked)
    response = client.post("/admin/failures/retry", headers=AUTH, json={"all": True})
    assert response.status_code == 503
    assert response.get_json() == {"error": "store_unavailable",
                                   "detail": "the store is busy or unavailable; retry later"}


# -- events ----------------------------------------------------------------------------------------------

def test_get_event_shows_a_failed_event(client, services):
    event_id = failed_event(services, "A1", code="INVALID_DATA", message="primaryEmail: missing")
    response = client.get(f"/admin/events/{event_id}", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    event = services.inbox.get(event_id)
    stamp = event.last_failed_at.isoformat().replace("+00:00", "Z")
    [attempt] = services.inbox.history(event_id)
    started = attempt.started_at.isoformat().replace("+00:00", "Z")
    assert body == {
        "id": event_id, "source": "zuora", "type": "account.callout", "object_type": "account", "object_id": "A1",
        "status": "failed", "attempts": 1, "next_attempt_at": None, "code": "INVALID_DATA",
        "last_error": "primaryEmail: missing", "waiting_for": None, "first_failed_at": stamp,
        "last_failed_at": stamp, "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": stamp, "series": 1,
        "history": [{"series": 1, "attempt": 1, "worker_id": "test-worker", "started_at": started,
                     "ended_at": stamp, "outcome": "failed", "code": "INVALID_DATA",
                     "message": "primaryEmail: missing"}]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)


def test_get_event_shows_when_a_pending_event_runs(client, services):
    event_id = pending_event(services, "A1")
    body = client.get(f"/admin/events/{event_id}", headers=AUTH).get_json()
    assert (body["status"], body["attempts"], body["code"], body["last_error"]) == ("pending", 0, None, None)
    assert body["next_attempt_at"] == services.inbox.get(event_id).next_attempt_at.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("event_id", ["evt_missing", "x" * 101, "evt_a%20b"])  # a NUL: 400 (test_unprintable_lookups)
def test_unknown_event_is_404_json(client, event_id):
    response = client.get(f"/admin/events/{event_id}", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found", "detail": {"event_id": ["No such event."]}}


# -- meters ------------------------------------------------------------------------------------------------

METER = {"zuora_subscription_number": "A-S00000001", "zuora_charge_number": "C-00000007", "uom": "API Calls",
         "mode": "quantity"}


def test_put_creates_then_updates_a_meter(client):
    created = client.put("/admin/meters/meter-1", headers=AUTH, json=METER)
    assert created.status_code == 201
    body = created.get_json()
    assert {k: body[k] for k in ("meter_id", *METER)} == {"meter_id": "meter-1", **METER}
    assert body["created_at"] == body["updated_at"]

    updated = client.put("/admin/meters/meter-1", headers=AUTH, json={**METER, "mode": "revenue"})
    assert updated.status_code == 200
    assert updated.get_json()["mode"] == "revenue"
    assert updated.get_json()["created_at"] == body["created_at"]

    listed = client.get("/admin/meters", headers=AUTH)
    assert listed.status_code == 200
    assert listed.get_json() == {"data": [updated.get_json()]}


def test_meter_list_starts_empty(client):
    assert client.get("/admin/meters", headers=AUTH).get_json() == {"data": []}


@pytest.mark.parametrize("change,field", [
    ({"mode": "tiered"}, "mode"),
    ({"mode": None}, "mode"),
    ({"uom": ""}, "uom"),
    ({"uom": "u" * 101}, "uom"),
    ({"zuora_subscription_number": "A S1"}, "zuora_subscription_number"),
    ({"zuora_subscription_number": 12}, "zuora_subscription_number"),
    ({"zuora_charge_number": "C" * 51}, "zuora_charge_number"),
    ({"surprise": 1}, "surprise"),
])
def test_put_meter_names_the_bad_field(client, change, field):
    response = client.put("/admin/meters/meter-1", headers=AUTH, json={**METER, **change})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_payload"
    assert list(body["detail"]) == [field]
    assert client.get("/admin/meters", headers=AUTH).get_json() == {"data": []}


@pytest.mark.parametrize("missing", sorted(METER))
def test_put_meter_requires_every_field(client, missing):
    body = {k: v for k, v in METER.items() if k != missing}
    response = client.put("/admin/meters/meter-1", headers=AUTH, json=body)
    assert response.status_code == 400
    assert_refusal(response.get_json(), "invalid_payload", {missing})


@pytest.mark.parametrize("meter_id", ["a%20b", "a%09b", "m" * 101])
def test_put_meter_refuses_a_bad_meter_id(client, meter_id):
    response = client.put(f"/admin/meters/{meter_id}", headers=AUTH, json=METER)
    assert response.status_code == 400
    assert list(response.get_json()["detail"]) == ["meter_id"]


# -- on-demand sync ----------------------------------------------------------------------------------------

def test_sync_queues_one_event_per_id(client, services):
    response = client.post("/admin/sync", headers=AUTH,
                           json={"zuora_account_ids": ["8ad0abc"], "billing_account_ids": ["acc.B1"]})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [{k: r[k] for k in ("system", "id", "status")} for r in results] == [
        {"system": "zuora", "id": "8ad0abc", "status": "queued"},
        {"system": "billing", "id": "acc.B1", "status": "queued"}]
    zuora, billing = (services.inbox.get(r["event_id"]) for r in results)
    assert (zuora.source, zuora.type, zuora.object_type, zuora.object_id, zuora.object_key, zuora.status) == (
        "admin", "account.callout", "account", "8ad0abc", "zuora-account:8ad0abc", "pending")
    assert (billing.source, billing.type, billing.object_key) == ("admin", "account.updated", "billing-account:acc.B1")


def test_sync_of_ten_ids_is_accepted_and_eleven_refused(client, services):
    ten = {"zuora_account_ids": [f"Z{i}" for i in range(6)], "billing_account_ids": [f"B{i}" for i in range(4)]}
    assert client.post("/admin/sync", headers=AUTH, json=ten).status_code == 200
    assert count(services) == 10
    eleven = {"zuora_account_ids": [f"Y{i}" for i in range(6)], "billing_account_ids": [f"C{i}" for i in range(5)]}
    response = client.post("/admin/sync", headers=AUTH, json=eleven)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_payload", "detail": {"_schema": [
        "At most 10 IDs in all (zuora_account_ids and billing_account_ids); got 11."]}}
    assert count(services) == 10


@pytest.mark.parametrize("body,detail", [
    ({}, {"_schema": ["Give at least one ID in zuora_account_ids or billing_account_ids."]}),
    ({"zuora_account_ids": []}, {"_schema": ["Give at least one ID in zuora_account_ids or billing_account_ids."]}),
    ({"zuora_account_ids": "A1"}, {"zuora_account_ids"}),  # a set: marshmallow's words, only the fields count
    ({"zuora_account_ids": ["A 1"]}, {"zuora_account_ids": {"0": ["must not contain whitespace"]}}),
    ({"billing_account_ids": ["ok", ""]}, {"billing_account_ids.1"}),
    ({"billing_account_ids": ["x" * 65]}, {"billing_account_ids.0"}),
    ({"billing_account_ids": [7]}, {"billing_account_ids.0"}),
    ({"zuora_account_ids": ["A1"], "accounts": ["A2"]}, {"accounts"}),
])
def test_sync_validates_every_id(client, services, body, detail):
    response = client.post("/admin/sync", headers=AUTH, json=body)
    assert response.status_code == 400
    assert_refusal(response.get_json(), "invalid_payload", detail)
    assert count(services) == 0


def test_sync_reports_already_in_progress_and_starts_nothing(client, services):
    webhook_event = pending_event(services, "A1")  # a callout is waiting
    response = client.post("/admin/sync", headers=AUTH, json={"zuora_account_ids": ["A1", "A2", "A2"]})
    assert response.get_json()["results"][0] == {"system": "zuora", "id": "A1", "status": "already_in_progress",
                                                 "event_id": webhook_event}
    second, third = response.get_json()["results"][1:]
    assert second["status"] == "queued"
    assert third == {**second, "status": "already_in_progress"}  # a repeat in one request is not a second sync
    assert count(services) == 2


def test_sync_while_running_then_after_done(client, services):
    event_id = pending_event(services, "B1", type="account.created", source="billing",
                             key_prefix="billing-account")
    [running] = services.inbox.claim("test-worker")
    body = {"billing_account_ids": ["B1"]}
    assert client.post("/admin/sync", headers=AUTH, json=body).get_json()["results"] == [
        {"system": "billing", "id": "B1", "status": "already_in_progress", "event_id": event_id}]
    with services.db.transaction() as conn:
        services.inbox.finish(running.id, "test-worker", conn)
    result = client.post("/admin/sync", headers=AUTH, json=body).get_json()["results"][0]
    assert result["status"] == "queued" and result["event_id"] != event_id


def test_sync_after_a_failure_queues_a_new_event(client, services):
    failed = failed_event(services, "A1")
    result = client.post("/admin/sync", headers=AUTH, json={"zuora_account_ids": ["A1"]}).get_json()["results"][0]
    assert result["status"] == "queued" and result["event_id"] != failed


def test_unreadable_store_on_a_read_is_503_not_500(client, services):
    import sqlite3

    from sqlalchemy import event

    def gone(conn, cursor, statement, parameters, context, executemany):
        raise sqlite3.OperationalError("unable to open database file")  # what the driver raises
    engine = services.db._engine_here()
    event.listen(engine, "before_cursor_execute", gone)
    response = client.get("/admin/failures", headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["error"] == "store_unavailable"


# -- the front door: identifiers, unknown paths, methods ----------------------------------------------------

NOT_PRINTABLE_IDS = ["A\ud800", "A\x00", "A\x1b", "A\x7f", "A\x9f", "A\u200b", "A\u202e", "\ufeffA", "A\ue000"]


@pytest.mark.parametrize("account_id", NOT_PRINTABLE_IDS)
@pytest.mark.parametrize("field", ["zuora_account_ids", "billing_account_ids"])
def test_sync_ids_must_be_printable(client, services, field, account_id):
    response = client.post("/admin/sync", headers=AUTH, json={field: ["ok-1", account_id]})
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_payload", "detail": {field: {"1": [
        "must contain only printable characters (no control, format or surrogate characters)"]}}}
    assert count(services) == 0


@pytest.mark.parametrize("value", NOT_PRINTABLE_IDS[1:])  # a query string cannot carry a lone surrogate
@pytest.mark.parametrize("name", ["zuora_id", "billing_id"])
def test_mapping_filters_must_be_printable(client, name, value):
    response = client.get("/admin/mappings", headers=AUTH, query_string={name: value})
    assert response.status_code == 400
    assert list(response.get_json()["detail"]) == [name]


def test_failure_ids_must_be_printable(client, services):
    failed_event(services, "A1")
    response = client.post("/admin/failures/retry", headers=AUTH, json={"ids": ["evt\x00"]})
    assert response.status_code == 400
    assert list(response.get_json()["detail"]) == ["ids"]


@pytest.mark.parametrize("path", ["/admin/nothing-here", "/admin", "/admin/event", "/admin/meters/m1/extra"])
def test_unknown_admin_paths_ask_for_the_token_before_404(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized", "detail": "a valid admin bearer token is required"}
    response = client.get(path, headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_wrong_method_on_an_admin_path_is_401_then_405_with_allow(client):
    assert client.post("/admin/meters").status_code == 401
    response = client.post("/admin/meters", headers=AUTH)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert response.get_json()["error"] == "method_not_allowed"
