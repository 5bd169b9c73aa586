"""The billing sandbox must be as strict as Togai: real limits, real error shape, exact money,
signed events that verify (and stop verifying when tampered), retries with a stable webhook-id."""
from __future__ import annotations

import base64
import json
import socket
import threading
from collections import deque
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import flask
import pytest
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from integration_sandbox.billing import ApiError, create_billing_sandbox
from integration_sandbox.billing.invoices import json_dumps, json_loads
from integration_sandbox.server import ServerThread
from tests.validation_errors import assert_message

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
SECRET_2 = "whsec_" + base64.b64encode(b"r" * 32).decode()
FIXED_NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
FIXTURES = Path(__file__).parent / "fixtures" / "togai"

CUSTOMER = {"id": "C1", "name": "Acme Corp", "primaryEmail": "billing@acme.example",
            "address": {"line1": "1 Main St", "city": "Springfield", "state": "IL",
                        "postalCode": "62701", "country": "US", "phoneNumber": "+1 555 0100"}}


def customer(**overrides) -> dict:
    return {**CUSTOMER, **overrides}


def setting(i: int = 0, **overrides) -> dict:
    return {"id": f"s{i}", "value": "v", "namespace": "zuora", "name": f"k{i}", "dataType": "STRING",
            **overrides}


# -- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture
def app():
    """No webhook URL (events are recorded as skipped) and a fixed clock: fast, in-process."""
    application = create_billing_sandbox(api_token=TOKEN, webhook_secret=SECRET, clock=lambda: FIXED_NOW)
    yield application
    application.extensions["billing_sandbox"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def state_of(client) -> dict:
    return json_loads(client.get("/_sandbox/state").get_data())


def assert_refused(response, status: int, expected: set[str] | str) -> None:
    """Togai's error shape, ``{"message": ...}``; ``expected`` is the set of field paths the message names
    (marshmallow's wording: only the fields count) or the whole message (the sandbox's own wording)."""
    assert (response.status_code, list(response.get_json())) == (status, ["message"]), response.get_json()
    assert_message(response.get_json()["message"], expected)


class Receiver:
    """A tiny webhook receiver: records raw body and headers, answers queued statuses (else 200)."""

    def __init__(self):
        self.app = flask.Flask("receiver")
        self.received: list[tuple[dict, bytes]] = []
        self.statuses: deque[int] = deque()
        self.gate = threading.Event()  # a hook call waits for it (up to 5 s); open unless a test closes it
        self.gate.set()
        self._lock = threading.Lock()

        @self.app.post("/hook")
        def hook():
            self.gate.wait(timeout=5)
            with self._lock:
                self.received.append((dict(flask.request.headers), flask.request.get_data()))
                status = self.statuses.popleft() if self.statuses else 200
            return "", status


    def reset(self) -> None:
        self.gate.set()
        with self._lock:
            self.received.clear()
            self.statuses.clear()


class Live:
    def __init__(self, url: str, app: flask.Flask, receiver: Receiver):
        self.url, self.app, self.receiver = url, app, receiver
        self.state = app.extensions["billing_sandbox"]

    def post(self, path: str, body=None, **kw):
        return requests.post(self.url + path, json=body, timeout=5, **kw)

    def events(self) -> list[dict]:
        return requests.get(self.url + "/_sandbox/state", timeout=5).json()["events"]

    def settle(self) -> None:
        assert self.state.wait_for_deliveries(timeout=10), "deliveries did not finish in time"


@pytest.fixture(scope="module")
def _servers():
    """One receiver and one sandbox on real HTTP for the module (stopping a server costs ~0.5 s)."""
    receiver = Receiver()
    application = create_billing_sandbox(api_token=TOKEN, webhook_secret=SECRET,
                                         webhook_retry_schedule=(0.01, 0.02))
    with ServerThread(receiver.app) as receiver_server, ServerThread(application) as server:
        receiver.url = receiver_server.url + "/hook"
        yield Live(server.url, application, receiver)
    application.extensions["billing_sandbox"].close()


@pytest.fixture
def live(_servers):
    """The shared live sandbox, reset to a clean state and its original configuration."""
    _servers.settle()
    _servers.state.reset()
    _servers.state.configure(webhook_url=_servers.receiver.url, webhook_secret=SECRET, extra_webhook_secrets=[],
                             webhook_retry_schedule=[0.01, 0.02], emit_api_events=True)
    _servers.receiver.reset()
    return _servers


# -- construction and auth -----------------------------------------------------------------------------

def test_generates_token_and_standard_webhooks_secret_and_hides_them_from_repr():
    application = create_billing_sandbox()
    state = application.extensions["billing_sandbox"]
    assert len(state.api_token) >= 32
    assert state.webhook_secret.startswith("whsec_")
    Webhook(state.webhook_secret)  # a usable Standard Webhooks secret
    assert state.api_token not in repr(state) and state.webhook_secret not in repr(state)
    with pytest.raises(ApiError) as refused:
        state.configure(webhook_url="ftp://example.com/hook", emit_api_events=False)
    assert refused.value.message == "webhook_url: Must be an http(s) URL."
    assert state.config_view()["emit_api_events"] is True  # all or nothing


@pytest.mark.parametrize("kwargs", [{"webhook_url": "ftp://example.com/hook"},
                                    {"webhook_secret": "not-a-secret"},
                                    {"webhook_retry_schedule": (-1,)}])
def test_rejects_bad_construction_arguments(kwargs):
    with pytest.raises(ValueError):  # noqa: PT011 - three arguments, three messages: the refusal is the contract
        create_billing_sandbox(**kwargs)


@pytest.mark.parametrize("headers, message", [
    ({}, "Missing bearer token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "Missing bearer token"),
    ({"Authorization": "Bearer"}, "Missing bearer token"),
    ({"Authorization": "Bearer wrong-token"}, "Invalid bearer token"),
])
def test_every_api_path_needs_the_bearer_token(client, headers, message):
    for method, path in (("get", "/customers/C1"), ("post", "/customers"), ("get", "/settings"),
                         ("get", "/invoices/x"), ("patch", "/accounts/C1"), ("get", "/nowhere")):
        response = getattr(client, method)(path, headers=headers)
        assert (response.status_code, response.get_json()) == (401, {"message": message}), path


def test_bearer_scheme_is_case_insensitive_and_sandbox_paths_need_no_auth(client):
    assert client.get("/customers/C1", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 404
    assert client.get("/_sandbox/state").status_code == 200


def http_error_shape(response, status: int) -> None:
    """Togai's error shape; the words are werkzeug's reason phrase (``exc.name``), so only their presence counts."""
    body = response.get_json()
    assert (response.status_code, list(body)) == (status, ["message"]), body
    assert isinstance(body["message"], str) and body["message"].strip(), body


def test_unknown_route_and_method_answer_in_the_error_shape(client):
    http_error_shape(client.get("/nowhere", headers=AUTH), 404)
    http_error_shape(client.delete("/customers/C1", headers=AUTH), 405)


# -- request bodies ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, status, message", [
    ({"data": "id=C1", "content_type": "application/x-www-form-urlencoded"}, 415,
     "Content-Type must be application/json"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "Malformed JSON body"),
    ({"data": '{"id": NaN}', "content_type": "application/json"}, 400, "Malformed JSON body"),
    ({"data": "[1, 2]", "content_type": "application/json"}, 400, "Request body must be a JSON object"),
    ({"data": "[" * 100_000, "content_type": "application/json"}, 400, "Malformed JSON body"),
    ({"data": "x" * (1024 * 1024 + 1), "content_type": "application/json"}, 413, None),  # werkzeug's words
])
def test_hostile_bodies_get_json_errors_not_500(client, kwargs, status, message):
    response = client.post("/customers", headers=AUTH, **kwargs)
    if message is None:
        http_error_shape(response, status)
    else:
        assert (response.status_code, response.get_json()) == (status, {"message": message})


# -- customers -----------------------------------------------------------------------------------------

def test_create_customer_answers_customer_with_auto_created_account(client):
    response = client.post("/customers", json=customer(), headers=AUTH)
    assert response.status_code == 201
    body = response.get_json()
    assert body["togaiCustomerId"].startswith("cus.")
    assert {k: v for k, v in body.items() if k not in ("togaiCustomerId", "account")} == {
        "id": "C1", "name": "Acme Corp", "primaryEmail": "billing@acme.example",
        "billingAddress": "1 Main St, Springfield, IL, 62701, US", "address": CUSTOMER["address"]}
    # CreateCustomerResponse (additionalProperties: false) has no status or timestamps; GET has them.
    account = body["account"]
    assert account["togaiAccountId"].startswith("acc.")
    assert {k: v for k, v in account.items() if k != "togaiAccountId"} == {
        "id": "C1", "togaiCustomerId": body["togaiCustomerId"], "name": "Acme Corp", "customerId": "C1",
        "invoiceCurrency": "USD", "address": CUSTOMER["address"], "primaryEmail": "billing@acme.example",
        "status": "ACTIVE"}
    assert client.get("/accounts/C1", headers=AUTH).get_json() == account
    fetched = client.get("/customers/C1", headers=AUTH).get_json()
    assert fetched == {**{k: v for k, v in body.items() if k != "account"},
                       "status": "ACTIVE", "createdAt": "2024-05-01T12:00:00.000Z",
                       "updatedAt": "2024-05-01T12:00:00.000Z"}


def test_create_customer_with_explicit_account_and_inline_settings(client):
    payload = customer(settings=[setting(1, value="ZA-1")],
                       account={"id": "A1", "name": "Acme EU", "invoiceCurrency": "EUR", "netTermDays": 30,
                                "tags": ["Gold", "gold"], "settings": [setting(2, value="42", dataType="NUMERIC")]})
    body = client.post("/customers", json=payload, headers=AUTH).get_json()
    assert body["settings"] == [setting(1, value="ZA-1")]
    assert body["account"]["invoiceCurrency"] == "EUR" and body["account"]["tags"] == ["gold"]
    assert body["account"]["settings"] == [setting(2, value="42", dataType="NUMERIC")]
    assert client.get("/accounts/C1", headers=AUTH).status_code == 404  # no auto account when one is given
    listed = client.get("/settings?entity_type=CUSTOMER&entity_id=C1", headers=AUTH).get_json()["data"]
    assert listed == [{**setting(1, value="ZA-1"), "entityType": "CUSTOMER", "entityId": "C1"}]


@pytest.mark.parametrize("payload, message", [
    (customer(id="x" * 51), {"id"}),  # a set: marshmallow's words, only the fields count
    (customer(id=" "), "id: Must not be blank."),
    (customer(name="ab"), {"name"}),
    (customer(name="n" * 256), {"name"}),
    (customer(name=123), {"name"}),
    (customer(name=None), {"name"}),
    (customer(primaryEmail="not-an-email"), {"primaryEmail"}),
    (customer(primaryEmail="a" * 310 + "@example.com"), {"primaryEmail"}),
    ({k: v for k, v in CUSTOMER.items() if k != "address"}, {"address"}),
    (customer(address={"country": "USA"}), "address.country: Not a valid ISO-3166-1 alpha-2 country code."),
    (customer(address={"country": "us"}), "address.country: Not a valid ISO-3166-1 alpha-2 country code."),
    (customer(address={"country": "XX"}), "address.country: Not a valid ISO-3166-1 alpha-2 country code."),
    (customer(address={"street": "x"}), {"address.street"}),
    (customer(billingAddress="1 Main St"), {"billingAddress"}),
    (customer(settings=[setting(i) for i in range(11)]), {"settings"}),
    (customer(settings=[setting(dataType="BOOL")]), {"settings[0].dataType"}),
    (customer(settings=[setting(value="abc", dataType="NUMERIC")]),
     "settings[0].value: Not a valid NUMERIC value."),
    (customer(settings=[setting(value="{", dataType="JSON")]), "settings[0].value: Not a valid JSON value."),
    (customer(settings=[{"id": "s", "value": "v", "namespace": "n", "name": "k"}]), {"settings[0].dataType"}),
    (customer(account={"id": "A1", "name": "Acc", "invoiceCurrency": "XYZ"}),
     "account.invoiceCurrency: Not a valid ISO-4217 currency code."),
    (customer(account={"id": "A1", "name": "Acc", "invoiceCurrency": "usd"}),
     "account.invoiceCurrency: Not a valid ISO-4217 currency code."),
    (customer(account={"id": "a" * 51, "name": "Acc"}), {"account.id"}),
    (customer(account={"id": "A1", "name": "Ac"}), {"account.name"}),
    (customer(account={"id": "A1", "name": "Acc", "customerId": "C1"}), {"account.customerId"}),
    (customer(account={"id": "A1", "name": "Acc", "netTermDays": 1.5}), {"account.netTermDays"}),
])
def test_create_customer_validation_rejects_with_togai_error_shape(client, payload, message):
    response = client.post("/customers", json=payload, headers=AUTH)
    assert_refused(response, 400, message)
    assert state_of(client)["customers"] == []


def test_duplicate_customer_or_account_id_is_refused_and_creates_nothing(client):
    assert client.post("/customers", json=customer(), headers=AUTH).status_code == 201
    response = client.post("/customers", json=customer(name="Other Corp"), headers=AUTH)
    assert (response.status_code, response.get_json()) == (400, {"message": "Customer with id 'C1' already exists"})
    response = client.post("/customers", json=customer(id="C2", account={"id": "C1", "name": "Clash"}), headers=AUTH)
    assert (response.status_code, response.get_json()) == (400, {"message": "Account with id 'C1' already exists"})
    state = state_of(client)
    assert [c["id"] for c in state["customers"]] == ["C1"] and [a["id"] for a in state["accounts"]] == ["C1"]
    assert client.get("/customers/C1", headers=AUTH).get_json()["name"] == "Acme Corp"


def test_duplicate_setting_ids_in_one_create_are_refused(client):
    payload = customer(settings=[setting(1)], account={"id": "A1", "name": "Acc", "settings": [setting(1, name="x")]})
    response = client.post("/customers", json=payload, headers=AUTH)
    assert (response.status_code, response.get_json()) == (400, {"message": "Setting with id 's1' already exists"})
    assert state_of(client)["customers"] == []


def test_patch_customer_updates_and_validates(client):
    client.post("/customers", json=customer(), headers=AUTH)
    response = client.patch("/customers/C1", json={"name": "Acme Holdings", "address": {"country": "DE"}},
                            headers=AUTH)
    assert response.status_code == 200
    assert (response.get_json()["name"], response.get_json()["billingAddress"]) == ("Acme Holdings", "DE")
    bad = client.patch("/customers/C1", json={"id": "C9"}, headers=AUTH)
    assert_refused(bad, 400, {"id"})
    missing = client.patch("/customers/NOPE", json={"name": "Whoever"}, headers=AUTH)
    assert (missing.status_code, missing.get_json()) == (404, {"message": "Customer with id 'NOPE' not found"})


# -- accounts ------------------------------------------------------------------------------------------

def test_post_accounts_needs_an_existing_customer(client):
    response = client.post("/accounts", json={"id": "A2", "name": "Second"}, headers=AUTH)
    assert_refused(response, 400, {"customerId"})
    response = client.post("/accounts", json={"id": "A2", "name": "Second", "customerId": "C1"}, headers=AUTH)
    assert (response.status_code, response.get_json()) == (404, {"message": "Customer with id 'C1' not found"})
    client.post("/customers", json=customer(), headers=AUTH)
    response = client.post("/accounts", json={"id": "A2", "name": "Second", "customerId": "C1",
                                              "invoiceCurrency": "GBP"}, headers=AUTH)
    assert response.status_code == 201
    assert (response.get_json()["customerId"], response.get_json()["invoiceCurrency"]) == ("C1", "GBP")
    assert [(e["type"], e["data"]) for e in state_of(client)["events"]] == [
        ("account.created", {"id": "C1"}), ("account.created", {"id": "A2"})]


def test_patch_account_emits_updated_only_on_change_and_currency_is_immutable(client):
    client.post("/customers", json=customer(), headers=AUTH)
    response = client.patch("/accounts/C1", json={"invoiceCurrency": "EUR"}, headers=AUTH)
    assert (response.status_code, response.get_json()) == (
        400, {"message": "invoiceCurrency of an account cannot be changed"})
    unchanged = client.patch("/accounts/C1", json={"invoiceCurrency": "USD", "name": "Acme Corp"}, headers=AUTH)
    assert unchanged.status_code == 200
    assert [e["type"] for e in state_of(client)["events"]] == ["account.created"]
    changed = client.patch("/accounts/C1", json={"primaryEmail": "ap@acme.example"}, headers=AUTH)
    assert changed.get_json()["primaryEmail"] == "ap@acme.example"
    assert [(e["type"], e["data"]["id"]) for e in state_of(client)["events"]] == [
        ("account.created", "C1"), ("account.updated", "C1")]
    bad = client.patch("/accounts/C1", json={"status": "ARCHIVED"}, headers=AUTH)
    assert_refused(bad, 400, {"status"})


def test_api_events_can_be_switched_off(client):
    assert client.post("/_sandbox/config", json={"emit_api_events": False}).status_code == 200
    client.post("/customers", json=customer(), headers=AUTH)
    assert state_of(client)["events"] == []


def test_sandbox_accounts_validate_like_the_api_and_emit_events(client):
    bad = client.post("/_sandbox/accounts", json={"customer": customer(address={"country": "ZZ"})})
    assert (bad.status_code, bad.get_json()) == (
        400, {"message": "address.country: Not a valid ISO-3166-1 alpha-2 country code."})
    client.post("/_sandbox/config", json={"emit_api_events": False})  # sandbox-made events still flow
    created = client.post("/_sandbox/accounts", json={"customer": customer(), "account": {"id": "A1", "name": "Main"}})
    assert created.status_code == 201 and created.get_json()["account"]["id"] == "A1"
    updated = client.patch("/_sandbox/accounts/A1", json={"name": "Main account"})
    assert updated.get_json()["name"] == "Main account"
    client.patch("/_sandbox/accounts/A1", json={"name": "Main account"})  # no change, no event
    assert [(e["type"], e["data"]["id"], e["status"]) for e in state_of(client)["events"]] == [
        ("account.created", "A1", "skipped"), ("account.updated", "A1", "skipped")]


# -- settings ------------------------------------------------------------------------------------------

def test_settings_crud_filtering_and_pagination(client):
    client.post("/customers", json=customer(), headers=AUTH)
    for i in range(12):
        body = {**setting(i), "entityType": "ACCOUNT", "entityId": "C1",
                "namespace": "zuora" if i % 2 == 0 else "other"}
        assert client.post("/settings", json=body, headers=AUTH).status_code == 201
    client.post("/settings", json={**setting(99), "entityType": "USAGE_METER", "entityId": "um.calls"}, headers=AUTH)

    page1 = client.get("/settings?entity_type=ACCOUNT&entity_id=C1", headers=AUTH).get_json()
    assert len(page1["data"]) == 10 and page1["context"] == {"pageSize": 10, "sortOrder": "ASC"}
    page2 = client.get(f"/settings?entity_type=ACCOUNT&entity_id=C1&nextToken={page1['nextToken']}",
                       headers=AUTH).get_json()
    assert [s["id"] for s in page1["data"] + page2["data"]] == [f"s{i}" for i in range(12)]
    assert "nextToken" not in page2
    zuora = client.get("/settings?entity_type=ACCOUNT&entity_id=C1&namespace=zuora&pageSize=50", headers=AUTH)
    assert [s["id"] for s in zuora.get_json()["data"]] == ["s0", "s2", "s4", "s6", "s8", "s10"]
    meter = client.get("/settings?entity_type=USAGE_METER", headers=AUTH).get_json()["data"]
    assert meter == [{**setting(99), "entityType": "USAGE_METER", "entityId": "um.calls"}]

    assert client.get("/settings/s3", headers=AUTH).get_json()["namespace"] == "other"
    patched = client.patch("/settings/s3", json={"value": "new"}, headers=AUTH)
    assert (patched.status_code, patched.get_json()["value"]) == (201, "new")
    assert client.get("/settings/s3", headers=AUTH).get_json()["value"] == "new"


@pytest.mark.parametrize("method, path, body, status, message", [
    ("post", "/settings", {**setting(), "entityType": "ACCOUNT", "entityId": "NOPE"}, 404,
     "Account with id 'NOPE' not found"),
    ("post", "/settings", {**setting(), "entityType": "CUSTOMER", "entityId": "NOPE"}, 404,
     "Customer with id 'NOPE' not found"),
    ("post", "/settings", {**setting(), "entityType": "WIDGET", "entityId": "C1"}, 400, {"entityType"}),
    ("post", "/settings", setting(), 400, {"entityId", "entityType"}),  # a set: marshmallow's words
    ("post", "/settings", {**setting(0), "entityType": "ACCOUNT", "entityId": "C1"}, 400,
     "Setting with id 's0' already exists"),
    ("post", "/settings", {**setting(7, name="k0"), "entityType": "ACCOUNT", "entityId": "C1"}, 400,
     "Setting 'zuora.k0' already exists for ACCOUNT 'C1'"),
    ("patch", "/settings/s0", {"value": "x", "entityId": "C2"}, 400, {"entityId"}),
    ("patch", "/settings/s0", {"value": "x", "dataType": "NUMERIC"}, 400, "value: Not a valid NUMERIC value."),
    ("patch", "/settings/nope", {"value": "x"}, 404, "Setting with id 'nope' not found"),
    ("get", "/settings?pageSize=0", None, 400, "pageSize must be an integer from 1 to 50"),
    ("get", "/settings?pageSize=%C2%B2", None, 400, "pageSize must be an integer from 1 to 50"),
    ("get", "/settings?nextToken=garbage", None, 400, "Invalid nextToken"),
    ("get", "/settings?entity_type=account", None, 400,
     "entity_type must be one of: ORGANIZATION, CUSTOMER, ACCOUNT, USAGE_METER, PRICE_PLAN, ADDON, FEATURE, "
     "EVENT_SCHEMA, INVOICE, INVOICE_GROUP"),
])
def test_settings_refusals(client, method, path, body, status, message):
    client.post("/customers", json=customer(), headers=AUTH)
    client.post("/settings", json={**setting(0), "entityType": "ACCOUNT", "entityId": "C1"}, headers=AUTH)
    response = getattr(client, method)(path, json=body, headers=AUTH) if body is not None \
        else getattr(client, method)(path, headers=AUTH)
    assert_refused(response, status, message)
    assert client.get("/settings/s0", headers=AUTH).get_json()["value"] == "v"


# -- exact decimals ------------------------------------------------------------------------------------

def test_json_numbers_are_spelled_from_decimal_digits():
    assert json_dumps({"a": Decimal("0.1") + Decimal("0.2")}) == '{"a":0.3}'
    assert json_dumps([Decimal("0.333333"), Decimal("-0.000001"), Decimal("10.00")]) == "[0.333333,-0.000001,10.00]"
    assert json_dumps(Decimal("1E+999999")) == "1E+999999"  # bounded output for a hostile exponent
    assert json_loads("0.1") == Decimal("0.1")
    with pytest.raises(ValueError, match="NaN and Infinity"):
        json_dumps(Decimal("NaN"))


INVOICE_SPEC = ('{"accountId": "C1", "id": "INV-1", "startDate": "2024-01-01", "endDate": "2024-02-01",'
                ' "fixed": [{"description": "Platform fee", "amount": 0.1},'
                ' {"description": "Support", "amount": 0.2}],'
                ' "usage": [{"meterId": "um.calls", "name": "API calls", "quantity": 3, "units": "calls",'
                ' "valuePerQuantity": 0.333333},'
                ' {"meterId": "um.gb", "name": "Storage", "quantity": 7, "units": "GB",'
                ' "valuePerQuantity": 0.142857142857}]}')


def leaves(item: dict) -> list[dict]:
    children = item.get("lineItems")
    return [item] if not children else [leaf for child in children for leaf in leaves(child)]


def test_invoice_shape_and_exact_decimals(client):
    client.post("/customers", json=customer(account={"id": "C1", "name": "Acme", "netTermDays": 30,
                                                     "invoiceCurrency": "EUR"}), headers=AUTH)
    created = client.post("/_sandbox/invoices", data=INVOICE_SPEC, content_type="application/json")
    assert created.status_code == 201
    raw = client.get("/invoices/INV-1", headers=AUTH).get_data(as_text=True)
    invoice = json.loads(raw, parse_float=Decimal)
    # Numbers, not strings, spelled exactly: 0.1 + 0.2 + 0.999999 + 0.999999999999 = 2.299998999999.
    assert '"valuePerQuantity":0.333333' in raw and '"value":0.999999,' in raw
    assert '"valuePerQuantity":0.142857142857' in raw and '"value":0.999999999999' in raw
    assert '"totalAmount":2.299998999999' in raw
    assert isinstance(json.loads(raw)["totalAmount"], float)
    assert (invoice["customerId"], invoice["ownerId"], invoice["status"], invoice["finalizingStatus"]) == \
        ("C1", "C1", "DUE", "FINALIZED")
    assert (invoice["startDate"], invoice["endDate"], invoice["endDateInclusive"]) == \
        ("2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z", "2024-01-31T23:59:59.999Z")
    assert (invoice["invoiceDate"], invoice["dueDate"], invoice["netTermDays"]) == \
        ("2024-02-01T00:00:00.000Z", "2024-03-02T00:00:00.000Z", 30)
    assert invoice["generatedAt"] == "2024-05-01T12:00:00.000Z" and invoice["paidAmount"] == 0
    assert invoice["invoiceDetails"]["account"]["invoiceCurrency"] == "EUR"
    assert invoice["usageInfo"] == [
        {"id": "um.calls", "description": "API calls", "type": "USAGE_METER_USAGE", "quantity": 3,
         "units": "calls", "value": 3},
        {"id": "um.gb", "description": "Storage", "type": "USAGE_METER_USAGE", "quantity": 7, "units": "GB",
         "value": 7}]
    revenue = invoice["revenueInfo"]
    assert revenue["type"] == "TOTAL_AMOUNT" and revenue["value"] == invoice["totalAmount"]
    assert all("lineItems" not in leaf for leaf in leaves(revenue))
    lines = leaves(revenue)
    assert [leaf["type"] for leaf in lines] == ["FIXED_FEE_RATE_CARD_AMOUNT"] * 2 + ["USAGE_RATE_CARD_AMOUNT"] * 2
    assert sum(leaf["value"] for leaf in lines) == invoice["totalAmount"] == Decimal("2.299998999999")
    usage = lines[2]
    assert {k: usage[k] for k in ("description", "quantity", "valuePerQuantity", "value", "units", "metadata")} == {
        "description": "API calls", "quantity": 3, "valuePerQuantity": Decimal("0.333333"),
        "value": Decimal("0.999999"), "units": "calls", "metadata": {"usageMeterId": "um.calls"}}


def test_draft_invoice_emits_nothing_until_finalized_once(client):
    client.post("/customers", json=customer(), headers=AUTH)
    spec = {"accountId": "C1", "id": "D1", "startDate": "2024-01-01T00:00:00Z", "endDate": "2024-02-01T00:00:00Z",
            "fixed": [{"description": "Seats", "quantity": 3, "valuePerQuantity": 10,
                       "type": "LICENSE_RATE_CARD_AMOUNT"}], "finalize": False}
    draft = client.post("/_sandbox/invoices", json=spec).get_json()
    assert draft["status"] == "DRAFT" and "finalizingStatus" not in draft and "generatedAt" not in draft
    assert [e["type"] for e in state_of(client)["events"]] == ["account.created"]
    final = client.post("/_sandbox/invoices/D1/finalize", json={"status": "PAID"})
    assert (final.status_code, final.get_json()["status"], final.get_json()["finalizingStatus"]) == \
        (200, "PAID", "FINALIZED")
    assert final.get_json()["paidAmount"] == 30
    assert [(e["type"], e["data"]["id"]) for e in state_of(client)["events"]][-1] == ("invoice.finalized", "D1")
    again = client.post("/_sandbox/invoices/D1/finalize")
    assert (again.status_code, again.get_json()) == (400, {"message": "Invoice 'D1' is already finalized"})


@pytest.mark.parametrize("overrides, status, message", [
    ({"accountId": "NOPE"}, 404, "Account with id 'NOPE' not found"),
    ({"endDate": "2023-12-01"}, 400, "endDate: Must be after startDate."),
    ({"startDate": "yesterday"}, 400, "startDate: Not a valid ISO-8601 date or date-time."),
    ({"fixed": [{"description": "Fee", "amount": "10.00"}]}, 400, "fixed[0].amount: Not a valid number."),
    ({"fixed": [{"description": "Fee"}]}, 400, "fixed[0]: Give amount, or quantity and valuePerQuantity."),
    ({"usage": [{"meterId": "m" * 21, "name": "Calls", "quantity": 1, "valuePerQuantity": 1}]}, 400,
     {"usage[0].meterId"}),  # a set: marshmallow's words, only the fields count
    ({"usage": [{"meterId": "um.c", "name": "Calls", "quantity": -1, "valuePerQuantity": 1}]}, 400,
     {"usage[0].quantity"}),
    ({"finalize": False, "status": "DUE"}, 400, "status: An invoice that is not finalized must be DRAFT."),
    ({"finalize": "yes"}, 400, "finalize: Not a valid boolean."),
    ({"colour": "red"}, 400, {"colour"}),
    ({"id": "INV-1"}, 400, "Invoice with id 'INV-1' already exists"),
])
def test_invoice_spec_refusals(client, overrides, status, message):
    client.post("/customers", json=customer(), headers=AUTH)
    client.post("/_sandbox/invoices", data=INVOICE_SPEC, content_type="application/json")
    spec = {"accountId": "C1", "startDate": "2024-01-01", "endDate": "2024-02-01",
            "fixed": [{"description": "Fee", "amount": 1}], **overrides}
    response = client.post("/_sandbox/invoices", json=spec)
    assert_refused(response, status, message)
    assert len(state_of(client)["invoices"]) == 1


def types_and_values(node: dict, depth: int = 0) -> list[tuple[int, str, str, Decimal]]:
    """The tree in document order: (depth, type, description, value) of every node."""
    found = [(depth, node["type"], node["description"], node["value"])]
    for child in node.get("lineItems", []):
        found.extend(types_and_values(child, depth + 1))
    return found


ADJUSTMENTS = {"grossAmount": Decimal("129.99"), "discount": Decimal("20.00"), "trueUp": Decimal("30.00"),
               "taxes": [{"description": "VAT 20%", "amount": Decimal("21.99")}],
               "credits": [{"description": "Prepaid credit", "granted": Decimal("500"), "applied": Decimal("10.00")}],
               "miscellaneous": [{"description": "Setup assistance", "amount": Decimal("15.00")}],
               "custom": [{"description": "Rush fee", "amount": Decimal("5.00")}]}


def test_invoice_with_adjustments_in_togais_line_item_types(client):
    client.post("/customers", json=customer(), headers=AUTH)
    spec = {"accountId": "C1", "id": "ADJ-1", "startDate": "2024-01-01", "endDate": "2024-02-01",
            "fixed": [{"description": "Platform fee", "amount": Decimal("99.99")},
                      {"description": "Support", "amount": Decimal("0.01")}], "adjustments": ADJUSTMENTS}
    created = client.post("/_sandbox/invoices", data=json_dumps(spec), content_type="application/json")
    assert created.status_code == 201, created.get_json()
    invoice = json_loads(client.get("/invoices/ADJ-1", headers=AUTH).get_data())
    # lines 100.00 + true-up 30.00 = 130.00, which the platform's own subtotal states as 129.99; less the
    # 20.00 discount; plus 15.00, 5.00 and 21.99 of tax; less 10.00 of credits applied (500 granted).
    assert invoice["totalAmount"] == Decimal("141.98")
    assert types_and_values(invoice["revenueInfo"]) == [
        (0, "TOTAL_AMOUNT", "Total Amount", Decimal("141.98")),
        (1, "NET_AMOUNT", "Total amount due", Decimal("109.99")),
        (2, "GROSS_AMOUNT", "Sum Total", Decimal("129.99")),
        (3, "PRICE_PLAN_AMOUNT", "Price plan amount", Decimal("130.00")),
        (4, "SUB_TOTAL_AMOUNT", "Sub total", Decimal("100.00")),
        (5, "FIXED_FEE_RATE_CARD_AMOUNT", "Platform fee", Decimal("99.99")),
        (5, "FIXED_FEE_RATE_CARD_AMOUNT", "Support", Decimal("0.01")),
        (4, "TRUE_UP_AMOUNT", "Minimum commitment true-up", Decimal("30.00")),
        (1, "TOTAL_MISCELLANEOUS_CHARGES", "Miscellaneous charges", Decimal("15.00")),
        (2, "MISCELLANEOUS_CHARGE", "Setup assistance", Decimal("15.00")),
        (1, "CUSTOM_AMOUNT", "Rush fee", Decimal("5.00")),
        (1, "TOTAL_TAX_AMOUNT", "Total tax", Decimal("21.99")),
        (2, "TAX_AMOUNT", "VAT 20%", Decimal("21.99")),
        (1, "TOTAL_CREDITS", "Credits", Decimal("10.00")),
        (2, "SUB_CREDITS", "Prepaid credit", Decimal("500"))]


def test_documented_shape_with_adjustments_nests_as_togais_example(client):
    client.post("/customers", json=customer(), headers=AUTH)
    spec = {"accountId": "C1", "id": "ADJ-2", "startDate": "2024-01-01", "endDate": "2024-02-01",
            "shape": "documented", "fixed": [{"description": "Platform fee", "amount": Decimal("10")}],
            "adjustments": {"discount": Decimal("1.50")}}
    assert client.post("/_sandbox/invoices", data=json_dumps(spec), content_type="application/json").status_code == 201
    invoice = json_loads(client.get("/invoices/ADJ-2", headers=AUTH).get_data())
    assert [(d, t, v) for d, t, _, v in types_and_values(invoice["revenueInfo"])] == [
        (0, "GRAND_TOTAL_AMOUNT", Decimal("8.50")), (1, "TOTAL_AMOUNT", Decimal("8.50")),
        (2, "NET_AMOUNT", Decimal("8.50")), (3, "GROSS_AMOUNT", Decimal("10")),
        (4, "FIXED_FEE_RATE_CARD_AMOUNT", Decimal("10"))]
    assert invoice["totalAmount"] == Decimal("8.50")


def test_a_document_is_served_as_given(client):
    """Togai's own get-invoice example, whose numbers do not add up on purpose, comes back digit for digit."""
    client.post("/customers", json=customer(), headers=AUTH)
    example = json_loads((FIXTURES / "get_invoice_example.json").read_text())
    spec = {"accountId": "C1", "id": "DOC-1", "startDate": example["startDate"], "endDate": example["endDate"],
            "invoiceDate": example["invoiceDate"], "document": example}
    created = client.post("/_sandbox/invoices", data=json_dumps(spec), content_type="application/json")
    assert created.status_code == 201, created.get_json()
    raw = client.get("/invoices/DOC-1", headers=AUTH).get_data(as_text=True)
    invoice = json_loads(raw)
    assert (invoice["revenueInfo"], invoice["usageInfo"]) == (example["revenueInfo"], example["usageInfo"])
    assert (invoice["id"], invoice["ownerId"], invoice["totalAmount"]) == ("DOC-1", "C1", Decimal("881.94"))
    assert '"value":392.1,' in raw  # as Togai wrote it, not 392.10
    assert [e["type"] for e in state_of(client)["events"]][-1] == "invoice.finalized"


@pytest.mark.parametrize("overrides, message", [
    ({"adjustments": {"discount": -1}}, "adjustments.discount: Must be greater than or equal to 0."),
    ({"adjustments": {"taxes": [{"description": "VAT"}]}}, "adjustments.taxes[0].amount: Missing data for "
                                                           "required field."),
    ({"adjustments": {"credits": [{"description": "C", "granted": 5, "applied": -1}]}},
     "adjustments.credits[0].applied: Must be greater than or equal to 0."),
    ({"document": {"revenueInfo": {"type": "TOTAL_AMOUNT", "value": 1}}}, "document: totalAmount must be a number."),
    ({"document": {"totalAmount": 1}}, "document: revenueInfo must be a line item or a list of line items."),
    ({"fixed": [], "document": {"revenueInfo": [], "totalAmount": 0, "usageInfo": {}}},
     "document: usageInfo must be a list."),
    ({"document": {"revenueInfo": [], "totalAmount": 0}},
     "document: A document is served as given: no fixed, usage or adjustments beside it."),
])
def test_adjustment_and_document_refusals(client, overrides, message):
    client.post("/customers", json=customer(), headers=AUTH)
    spec = {"accountId": "C1", "startDate": "2024-01-01", "endDate": "2024-02-01",
            "fixed": [{"description": "Fee", "amount": 1}], **overrides}
    response = client.post("/_sandbox/invoices", data=json_dumps(spec), content_type="application/json")
    assert (response.status_code, response.get_json()) == (400, {"message": message})
    assert state_of(client)["invoices"] == []


def test_unknown_invoice_is_404(client):
    response = client.get("/invoices/nope", headers=AUTH)
    assert (response.status_code, response.get_json()) == (404, {"message": "Invoice with id 'nope' not found"})


# -- outgoing events over real HTTP --------------------------------------------------------------------

def test_events_are_signed_per_standard_webhooks_and_tampering_fails(live):
    assert live.post("/customers", customer(), headers=AUTH).status_code == 201
    live.settle()
    ((headers, body),) = live.receiver.received
    assert json.loads(body) == {"type": "account.created", "data": {"id": "C1"}}
    assert headers["Webhook-Id"].startswith("msg_")
    assert Webhook(SECRET).verify(body, headers) == {"type": "account.created", "data": {"id": "C1"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"C1", b"C2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_2).verify(body, headers)
    (event,) = live.events()
    assert (event["status"], [a["status_code"] for a in event["attempts"]]) == ("delivered", [200])


def test_events_are_sent_from_the_background_not_inside_the_triggering_request(live):
    live.receiver.gate.clear()  # the receiver stalls: a synchronous send would stall the API call too
    try:
        response = requests.post(live.url + "/customers", json=customer(), headers=AUTH, timeout=2)
        assert response.status_code == 201
        assert [e["status"] for e in live.events()] == ["pending"]
    finally:
        live.receiver.gate.set()
    live.settle()
    assert [e["status"] for e in live.events()] == ["delivered"]


def test_failed_delivery_is_retried_with_the_same_webhook_id(live):
    live.receiver.statuses.extend([500, 503])
    live.post("/customers", customer(), headers=AUTH)
    live.settle()
    received = live.receiver.received
    assert len(received) == 3
    assert len({h["Webhook-Id"] for h, _ in received}) == 1 and len({b for _, b in received}) == 1
    assert all(Webhook(SECRET).verify(body, headers) for headers, body in received)
    (event,) = live.events()
    assert event["status"] == "delivered"
    assert [(a["attempt"], a["status_code"], a["ok"]) for a in event["attempts"]] == \
        [(1, 500, False), (2, 503, False), (3, 200, True)]


def test_delivery_gives_up_after_the_retry_schedule(live):
    live.receiver.statuses.extend([500, 500, 500, 500])
    live.post("/_sandbox/accounts", {"customer": customer()})
    live.settle()
    (event,) = live.events()
    assert event["status"] == "failed" and [a["status_code"] for a in event["attempts"]] == [500, 500, 500]


def test_connection_errors_are_retried_and_logged(live):
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    live.post("/_sandbox/config", {"webhook_url": dead_url})
    live.post("/customers", customer(), headers=AUTH)
    live.settle()
    (event,) = live.events()
    assert event["status"] == "failed"
    assert [(a["status_code"], a["error"]) for a in event["attempts"]] == [(None, "ConnectionError")] * 3


def test_resend_duplicates_with_the_same_webhook_id_or_sends_a_new_event(live):
    live.post("/customers", customer(), headers=AUTH)
    live.settle()
    duplicate = live.post("/_sandbox/events/resend", {"type": "account.created", "id": "C1"})
    assert duplicate.status_code == 202 and duplicate.json()["duplicate"] is True
    fresh = live.post("/_sandbox/events/resend", {"type": "customer.archived", "id": "C1"}).json()
    live.settle()
    first, second, third = live.receiver.received
    # A true duplicate: same webhook-id and body (re-signed with the attempt's own timestamp).
    assert (second[0]["Webhook-Id"], second[1]) == (first[0]["Webhook-Id"], first[1])
    assert Webhook(SECRET).verify(second[1], second[0])
    assert third[0]["Webhook-Id"] == fresh["event_id"] != first[0]["Webhook-Id"]
    assert json.loads(third[1]) == {"type": "customer.archived", "data": {"id": "C1"}}


def test_events_without_webhook_url_are_skipped_until_configured(live):
    live.post("/_sandbox/config", {"webhook_url": None})
    live.post("/customers", customer(), headers=AUTH)
    live.settle()
    assert [e["status"] for e in live.events()] == ["skipped"] and live.receiver.received == []
    config = live.post("/_sandbox/config", {"webhook_url": live.receiver.url, "webhook_secret": SECRET_2,
                                            "extra_webhook_secrets": [SECRET]}).json()
    assert config == {"webhook_url": live.receiver.url, "webhook_retry_schedule": [0.01, 0.02],
                      "emit_api_events": True, "webhook_secret_count": 2}
    live.post("/_sandbox/events/resend", {"type": "account.created", "id": "C1"})
    live.settle()
    ((headers, body),) = live.receiver.received
    assert len(headers["Webhook-Signature"].split(" ")) == 2  # both secrets sign: rotation works
    assert Webhook(SECRET_2).verify(body, headers) and Webhook(SECRET).verify(body, headers)
    assert live.state.webhook_secret == SECRET_2


@pytest.mark.parametrize("body, message", [
    ({"webhook_url": "javascript:alert(1)"}, "webhook_url: Must be an http(s) URL."),
    ({"webhook_secret": "whsec_c2hvcnQ="}, "webhook_secret: Must be whsec_ followed by base64 of at least 24 bytes."),
    ({"emit_api_events": "no"}, "emit_api_events: Not a valid boolean."),
])
def test_config_refusals(client, body, message):
    response = client.post("/_sandbox/config", json=body)
    assert_refused(response, 400, message)


def test_invoice_finalized_event_reaches_receiver(live):
    live.post("/customers", customer(), headers=AUTH)
    live.post("/_sandbox/invoices", {"accountId": "C1", "id": "I1", "startDate": "2024-01-01",
                                     "endDate": "2024-02-01", "fixed": [{"description": "Fee", "amount": 5}]})
    live.settle()
    assert [json.loads(b) for _, b in live.receiver.received] == [
        {"type": "account.created", "data": {"id": "C1"}}, {"type": "invoice.finalized", "data": {"id": "I1"}}]


def test_the_void_event_is_delivered_signed(live):
    live.post("/customers", customer(), headers=AUTH)
    live.post("/_sandbox/invoices", {"accountId": "C1", "id": "I1", "startDate": "2024-01-01",
                                     "endDate": "2024-02-01", "fixed": [{"description": "Fee", "amount": 5}]})
    assert live.post("/_sandbox/invoices/I1/void").status_code == 200
    live.settle()
    headers, body = live.receiver.received[-1]
    assert json.loads(body) == {"type": "invoice.voided", "data": {"id": "I1"}}
    Webhook(SECRET).verify(body, {k.lower(): v for k, v in headers.items()})  # raises if the signature is wrong


# -- faults, concurrency, inspection -------------------------------------------------------------------

def test_rate_limit_answers_429_with_retry_after_and_sandbox_paths_are_exempt(live):
    live.state.faults.configure(rate_limit=2, rate_window_seconds=60)
    statuses = [requests.get(live.url + "/customers/C1", headers=AUTH, timeout=5) for _ in range(3)]
    assert [r.status_code for r in statuses] == [404, 404, 429]
    assert statuses[2].json() == {"message": "rate limit exceeded"}
    assert 1 <= int(statuses[2].headers["Retry-After"]) <= 60
    assert statuses[0].headers["RateLimit-Remaining"] == "1"
    assert requests.get(live.url + "/_sandbox/state", timeout=5).status_code == 200


def test_rate_limit_argument_and_injected_errors_use_the_billing_error_shape():
    application = create_billing_sandbox(api_token=TOKEN, rate_limit=7)
    state = application.extensions["billing_sandbox"]
    assert state.faults.snapshot()["rate_limit"] == 7
    state.faults.configure(error_rate=1.0, error_status=503)
    response = application.test_client().get("/customers/C1", headers=AUTH)
    assert (response.status_code, response.get_json()) == (503, {"message": "injected billing fault"})


def test_concurrent_creates_of_one_id_yield_exactly_one_customer(live):
    results: list[int] = []
    lock = threading.Lock()

    def create(customer_id: str):
        status = live.post("/customers", customer(id=customer_id), headers=AUTH).status_code
        with lock:
            results.append(status)

    threads = [threading.Thread(target=create, args=("SAME",)) for _ in range(6)] + \
              [threading.Thread(target=create, args=(f"U{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(results) == [201] * 7 + [400] * 5
    state = requests.get(live.url + "/_sandbox/state", timeout=5).json()
    assert sorted(c["id"] for c in state["customers"]) == ["SAME"] + [f"U{i}" for i in range(6)]


def test_request_log_records_calls_without_credentials_and_reset_clears_everything(client):
    client.post("/customers", json=customer(), headers=AUTH)
    client.get("/customers/C1", headers={"Authorization": "Bearer wrong"})
    state = state_of(client)
    assert [(r["method"], r["path"], r["status"]) for r in state["requests"]] == \
        [("POST", "/customers", 201), ("GET", "/customers/C1", 401)]
    assert state["requests"][0]["body"]["id"] == "C1"
    dumped = json.dumps(state, default=str)
    assert TOKEN not in dumped and "wrong" not in dumped and SECRET not in dumped
    assert client.post("/_sandbox/reset").get_json() == {"reset": True}
    assert {k: v for k, v in state_of(client).items() if k != "config"} == {
        "customers": [], "accounts": [], "settings": [], "invoices": [], "events": [], "requests": []}


def test_fractional_fault_switches_are_accepted_over_http():
    """The billing app reads JSON numbers as Decimal; the fault switches still take them."""
    app = create_billing_sandbox()
    resp = app.test_client().post("/_sandbox/faults", json={"error_rate": 0.1, "hang_rate": 0.05,
                                                            "hang_seconds": 2.0, "seed": 7})
    assert resp.status_code == 200
    body = json.loads(resp.get_data())
    assert (body["error_rate"], body["hang_seconds"]) == (0.1, 2.0)


# -- the list calls: getCustomers, getAccounts, listInvoices ---------------------------------------------

def test_customers_and_accounts_are_listed_oldest_first_and_paged_by_next_token(client):
    for n in (1, 2, 3):
        client.post("/customers", json=customer(id=f"C{n}"), headers=AUTH)
    first = client.get("/customers?pageSize=2", headers=AUTH).get_json()
    assert [c["id"] for c in first["data"]] == ["C1", "C2"]
    assert first["context"] == {"pageSize": 2, "sortOrder": "ASC"}
    rest = client.get(f"/customers?pageSize=2&nextToken={first['nextToken']}", headers=AUTH).get_json()
    assert [c["id"] for c in rest["data"]] == ["C3"] and "nextToken" not in rest
    accounts = client.get("/accounts", headers=AUTH).get_json()
    assert [a["id"] for a in accounts["data"]] == ["C1", "C2", "C3"]
    assert accounts["data"][0] == client.get("/accounts/C1", headers=AUTH).get_json()
    bad = client.get("/accounts?pageSize=51", headers=AUTH)
    assert (bad.status_code, bad.get_json()) == (400, {"message": "pageSize must be an integer from 1 to 50"})


def test_invoices_are_listed_as_summaries_filtered_by_status_owner_customer_and_time(client):
    client.post("/customers", json=customer(), headers=AUTH)
    client.post("/customers", json=customer(id="C2"), headers=AUTH)
    for invoice_id, account, end, finalize in (("I1", "C1", "2024-02-01", True), ("I2", "C2", "2024-03-01", True),
                                               ("I3", "C1", "2024-03-01", False)):
        client.post("/_sandbox/invoices", json={"id": invoice_id, "accountId": account, "startDate": "2024-01-01",
                                                "endDate": end, "finalize": finalize,
                                                "fixed": [{"description": "Fee", "amount": 1}]})

    def ids(query: str = "") -> list[str]:
        response = client.get(f"/invoices?{query}", headers=AUTH)
        assert response.status_code == 200, response.get_json()
        return [i["id"] for i in response.get_json()["data"]]

    listed = client.get("/invoices", headers=AUTH).get_json()
    assert set(listed) == {"data"}  # ListInvoicesResponse has no context
    assert "usageInfo" not in listed["data"][0] and "revenueInfo" not in listed["data"][0]  # InvoiceSummary
    assert ids() == ["I1", "I2", "I3"]
    assert ids("status=DRAFT") == ["I3"]
    assert ids("owner_id=C2") == ["I2"]
    assert ids("customer_id=C1") == ["I1", "I3"]
    march = 1709251200000  # 2024-03-01T00:00:00Z
    assert ids(f"start_time={march}") == ["I2", "I3"] and ids(f"end_time={march}") == ["I1"]
    assert ids("pageSize=1") == ["I1"]
    assert client.get("/invoices?status=LOST", headers=AUTH).status_code == 400
    assert client.get("/invoices?start_time=yesterday", headers=AUTH).get_json() == {
        "message": "start_time must be epoch milliseconds"}
