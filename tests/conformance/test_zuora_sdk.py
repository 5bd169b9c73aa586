"""The Zuora sandbox driven over HTTP by Zuora's own Python SDK (``zuora-sdk``).

Every call the service makes (token, accounts create/get/update, Object Query on accounts, invoices,
credit memos and usages, standalone invoices and their items, cancel and reverse, usage records and
usage-file imports), plus the list/query calls the SDK exposes for them: requests are built from the
SDK's models and responses parsed by them, and no response carries a field the SDK's schema lacks
(custom fields ``*__c`` are tenant-defined and allowed).
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from integration_sandbox.server import ServerThread
from integration_sandbox.zuora import create_zuora_sandbox
from tests.conformance.support import problems, sdk

Z = sdk("zuora_sdk")
M = Z.models

LINK = "BillingAccountId__c"


@pytest.fixture(scope="module")
def server():
    app = create_zuora_sandbox()
    with ServerThread(app) as srv:
        srv.sandbox = app.extensions["zuora_sandbox"]
        yield srv
    app.extensions["zuora_sandbox"].close()


@pytest.fixture
def api(server):
    """An SDK client holding a token from the SDK's own OAuth call."""
    server.sandbox.reset()
    config = Z.Configuration(host=server.url)
    client = Z.ApiClient(config)
    token = Z.OAuthApi(client).create_token(client_id=server.sandbox.client_id,
                                            client_secret=server.sandbox.client_secret,
                                            grant_type="client_credentials")
    assert token.token_type == "bearer" and token.expires_in > 0
    config.access_token = token.access_token
    return client


def contact(**extra: Any) -> Any:
    return M.CreateAccountContact(first_name="Amy", last_name="Lawrence", country="United States", state="CA",
                                  work_email="amy@example.com", **extra)


def new_account(api, *, link: str = "acc_1", **fields: Any) -> Any:
    request = M.CreateAccountRequest(name="Amy Lawrence", currency="USD", bill_cycle_day=1,
                                     bill_to_contact=contact(), **fields)
    request.additional_properties[LINK] = link
    created = Z.AccountsApi(api).create_account(request, idempotency_key=f"acct-{link}")
    assert created.success is True, created
    return created


def raw(response: Any) -> Any:
    return json.loads(response.raw_data)


def success_of(body: dict) -> tuple[bool, list]:
    return body.get("success"), [r["code"] for r in body.get("reasons", [])]


# -- accounts ---------------------------------------------------------------------------------------------

def test_create_get_and_update_an_account_through_the_sdk(api):
    created = new_account(api, roll_up_usage=True, summary_statement_template_id="tmpl-1",
                          sold_to_same_as_bill_to=True, tagging="vip", crm_id="crm-9")
    accounts = Z.AccountsApi(api)
    got = accounts.get_account_with_http_info(created.account_id)
    assert problems(M.AccountDetailResponse, raw(got)) == []
    detail = got.data
    assert (detail.basic_info.id, detail.basic_info.account_number, detail.basic_info.tags,
            detail.basic_info.summary_statement_template_id) == (created.account_id, created.account_number,
                                                                 "vip", "tmpl-1")
    assert detail.billing_and_payment.roll_up_usage is True
    assert detail.bill_to_contact.id == created.bill_to_contact_id
    assert raw(got)["basicInfo"][LINK] == "acc_1"

    update = M.UpdateAccountRequest(name="Amy L.", roll_up_usage=False, bill_to_contact_id=created.bill_to_contact_id,
                                    bill_to_contact=M.UpdateAccountContact(city="Oakland"))
    assert accounts.update_account(created.account_id, update).success is True
    after = accounts.get_account(created.account_number)
    assert (after.basic_info.name, after.billing_and_payment.roll_up_usage, after.bill_to_contact.city) == (
        "Amy L.", False, "Oakland")


def test_a_contact_id_of_another_account_is_refused(api):
    first, second = new_account(api, link="a"), new_account(api, link="b")
    answer = Z.AccountsApi(api).update_account_with_http_info(
        first.account_id, M.UpdateAccountRequest(sold_to_contact_id=second.bill_to_contact_id))
    assert success_of(raw(answer)) == (False, [53100040])


def _sample(annotation: Any) -> Any:
    """A value of the field's JSON type (validity is not the point: only "Unknown field" is)."""
    text = str(annotation)
    if "bool" in text:
        return False
    if "List" in text:
        return []
    if "datetime.date" in text:
        return "2026-01-01"
    if "int" in text or "float" in text:
        return 1
    if "models" in text or "Dict" in text:
        return {}
    return "x"


def _aliases(model: type) -> dict[str, Any]:
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()
            if name != "additional_properties"}


def _unknown_field_reasons(body: dict) -> list[str]:
    return [r["message"] for r in body.get("reasons", []) if r["code"] % 100 == 21]


@pytest.mark.parametrize("model, path", [("CreateAccountRequest", "/v1/accounts"),
                                         ("UpdateAccountRequest", "/v1/accounts/{key}"),
                                         ("CreateInvoiceRequest", "/v1/invoices"),
                                         ("CreateInvoiceItem", "/v1/invoices"),
                                         ("CreateDiscountItem", "/v1/invoices")])
def test_every_field_of_the_vendor_schema_is_known_to_the_sandbox(api, server, model, path):
    """Each field of the SDK's request model, sent alone on a valid request, is never answered with
    "Unknown field": it is accepted, or refused for its value or as a business rule."""
    import requests
    account = new_account(api)
    headers = {"Authorization": f"Bearer {api.configuration.access_token}"}
    base: dict[str, Any] = {
        "CreateAccountRequest": {"name": "N", "currency": "USD", "billCycleDay": 1,
                                 "billToContact": {"firstName": "A", "lastName": "B"}},
        "UpdateAccountRequest": {},
        "CreateInvoiceRequest": {"accountId": account.account_id, "invoiceDate": "2026-01-31",
                                 "invoiceItems": [{"amount": 1, "serviceStartDate": "2026-01-01", "chargeName": "c"}]},
        "CreateInvoiceItem": {"accountId": account.account_id, "invoiceDate": "2026-01-31"},
        "CreateDiscountItem": {"accountId": account.account_id, "invoiceDate": "2026-01-31"},
    }[model]
    item = {"amount": 1, "serviceStartDate": "2026-01-01", "chargeName": "c"}
    url = server.url + path.replace("{key}", account.account_id)
    method = requests.put if model == "UpdateAccountRequest" else requests.post
    for field, annotation in _aliases(getattr(M, model)).items():
        body = dict(base)
        if model == "CreateInvoiceItem":
            body["invoiceItems"] = [{**item, field: _sample(annotation)}]
        elif model == "CreateDiscountItem":
            body["invoiceItems"] = [{**item, "discountItems": [{"amount": -1, "chargeName": "d",
                                                                field: _sample(annotation)}]}]
        else:
            body[field] = _sample(annotation)
        answer = method(url, json=body, headers=headers, timeout=10).json()
        assert _unknown_field_reasons(answer) == [], (field, answer)


@pytest.mark.parametrize("field, value", [("subscription", {}), ("paymentMethod", {}), ("invoice", True),
                                          ("runBilling", True), ("applicationOrder", ["CreditMemo"]),
                                          ("targetDate", "2026-01-01")])
def test_unmodelled_features_are_refused_as_business_rules_that_say_so(api, field, value):
    import requests
    request = M.CreateAccountRequest(name="N", currency="USD", bill_cycle_day=1, bill_to_contact=contact())
    body = {**json.loads(request.to_json()), field: value}
    parsed = requests.post(f"{api.configuration.host}/v1/accounts", json=body, timeout=10,
                           headers={"Authorization": f"Bearer {api.configuration.access_token}"}).json()
    assert success_of(parsed) == (False, [53100030])
    assert "not supported by the sandbox" in parsed["reasons"][0]["message"]
    assert "subscriptions" in parsed["reasons"][0]["message"]


# -- invoices ---------------------------------------------------------------------------------------------

def new_invoice(api, account: Any, **fields: Any) -> Any:
    items = [M.CreateInvoiceItem(amount=10.1, service_start_date=dt.date(2026, 1, 1),
                                 service_end_date=dt.date(2026, 1, 31), charge_name="Platform fee", uom="Each",
                                 quantity=1, rev_rec_trigger_condition="ContractEffectiveDate",
                                 rev_rec_start_date=dt.date(2026, 1, 1))]
    request = M.CreateInvoiceRequest(account_id=account.account_id, invoice_date=dt.date(2026, 1, 31),
                                     status="Posted", invoice_items=items,
                                     bill_to_contact_id=account.bill_to_contact_id, **fields)
    request.additional_properties["BillingInvoiceId__c"] = "inv_1"
    return Z.InvoicesApi(api).create_standalone_invoice_with_http_info(request, idempotency_key="inv-1")


def test_standalone_invoice_and_its_items_in_the_documented_shapes(api):
    account = new_account(api)
    created = new_invoice(api, account)
    assert problems(M.InvoiceResponse, raw(created)) == []
    invoice = created.data
    assert invoice.success is True and invoice.status == "Posted" and invoice.amount == 10.1
    assert invoice.posted_date is not None and invoice.posted_by  # postedDate/postedBy, not postedOn
    assert invoice.bill_to_contact_id == account.bill_to_contact_id

    invoices = Z.InvoicesApi(api)
    got = invoices.get_invoice_with_http_info(invoice.id)
    assert problems(M.InvoiceResponse, raw(got)) == []  # no invoiceItems, no accountNumber
    assert (got.data.invoice_number, raw(got)["BillingInvoiceId__c"]) == (invoice.invoice_number, "inv_1")

    items = invoices.get_invoice_items_with_http_info(invoice.id)
    assert problems(M.InvoiceItemsResponse, raw(items)) == []
    [item] = items.data.invoice_items
    assert (item.charge_amount, item.unit_of_measure, item.charge_name, item.rev_rec_trigger_condition) == (
        10.1, "Each", "Platform fee", "ContractEffectiveDate")
    # the SDK builds its models without validation (``construct``), so dates stay ISO strings
    assert (str(item.service_start_date), str(item.service_end_date)) == ("2026-01-01", "2026-01-31")


def test_cancel_reverse_and_the_credit_memo_in_the_documented_shapes(api):
    account = new_account(api)
    invoices, query = Z.InvoicesApi(api), Z.ObjectQueriesApi(api)
    new_invoice(api, account)  # Posted
    item = M.CreateInvoiceItem(amount=5, service_start_date=dt.date(2026, 1, 1), charge_name="Seat")
    request = M.CreateInvoiceRequest(account_id=account.account_id, invoice_date=dt.date(2026, 1, 31),
                                     status="Draft", invoice_items=[item])
    draft = invoices.create_standalone_invoice(request, idempotency_key="inv-draft")
    cancelled = invoices.cancel_invoice_with_http_info(draft.id)
    assert problems(M.AsyncOperationResponse, raw(cancelled)) == []
    assert (cancelled.data.success, cancelled.data.id) == (True, draft.id)
    assert invoices.get_invoice(draft.id).status == "Canceled"

    posted = query.query_invoices(filter=["status.EQ:Posted"]).data[0]
    reversed_ = invoices.reverse_invoice_with_http_info(posted.id, M.ReverseInvoiceRequest(
        memo_date=dt.date(2026, 1, 31), apply_effective_date=dt.date(2026, 1, 31), comment="voided"))
    assert problems(M.ReverseInvoiceResponse, raw(reversed_)) == []
    assert reversed_.data.success is True and reversed_.data.credit_memo.id

    row = query.query_invoices_with_http_info(filter=[f"id.EQ:{posted.id}"])
    assert problems(M.QueryInvoicesResponse, raw(row)) == []
    assert row.data.data[0].reversed is True
    memos = query.query_credit_memos_with_http_info(filter=[f"invoiceId.EQ:{posted.id}"])
    assert problems(M.QueryCreditMemosResponse, raw(memos)) == []
    [memo] = memos.data.data
    assert (memo.id, memo.reason_code, memo.total_amount, memo.applied_amount) == (
        reversed_.data.credit_memo.id, "Invoice reversal", 10.1, 10.1)


def test_discount_items_built_by_the_sdk_read_back_in_the_documented_shape(api):
    """``CreateDiscountItem`` on an item (a negative fixed amount, chargeName): the invoice's amount
    includes it, and reading the items back lists it as an ``InvoiceItem`` of its own."""
    account = new_account(api)
    discount = M.CreateDiscountItem(amount=-2.5, charge_name="Discount", description="Spring promotion")
    item = M.CreateInvoiceItem(amount=10, service_start_date=dt.date(2026, 1, 1), charge_name="Platform fee",
                               discount_items=[discount])
    request = M.CreateInvoiceRequest(account_id=account.account_id, invoice_date=dt.date(2026, 1, 31),
                                     invoice_items=[item])
    created = Z.InvoicesApi(api).create_standalone_invoice_with_http_info(request, idempotency_key="inv-d")
    assert problems(M.InvoiceResponse, raw(created)) == []
    assert (created.data.success, created.data.amount) == (True, 7.5)
    items = Z.InvoicesApi(api).get_invoice_items_with_http_info(created.data.id)
    assert problems(M.InvoiceItemsResponse, raw(items)) == []
    charge, applied = items.data.invoice_items
    assert (charge.processing_type, charge.charge_amount) == ("Charge", 10)
    assert (applied.processing_type, applied.charge_amount, applied.charge_name, applied.applied_to_item_id) == (
        "Discount", -2.5, "Discount", charge.id)


# -- usage ------------------------------------------------------------------------------------------------

def test_usage_record_and_usage_file_import_with_its_documented_status_call(api, tmp_path: Path):
    account = new_account(api)
    usage = Z.UsageApi(api)
    record = usage.create_usage(M.CreateUsageRequest(account_number=account.account_number, quantity=2,
                                                     start_date_time=dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc),
                                                     uom="Each", description="r1"), idempotency_key="u-1")
    assert record.success is True and record.id

    csv = tmp_path / "usage.csv"
    csv.write_text("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,PRODUCT_RATE_PLAN_CHARGE_ID\n"
                   f"{account.account_number},Each,3,01/05/2026,,,,\n")
    uploaded = usage.upload_usage_file(file=str(csv), idempotency_key="u-2")
    assert uploaded.success is True and uploaded.size == csv.stat().st_size
    import_id = uploaded.check_import_status.split("/")[-2]
    imports = Z.ImportsApi(api)
    statuses = []
    for _ in range(3):  # the sandbox advances one state per poll: Pending -> Processing -> Completed
        answer = imports.object_get_import_with_http_info(import_id)
        assert problems(M.ProxyGetImport, raw(answer)) == []
        statuses.append(answer.data.status)
    assert statuses == ["Processing", "Completed", "Completed"]
    assert (answer.data.imported_count, answer.data.total_count, answer.data.name) == (1, 1, "usage.csv")

    rows = Z.ObjectQueriesApi(api).query_usages_with_http_info(filter=[f"accountId.EQ:{account.account_id}"],
                                                                sort=["createdDate.ASC"])
    assert problems(M.QueryUsagesResponse, raw(rows)) == []
    assert sorted((u.u_om, u.quantity, u.description) for u in rows.data.data) == [("Each", 2, "r1"),
                                                                                   ("Each", 3, None)]


def test_an_unknown_import_is_a_not_found_in_the_object_api_shape(api):
    with pytest.raises(Z.ApiException) as caught:
        Z.ImportsApi(api).object_get_import("nope")
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["Success"] is False


# -- object query -----------------------------------------------------------------------------------------

def test_object_query_filters_sort_fields_and_expand(api):
    amy = new_account(api, link="acc_1")
    bob = Z.AccountsApi(api).create_account(M.CreateAccountRequest(
        name="Bob", currency="EUR", bill_cycle_day=2, bill_to_contact=contact()), idempotency_key="bob")
    query = Z.ObjectQueriesApi(api)

    both = query.query_accounts(sort=["name.DESC"], page_size=5)
    assert [a.name for a in both.data] == ["Bob", "Amy Lawrence"]
    assert [a.name for a in query.query_accounts(filter=["currency.NE:USD"]).data] == ["Bob"]
    assert [a.name for a in query.query_accounts(filter=["name.SW:Am"]).data] == ["Amy Lawrence"]
    assert [a.name for a in query.query_accounts(filter=["currency.IN:[EUR,GBP]"]).data] == ["Bob"]
    assert [a.name for a in query.query_accounts(filter=[f"{LINK}.EQ:acc_1", "status.EQ:Active"]).data] == [
        "Amy Lawrence"]
    assert bob.success is True and amy.success is True


def test_object_query_answers_what_it_cannot_do_in_the_documented_400_shape(api):
    new_account(api)
    for bad in (["billCycleDay.GT:1"], ["name.XX:a"], ["createdDate.GT:yesterday"]):
        with pytest.raises(Z.ApiException) as caught:
            Z.ObjectQueriesApi(api).query_accounts(filter=bad)
        assert caught.value.status == 400
        error = M.CommonErrorResponse.from_json(caught.value.body)  # {"code": <int>, "message": ...}
        assert error.code == 50000027 and error.message


def test_object_query_by_key_fields_and_expansions(api):
    account = new_account(api)
    query = Z.ObjectQueriesApi(api)
    by_key = query.query_account_by_key_with_http_info(account.account_number, expand=["billTo", "invoices"])
    assert problems(M.ExpandedAccount, raw(by_key)) == []
    assert (by_key.data.id, by_key.data.bill_to.first_name, by_key.data.invoices) == (account.account_id, "Amy", [])

    only = query.query_accounts_with_http_info(filter=[f"{LINK}.EQ:acc_1"], fields=["id", "name"])
    assert raw(only)["data"] == [{"id": account.account_id, "name": "Amy Lawrence"}]

    since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    new_invoice(api, account)
    invoices = query.query_invoices_with_http_info(filter=[f"updatedDate.GT:{since}"],
                                                   expand=["invoiceItems", "account"])
    assert problems(M.QueryInvoicesResponse, raw(invoices)) == []
    [invoice] = invoices.data.data
    assert (invoice.account.id, invoice.invoice_items[0].charge_amount, invoice.invoice_items[0].u_om) == (
        account.account_id, 10.1, "Each")
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert query.query_invoices(filter=[f"updatedDate.GT:{later}"]).data == []


def test_an_unknown_account_key_is_a_404(api):
    with pytest.raises(Z.ApiException) as caught:
        Z.ObjectQueriesApi(api).query_account_by_key("A404")
    assert caught.value.status == 404
    assert M.CommonErrorResponse.from_json(caught.value.body).code == 50000040

