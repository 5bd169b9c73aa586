"""The billing sandbox driven over HTTP by Togai's own Python SDK (``togai-client``), every body also
checked against Togai's published OpenAPI document.

Every call the service makes (customers create/get, accounts create/get/update, settings
create/list/update, invoices get) plus the list calls (``getCustomers``, ``getAccounts``,
``listInvoices``): requests are built from the SDK's models and checked against the document's request
schemas; responses are parsed by the SDK's models and checked against the document's response schemas.
The OpenAPI part is skipped with a reason where ``../shared/vendor-specs/`` is absent.
"""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import requests

from integration_sandbox.billing import create_billing_sandbox
from integration_sandbox.billing.invoices import SHAPES
from integration_sandbox.server import ServerThread
from tests.conformance.support import (
    OpenAPIChecks,
    TogaiSpec,
    problems,
    sdk,
    togai_spec,
)

T = sdk("togai_client")
M = T.models

TOKEN = "conformance-token"


@pytest.fixture(scope="module")
def server():
    app = create_billing_sandbox(api_token=TOKEN)
    with ServerThread(app) as srv:
        srv.sandbox = app.extensions["billing_sandbox"]
        yield srv
    app.extensions["billing_sandbox"].close()


@pytest.fixture
def api(server):
    server.sandbox.reset()
    return T.ApiClient(T.Configuration(host=server.url, access_token=TOKEN))


@pytest.fixture(scope="module")
def spec() -> OpenAPIChecks:
    return OpenAPIChecks(togai_spec())


def raw(response: Any) -> Any:
    return json.loads(response.raw_data)


def address() -> Any:
    return M.Address(line1="1 Main St", city="Springfield", state="IL", postal_code="62701", country="US")


def setting(setting_id: str, value: str = "z-1") -> Any:
    return M.CreateEntitySetting(id=setting_id, namespace="zuora", name=f"key-{setting_id}", value=value,
                                 data_type="STRING")


def new_customer(api, spec: OpenAPIChecks | None = None, customer_id: str = "C1") -> Any:
    request = M.CreateCustomerRequest(
        id=customer_id, name="Acme Corp", primary_email="billing@acme.example", address=address(),
        account=M.CreateAccountRequestWithoutCustomerId(id=f"{customer_id}-A", name="Acme", invoice_currency="USD",
                                                        settings=[setting(f"{customer_id}-s1")]))
    if spec is not None:
        assert spec.request("/customers", "post", json.loads(request.to_json())) == []
    return T.CustomersApi(api).create_customer_with_http_info(request)


# -- customers and accounts -----------------------------------------------------------------------------

def test_customers_create_get_and_list(api, spec):
    created = new_customer(api, spec)
    assert created.status_code == 201
    assert spec.response("/customers", "post", 201, raw(created)) == []
    assert problems(M.CreateCustomerResponse, raw(created)) == []
    assert (created.data.id, created.data.account.id) == ("C1", "C1-A")

    customers = T.CustomersApi(api)
    got = customers.get_customer_with_http_info("C1")
    assert spec.response("/customers/{customer_id}", "get", 200, raw(got)) == []
    assert problems(M.Customer, raw(got)) == [] and got.data.status == "ACTIVE"

    new_customer(api, customer_id="C2")
    first = customers.get_customers_with_http_info(page_size=1)
    assert spec.response("/customers", "get", 200, raw(first)) == []
    assert problems(M.CustomerPaginatedResponse, raw(first)) == []
    second = customers.get_customers(page_size=1, next_token=first.data.next_token)
    assert [c.id for c in first.data.data + second.data] == ["C1", "C2"] and second.next_token is None
    spec.finish()



def test_accounts_create_get_update_and_list(api, spec):
    new_customer(api)
    accounts = T.AccountsApi(api)
    request = M.CreateAccountRequest(id="C1-B", customer_id="C1", name="Acme EU", invoice_currency="EUR",
                                     net_term_days=30, settings=[setting("s2")])
    assert spec.request("/accounts", "post", json.loads(request.to_json())) == []
    created = accounts.create_account_with_http_info(request)
    assert spec.response("/accounts", "post", 201, raw(created)) == []
    assert problems(M.Account, raw(created)) == []

    patch = M.UpdateAccountRequest(name="Acme Europe", net_term_days=45)
    assert spec.request("/accounts/{account_id}", "patch", json.loads(patch.to_json())) == []
    updated = accounts.update_account_with_http_info("C1-B", patch)
    assert spec.response("/accounts/{account_id}", "patch", 200, raw(updated)) == []
    assert (updated.data.name, updated.data.net_term_days) == ("Acme Europe", 45)

    got = accounts.get_account_with_http_info("C1-B")
    assert spec.response("/accounts/{account_id}", "get", 200, raw(got)) == []
    assert problems(M.Account, raw(got)) == [] and [s.id for s in got.data.settings] == ["s2"]

    listed = accounts.get_accounts_with_http_info(page_size=50)
    assert spec.response("/accounts", "get", 200, raw(listed)) == []
    assert problems(M.AccountPaginatedResponse, raw(listed)) == []
    assert [a.id for a in listed.data.data] == ["C1-A", "C1-B"]
    spec.finish()



def test_settings_create_list_and_update(api, spec):
    new_customer(api)
    settings = T.SettingsApi(api)
    new = M.Setting(id="s9", entity_type="ACCOUNT", entity_id="C1-A", namespace="zuora", name="zuoraAccountNumber",
                    value="A00000001", data_type="STRING")
    assert spec.request("/settings", "post", json.loads(new.to_json())) == []
    created = settings.insert_setting_with_http_info(new)
    assert spec.response("/settings", "post", 201, raw(created)) == []

    listed = settings.list_setting_with_http_info(entity_type="ACCOUNT", entity_id="C1-A")
    assert spec.response("/settings", "get", 200, raw(listed)) == []
    assert problems(M.SettingPaginatedResponse, raw(listed)) == []
    assert sorted(s.id for s in listed.data.data) == ["C1-s1", "s9"]

    patch = M.UpdateSettingRequest(value="A00000002")
    updated = settings.update_setting_with_http_info("s9", patch)
    assert spec.response("/settings/{setting_id_str}", "patch", 201, raw(updated)) == []
    assert updated.data.value == "A00000002"


# -- invoices -------------------------------------------------------------------------------------------

def put_invoice(server, invoice_id: str, shape: str, **spec: Any) -> dict:
    body = {"id": invoice_id, "accountId": "C1-A", "shape": shape, "startDate": "2024-07-01T00:00:00Z",
            "endDate": "2024-08-01T00:00:00Z", "fixed": [{"description": "Platform fee", "amount": 10}],
            "usage": [{"meterId": "m-calls", "name": "Calls", "quantity": 1500, "valuePerQuantity": 0.002}], **spec}
    response = requests.post(f"{server.url}/_sandbox/invoices", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()
    spec.finish()
    return None



def documented_reading(spec: TogaiSpec) -> TogaiSpec:
    """The OpenAPI document as its own Invoice example reads it.

    The document conflicts with itself: ``InvoiceLineItem`` defines no ``lineItems`` (and forbids
    other properties), yet its Invoice example nests line items under ``lineItems`` and leaves the
    leaves without one; the generated togai-client model goes the other way and *requires*
    ``lineItems`` on every item, leaves included, so the SDK cannot parse Togai's own example. The
    sandbox serves the example's reading; this is the schema with that one property added.
    """
    patched = copy.deepcopy(spec.spec)
    patched["components"]["schemas"]["InvoiceLineItem"]["properties"]["lineItems"] = {
        "type": "array", "items": {"$ref": "#/components/schemas/InvoiceLineItem"}}
    return TogaiSpec(patched)


def sdk_problems_besides_leaf_line_items(body: dict) -> list[str]:
    """What the SDK's ``Invoice`` model finds wrong, leaving out the one thing it gets wrong itself:
    it requires ``lineItems`` (at least one) on every line item, so no tree can end in a leaf."""
    return problems(M.Invoice, body, missing_is_fine="lineItems")


def test_the_sdk_is_stricter_than_togais_own_invoice_example(spec):
    """Why the invoice checks below go by the documented example, not by the SDK's model."""
    from pydantic import ValidationError  # comes with the SDK (the module is skipped without it)
    example = spec.require().example("Invoice")
    with pytest.raises(ValidationError) as refused:
        M.Invoice.from_dict(example)
    assert {e["loc"][-1] for e in refused.value.errors()} == {"lineItems"}
    reading = documented_reading(spec.require())
    # The example fails the schema only on ``netTermDays`` (required, missing from the example).
    assert reading.failures(reading.component("Invoice"), example) == [("(body)", "required", ("netTermDays",))]


@pytest.mark.parametrize("shape", [s for s in SHAPES if s != "legacy"])
def test_every_current_invoice_shape_is_a_documented_invoice(api, server, spec, shape):
    new_customer(api)
    put_invoice(server, f"inv-{shape}", shape)
    # The SDK's call, its body read raw: its model cannot hold a leaf without lineItems (see above).
    response = T.InvoicesApi(api).get_invoice_without_preload_content(f"inv-{shape}")
    assert response.status == 200
    body = json.loads(response.read())
    # Everything else the SDK's model says holds.
    assert sdk_problems_besides_leaf_line_items(body) == []
    # Checked against the documented example's reading (see documented_reading), not the SDK.
    reading = documented_reading(spec.require())
    assert reading.check_response("/invoices/{invoice_id}", "get", 200, body) == []


@pytest.mark.parametrize("shape", ["nested", "documented"])
def test_an_invoice_with_every_adjustment_is_a_documented_invoice(api, server, spec, shape):
    """Discounts, credits, taxes, a true-up, miscellaneous and custom amounts and a platform-rounded
    subtotal, in the line-item types Togai's document lists."""
    new_customer(api)
    put_invoice(server, f"inv-adj-{shape}", shape, adjustments={
        "grossAmount": 12.99, "discount": 1, "trueUp": 0.5, "taxes": [{"description": "VAT", "amount": 2}],
        "credits": [{"description": "Prepaid", "granted": 100, "applied": 3}],
        "miscellaneous": [{"description": "Setup", "amount": 4}], "custom": [{"description": "Rush", "amount": 1}]})
    response = T.InvoicesApi(api).get_invoice_without_preload_content(f"inv-adj-{shape}")
    body = json.loads(response.read())
    assert sdk_problems_besides_leaf_line_items(body) == []
    reading = documented_reading(spec.require())
    assert reading.check_response("/invoices/{invoice_id}", "get", 200, body) == []


def test_the_legacy_shape_is_the_older_revenue_spelling(api, server, spec):
    """``legacy`` serves the ``…_REVENUE`` type names of Togai's older documentation (reference
    billing-platforms.md §E), which the current document's enum no longer lists: kept so the flows
    still read invoices in that spelling. Its structure is the documented one."""
    new_customer(api)
    put_invoice(server, "inv-legacy", "legacy")
    body = requests.get(f"{server.url}/invoices/inv-legacy", headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10).json()
    failures = documented_reading(spec.require()).response_failures("/invoices/{invoice_id}", "get", 200, body)
    assert failures and all(kind == "enum" and str(value).endswith("_REVENUE") for _, kind, value in failures), failures


def test_list_invoices_filters_and_pages(api, server, spec):
    new_customer(api)
    new_customer(api, customer_id="C2")
    put_invoice(server, "inv-1", "documented")
    put_invoice(server, "inv-2", "nested", accountId="C2-A", startDate="2024-08-01T00:00:00Z",
                endDate="2024-09-01T00:00:00Z")
    put_invoice(server, "inv-3", "nested", finalize=False)
    invoices = T.InvoicesApi(api)

    listed = invoices.list_invoices_with_http_info()
    assert spec.response("/invoices", "get", 200, raw(listed)) == []
    assert problems(M.ListInvoicesResponse, raw(listed)) == []
    assert [i.id for i in listed.data.data] == ["inv-1", "inv-2", "inv-3"]

    assert [i.id for i in invoices.list_invoices(status="DRAFT").data] == ["inv-3"]
    assert [i.id for i in invoices.list_invoices(owner_id="C2-A").data] == ["inv-2"]
    assert [i.id for i in invoices.list_invoices(customer_id="C1").data] == ["inv-1", "inv-3"]
    august = 1722470400000  # 2024-08-01T00:00:00Z in epoch milliseconds: the invoice date of inv-1 and inv-3
    assert [i.id for i in invoices.list_invoices(start_time=august, end_time=august + 1).data] == ["inv-1", "inv-3"]

    first = invoices.list_invoices(page_size=2)
    rest = invoices.list_invoices(page_size=2, next_token=first.next_token)
    assert ([i.id for i in first.data], [i.id for i in rest.data], rest.next_token) == (
        ["inv-1", "inv-2"], ["inv-3"], None)
    spec.finish()



def test_list_refusals_use_the_documented_error_shape(api, spec):
    with pytest.raises(T.ApiException) as caught:
        T.InvoicesApi(api).list_invoices(status="SHIPPED")
    assert caught.value.status == 400
    assert spec.response("/invoices", "get", 400, json.loads(caught.value.body)) == []
    with pytest.raises(T.ApiException) as caught:
        T.CustomersApi(api).get_customers(page_size=51)
    assert caught.value.status == 400
    assert spec.response("/customers", "get", 400, json.loads(caught.value.body)) == []
    spec.finish()

