"""Admin API additions (CONTRACT §4): the event list, unknown query parameters, not-found IDs,
removing a meter, and links: refused or queued at once, never waited for."""
import time

import pytest

from integration.actions import links
from integration.store import mappings
from tests.conftest import ADMIN_TOKEN
from tests.test_admin_api import failed_event, pending_event

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
METER = {"zuora_subscription_number": "A-S0001", "zuora_charge_number": "C-0001", "uom": "Each", "mode": "quantity"}


def test_event_list_is_newest_first_and_filters_by_each_field(client, services):
    first = failed_event(services, "A1")
    second = pending_event(services, "B1", object_type="invoice", type="invoice.finalized", source="billing")
    third = pending_event(services, "A2")
    body = client.get("/admin/events", headers=AUTH).get_json()
    assert [e["id"] for e in body["data"]] == [third, second, first] and body["next"] is None
    assert [e["id"] for e in client.get("/admin/events?status=failed", headers=AUTH).get_json()["data"]] == [first]
    assert [e["id"] for e in client.get("/admin/events?source=billing", headers=AUTH).get_json()["data"]] == [second]
    assert [e["id"] for e in client.get("/admin/events?type=account.callout&object_id=A2",
                                        headers=AUTH).get_json()["data"]] == [third]
    failed = client.get("/admin/events?status=failed", headers=AUTH).get_json()["data"][0]
    assert (failed["code"], failed["last_error"], failed["object_type"]) == ("ZUORA_REJECTED", "refused", "account")


def test_event_list_pages_with_a_cursor_without_skipping_or_repeating(client, services):
    ids = [pending_event(services, f"A{i}") for i in range(5)]
    seen, url = [], "/admin/events?limit=2"
    while url:
        body = client.get(url, headers=AUTH).get_json()
        seen += [e["id"] for e in body["data"]]
        url = f"/admin/events?limit=2&after={body['next']}" if body["next"] else None
    assert seen == list(reversed(ids))


@pytest.mark.parametrize("query,field", [("status=broken", "status"), ("source=mars", "source"),
                                         ("object_id=a%20b", "object_id"), ("limit=0", "limit"),
                                         ("after=bm90LWEtY3Vyc29y", "after")])
def test_event_list_refuses_bad_filters_naming_them(client, services, query, field):
    response = client.get(f"/admin/events?{query}", headers=AUTH)
    assert response.status_code == 400
    assert list(response.get_json()["detail"]) == [field]


@pytest.mark.parametrize("path", ["/admin/mappings", "/admin/failures", "/admin/events"])
def test_unknown_query_parameters_are_a_400_naming_them(client, services, path):
    response = client.get(f"{path}?foo=bar&limit=5&objecttype=x", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_query",
                                   "detail": {"foo": ["Unknown parameter."], "objecttype": ["Unknown parameter."]}}


def test_retry_and_delete_name_unknown_and_deleted_ids(client, services):
    kept, gone = failed_event(services, "A1"), failed_event(services, "A2")
    assert client.delete("/admin/failures", headers=AUTH, json={"ids": [gone]}).get_json() == {
        "deleted": 1, "not_found": []}
    response = client.post("/admin/failures/retry", headers=AUTH, json={"ids": [kept, gone, "evt_nope"]})
    assert response.get_json() == {"retried": 1, "not_found": [gone, "evt_nope"]}
    assert client.delete("/admin/failures", headers=AUTH, json={"ids": [gone]}).get_json() == {
        "deleted": 0, "not_found": [gone]}
    assert "not_found" not in client.post("/admin/failures/retry", headers=AUTH, json={"all": True}).get_json()


def test_delete_meter_removes_its_settings_and_404s_after(client, services):
    assert client.put("/admin/meters/m-1", headers=AUTH, json=METER).status_code == 201
    response = client.delete("/admin/meters/m-1", headers=AUTH)
    assert (response.status_code, response.data) == (204, b"")
    assert client.get("/admin/meters", headers=AUTH).get_json() == {"data": []}
    response = client.delete("/admin/meters/m-1", headers=AUTH)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_link_refused_at_once_when_either_account_is_linked_elsewhere(client, services):
    with services.db.transaction() as conn:
        mappings.link("account", zuora_id="Z1", zuora_number="A00001", billing_id="B1", origin="zuora")(conn)
    for body in ({"zuora_account_id": "Z1", "billing_account_id": "B2"},
                 {"zuora_account_id": "A00001", "billing_account_id": "B2"},
                 {"zuora_account_id": "Z2", "billing_account_id": "B1"}):
        response = client.post("/admin/links", headers=AUTH, json=body)
        assert response.status_code == 409, body
        assert response.get_json()["error"] == "conflict"
        assert "already linked" in response.get_json()["detail"]
    assert services.db.utils().execute("SELECT COUNT(*) FROM events").fetchall()[0][0] == 0  # nothing queued


def test_link_is_queued_and_answered_at_once_with_the_event_to_follow(client, services, monkeypatch):
    def no_sleep(seconds):
        raise AssertionError("a web request waited on the store")
    monkeypatch.setattr(links.time, "sleep", no_sleep)
    started = time.monotonic()
    response = client.post("/admin/links", headers=AUTH, json={"zuora_account_id": "A00001",
                                                               "billing_account_id": "acc-1"})
    assert time.monotonic() - started < 2  # no worker runs here: nothing to wait for
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued" and body["event_id"].startswith("evt_")
    assert body["event"] == response.headers["Location"] == f"/admin/events/{body['event_id']}"
    event = client.get(response.headers["Location"], headers=AUTH).get_json()
    assert (event["type"], event["source"], event["object_id"], event["status"]) == (
        "account.link", "admin", "A00001", "pending")
    assert services.inbox.get(body["event_id"]).payload["billing_account_id"] == "acc-1"
    assert services.db.utils().execute("SELECT COUNT(*) FROM id_mappings").fetchall()[0][0] == 0  # the worker's job


@pytest.mark.parametrize("body,field", [({"zuora_account_id": "Z 1", "billing_account_id": "B"}, "zuora_account_id"),
                                        ({"zuora_account_id": "Z1"}, "billing_account_id")])
def test_link_refuses_bad_bodies_naming_the_field(client, services, body, field):
    response = client.post("/admin/links", headers=AUTH, json=body)
    assert response.status_code == 400 and list(response.get_json()["detail"]) == [field]
