"""Object Query on the Zuora sandbox, without the vendor SDK: every documented operator, sort, fields,
expand, includeNullFields and the by-key lookup, and refusals in the documented 400 shape.

(tests/conformance/ drives the same calls through zuora-sdk; these keep the behaviour pinned where
the SDK is not installed.)
"""
from __future__ import annotations

import pytest

from integration_sandbox.zuora import create_zuora_sandbox
from tests.test_sandbox_zuora import create_account


@pytest.fixture
def client():
    app = create_zuora_sandbox(client_id="cid", client_secret="secret")
    yield app.test_client()
    app.extensions["zuora_sandbox"].close()


@pytest.fixture
def auth(client):
    token = client.post("/oauth/token", data={"client_id": "cid", "client_secret": "secret",
                                              "grant_type": "client_credentials"}).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def three(client, auth):
    return [create_account(client, auth, name=name, BillingAccountId__c=link, **extra)
            for name, link, extra in (("Ann", "acc_1", {"crmId": "c-1"}), ("Bob", "acc_2", {}),
                                      ("Cid", "acc_3", {"crmId": "c-3"}))]


def names(client, auth, query: str) -> list[str]:
    response = client.get(f"/object-query/accounts?{query}", headers=auth)
    assert response.status_code == 200, response.get_json()
    return [row["name"] for row in response.get_json()["data"]]


@pytest.mark.parametrize("query, expected", [
    ("filter[]=name.EQ:Bob", ["Bob"]),
    ("filter[]=name.NE:Bob", ["Ann", "Cid"]),
    ("filter[]=name.LT:Bob", ["Ann"]),
    ("filter[]=name.LE:Bob", ["Ann", "Bob"]),
    ("filter[]=name.GT:Bob", ["Cid"]),
    ("filter[]=name.GE:Bob", ["Bob", "Cid"]),
    ("filter[]=name.SW:C", ["Cid"]),
    ("filter[]=BillingAccountId__c.IN:[acc_1,acc_3]", ["Ann", "Cid"]),
    ("filter[]=crmId.NE:c-1", ["Cid"]),  # a null never matches, as in SQL
    ("filter[]=createdDate.GE:2000-01-01T00:00:00Z&filter[]=updatedDate.LT:2999-01-01T00:00:00Z",
     ["Ann", "Bob", "Cid"]),
    ("sort[]=name.DESC", ["Cid", "Bob", "Ann"]),
    ("sort[]=crmId.DESC", ["Cid", "Ann", "Bob"]),  # nulls last
    ("sort[]=name.ASC&pageSize=2&cursor=2", ["Cid"]),
])
def test_operators_sort_and_paging(client, auth, three, query, expected):
    assert names(client, auth, query) == expected


def test_fields_expand_and_null_fields(client, auth, three):
    rows = client.get("/object-query/accounts?filter[]=name.EQ:Bob&fields[]=id,name&fields[]=crmId",
                      headers=auth).get_json()["data"]
    assert rows == [{"id": three[1]["accountId"], "name": "Bob"}]  # null crmId left out by default
    rows = client.get("/object-query/accounts?filter[]=name.EQ:Bob&fields[]=crmId&includeNullFields=true",
                      headers=auth).get_json()["data"]
    assert rows == [{"crmId": None}]
    [row] = client.get("/object-query/accounts?filter[]=name.EQ:Ann&expand[]=billTo&expand[]=invoices",
                       headers=auth).get_json()["data"]
    assert (row["billTo"]["firstName"], row["billTo"]["accountId"], row["invoices"]) == (
        "Amy", three[0]["accountId"], [])
    assert "zipCode" not in row["billTo"]  # ExpandedContact spells it postalCode


def test_account_by_key_and_404(client, auth, three):
    by_number = client.get(f"/object-query/accounts/{three[2]['accountNumber']}", headers=auth).get_json()
    by_id = client.get(f"/object-query/accounts/{three[2]['accountId']}", headers=auth).get_json()
    assert by_number == by_id and by_id["name"] == "Cid"
    missing = client.get("/object-query/accounts/A404", headers=auth)
    assert (missing.status_code, missing.get_json()) == (404, {"code": 50000040,
                                                               "message": "Cannot find entity by key: 'A404'."})


@pytest.mark.parametrize("query, message", [
    ("filter[]=createdDate.GT:2024-01-01",
     "'2024-01-01' is not a date-time with a time zone, e.g. 2024-07-01T00:00:00Z"),
    ("sort[]=notes.ASC", "field 'notes' is not sortable on accounts"),
    ("includeNullFields=maybe", "includeNullFields must be true or false"),
    ("cursor=-1", "cursor is not one this query answered"),
])
def test_refusals_in_the_documented_400_shape(client, auth, three, query, message):
    response = client.get(f"/object-query/accounts?{query}", headers=auth)
    assert (response.status_code, response.get_json()) == (400, {"code": 50000027, "message": message})
