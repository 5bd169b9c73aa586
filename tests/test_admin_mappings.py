"""GET /admin/mappings: filters, cursor pagination, bearer auth, exact item shape."""
import pytest

from integration.store import mappings
from tests.conftest import ADMIN_TOKEN
from tests.validation_errors import assert_refusal

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def linked(services):
    with services.db.transaction() as conn:
        for i in range(7):
            mappings.link("account", zuora_id=f"Z{i}", zuora_number=f"A0000000{i}", billing_id=f"acc-{i}",
                          billing_customer_id=f"cust-{i}", origin="zuora")(conn)
        mappings.link("invoice", zuora_id="ZINV1", zuora_number="INV00000001", billing_id="inv-1",
                      billing_parent_id=None, origin="billing")(conn)
    return services


def test_requires_bearer_token(client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {ADMIN_TOKEN}"}):
        resp = client.get("/admin/mappings", headers=headers)
        assert resp.status_code == 401
        assert resp.get_json() == {"error": "unauthorized", "detail": "a valid admin bearer token is required"}


def test_item_shape(client, linked):
    body = client.get("/admin/mappings?type=invoice", headers=AUTH).get_json()
    [item] = body["data"]
    assert body["next"] is None
    assert set(item) == {"type", "zuora_id", "zuora_number", "billing_id", "origin", "created_at", "updated_at"}
    assert (item["type"], item["zuora_id"], item["zuora_number"], item["billing_id"], item["origin"]) == (
        "invoice", "ZINV1", "INV00000001", "inv-1", "billing")
    assert item["created_at"].endswith("Z") and "T" in item["created_at"]


def test_filters(client, linked):
    def ids(query):
        return [m["zuora_id"] for m in client.get(f"/admin/mappings?{query}", headers=AUTH).get_json()["data"]]
    assert ids("type=account") == [f"Z{i}" for i in range(7)]
    assert ids("zuora_id=Z3") == ["Z3"]
    assert ids("zuora_id=A00000003") == ["Z3"]  # a Zuora account number finds it too
    assert ids("billing_id=acc-5") == ["Z5"]
    assert ids("type=usage") == []


def test_cursor_pagination_walks_every_row_once(client, linked):
    seen, cursor, pages = [], None, 0
    while True:
        query = "type=account&limit=3" + (f"&after={cursor}" if cursor else "")
        body = client.get(f"/admin/mappings?{query}", headers=AUTH).get_json()
        seen += [m["zuora_id"] for m in body["data"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == [f"Z{i}" for i in range(7)] and pages == 3


@pytest.mark.parametrize("query,detail", [
    ("type=customer", {"type"}),  # a set: marshmallow's words, only the fields count
    ("limit=0", {"limit"}),
    ("limit=501", {"limit"}),
    ("limit=ten", {"limit"}),
    ("after=not-a-cursor", {"after": ["Not a cursor returned by this API."]}),
])
def test_bad_query_is_400_naming_the_parameter(client, query, detail):
    resp = client.get(f"/admin/mappings?{query}", headers=AUTH)
    assert resp.status_code == 400
    assert_refusal(resp.get_json(), "invalid_query", detail)


def test_conflicting_link_is_refused(services):
    with services.db.transaction() as conn:
        mappings.link("account", zuora_id="Z1", billing_id="acc-1", origin="zuora")(conn)
        mappings.link("account", zuora_id="Z1", billing_id="acc-1", origin="linked")(conn)  # same pair: no-op
    with pytest.raises(mappings.MappingConflict), services.db.transaction() as conn:
        mappings.link("account", zuora_id="Z1", billing_id="acc-2", origin="zuora")(conn)
    assert services.db.utils().execute("SELECT COUNT(*) FROM id_mappings").fetchall()[0][0] == 1
