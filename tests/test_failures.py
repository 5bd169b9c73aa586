"""The failure list and what an operator does with it: list, retry, delete (CONTRACT §4, §5)."""
import pytest

from integration.domain.errors import MISSING_MAPPING
from integration.flows.outcome import Outcome
from integration.worker.loop import Worker
from tests.conftest import ADMIN_TOKEN
from tests.engines import store_sql
from tests.validation_errors import assert_refusal

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KINDS = {
    # object_type -> (source, type, object_key prefix)
    "account": ("zuora", "account.callout", "zuora-account"),
    "invoice": ("billing", "invoice.finalized", "billing-invoice"),
    "usage": ("billing", "invoice.usage", "billing-invoice-usage"),
}
ITEM_FIELDS = ["id", "object_type", "object_id", "source", "code", "message", "attempts", "first_failed_at",
               "last_failed_at"]


def record(services, object_type, object_id):
    source, type, prefix = KINDS[object_type]
    return services.inbox.record(source=source, type=type, object_type=object_type, object_id=object_id,
                                 object_key=f"{prefix}:{object_id}").event_id


def fail(services, object_type="account", object_id="A1", code="ZUORA_REJECTED", message="refused",
         waiting_for=None):
    """Record an event and take it through a claim to the failure list, as the worker would."""
    event_id = record(services, object_type, object_id)
    claimed = services.inbox.claim("test-worker", limit=50)
    assert [e.id for e in claimed] == [event_id]
    services.inbox.fail(event_id, "test-worker", code, message, waiting_for)
    return event_id


def statuses(services):
    rows = store_sql(services.db).execute("SELECT id, status FROM events").fetchall()
    return {row["id"]: row["status"] for row in rows}


def listed(client, query=""):
    response = client.get(f"/admin/failures{query}", headers=AUTH)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- listing ------------------------------------------------------------------------------------------------

def test_list_shows_only_failed_events_with_exactly_the_contract_fields(client, services):
    failed = fail(services, "account", "A1", code="INVALID_DATA", message="primaryEmail: missing")
    record(services, "account", "A2")  # pending: not a failure
    body = listed(client)
    assert body["next"] is None
    [item] = body["data"]
    assert list(item) == ITEM_FIELDS
    event = services.inbox.get(failed)
    stamp = event.last_failed_at.isoformat().replace("+00:00", "Z")
    assert item == {"id": failed, "object_type": "account", "object_id": "A1", "source": "zuora",
                    "code": "INVALID_DATA", "message": "primaryEmail: missing", "attempts": 1,
                    "first_failed_at": stamp, "last_failed_at": stamp}
    assert stamp.endswith("Z")


def test_filters_by_object_type_and_code(client, services):
    account = fail(services, "account", "A1", code="ZUORA_REJECTED")
    invoice = fail(services, "invoice", "I1", code="MISSING_MAPPING", waiting_for="billing-account:B1")
    usage = fail(services, "usage", "I2", code="ZUORA_REJECTED")
    ids = lambda body: [item["id"] for item in body["data"]]  # noqa: E731
    assert ids(listed(client)) == [account, invoice, usage]
    assert ids(listed(client, "?object_type=invoice")) == [invoice]
    assert ids(listed(client, "?code=ZUORA_REJECTED")) == [account, usage]
    assert ids(listed(client, "?code=ZUORA_REJECTED&object_type=usage")) == [usage]
    assert ids(listed(client, "?code=AUTH_FAILED")) == []


def test_cursor_pagination_walks_every_failure_once(client, services):
    expected = [fail(services, "account", f"A{i}") for i in range(5)]
    seen, query = [], "?limit=2"
    pages = 0
    while True:
        body = listed(client, query)
        pages += 1
        seen += [item["id"] for item in body["data"]]
        if body["next"] is None:
            break
        query = f"?limit=2&after={body['next']}"
    assert (seen, pages) == (expected, 3)


def test_a_retried_failure_that_fails_again_keeps_its_page_position(client, services):
    first, second = fail(services, "account", "A1"), fail(services, "account", "A2")
    page = listed(client, "?limit=1")
    client.post("/admin/failures/retry", headers=AUTH, json={"ids": [first]})
    [again] = services.inbox.claim("test-worker")
    services.inbox.fail(again.id, "test-worker", "UNKNOWN", "still broken")
    assert [i["id"] for i in listed(client, f"?limit=1&after={page['next']}")["data"]] == [second]


def test_default_limit_is_100(client, services):
    with store_sql(services.db).conn as conn:
        conn.executemany(
            "INSERT INTO events (id, source, type, object_type, object_id, object_key, dedupe_key, status,"
            " error_code, last_error, attempts, next_attempt_at, first_failed_at, last_failed_at, created_at,"
            " updated_at) VALUES (?, 'zuora', 'account.callout', 'account', ?, ?, ?, 'failed', 'UNKNOWN', 'x', 1,"
            " '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z',"
            " '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
            [(f"evt_{i:04d}", f"A{i}", f"zuora-account:A{i}", f"d{i}") for i in range(101)])
    body = listed(client)
    assert len(body["data"]) == 100 and body["next"] is not None
    assert len(listed(client, f"?after={body['next']}")["data"]) == 1
    assert len(listed(client, "?limit=500")["data"]) == 101


@pytest.mark.parametrize("query,field", [
    ("?limit=0", "limit"), ("?limit=501", "limit"), ("?limit=ten", "limit"), ("?code=NOPE", "code"),
    ("?object_type=customer", "object_type"), ("?after=bm90LWEtY3Vyc29y", "after"), ("?after=%FF", "after"),
    ("?after=" + "a" * 101, "after"),
])
def test_bad_query_is_400_naming_the_parameter(client, query, field):
    response = client.get(f"/admin/failures{query}", headers=AUTH)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_query" and list(body["detail"]) == [field]


# -- selectors ---------------------------------------------------------------------------------------------

@pytest.fixture
def three_failures(services):
    return {"account": fail(services, "account", "A1"), "invoice": fail(services, "invoice", "I1"),
            "other_account": fail(services, "account", "A2")}


def test_retry_by_ids(client, services, three_failures):
    response = client.post("/admin/failures/retry", headers=AUTH,
                           json={"ids": [three_failures["account"], "evt_unknown"]})
    assert (response.status_code, response.get_json()) == (200, {"retried": 1, "not_found": ["evt_unknown"]})
    assert statuses(services) == {three_failures["account"]: "pending", three_failures["invoice"]: "failed",
                                  three_failures["other_account"]: "failed"}


def test_retry_by_object_type(client, services, three_failures):
    response = client.post("/admin/failures/retry", headers=AUTH, json={"object_type": "account"})
    assert response.get_json() == {"retried": 2}
    assert statuses(services)[three_failures["invoice"]] == "failed"


def test_retry_all(client, services, three_failures):
    assert client.post("/admin/failures/retry", headers=AUTH, json={"all": True}).get_json() == {"retried": 3}
    assert set(statuses(services).values()) == {"pending"}
    assert listed(client)["data"] == []


def test_retry_makes_the_event_due_now_with_fresh_attempts_and_keeps_its_history(client, services):
    event_id = fail(services, "account", "A1", code=MISSING_MAPPING, message="account B1 not linked",
                    waiting_for="billing-account:B1")
    before = services.inbox.get(event_id)
    client.post("/admin/failures/retry", headers=AUTH, json={"ids": [event_id]})
    event = services.inbox.get(event_id)
    assert (event.status, event.attempts, event.waiting_for) == ("pending", 0, None)
    assert event.next_attempt_at <= services.inbox.clock()
    assert (event.error_code, event.last_error, event.first_failed_at) == (
        MISSING_MAPPING, "account B1 not linked", before.first_failed_at)
    # ...and a worker really picks it up and can finish it.
    worker = Worker(services.inbox, {"account.callout": lambda e: Outcome()})
    assert worker.drain() == 1
    done = services.inbox.get(event_id)
    assert (done.status, done.attempts, done.error_code, done.last_error) == ("done", 1, None, None)


def test_delete_by_each_selector_marks_deleted_and_keeps_the_row(client, services, three_failures):
    response = client.delete("/admin/failures", headers=AUTH, json={"ids": [three_failures["account"]]})
    assert (response.status_code, response.get_json()) == (200, {"deleted": 1, "not_found": []})
    assert client.delete("/admin/failures", headers=AUTH, json={"object_type": "invoice"}).get_json() == {"deleted": 1}
    assert client.delete("/admin/failures", headers=AUTH, json={"all": True}).get_json() == {"deleted": 1}
    assert set(statuses(services).values()) == {"deleted"}
    assert listed(client)["data"] == []
    kept = services.inbox.get(three_failures["account"])
    assert (kept.error_code, kept.last_error, kept.attempts) == ("ZUORA_REJECTED", "refused", 1)
    assert kept.first_failed_at is not None


def test_a_deleted_event_is_never_claimed_or_retried_again(client, services):
    event_id = fail(services, "account", "A1")
    client.delete("/admin/failures", headers=AUTH, json={"ids": [event_id]})
    assert client.post("/admin/failures/retry", headers=AUTH, json={"all": True}).get_json() == {"retried": 0}
    assert services.inbox.claim("test-worker") == []
    assert client.get(f"/admin/events/{event_id}", headers=AUTH).get_json()["status"] == "deleted"


def test_only_failed_events_are_touched(client, services):
    failed = fail(services, "account", "A1")
    pending = record(services, "account", "A2")
    running = record(services, "account", "A3")
    claimed = services.inbox.claim("test-worker", limit=5)
    assert {e.id for e in claimed} == {pending, running}
    services.inbox.release(pending, "test-worker")
    everything = {"ids": [failed, pending, running]}
    assert client.post("/admin/failures/retry", headers=AUTH, json=everything).get_json() == {"retried": 1,
                                                                                             "not_found": []}
    assert client.delete("/admin/failures", headers=AUTH, json=everything).get_json() == {"deleted": 0, "not_found": []}
    assert client.delete("/admin/failures", headers=AUTH, json={"all": True}).get_json() == {"deleted": 0}
    assert statuses(services) == {failed: "pending", pending: "pending", running: "running"}


@pytest.mark.parametrize("method,path", [("POST", "/admin/failures/retry"), ("DELETE", "/admin/failures")])
@pytest.mark.parametrize("body,detail", [
    ({}, {"_schema": ["Give exactly one of: ids, object_type, all."]}),
    ({"ids": ["evt_1"], "all": True}, {"ids": ["Give only one of: ids, all."], "all": ["Give only one of: ids, all."]}),
    ({"object_type": "account", "all": True},
     {"object_type": ["Give only one of: object_type, all."], "all": ["Give only one of: object_type, all."]}),
    ({"ids": ["e"], "object_type": "usage", "all": True}, {
        "ids": ["Give only one of: ids, object_type, all."],
        "object_type": ["Give only one of: ids, object_type, all."],
        "all": ["Give only one of: ids, object_type, all."]}),
    ({"all": False}, {"all": ["Must be true."]}),
    # marshmallow's own sentences below: only the field that was wrong is asserted.
    ({"all": 1}, {"all"}),
    ({"all": "true"}, {"all"}),
    ({"ids": []}, {"ids"}),
    ({"ids": "evt_1"}, {"ids"}),
    ({"ids": [5]}, {"ids.0"}),
    ({"ids": ["x" * 101]}, {"ids.0"}),
    ({"ids": [f"evt_{i}" for i in range(1001)]}, {"ids"}),
    ({"object_type": "customer"}, {"object_type"}),
    ({"all": True, "code": "UNKNOWN"}, {"code"}),
])
def test_invalid_selectors_are_400_and_change_nothing(client, services, method, path, body, detail):
    event_id = fail(services, "account", "A1")
    response = client.open(path, method=method, headers=AUTH, json=body)
    assert response.status_code == 400
    assert_refusal(response.get_json(), "invalid_payload", detail)
    assert statuses(services) == {event_id: "failed"}


def test_a_thousand_ids_are_accepted(client, services):
    event_id = fail(services, "account", "A1")
    ids = [event_id] + [f"evt_{i:032x}" for i in range(999)]
    response = client.post("/admin/failures/retry", headers=AUTH, json={"ids": ids})
    assert (response.status_code, response.get_json()) == (200, {"retried": 1, "not_found": ids[1:]})


# -- invoices and their usage --------------------------------------------------------------------------------

def test_retrying_an_invoice_also_retries_its_usage(client, services):
    invoice = fail(services, "invoice", "I1", message="Zuora refused the invoice")
    usage = fail(services, "usage", "I1", message="Zuora refused the usage")
    other_usage = fail(services, "usage", "I2")
    response = client.post("/admin/failures/retry", headers=AUTH, json={"ids": [invoice]})
    assert response.get_json() == {"retried": 2, "not_found": []}
    assert statuses(services) == {invoice: "pending", usage: "pending", other_usage: "failed"}


def test_retrying_invoices_by_type_also_retries_their_usage_only(client, services):
    invoice = fail(services, "invoice", "I1")
    usage = fail(services, "usage", "I1")
    orphan_usage = fail(services, "usage", "I9")  # its invoice is not failed
    assert client.post("/admin/failures/retry", headers=AUTH, json={"object_type": "invoice"}).get_json() == {
        "retried": 2}
    assert statuses(services) == {invoice: "pending", usage: "pending", orphan_usage: "failed"}


def test_retrying_usage_alone_leaves_the_invoice(client, services):
    invoice = fail(services, "invoice", "I1")
    usage = fail(services, "usage", "I1")
    retried = client.post("/admin/failures/retry", headers=AUTH, json={"ids": [usage]}).get_json()
    assert retried == {"retried": 1, "not_found": []}
    assert statuses(services) == {invoice: "failed", usage: "pending"}


def test_deleting_an_invoice_leaves_its_usage_on_the_list(client, services):
    invoice = fail(services, "invoice", "I1")
    usage = fail(services, "usage", "I1")
    deleted = client.delete("/admin/failures", headers=AUTH, json={"ids": [invoice]}).get_json()
    assert deleted == {"deleted": 1, "not_found": []}
    assert statuses(services) == {invoice: "deleted", usage: "failed"}
