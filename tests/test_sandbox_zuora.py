"""The built-in Zuora sandbox behaves like Zuora where it matters (zuora-api.md; CONTRACT §7)."""
from __future__ import annotations

import base64
import hmac
import io
import json
import re
import socket
import threading
import time
from decimal import Decimal

import flask
import pytest
import requests

from integration_sandbox.server import ServerThread
from integration_sandbox.zuora import create_zuora_sandbox

CLIENT_ID = "0b8c2f2e-1c7a-4a57-9c1e-7f0f4c0d2a11"
CLIENT_SECRET = "s3cr3t-value-for-tests"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    def __init__(self, start: float = T0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock):
    app = create_zuora_sandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock,
                               callout_retry_interval=0.01)
    yield app
    app.extensions["zuora_sandbox"].close()


@pytest.fixture
def sb(app):
    return app.extensions["zuora_sandbox"]


@pytest.fixture
def client(app):
    return app.test_client()


def get_token(client) -> str:
    r = client.post("/oauth/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                          "grant_type": "client_credentials"})
    assert r.status_code == 200
    return r.get_json()["access_token"]


@pytest.fixture
def auth(client) -> dict:
    return {"Authorization": f"Bearer {get_token(client)}"}


def valid_account(**overrides) -> dict:
    body = {"name": "Amy Lawrence", "currency": "USD", "billCycleDay": 1, "autoPay": False,
            "billToContact": {"firstName": "Amy", "lastName": "Lawrence", "country": "United States",
                              "state": "CA", "workEmail": "amy@example.com"}}
    body.update(overrides)
    return body


def create_account(client, auth, **overrides) -> dict:
    r = client.post("/v1/accounts", json=valid_account(**overrides), headers=auth)
    assert r.status_code == 200
    body = r.get_json()
    assert body["success"] is True, body
    return body


def state(client) -> dict:
    return client.get("/_sandbox/state").get_json()


def assert_zuora_error(resp, reasons: list[dict], status: int = 200) -> None:
    """Zuora's CommonResponse: success false, a 16-hex processId, exactly these reasons."""
    assert resp.status_code == status
    body = resp.get_json()
    assert body["success"] is False
    assert re.fullmatch(r"[0-9A-F]{16}", body["processId"])
    assert body["reasons"] == reasons


# -- OAuth -------------------------------------------------------------------------------------------

def test_token_response_shape(client):
    r = client.post("/oauth/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                          "grant_type": "client_credentials"})
    assert r.status_code == 200
    body = r.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "jti"}
    assert (body["token_type"], body["expires_in"]) == ("bearer", 3599)
    assert "tenant." in body["scope"]


@pytest.mark.parametrize("form", [
    {"client_id": CLIENT_ID, "client_secret": "wrong", "grant_type": "client_credentials"},
    {"client_id": "nobody", "client_secret": CLIENT_SECRET, "grant_type": "client_credentials"},
])
def test_wrong_client_credentials_get_401(client, form):
    r = client.post("/oauth/token", data=form)
    assert r.status_code == 401
    assert r.get_json() == {"message": "Authentication error"}


def test_token_request_must_be_complete_client_credentials_form(client):
    r = client.post("/oauth/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert (r.status_code, r.get_json()) == (400, {"message": "Missing required form field(s): grant_type"})
    r = client.post("/oauth/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                          "grant_type": "password"})
    assert (r.status_code, r.get_json()) == (400, {"message": "grant_type must be client_credentials"})
    r = client.post("/oauth/token", json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                          "grant_type": "client_credentials"})
    assert r.status_code == 415


def assert_auth_error(r) -> None:
    assert r.status_code == 401
    assert r.get_json() == {"message": "Authentication error"}
    assert r.headers["WWW-Authenticate"] == "Basic realm=Zuora API, ZSession realm=Zuora API, Bearer realm=Zuora API"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}])
def test_missing_or_unknown_token_is_401_on_every_api(client, headers):
    for method, path in [("get", "/v1/accounts/A00000001"), ("post", "/v1/accounts"), ("post", "/v1/invoices"),
                         ("post", "/v1/object/usage"), ("post", "/v1/usage"), ("get", "/object-query/accounts"),
                         ("put", "/v1/accounts/A00000001"), ("get", "/v1/usage/x/status")]:
        assert_auth_error(getattr(client, method)(path, headers=headers))
    assert state(client)["accounts"] == []


def test_token_expires_after_its_lifetime(client, auth, clock, sb):
    assert client.get("/v1/accounts/nope", headers=auth).status_code == 200
    clock.advance(3598)
    assert client.get("/v1/accounts/nope", headers=auth).status_code == 200
    clock.advance(1)
    assert_auth_error(client.get("/v1/accounts/nope", headers=auth))
    fresh = {"Authorization": f"Bearer {get_token(client)}"}
    assert client.get("/v1/accounts/nope", headers=fresh).status_code == 200
    assert state(client)["tokens_issued"] == 2


def test_revoked_tokens_get_401(client, auth):
    r = client.post("/_sandbox/revoke-tokens")
    assert r.get_json() == {"revoked": 1}
    assert_auth_error(client.post("/v1/accounts", json=valid_account(), headers=auth))


def test_token_lifetime_is_configurable():
    clock = FakeClock()
    app = create_zuora_sandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_lifetime=60, clock=clock)
    client = app.test_client()
    r = client.post("/oauth/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                          "grant_type": "client_credentials"})
    assert r.get_json()["expires_in"] == 60
    headers = {"Authorization": f"Bearer {r.get_json()['access_token']}"}
    clock.advance(60)
    assert_auth_error(client.get("/v1/accounts/x", headers=headers))


def test_generated_credentials_when_none_given():
    app = create_zuora_sandbox()
    sb = app.extensions["zuora_sandbox"]
    assert len(sb.client_id) == 36 and len(sb.client_secret) >= 32
    assert sb.client_secret not in repr(sb)
    other = create_zuora_sandbox().extensions["zuora_sandbox"]
    assert (sb.client_id, sb.client_secret) != (other.client_id, other.client_secret)


# -- accounts --------------------------------------------------------------------------------------------

def test_create_and_get_account(client, auth, sb):
    created = create_account(client, auth, BillingAccountId__c="acc_123",
                             soldToContact={"firstName": "Sol", "lastName": "Buyer", "country": "DE"})
    assert set(created) == {"success", "accountId", "accountNumber", "billToContactId", "soldToContactId"}
    assert re.fullmatch(r"[0-9a-f]{32}", created["accountId"])
    assert created["accountNumber"] == "A00000001"
    assert created["billToContactId"] != created["soldToContactId"]

    by_id = client.get(f"/v1/accounts/{created['accountId']}", headers=auth).get_json()
    by_number = client.get("/v1/accounts/A00000001", headers=auth).get_json()
    assert by_id == by_number
    assert by_id["success"] is True
    basic = by_id["basicInfo"]
    assert (basic["id"], basic["accountNumber"], basic["name"], basic["status"], basic["BillingAccountId__c"]) == \
        (created["accountId"], "A00000001", "Amy Lawrence", "Active", "acc_123")
    billing = by_id["billingAndPayment"]
    assert (billing["currency"], billing["billCycleDay"], billing["autoPay"], billing["paymentTerm"]) == \
        ("USD", 1, False, "Due Upon Receipt")
    assert by_id["billToContact"]["id"] == created["billToContactId"]
    assert (by_id["billToContact"]["firstName"], by_id["billToContact"]["country"],
            by_id["billToContact"]["workEmail"]) == ("Amy", "United States", "amy@example.com")
    assert by_id["soldToContact"]["country"] == "Germany"  # abbreviations are stored as country names
    assert by_id["metrics"] == {"balance": 0, "totalInvoiceBalance": 0, "creditBalance": 0, "contractedMrr": 0}


def test_account_numbers_are_sequential_and_sold_to_defaults_to_bill_to(client, auth):
    first = create_account(client, auth)
    second = create_account(client, auth, name="Second")
    assert (first["accountNumber"], second["accountNumber"]) == ("A00000001", "A00000002")
    assert first["billToContactId"] == first["soldToContactId"]


def test_unset_custom_field_reads_null(client, auth):
    created = create_account(client, auth)
    basic = client.get(f"/v1/accounts/{created['accountId']}", headers=auth).get_json()["basicInfo"]
    assert "BillingAccountId__c" in basic and basic["BillingAccountId__c"] is None


def test_get_unknown_account_is_http_200_not_found_reason(client, auth):
    assert_zuora_error(client.get("/v1/accounts/A99999999", headers=auth),
                       [{"code": 50000040, "message": "Cannot find entity by key: 'A99999999'."}])


def _without(key: str) -> dict:
    body = valid_account()
    del body[key]
    return body


def _contact(**changes) -> dict:
    body = valid_account()
    body["billToContact"].update(changes)
    body["billToContact"] = {k: v for k, v in body["billToContact"].items() if v is not None}
    return body


ACCOUNT_CASES = [
    ("missing name", _without("name"), 53100022, "'name' may not be null"),
    ("empty name", valid_account(name=""), 53100022, "'name' may not be empty"),
    ("long name", valid_account(name="x" * 256), 53100020, "'name' length must be between 1 and 255 characters"),
    ("missing currency", _without("currency"), 53100022, "'currency' may not be null"),
    ("lower-case currency", valid_account(currency="usd"), 53100020,
     "'currency' value 'usd' is not a 3-letter currency code defined in Billing Settings"),
    ("two-letter currency", valid_account(currency="US"), 53100020,
     "'currency' value 'US' is not a 3-letter currency code defined in Billing Settings"),
    ("unknown currency", valid_account(currency="XYZ"), 53100020,
     "'currency' value 'XYZ' is not a 3-letter currency code defined in Billing Settings"),
    ("missing billToContact", _without("billToContact"), 53100022, "'billToContact' may not be null"),
    ("missing firstName", _contact(firstName=None), 53100022, "'billToContact.firstName' may not be null"),
    ("missing lastName", _contact(lastName=None), 53100022, "'billToContact.lastName' may not be null"),
    ("long firstName", _contact(firstName="f" * 101), 53100020,
     "'billToContact.firstName' length must be between 1 and 100 characters"),
    ("long lastName", _contact(lastName="l" * 101), 53100020,
     "'billToContact.lastName' length must be between 1 and 100 characters"),
    ("missing billCycleDay", _without("billCycleDay"), 53100022, "'billCycleDay' may not be null"),
    ("billCycleDay 32", valid_account(billCycleDay=32), 53100020, "'billCycleDay' must be an integer between 0 and 31"),
    ("billCycleDay -1", valid_account(billCycleDay=-1), 53100020, "'billCycleDay' must be an integer between 0 and 31"),
    ("billCycleDay string", valid_account(billCycleDay="1"), 53100020,
     "'billCycleDay' must be an integer between 0 and 31"),
    ("autoPay string", valid_account(autoPay="no"), 53100020, "'autoPay' must be true or false"),
    ("autoPay without payment method", valid_account(autoPay=True), 53100030,
     "autoPay is true but no payment method is given (paymentMethod, creditCard or hpmCreditCardPaymentMethodId)"),
    ("bad email", _contact(workEmail="not-an-email"), 53100020,
     "'billToContact.workEmail' is not a valid email address"),
    ("long email", _contact(personalEmail="a" * 64 + "@example.com"), 53100020,
     "'billToContact.personalEmail' length must be at most 74 characters"),
    ("unknown country", _contact(country="Atlantis"), 53100020,
     "'billToContact.country' value 'Atlantis' is not a valid country name or abbreviation"),
    ("state of another country", _contact(state="Ontario"), 53100020,
     "'billToContact.state' value 'Ontario' is not a valid state or province of United States"),
    ("unknown top-level key", valid_account(foo=1), 53100021, "Unknown field 'foo'"),
    ("unknown contact key", _contact(postalCode="12345"), 53100021, "Unknown field 'billToContact.postalCode'"),
    ("undefined custom field", valid_account(Other__c="x"), 53100021,
     "Unknown field 'Other__c': no such custom field on Account"),
    ("non-string custom field", valid_account(BillingAccountId__c=5), 53100020,
     "'BillingAccountId__c' must be a string of at most 255 characters"),
    ("bad payment term", valid_account(paymentTerm="Net 45"), 53100020,
     "'paymentTerm' value should be one of: Due Upon Receipt, Net 30, Net 60, Net 90"),
    ("unknown batch", valid_account(batch="Batch99"), 53100020,
     "'batch' value 'Batch99' is not a configured batch (Batch1 to Batch50)"),
    ("long crmId", valid_account(crmId="c" * 101), 53100020, "'crmId' length must be at most 100 characters"),
    ("long accountNumber", valid_account(accountNumber="N" * 51), 53100020,
     "'accountNumber' length must be at most 50 characters"),
    ("subscription", valid_account(subscription={"termType": "EVERGREEN"}), 53100030,
     "'subscription' is not supported by the sandbox"
     " (the sandbox models no subscriptions, bill runs, payments or commitments)"),
    ("soldToContact without lastName", valid_account(soldToContact={"firstName": "S"}), 53100022,
     "'soldToContact.lastName' may not be null"),
    ("body not an object", ["name"], 53100090, "The request body must be a JSON object"),
]


@pytest.mark.parametrize("body, code, message", [c[1:] for c in ACCOUNT_CASES], ids=[c[0] for c in ACCOUNT_CASES])
def test_account_create_validation(client, auth, body, code, message):
    assert_zuora_error(client.post("/v1/accounts", json=body, headers=auth), [{"code": code, "message": message}])
    assert state(client)["accounts"] == []


def test_account_create_reports_every_problem_at_once(client, auth):
    body = {"name": "", "currency": "usd", "billToContact": {"lastName": "x"}}
    r = client.post("/v1/accounts", json=body, headers=auth)
    assert_zuora_error(r, [
        {"code": 53100022, "message": "'name' may not be empty"},
        {"code": 53100020,
         "message": "'currency' value 'usd' is not a 3-letter currency code defined in Billing Settings"},
        {"code": 53100022, "message": "'billCycleDay' may not be null"},
        {"code": 53100022, "message": "'billToContact.firstName' may not be null"},
    ])


@pytest.mark.parametrize("data, content_type, message", [
    ("{not json", "application/json", "Malformed JSON in the request body"),
    ('{"billCycleDay": NaN}', "application/json", "Malformed JSON in the request body"),
    ("name=x", "application/x-www-form-urlencoded", "Content-Type must be application/json"),
])
def test_account_create_refuses_non_json(client, auth, data, content_type, message):
    r = client.post("/v1/accounts", data=data, content_type=content_type, headers=auth)
    assert_zuora_error(r, [{"code": 53100090, "message": message}])


def test_duplicate_account_number_is_refused(client, auth):
    create_account(client, auth, accountNumber="CUST-1")
    r = client.post("/v1/accounts", json=valid_account(accountNumber="CUST-1"), headers=auth)
    assert_zuora_error(r, [{"code": 53100030, "message": "The account number CUST-1 already exists."}])
    assert len(state(client)["accounts"]) == 1


def test_update_account_partially(client, auth, clock):
    created = create_account(client, auth)
    clock.advance(60)
    r = client.put(f"/v1/accounts/{created['accountNumber']}", headers=auth,
                   json={"name": "Amy L.", "BillingAccountId__c": "acc_9", "crmId": "crm-1",
                         "billToContact": {"city": "Oakland"}, "soldToContact": {"firstName": "Sally"}})
    assert (r.status_code, r.get_json()) == (200, {"success": True})
    acct = client.get(f"/v1/accounts/{created['accountId']}", headers=auth).get_json()
    assert (acct["basicInfo"]["name"], acct["basicInfo"]["BillingAccountId__c"], acct["basicInfo"]["crmId"]) == \
        ("Amy L.", "acc_9", "crm-1")
    assert (acct["billToContact"]["firstName"], acct["billToContact"]["city"]) == ("Amy", "Oakland")
    # sold-to shared the bill-to contact: updating it must not rename the bill-to person
    assert acct["soldToContact"]["firstName"] == "Sally"
    assert acct["soldToContact"]["id"] != acct["billToContact"]["id"]
    assert acct["billingAndPayment"]["currency"] == "USD"


@pytest.mark.parametrize("body, code, message", [
    ({"name": "n" * 256}, 53100020, "'name' length must be between 1 and 255 characters"),
    ({"currency": "EUR"}, 53100021, "Unknown field 'currency'"),
    ({"billCycleDay": 0}, 53100020, "'billCycleDay' must be an integer between 1 and 31"),
    ({"billToContact": {"lastName": ""}}, 53100022, "'billToContact.lastName' may not be empty"),
    ({"billToContact": {"workEmail": "x@"}}, 53100020, "'billToContact.workEmail' is not a valid email address"),
    ({"Missing__c": "v"}, 53100021, "Unknown field 'Missing__c': no such custom field on Account"),
])
def test_update_account_validation_changes_nothing(client, auth, body, code, message):
    created = create_account(client, auth)
    before = client.get(f"/v1/accounts/{created['accountId']}", headers=auth).get_json()
    assert_zuora_error(client.put(f"/v1/accounts/{created['accountId']}", json=body, headers=auth),
                       [{"code": code, "message": message}])
    assert client.get(f"/v1/accounts/{created['accountId']}", headers=auth).get_json() == before


def test_update_unknown_account(client, auth):
    assert_zuora_error(client.put("/v1/accounts/A404", json={"name": "x"}, headers=auth),
                       [{"code": 53100040, "message": "Cannot find entity by key: 'A404'."}])


# -- object query --------------------------------------------------------------------------------------------

def test_object_query_eq_filters(client, auth):
    a = create_account(client, auth, BillingAccountId__c="acc_1", crmId="crm-1")
    b = create_account(client, auth, name="Bob", BillingAccountId__c="acc_2")

    def query(*filters: str) -> list[dict]:
        qs = "&".join(f"filter[]={f}" for f in filters)
        r = client.get(f"/object-query/accounts?{qs}", headers=auth)
        assert r.status_code == 200
        return r.get_json()["data"]

    assert [d["id"] for d in query("BillingAccountId__c.EQ:acc_2")] == [b["accountId"]]
    assert [d["id"] for d in query("billingaccountid__c.EQ:acc_1")] == [a["accountId"]]  # names are case-insensitive
    assert [d["accountNumber"] for d in query(f"id.EQ:{a['accountId']}")] == [a["accountNumber"]]
    assert [d["name"] for d in query("accountNumber.EQ:A00000002")] == ["Bob"]
    assert [d["id"] for d in query("name.EQ:Amy Lawrence", "crmid.EQ:crm-1")] == [a["accountId"]]
    assert query("BillingAccountId__c.EQ:acc_3") == []
    row = query("name.EQ:Bob")[0]
    assert (row["BillingAccountId__c"], row["currency"], row["status"], row["billCycleDay"]) == \
        ("acc_2", "USD", "Active", 1)


def test_object_query_paging(client, auth):
    for n in range(3):
        create_account(client, auth, name=f"N{n}")
    first = client.get("/object-query/accounts?pageSize=2", headers=auth).get_json()
    assert [d["name"] for d in first["data"]] == ["N0", "N1"]
    second = client.get(f"/object-query/accounts?pageSize=2&cursor={first['nextPage']}", headers=auth).get_json()
    assert [d["name"] for d in second["data"]] == ["N2"]
    assert "nextPage" not in second


@pytest.mark.parametrize("query, message", [
    ("filter[]=notes.EQ:x", "field 'notes' is not filterable on accounts"),
    ("filter[]=name.XX:A", "operator 'XX' is not one of EQ, NE, LT, LE, GT, GE, SW, IN"),
    ("sort[]=name.UP", "invalid sort 'name.UP': expected <field>.ASC or <field>.DESC"),
    ("fields[]=id,nope", "fields[] 'nope' is not a field of accounts"),
    ("expand[]=payments", "expand[] 'payments' is not supported by the sandbox on accounts "
                          "(one of: billTo, soldTo, shipTo, invoices, usages)"),
    ("filter[]=name", "invalid filter 'name': expected <field>.<operator>:<value>"),
    ("pageSize=100", "pageSize must be between 1 and 99"),
])
def test_object_query_bad_parameters(client, auth, query, message):
    create_account(client, auth)  # fields[] is checked against a row
    r = client.get(f"/object-query/accounts?{query}", headers=auth)
    # Object Query's documented 400 body is CommonErrorResponse: {"code": <int>, "message": ...}
    assert (r.status_code, r.get_json()) == (400, {"code": 50000027, "message": message})


# -- invoices -----------------------------------------------------------------------------------------

def invoice_body(account_id: str, **overrides) -> dict:
    body = {"accountId": account_id, "invoiceDate": "2026-01-31", "status": "Posted",
            "invoiceItems": [{"amount": Decimal("10.10"), "serviceStartDate": "2026-01-01",
                              "serviceEndDate": "2026-01-31", "chargeName": "Platform fee",
                              "description": "January", "quantity": 1, "uom": "Each"},
                             {"amount": "0.20", "serviceStartDate": "2026-01-01", "chargeName": "API calls",
                              "quantity": Decimal("2000"), "unitPrice": Decimal("0.0001")}]}
    body.update(overrides)
    return body


def post_json(client, path: str, body, headers: dict):
    def enc(o):
        if isinstance(o, Decimal):
            return f"@@{o}@@"
        raise TypeError
    raw = re.sub(r'"@@(-?[0-9.]+)@@"', r"\1", json.dumps(body, default=enc))
    return client.post(path, data=raw, content_type="application/json", headers=headers)


def test_create_standalone_invoice_keeps_amounts_exact(client, auth, sb):
    acct = create_account(client, auth, paymentTerm="Net 30")
    r = post_json(client, "/v1/invoices", invoice_body(acct["accountId"]), auth)
    assert r.status_code == 200
    body = json.loads(r.data, parse_float=Decimal)
    assert body["success"] is True
    assert (body["invoiceNumber"], body["accountId"], body["status"], body["amount"], body["balance"]) == \
        ("INV00000001", acct["accountId"], "Posted", Decimal("10.30"), Decimal("10.30"))
    assert b'"amount": 10.30' in r.data  # a JSON number, digit for digit
    assert (body["invoiceDate"], body["dueDate"], body["currency"], body["sourceType"]) == \
        ("2026-01-31", "2026-03-02", "USD", "Standalone")

    got = json.loads(client.get(f"/v1/invoices/{body['id']}", headers=auth).data, parse_float=Decimal)
    assert got["invoiceNumber"] == "INV00000001"
    assert "invoiceItems" not in got and "accountNumber" not in got  # Zuora's InvoiceResponse has neither
    items = json.loads(client.get(f"/v1/invoices/{body['id']}/items", headers=auth).data,
                       parse_float=Decimal)["invoiceItems"]
    assert [(i["chargeName"], i["chargeAmount"], i["serviceStartDate"], i["serviceEndDate"]) for i in items] == [
        ("Platform fee", Decimal("10.10"), "2026-01-01", "2026-01-31"),
        ("API calls", Decimal("0.20"), "2026-01-01", "2026-01-01")]
    assert items[1]["unitPrice"] == Decimal("0.0001")
    assert client.get("/v1/invoices/INV00000001", headers=auth).get_json()["id"] == body["id"]
    acct_view = json.loads(client.get(f"/v1/accounts/{acct['accountId']}", headers=auth).data, parse_float=Decimal)
    assert acct_view["metrics"]["balance"] == Decimal("10.30")


def test_invoice_by_account_number_and_draft_default(client, auth):
    acct = create_account(client, auth)
    body = invoice_body(None, accountNumber=acct["accountNumber"], dueDate="2026-02-15")
    del body["accountId"]
    del body["status"]
    r = post_json(client, "/v1/invoices", body, auth)
    got = r.get_json()
    assert (got["success"], got["status"], got["dueDate"], got["accountId"]) == \
        (True, "Draft", "2026-02-15", acct["accountId"])


INVOICE_ITEM = {"amount": 1, "serviceStartDate": "2026-01-01", "chargeName": "c"}


def _inv(**changes):
    def build(account_id):
        body = {"accountId": account_id, "invoiceDate": "2026-01-31", "invoiceItems": [dict(INVOICE_ITEM)]}
        for key, value in changes.items():
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return body
    return build


def _item(**changes):
    item = {k: v for k, v in {**INVOICE_ITEM, **changes}.items() if v is not None}
    return _inv(invoiceItems=[item])


INVOICE_CASES = [
    ("missing invoiceDate", _inv(invoiceDate=None), 59210022, "'invoiceDate' may not be null"),
    ("bad invoiceDate", _inv(invoiceDate="01/31/2026"), 59210020, "'invoiceDate' must be a date in yyyy-mm-dd format"),
    ("no account", _inv(accountId=None), 59210022, "Either 'accountId' or 'accountNumber' is required"),
    ("unknown account", _inv(accountId="f" * 32), 59210040, f"The account ID {'f' * 32} is invalid."),
    ("bad status", _inv(status="Open"), 59210020, "'status' value should be one of: Draft, Posted"),
    ("no items", _inv(invoiceItems=[]), 59210020, "'invoiceItems' must hold between 1 and 1000 items"),
    ("too many items", _inv(invoiceItems=[dict(INVOICE_ITEM)] * 1001), 59210020,
     "'invoiceItems' must hold between 1 and 1000 items"),
    ("missing items", _inv(invoiceItems=None), 59210022, "'invoiceItems' may not be null"),
    ("dueDate before invoiceDate", _inv(dueDate="2026-01-30"), 59210030,
     "'dueDate' cannot be earlier than invoiceDate"),
    ("unknown key", _inv(memo="x"), 59210021, "Unknown field 'memo'"),
    ("missing amount", _item(amount=None), 59210022, "'invoiceItems[0].amount' may not be null"),
    ("boolean amount", _item(amount=True), 59210020, "'invoiceItems[0].amount' must be a number"),
    ("text amount", _item(amount="ten"), 59210020, "'invoiceItems[0].amount' must be a number"),
    ("missing serviceStartDate", _item(serviceStartDate=None), 59210022,
     "'invoiceItems[0].serviceStartDate' may not be null"),
    ("end before start", _item(serviceEndDate="2025-12-31"), 59210030,
     "'invoiceItems[0].serviceEndDate' cannot be earlier than serviceStartDate"),
    ("missing chargeName", _item(chargeName=None), 59210022,
     "'invoiceItems[0].chargeName' is required if productRatePlanChargeId is not specified"),
    ("long chargeName", _item(chargeName="c" * 131), 59210020,
     "'invoiceItems[0].chargeName' length must be at most 130 characters"),
    ("negative quantity", _item(quantity=-1), 59210020, "'invoiceItems[0].quantity' must be a non-negative number"),
    ("unknown item key", _item(colour="red"), 59210021, "Unknown field 'invoiceItems[0].colour'"),
    ("bad revRecTriggerCondition", _item(revRecTriggerCondition="Later"), 59210020,
     "'invoiceItems[0].revRecTriggerCondition' value should be one of: ContractEffectiveDate, "
     "ServiceActivationDate, CustomerAcceptanceDate"),
    ("bad taxMode", _item(taxMode="Both"), 59210020,
     "'invoiceItems[0].taxMode' value should be one of: TaxExclusive, TaxInclusive"),
    ("bad invoiceNumber", _inv(invoiceNumber="INV 1"), 59210020,
     "'invoiceNumber' must be at most 32 characters of A-Z, a-z, 0-9, - and _"),
]


@pytest.mark.parametrize("build, code, message", [c[1:] for c in INVOICE_CASES], ids=[c[0] for c in INVOICE_CASES])
def test_invoice_validation(client, auth, build, code, message):
    acct = create_account(client, auth)
    assert_zuora_error(post_json(client, "/v1/invoices", build(acct["accountId"]), auth),
                       [{"code": code, "message": message}])
    assert state(client)["invoices"] == []


def test_invoice_number_must_be_unique(client, auth):
    acct = create_account(client, auth)
    ok = post_json(client, "/v1/invoices", _inv(invoiceNumber="BILL-1")(acct["accountId"]), auth).get_json()
    assert ok["invoiceNumber"] == "BILL-1"
    assert_zuora_error(post_json(client, "/v1/invoices", _inv(invoiceNumber="BILL-1")(acct["accountId"]), auth),
                       [{"code": 59210030, "message": "The invoice number BILL-1 already exists; it must be unique "
                                                      "in the system"}])


def test_invoice_account_id_and_number_must_agree(client, auth):
    a = create_account(client, auth)
    create_account(client, auth, name="Other")
    assert_zuora_error(post_json(client, "/v1/invoices", _inv(accountNumber="A00000002")(a["accountId"]), auth),
                       [{"code": 59210030, "message": "'accountId' and 'accountNumber' refer to different accounts"}])


def discounted_body(account_id: str) -> dict:
    """Two items, each with one discount: 100.00 − 10.00 and 50.00 − 5.00."""
    body = invoice_body(account_id)
    body["invoiceItems"] = [
        {"amount": Decimal("100.00"), "serviceStartDate": "2026-01-01", "serviceEndDate": "2026-01-31",
         "chargeName": "Platform fee",
         "discountItems": [{"amount": Decimal("-10.00"), "chargeName": "Discount", "description": "10 %"}]},
        {"amount": Decimal("50.00"), "serviceStartDate": "2026-01-01", "chargeName": "Seats",
         "discountItems": [{"amount": Decimal("-5.00"), "chargeName": "Discount", "sku": "SKU-D"}]}]
    return body


def test_discount_items_reduce_the_invoice_and_read_back_as_items_of_their_own(client, auth):
    acct = create_account(client, auth)
    created = json.loads(post_json(client, "/v1/invoices", discounted_body(acct["accountId"]), auth).data,
                         parse_float=Decimal)
    assert created["success"] is True, created
    # The invoice's amount and balance include the discounts.
    assert (created["amount"], created["amountWithoutTax"], created["balance"]) == (Decimal("135.00"),) * 3
    items = json.loads(client.get(f"/v1/invoices/{created['id']}/items", headers=auth).data,
                       parse_float=Decimal)["invoiceItems"]
    # Each discount follows the item it reduces: processingType Discount, appliedToItemId naming it.
    assert [(i["chargeName"], i["chargeAmount"], i["processingType"]) for i in items] == [
        ("Platform fee", Decimal("100.00"), "Charge"), ("Discount", Decimal("-10.00"), "Discount"),
        ("Seats", Decimal("50.00"), "Charge"), ("Discount", Decimal("-5.00"), "Discount")]
    assert (items[1]["appliedToItemId"], items[3]["appliedToItemId"]) == (items[0]["id"], items[2]["id"])
    assert "appliedToItemId" not in items[0] and "discountItems" not in items[0]
    assert (items[1]["description"], items[3]["sku"]) == ("10 %", "SKU-D")
    assert (items[1]["serviceStartDate"], items[1]["serviceEndDate"]) == ("2026-01-01", "2026-01-31")
    assert sum(i["chargeAmount"] for i in items) == Decimal("135.00")
    # Object Query's expanded items list them the same way; the state keeps them as posted.
    rows = json.loads(client.get("/object-query/invoices?expand[]=invoiceItems", headers=auth).data,
                      parse_float=Decimal)["data"]
    expanded = rows[0]["invoiceItems"]
    assert [(i["chargeAmount"], i["processingType"], i.get("appliedToInvoiceItemId")) for i in expanded] == [
        (Decimal("100.00"), "Charge", None), (Decimal("-10.00"), "Discount", items[0]["id"]),
        (Decimal("50.00"), "Charge", None), (Decimal("-5.00"), "Discount", items[2]["id"])]
    [stored] = state(client)["invoices"]
    assert [[d["amount"] for d in i["discountItems"]] for i in stored["invoiceItems"]] == [[-10], [-5]]


def test_changing_a_discount_item_changes_the_invoice_total(client, auth):
    acct = create_account(client, auth)
    created = post_json(client, "/v1/invoices", discounted_body(acct["accountId"]), auth).get_json()
    items = client.get(f"/v1/invoices/{created['id']}/items", headers=auth).get_json()["invoiceItems"]
    changed = client.post(f"/_sandbox/invoice-items/{items[1]['id']}", json={"amount": "-9.00"})
    assert changed.status_code == 200
    got = json.loads(client.get(f"/v1/invoices/{created['id']}", headers=auth).data, parse_float=Decimal)
    assert (got["amount"], got["balance"]) == (Decimal("136.00"), Decimal("136.00"))


def _discount(**changes):
    discount = {k: v for k, v in {"amount": -1, "chargeName": "d", **changes}.items() if v is not None}
    return _item(amount=5, discountItems=[discount])


DISCOUNT_CASES = [
    ("positive amount", _discount(amount=1), 59210020,
     "'invoiceItems[0].discountItems[0].amount' must be a negative number"),
    ("zero amount", _discount(amount=0), 59210020,
     "'invoiceItems[0].discountItems[0].amount' must be a negative number"),
    ("missing amount", _discount(amount=None), 59210022, "'invoiceItems[0].discountItems[0].amount' may not be null"),
    ("missing chargeName", _discount(chargeName=None), 59210022,
     "'invoiceItems[0].discountItems[0].chargeName' is required if productRatePlanChargeId is not specified"),
    ("long chargeName", _discount(chargeName="d" * 131), 59210020,
     "'invoiceItems[0].discountItems[0].chargeName' length must be at most 130 characters"),
    ("unknown key", _discount(serviceStartDate="2026-01-01"), 59210021,
     "Unknown field 'invoiceItems[0].discountItems[0].serviceStartDate'"),
    ("catalog charge", _discount(productRatePlanChargeId="8a8a"), 59210040,
     "'invoiceItems[0].discountItems[0].productRatePlanChargeId' '8a8a' is invalid (the sandbox has no product "
     "catalog)"),
    ("bad revRecTriggerCondition", _discount(revRecTriggerCondition="Later"), 59210020,
     "'invoiceItems[0].discountItems[0].revRecTriggerCondition' value should be one of: ContractEffectiveDate, "
     "ServiceActivationDate, CustomerAcceptanceDate"),
    ("eleven discounts", _item(discountItems=[{"amount": -1, "chargeName": "d"}] * 11), 59210020,
     "'invoiceItems[0].discountItems' must be a list of at most 10 objects"),
    ("not a list", _item(discountItems={"amount": -1}), 59210020,
     "'invoiceItems[0].discountItems' must be a list of at most 10 objects"),
]


@pytest.mark.parametrize("build, code, message", [c[1:] for c in DISCOUNT_CASES], ids=[c[0] for c in DISCOUNT_CASES])
def test_discount_item_validation(client, auth, build, code, message):
    acct = create_account(client, auth)
    assert_zuora_error(post_json(client, "/v1/invoices", build(acct["accountId"]), auth),
                       [{"code": code, "message": message}])
    assert state(client)["invoices"] == []


def test_ten_discounts_on_one_item_are_accepted(client, auth):
    acct = create_account(client, auth)
    body = _item(amount=10, discountItems=[{"amount": Decimal("-0.5"), "chargeName": f"d{n}"} for n in range(10)])
    created = json.loads(post_json(client, "/v1/invoices", body(acct["accountId"]), auth).data, parse_float=Decimal)
    assert (created["success"], created["amount"]) == (True, Decimal("5.0"))


def test_a_tenant_that_refuses_negative_items_names_each_and_keeps_discounts(client, auth):
    acct = create_account(client, auth)
    assert client.get("/_sandbox/billing-rules").get_json() == {"negative_invoice_items": True}
    assert client.post("/_sandbox/billing-rules", json={"negative_invoice_items": False}).status_code == 200
    body = discounted_body(acct["accountId"])
    body["invoiceItems"].append({"amount": Decimal("-0.10"), "serviceStartDate": "2026-01-01",
                                 "chargeName": "Billing platform rounding"})
    assert_zuora_error(post_json(client, "/v1/invoices", body, auth), [
        {"code": 59210030, "message": "'invoiceItems[2].amount' is -0.10: this tenant's billing rules do not "
                                      "allow negative invoice items"}])
    body["invoiceItems"].pop()  # discount items are negative by definition, and still accepted
    assert post_json(client, "/v1/invoices", body, auth).get_json()["success"] is True
    client.post("/_sandbox/reset")
    assert client.get("/_sandbox/billing-rules").get_json() == {"negative_invoice_items": True}


@pytest.mark.parametrize("payload, detail", [
    ({}, "body must be a non-empty JSON object"),
    ({"negative_invoice_items": "no"}, "every rule is true or false"),
    ({"invoice_settlement": True}, "unknown rule(s): invoice_settlement"),
])
def test_billing_rules_validation(client, payload, detail):
    r = client.post("/_sandbox/billing-rules", json=payload)
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid_request", "detail": detail})


def test_get_unknown_invoice(client, auth):
    assert_zuora_error(client.get("/v1/invoices/INV404", headers=auth),
                       [{"code": 50000040, "message": "Cannot find entity by key: 'INV404'."}])


# -- usage: one record -------------------------------------------------------------------------------------

def usage_body(**overrides) -> dict:
    body = {"AccountNumber": "A00000001", "Quantity": Decimal("12.5"), "StartDateTime": "2026-01-01T00:00:00Z",
            "UOM": "Each", "SubscriptionNumber": "A-S00000001", "ChargeNumber": "C-00000001",
            "Description": "per unit 0.25"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def test_create_usage_record(client, auth):
    acct = create_account(client, auth)
    r = post_json(client, "/v1/object/usage", usage_body(), auth)
    assert r.status_code == 200
    body = r.get_json()
    assert body["Success"] is True and re.fullmatch(r"[0-9a-f]{32}", body["Id"])
    stored = json.loads(client.get("/_sandbox/state").data, parse_float=Decimal)["usage"]
    assert len(stored) == 1
    rec = stored[0]
    assert (rec["Id"], rec["AccountId"], rec["Quantity"], rec["UOM"], rec["SubscriptionNumber"],
            rec["ChargeNumber"], rec["Description"], rec["ImportId"]) == \
        (body["Id"], acct["accountId"], Decimal("12.5"), "Each", "A-S00000001", "C-00000001", "per unit 0.25", None)
    by_id = post_json(client, "/v1/object/usage", usage_body(AccountNumber=None, AccountId=acct["accountId"]), auth)
    assert by_id.get_json()["Success"] is True


@pytest.mark.parametrize("overrides, code, message", [
    ({"Quantity": None}, "MISSING_REQUIRED_VALUE", "Missing required value: Quantity"),
    ({"UOM": None}, "MISSING_REQUIRED_VALUE", "Missing required value: UOM"),
    ({"StartDateTime": None}, "MISSING_REQUIRED_VALUE", "Missing required value: StartDateTime"),
    ({"AccountNumber": None}, "MISSING_REQUIRED_VALUE", "Missing required value: AccountId or AccountNumber"),
    ({"Quantity": -1}, "INVALID_VALUE", "Quantity must be a number greater than or equal to 0."),
    ({"AccountNumber": "A99"}, "INVALID_VALUE", "The account number A99 is invalid."),
    ({"StartDateTime": "01/02/2026"}, "INVALID_VALUE",
     "StartDateTime must be a date-time, e.g. 2024-06-01T02:00:00.000+01:00."),
    ({"Description": "d" * 201}, "INVALID_VALUE", "Description must be a string of at most 200 characters"),
    ({"ChargeNumber": "C" * 51}, "INVALID_VALUE", "ChargeNumber must be a string of at most 50 characters"),
])
def test_usage_record_validation(client, auth, overrides, code, message):
    create_account(client, auth)
    r = post_json(client, "/v1/object/usage", usage_body(**overrides), auth)
    assert r.status_code == 400
    assert r.get_json() == {"Success": False, "Errors": [{"Code": code, "Message": message}]}
    assert state(client)["usage"] == []


def test_usage_record_unknown_fields_ignored_unless_rejected(client, auth):
    create_account(client, auth)
    assert post_json(client, "/v1/object/usage", usage_body(Colour="red"), auth).get_json()["Success"] is True
    r = post_json(client, "/v1/object/usage?rejectUnknownFields=true", usage_body(Colour="red"), auth)
    assert (r.status_code, r.get_json()) == (400, {"message": "Error - unrecognised fields"})
    assert len(state(client)["usage"]) == 1


# -- usage: file import ----------------------------------------------------------------------------------

HEADER = "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,PRODUCT_RATE_PLAN_CHARGE_ID,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\n"


def upload(client, auth, text: str, name: str = "usage.csv"):
    return client.post("/v1/usage", headers=auth, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(text.encode()), name)})


def poll_import(client, auth, path: str) -> list[dict]:
    seen = []
    for _ in range(5):
        body = client.get(path, headers=auth).get_json()
        seen.append(body)
        if body["importStatus"] in ("Completed", "Failed"):
            break
    return seen


def test_usage_import_completes_and_stores_records(client, auth):
    create_account(client, auth)
    create_account(client, auth, name="Two")
    text = HEADER + ("A00000001,Each,10,01/15/2026,01/31/2026,,A-S00000001,C-00000001,per unit 0.25\n"
                     "A00000002,Each,0.75,01/16/2026,,,,,\n")
    r = upload(client, auth, text)
    body = r.get_json()
    assert r.status_code == 200
    assert (body["success"], body["size"]) == (True, len(text.encode()))
    assert re.fullmatch(r"/v1/usage/[0-9a-f]{32}/status", body["checkImportStatus"])
    assert state(client)["usage"] == []  # nothing until the import has run
    statuses = poll_import(client, auth, body["checkImportStatus"])
    assert [s["importStatus"] for s in statuses] == ["Processing", "Completed"]
    assert statuses[-1] == {"success": True, "importStatus": "Completed", "message": None}
    usage = json.loads(client.get("/_sandbox/state").data, parse_float=Decimal)["usage"]
    import_id = body["checkImportStatus"].split("/")[3]
    assert [(u["AccountNumber"], u["Quantity"], u["StartDateTime"], u["EndDateTime"], u["SubscriptionNumber"],
             u["ImportId"]) for u in usage] == [
        ("A00000001", Decimal("10"), "2026-01-15T00:00:00", "2026-01-31T00:00:00", "A-S00000001", import_id),
        ("A00000002", Decimal("0.75"), "2026-01-16T00:00:00", None, None, import_id)]
    assert state(client)["imports"][0]["status"] == "Completed"


@pytest.mark.parametrize("rows, message", [
    ("A00000001,Each,10,01/15/2026,,,,,\nA00000001,Each,-1,01/15/2026,,,,,\n",
     "Line 3: QTY '-1' must be a number greater than or equal to 0."),
    ("A00000001,Each,10,2026-01-15,,,,,\n", "Line 2: STARTDATE '2026-01-15' must be a date in MM/DD/YYYY format."),
    ("A00000001,,10,01/15/2026,,,,,\n", "Line 2: UOM is required."),
    ("A00000009,Each,10,01/15/2026,,,,,\n", "Line 2: The account number A00000009 is invalid."),
    ("A00000001,Each,10,01/15/2026,,,,\n", "Line 2: expected 9 columns, found 8."),
])
def test_usage_import_is_atomic_and_fails_naming_the_line(client, auth, rows, message):
    create_account(client, auth)
    path = upload(client, auth, HEADER + rows).get_json()["checkImportStatus"]
    statuses = poll_import(client, auth, path)
    assert statuses[-1] == {"success": True, "importStatus": "Failed", "message": message}
    assert state(client)["usage"] == []


def test_usage_import_rejects_account_id_in_account_id_column(client, auth):
    acct = create_account(client, auth)
    text = HEADER + f"A00000001,Each,1,01/15/2026,,,,,\n{acct['accountId']},Each,1,01/15/2026,,,,,\n"
    statuses = poll_import(client, auth, upload(client, auth, text).get_json()["checkImportStatus"])
    assert statuses[-1]["message"] == (f"Line 3: The account number {acct['accountId']} is invalid "
                                       "(ACCOUNT_ID takes the account number, not the account ID).")
    assert state(client)["usage"] == []


def test_usage_import_requires_the_template_headings(client, auth):
    create_account(client, auth)
    text = "ACCOUNT_ID,UOM,QTY,STARTDATE\nA00000001,Each,1,01/15/2026\n"
    statuses = poll_import(client, auth, upload(client, auth, text).get_json()["checkImportStatus"])
    assert statuses[-1]["message"] == ("Missing required column heading(s): ENDDATE, PRODUCT_RATE_PLAN_CHARGE_ID, "
                                       "SUBSCRIPTION_ID, CHARGE_ID.")


def test_usage_upload_checks(client, auth):
    assert_zuora_error(client.post("/v1/usage", headers=auth, content_type="multipart/form-data", data={}),
                       [{"code": 53300022, "message": "'file' may not be null"}])
    assert_zuora_error(upload(client, auth, HEADER, name="u" * 47 + ".csv"),
                       [{"code": 53300020, "message": "The file name must not exceed 50 characters"}])
    assert_zuora_error(upload(client, auth, HEADER, name="usage.json"),
                       [{"code": 53300020, "message": "Only .csv usage files are supported by the sandbox"}])
    big = HEADER + "x" * (4 * 1024 * 1024)
    assert_zuora_error(upload(client, auth, big),
                       [{"code": 53300020, "message": "The file size must not exceed 4MB"}])
    assert state(client)["imports"] == []


def test_unknown_import_status(client, auth):
    assert_zuora_error(client.get("/v1/usage/abc/status", headers=auth),
                       [{"code": 50000040, "message": "Cannot find entity by key: 'abc'."}])


# -- idempotency --------------------------------------------------------------------------------------------

def test_idempotent_replay_returns_the_same_result_and_creates_nothing(client, auth):
    headers = {**auth, "Idempotency-Key": "acct-create-1"}
    first = client.post("/v1/accounts", json=valid_account(), headers=headers)
    again = client.post("/v1/accounts", json=valid_account(name="Different body"), headers=headers)
    assert (again.status_code, again.data) == (first.status_code, first.data)
    assert len(state(client)["accounts"]) == 1
    other = client.post("/v1/accounts", json=valid_account(), headers={**auth, "Idempotency-Key": "acct-create-2"})
    assert other.get_json()["accountNumber"] == "A00000002"


def test_idempotent_replay_of_a_business_failure(client, auth):
    headers = {**auth, "Idempotency-Key": "bad-1"}
    first = client.post("/v1/accounts", json=valid_account(name=""), headers=headers)
    assert first.get_json()["success"] is False
    again = client.post("/v1/accounts", json=valid_account(), headers=headers)
    assert again.data == first.data
    assert state(client)["accounts"] == []


def test_idempotency_key_on_another_path_is_422_and_overlong_key_400(client, auth):
    acct = create_account(client, auth)
    headers = {**auth, "Idempotency-Key": "shared"}
    client.post("/v1/invoices", json=_inv()(acct["accountId"]), headers=headers)
    r = client.post("/v1/accounts", json=valid_account(), headers=headers)
    assert_zuora_error(r, [{"code": 53100020, "message": "Idempotency-Key was already used with a different URL "
                                                        "or HTTP method"}], status=422)
    r = client.post("/v1/accounts", json=valid_account(), headers={**auth, "Idempotency-Key": "k" * 256})
    assert_zuora_error(r, [{"code": 53100020, "message": "Idempotency-Key must be 1 to 255 characters"}], status=400)
    assert len(state(client)["accounts"]) == 1


def test_idempotency_keys_expire_after_24_hours(client, auth, clock):
    headers = {**auth, "Idempotency-Key": "k1"}
    client.post("/v1/accounts", json=valid_account(), headers=headers)
    clock.advance(24 * 3600 - 10)
    headers = {"Authorization": f"Bearer {get_token(client)}", "Idempotency-Key": "k1"}
    assert client.post("/v1/accounts", json=valid_account(), headers=headers).get_json()["accountNumber"] == "A00000001"
    clock.advance(10)
    assert client.post("/v1/accounts", json=valid_account(), headers=headers).get_json()["accountNumber"] == "A00000002"


def test_idempotency_key_ignored_on_get_and_put(client, auth):
    created = create_account(client, auth)
    headers = {**auth, "Idempotency-Key": "g"}
    client.put(f"/v1/accounts/{created['accountId']}", json={"name": "One"}, headers=headers)
    client.put(f"/v1/accounts/{created['accountId']}", json={"name": "Two"}, headers=headers)
    assert client.get(f"/v1/accounts/{created['accountId']}", headers=headers).get_json()["basicInfo"]["name"] == "Two"
    assert all(r["idempotency_key"] is None for r in state(client)["requests"] if r["method"] != "POST")


def test_idempotency_key_in_flight_is_409_over_real_http(app, sb):
    with ServerThread(app) as server:
        token = requests.post(f"{server.url}/oauth/token", data={"client_id": CLIENT_ID,
                              "client_secret": CLIENT_SECRET, "grant_type": "client_credentials"},
                              timeout=10).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        raw = json.dumps(valid_account()).encode()
        # Send the headers and half the body: the server is now inside the endpoint, waiting for the rest.
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        head = (f"POST /v1/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth['Authorization']}\r\n"
                f"Idempotency-Key: slow-1\r\nContent-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
                "Connection: close\r\n\r\n").encode()
        sock.sendall(head + raw[:10])
        deadline = time.monotonic() + 5
        while sb.idempotency.get("slow-1", {}).get("state") != "in_flight":
            assert time.monotonic() < deadline, "first request never reached the endpoint"
            time.sleep(0.005)
        second = requests.post(f"{server.url}/v1/accounts", json=valid_account(),
                               headers={**auth, "Idempotency-Key": "slow-1"}, timeout=5)
        assert second.status_code == 409
        assert second.json()["success"] is False
        assert second.json()["reasons"] == [{"code": 53100070, "message": "A request with this Idempotency-Key is "
                                                                          "still in progress"}]
        sock.sendall(raw[10:])
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        sock.close()
        status_line, _, rest = reply.partition(b"\r\n")
        assert status_line.endswith(b"200 OK")
        first_body = rest.split(b"\r\n\r\n", 1)[1]
        third = requests.post(f"{server.url}/v1/accounts", json=valid_account(),
                              headers={**auth, "Idempotency-Key": "slow-1"}, timeout=5)
        assert (third.status_code, third.content) == (200, first_body)
    assert len(sb.accounts) == 1


# -- headers, request log, limits, faults ----------------------------------------------------------------

def test_request_and_track_ids_and_entity_log(client, auth):
    r1 = client.get("/v1/accounts/x", headers={**auth, "Zuora-Track-Id": "evt-42", "Zuora-Entity-Ids": "e-1"})
    r2 = client.get("/v1/accounts/x", headers=auth)
    assert r1.headers["Zuora-Track-Id"] == "evt-42"
    assert "Zuora-Track-Id" not in r2.headers
    ids = [r1.headers["Zuora-Request-Id"], r2.headers["Zuora-Request-Id"]]
    assert all(len(i) == 36 for i in ids) and ids[0] != ids[1]
    assert r1.headers["Concurrency-Limit-Type"] == "default"
    client.post("/v1/accounts", json=valid_account(), headers={**auth, "Idempotency-Key": "k9"})
    log = state(client)["requests"]
    assert [(e["method"], e["path"], e["status"], e["idempotency_key"], e["track_id"], e["entity_ids"])
            for e in log] == [
        ("POST", "/oauth/token", 200, None, None, None),
        ("GET", "/v1/accounts/x", 200, None, "evt-42", "e-1"),
        ("GET", "/v1/accounts/x", 200, None, None, None),
        ("POST", "/v1/accounts", 200, "k9", None, None)]
    assert log[1]["request_id"] == ids[0]


def test_invalid_track_id_is_refused(client, auth):
    r = client.get("/v1/accounts/x", headers={**auth, "Zuora-Track-Id": "evt:42"})
    assert_zuora_error(r, [{"code": 50000020, "message": "Zuora-Track-Id must be at most 64 US-ASCII characters "
                                                        "without : ; \" or '"}], status=400)


def test_rate_limit_429_with_retry_after_and_headers(clock):
    app = create_zuora_sandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, rate_limit=2, clock=clock)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {get_token(client)}"}  # token requests are not rate limited
    ok = client.get("/v1/accounts/x", headers=auth)
    assert (ok.headers["RateLimit-Limit"], ok.headers["RateLimit-Remaining"], ok.headers["RateLimit-Reset"]) == \
        ("2, 2;w=1", "1", "1")
    assert client.get("/v1/accounts/x", headers=auth).status_code == 200
    limited = client.get("/v1/accounts/x", headers=auth)
    assert limited.status_code == 429
    assert (limited.headers["Retry-After"], limited.headers["RateLimit-Remaining"]) == ("1", "0")
    assert limited.get_json()["reasons"] == [{"code": 50000070,
                                              "message": "Request exceeded limit: rate limit exceeded"}]
    clock.advance(1)
    assert client.get("/v1/accounts/x", headers=auth).status_code == 200


def test_concurrency_headers_on_v1_responses(client, auth):
    r = client.post("/v1/accounts", json=valid_account(), headers=auth)
    assert (r.headers["Concurrency-Limit-Type"], r.headers["Concurrency-Limit-Limit"]) == ("high-volume", "40")


def test_error_rate_one_fails_every_api_call(client, auth):
    assert client.post("/_sandbox/faults", json={"error_rate": 1.0}).status_code == 200
    for _ in range(3):
        r = client.post("/v1/accounts", json=valid_account(), headers=auth)
        assert (r.status_code, r.get_json()) == (500, {"reasons": [{"code": "SystemError",
                                                                     "message": "injected zuora fault"}]})
    client.post("/_sandbox/faults", json={"error_status": 503})
    assert client.get("/v1/accounts/x", headers=auth).status_code == 503
    assert get_token(client)  # the token endpoint is exempt, as Zuora's is from limits
    client.delete("/_sandbox/faults")
    assert client.post("/v1/accounts", json=valid_account(), headers=auth).get_json()["success"] is True
    assert len(state(client)["accounts"]) == 1


def test_injected_fault_is_not_stored_under_the_idempotency_key(client, auth):
    headers = {**auth, "Idempotency-Key": "retry-me"}
    client.post("/_sandbox/faults", json={"error_rate": 1.0})
    assert client.post("/v1/accounts", json=valid_account(), headers=headers).status_code == 500
    client.delete("/_sandbox/faults")
    assert client.post("/v1/accounts", json=valid_account(), headers=headers).get_json()["success"] is True


def test_latency_fault_over_real_http(app, sb):
    with ServerThread(app) as server:
        requests.post(f"{server.url}/_sandbox/faults", json={"latency_ms": 150}, timeout=10).raise_for_status()
        start = time.monotonic()
        r = requests.get(f"{server.url}/v1/accounts/x", timeout=10)
        assert r.status_code == 401
        assert time.monotonic() - start >= 0.15
        requests.get(f"{server.url}/_sandbox/state", timeout=10).raise_for_status()
    assert sb.faults.snapshot()["counters"]["requests"] == 1  # /_sandbox is exempt from faults


def test_fail_next_fails_the_next_n_writes_only(client, auth):
    created = create_account(client, auth)
    r = client.post("/_sandbox/fail-next", json={"count": 2, "code": 53100050, "message": "Operation locked"})
    assert r.get_json() == {"fail_next": {"count": 2, "code": 53100050, "message": "Operation locked"}}
    assert client.get(f"/v1/accounts/{created['accountId']}", headers=auth).get_json()["success"] is True
    assert_zuora_error(client.post("/v1/accounts", json=valid_account(), headers=auth),
                       [{"code": 53100050, "message": "Operation locked"}])
    assert_zuora_error(client.put(f"/v1/accounts/{created['accountId']}", json={"name": "Z"}, headers=auth),
                       [{"code": 53100050, "message": "Operation locked"}])
    assert create_account(client, auth)["accountNumber"] == "A00000002"
    accounts = state(client)["accounts"]
    assert [a["basicInfo"]["name"] for a in accounts] == ["Amy Lawrence", "Amy Lawrence"]


@pytest.mark.parametrize("payload", [{"count": -1}, {"count": 1, "code": 12}, {"count": 1, "message": ""}, []])
def test_fail_next_rejects_bad_input(client, payload):
    assert client.post("/_sandbox/fail-next", json=payload).status_code == 400


def test_unknown_route_and_method(client, auth):
    r = client.get("/v1/nothing-here", headers=auth)
    assert (r.status_code, r.get_json()) == (404, {"message": "no Route matched with those values"})
    r = client.delete("/v1/accounts", headers=auth)
    assert r.status_code == 405 and r.is_json


def test_reset_clears_data_but_keeps_credentials_and_tokens(client, auth):
    create_account(client, auth)
    assert client.post("/_sandbox/reset").get_json() == {"reset": True}
    s = state(client)
    assert (s["accounts"], s["invoices"], s["usage"], s["imports"], s["callouts"], s["requests"]) == \
        ([], [], [], [], [], [])
    assert create_account(client, auth)["accountNumber"] == "A00000001"


# -- callouts --------------------------------------------------------------------------------------------------

class Receiver:
    """A callout receiver: answers each request from a script and records what arrived."""

    def __init__(self, script: list[tuple[int, dict]] | None = None, *, basic: tuple[str, str] | None = None):
        self.script = list(script or [])
        self.basic = basic
        self.seen: list[dict] = []
        self.lock = threading.Lock()
        app = flask.Flask("receiver")

        @app.post("/callout")
        def callout():
            req = flask.request
            with self.lock:
                self.seen.append({"headers": dict(req.headers), "body": req.get_data()})
                if self.basic is not None:
                    expected = "Basic " + base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
                    if req.headers.get("Authorization") != expected:
                        return "", 401, {"WWW-Authenticate": 'Basic realm="zuora-callouts"'}
                status, headers = self.script.pop(0) if self.script else (200, {})
            return {"ok": status == 200}, status, headers

        self.server = ServerThread(app)

    def __enter__(self) -> Receiver:
        self.server.start()
        self.url = f"{self.server.url}/callout"
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()


def configure(client, **settings) -> dict:
    r = client.post("/_sandbox/config", json=settings)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def deliver(sb) -> None:
    assert sb.wait_for_callouts(timeout=10), "callouts still pending"


def test_callout_challenge_then_basic_credentials(client, auth, sb):
    with Receiver(basic=("zuora", "pw")) as rx:
        configure(client, callout_url=rx.url, callout_username="zuora", callout_password="pw")
        created = create_account(client, auth)
        deliver(sb)
    first, second = rx.seen
    assert "Authorization" not in first["headers"]
    assert second["headers"]["Authorization"] == "Basic " + base64.b64encode(b"zuora:pw").decode()
    assert first["body"] == second["body"] == json.dumps({"AccountId": created["accountId"]},
                                                         separators=(",", ":")).encode()
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["headers"]["Zuora-Notification-Id"] == second["headers"]["Zuora-Notification-Id"]
    assert first["headers"]["Zuora-Request-Id"] != second["headers"]["Zuora-Request-Id"]
    log = state(client)["callouts"]
    assert [(e["status"], e["authorization"], e["outcome"]) for e in log] == [(401, None, "challenged"),
                                                                                (200, "basic", "delivered")]
    assert "pw" not in json.dumps(log) and "pw" not in json.dumps(client.get("/_sandbox/config").get_json())


def test_preemptive_callout_sends_credentials_at_once(client, auth, sb):
    with Receiver(basic=("zuora", "pw")) as rx:
        configure(client, callout_url=rx.url, callout_username="zuora", callout_password="pw",
                  callout_preemptive=True)
        create_account(client, auth)
        deliver(sb)
    assert len(rx.seen) == 1
    assert rx.seen[0]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"zuora:pw").decode()


@pytest.mark.parametrize("algorithm, fmt, header", [("SHA-256", "BASE64", "X-Zuora-Signature"),
                                                    ("SHA-512", "HEX", "X-Callout-Hmac")])
def test_callout_hmac_header_verifies(client, auth, sb, algorithm, fmt, header):
    with Receiver() as rx:
        configure(client, callout_url=rx.url, callout_hmac_secret="hmac-key", callout_hmac_algorithm=algorithm,
                  callout_hmac_format=fmt, callout_hmac_header=header)
        create_account(client, auth)
        deliver(sb)
    (got,) = rx.seen
    digest = hmac.new(b"hmac-key", got["body"], algorithm.replace("-", "").lower()).digest()
    expected = base64.b64encode(digest).decode() if fmt == "BASE64" else digest.hex()
    assert got["headers"][header] == expected


def test_callout_retries_on_500_then_succeeds(client, auth, sb):
    with Receiver([(500, {}), (200, {})]) as rx:
        configure(client, callout_url=rx.url)
        create_account(client, auth)
        deliver(sb)
    assert len(rx.seen) == 2
    a, b = (s["headers"] for s in rx.seen)
    assert a["Zuora-Notification-Id"] == b["Zuora-Notification-Id"]
    assert a["Zuora-Request-Id"] != b["Zuora-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", a["Zuora-Request-Id"])
    assert [(e["attempt"], e["status"], e["outcome"]) for e in state(client)["callouts"]] == \
        [(1, 500, "retry"), (2, 200, "delivered")]


@pytest.mark.parametrize("status", [400, 404, 201, 302])
def test_callout_not_retried_on_non_retryable_status(client, auth, sb, status):
    with Receiver([(status, {"Location": "/elsewhere"} if status == 302 else {})]) as rx:
        configure(client, callout_url=rx.url)
        create_account(client, auth)
        deliver(sb)
    assert len(rx.seen) == 1
    assert [(e["status"], e["outcome"]) for e in state(client)["callouts"]] == [(status, "failed")]


@pytest.mark.parametrize("status", [503, 429, 408, 403])
def test_callout_gives_up_after_the_configured_attempts(client, auth, sb, status):
    with Receiver([(status, {})] * 5) as rx:
        configure(client, callout_url=rx.url, callout_attempts=3)
        create_account(client, auth)
        deliver(sb)
    assert len(rx.seen) == 3
    assert [e["outcome"] for e in state(client)["callouts"]] == ["retry", "retry", "failed"]
    assert len({s["headers"]["Zuora-Notification-Id"] for s in rx.seen}) == 1


def test_callout_401_after_credentials_is_final(client, auth, sb):
    with Receiver(basic=("zuora", "right")) as rx:
        configure(client, callout_url=rx.url, callout_username="zuora", callout_password="wrong")
        create_account(client, auth)
        deliver(sb)
    assert len(rx.seen) == 2
    assert [(e["status"], e["outcome"]) for e in state(client)["callouts"]] == [(401, "challenged"), (401, "failed")]


def test_callout_connection_errors_are_retried(client, auth, sb):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the callout: connection refused
    configure(client, callout_url=f"http://127.0.0.1:{port}/callout", callout_attempts=2)
    create_account(client, auth)
    deliver(sb)
    log = state(client)["callouts"]
    assert [(e["status"], e["error"], e["outcome"]) for e in log] == [(None, "ConnectionError", "retry"),
                                                                      (None, "ConnectionError", "failed")]


def test_no_callout_without_url_and_none_for_replayed_create(client, auth, sb):
    create_account(client, auth)
    deliver(sb)
    assert state(client)["callouts"] == []
    with Receiver() as rx:
        configure(client, callout_url=rx.url)
        headers = {**auth, "Idempotency-Key": "once"}
        client.post("/v1/accounts", json=valid_account(), headers=headers)
        client.post("/v1/accounts", json=valid_account(), headers=headers)
        client.put("/v1/accounts/A00000001", json={"name": "no callout for updates"}, headers=auth)
        deliver(sb)
    assert len(rx.seen) == 1


def test_manual_resend(client, auth, sb):
    created = create_account(client, auth)
    r = client.post("/_sandbox/callouts", json={"AccountId": created["accountId"]})
    assert (r.status_code, r.get_json()["error"]) == (409, "no_callout_url")
    with Receiver() as rx:
        configure(client, callout_url=rx.url)
        r = client.post("/_sandbox/callouts", json={"AccountId": created["accountNumber"]})
        assert r.status_code == 200 and r.get_json()["queued"] is True
        deliver(sb)
    assert json.loads(rx.seen[0]["body"]) == {"AccountId": created["accountId"]}
    assert rx.seen[0]["headers"]["Zuora-Notification-Id"] == r.get_json()["notification_id"]
    assert state(client)["callouts"][0]["manual"] is True
    assert client.post("/_sandbox/callouts", json={"AccountId": "nope"}).status_code == 404
    assert client.post("/_sandbox/callouts", json={}).status_code == 400


@pytest.mark.parametrize("settings, detail", [
    ({"callout_url": "ftp://x"}, "callout_url must be an http(s) URL of at most 1000 characters"),
    ({"callout_hmac_algorithm": "SHA-3"}, "callout_hmac_algorithm must be one of MD5, SHA-1, SHA-224, SHA-256, "
                                          "SHA-384, SHA-512"),
    ({"callout_hmac_format": "RAW"}, "callout_hmac_format must be BASE64 or HEX"),
    ({"callout_attempts": 6}, "callout_attempts must be an integer 1..5 (Zuora's maximum)"),
    ({"callout_preemptive": "yes"}, "callout_preemptive must be true or false"),
    ({"callout_colour": "red"}, "unknown setting(s): callout_colour"),
])
def test_config_validation(client, settings, detail):
    r = client.post("/_sandbox/config", json=settings)
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid_config", "detail": detail})


def test_state_endpoint_shape(client, auth):
    create_account(client, auth)
    s = state(client)
    assert set(s) == {"accounts", "invoices", "credit_memos", "usage", "imports", "callouts", "tokens_issued",
                      "requests"}
    assert s["accounts"][0]["basicInfo"]["accountNumber"] == "A00000001"
    assert s["tokens_issued"] == 1


# -- retries that really retry: stored failures, invoice custom fields, Object Query, lost responses ------------

def test_a_stored_failure_is_replayed_for_24_hours_then_the_key_runs_again(client, auth, clock):
    headers = {**auth, "Idempotency-Key": "eur-1"}
    first = client.post("/v1/accounts", json=valid_account(currency="EURO"), headers=headers)
    assert first.get_json()["success"] is False
    clock.advance(24 * 3600 - 10)
    headers = {"Authorization": f"Bearer {get_token(client)}", "Idempotency-Key": "eur-1"}
    fixed = client.post("/v1/accounts", json=valid_account(), headers=headers)
    assert fixed.data == first.data and state(client)["accounts"] == []  # same processId: nothing ran
    clock.advance(10)
    assert client.post("/v1/accounts", json=valid_account(), headers=headers).get_json()["success"] is True
    assert len(state(client)["accounts"]) == 1


def test_invoice_custom_fields_are_stored_returned_and_queryable(client, auth):
    acct = create_account(client, auth)
    created = client.post("/v1/invoices", json={**_inv()(acct["accountId"]), "BillingInvoiceId__c": "inv_1"},
                          headers=auth).get_json()
    assert created["success"] is True and created["BillingInvoiceId__c"] == "inv_1"
    client.post("/v1/invoices", json=_inv()(acct["accountId"]), headers=auth)
    got = client.get(f"/v1/invoices/{created['id']}", headers=auth).get_json()
    assert got["BillingInvoiceId__c"] == "inv_1"
    found = client.get("/object-query/invoices?filter[]=BillingInvoiceId__c.EQ:inv_1", headers=auth).get_json()
    assert [(r["id"], r["invoiceNumber"], r["BillingInvoiceId__c"]) for r in found["data"]] == [
        (created["id"], created["invoiceNumber"], "inv_1")]
    assert client.get("/object-query/invoices?filter[]=billinginvoiceid__c.EQ:nope",
                      headers=auth).get_json() == {"data": []}


@pytest.mark.parametrize("field,value,message", [
    ("Other__c", "x", "Unknown field 'Other__c': no such custom field on Invoice"),
    ("BillingInvoiceId__c", 5, "'BillingInvoiceId__c' must be a string of at most 255 characters"),
])
def test_invoice_custom_field_rules(client, auth, field, value, message):
    acct = create_account(client, auth)
    r = client.post("/v1/invoices", json={**_inv()(acct["accountId"]), field: value}, headers=auth)
    assert r.get_json()["success"] is False and r.get_json()["reasons"][0]["message"] == message
    assert state(client)["invoices"] == []


def test_object_query_on_usages_by_account_and_created_date(client, auth, clock):
    acct = create_account(client, auth)
    for quantity in (1, 2):
        r = client.post("/v1/object/usage", headers=auth, json={
            "AccountId": acct["accountId"], "Quantity": quantity, "StartDateTime": "2026-01-01T00:00:00Z",
            "UOM": "Each", "Description": f"q{quantity}"})
        assert r.get_json()["Success"] is True
        clock.advance(1200)
    query = f"/object-query/usages?filter[]=accountId.EQ:{acct['accountId']}"
    assert [u["description"] for u in client.get(query, headers=auth).get_json()["data"]] == ["q1", "q2"]
    later = client.get(query + "&filter[]=createdDate.GE:2026-01-01T00:15:00Z", headers=auth).get_json()
    assert [u["description"] for u in later["data"]] == ["q2"]
    r = client.get(query + "&filter[]=createdDate.GE:yesterday", headers=auth)
    assert r.status_code == 400 and r.get_json()["code"] == 50000027


def test_a_lost_answer_still_took_effect_and_is_stored_under_its_key(client, auth):
    armed = client.post("/_sandbox/lose-next", json={"path": "/v1/accounts", "count": 2, "mode": "error",
                                                      "status": 503})
    assert armed.get_json()["lose_next"]["/v1/accounts"]["count"] == 2
    headers = {**auth, "Idempotency-Key": "lost-1"}
    lost = client.post("/v1/accounts", json=valid_account(), headers=headers)
    assert lost.status_code == 503 and lost.get_json() == {
        "reasons": [{"code": "SystemError", "message": "internal server error"}]}
    assert len(state(client)["accounts"]) == 1  # it happened
    failure = client.post("/v1/accounts", json=valid_account(), headers={**auth, "Idempotency-Key": "lost-2"})
    assert failure.status_code == 503 and len(state(client)["accounts"]) == 2  # the second of two armed
    replay = client.post("/v1/accounts", json=valid_account(), headers=headers)
    assert replay.get_json()["success"] is True and replay.get_json()["accountNumber"] == "A00000001"
    assert client.post("/v1/accounts", json=valid_account(), headers=auth).status_code == 200  # disarmed


def test_a_lost_answer_as_success_false_is_a_business_reason(client, auth):
    client.post("/_sandbox/lose-next", json={"path": "/v1/accounts", "mode": "failure", "message": "Late refusal"})
    r = client.post("/v1/accounts", json=valid_account(), headers={**auth, "Idempotency-Key": "lost-f"})
    assert_zuora_error(r, [{"code": 53100030, "message": "Late refusal"}])
    assert len(state(client)["accounts"]) == 1


def test_a_lost_upload_is_imported_anyway(client, auth):
    acct = create_account(client, auth)
    client.post("/_sandbox/lose-next", json={"path": "/v1/usage", "mode": "failure"})
    csv_body = (b"ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,PRODUCT_RATE_PLAN_CHARGE_ID,SUBSCRIPTION_ID,CHARGE_ID\r\n"
                + f"{acct['accountNumber']},Each,3,01/01/2026,01/31/2026,,S-1,C-1\r\n".encode())
    r = client.post("/v1/usage", headers=auth, data={"file": (io.BytesIO(csv_body), "u.csv", "text/csv")},
                    content_type="multipart/form-data")
    assert r.get_json()["success"] is False
    assert [u["Quantity"] for u in state(client)["usage"]] == [3]


@pytest.mark.parametrize("body,detail", [
    ([], "body must be a JSON object"),
    ({"count": 1}, "path must be a /v1/ path such as /v1/invoices"),
    ({"path": "/v1/invoices", "mode": "explode"}, "mode must be one of error, timeout, failure"),
    ({"path": "/v1/invoices", "status": 418}, "status must be 500, 502, 503 or 504"),
    ({"path": "/v1/invoices", "count": -1}, "count must be an integer 0..10000"),
    ({"path": "/v1/invoices", "hold_seconds": "long"}, "hold_seconds must be a number 0..600"),
    ({"path": "/v1/invoices", "colour": "red"}, "unknown setting(s): colour"),
])
def test_lose_next_rejects_bad_settings(client, body, detail):
    r = client.post("/_sandbox/lose-next", json=body)
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid_request", "detail": detail})
