"""The clients' list calls against both sandboxes over real HTTP: Zuora Object Query (pageSize 99,
cursor/nextPage, updatedDate filter), Zuora's paged v1 list of invoice items (pageSize 40, page), and Togai
GET /accounts, GET /invoices and GET /settings (nextToken, 50 a page, status and time filters), each read to
its end with more rows than one page holds; the sandboxes refusing a page larger than the vendor's limit in
the vendor's own error shape (so a call that would fail on a real tenant fails here); and hostile paging (a
cursor that repeats) refused."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
import requests_mock

from integration.billing.togai.client import BillingClient
from integration.clients.bodies import dumps_json
from integration.domain.errors import InvalidData, MalformedResponse, ZuoraRejected
from integration.domain.periods import parse_period
from integration.flows.totals import totals_report
from integration.zuora import client as zuora_module
from integration.zuora.client import ZuoraClient
from integration_sandbox.billing import create_billing_sandbox
from integration_sandbox.server import ServerThread
from integration_sandbox.zuora import create_zuora_sandbox
from tests.stack_helpers import sandbox_billing_account
from tests.test_invoice_flow import PERIOD

ZUORA_ID, ZUORA_SECRET, TOKEN = "list-client", "list-secret-7a1c", "list-token-2b9d"


@pytest.fixture(scope="module")
def servers():
    zuora_app = create_zuora_sandbox(client_id=ZUORA_ID, client_secret=ZUORA_SECRET)
    billing_app = create_billing_sandbox(api_token=TOKEN)
    zs, bs = ServerThread(zuora_app).start(), ServerThread(billing_app).start()
    yield zs, bs
    zs.stop()
    bs.stop()
    billing_app.extensions["billing_sandbox"].close()
    zuora_app.extensions["zuora_sandbox"].close()


@pytest.fixture
def zuora(servers):
    requests.post(f"{servers[0].url}/_sandbox/reset", timeout=10)
    return ZuoraClient(servers[0].url, ZUORA_ID, ZUORA_SECRET)


@pytest.fixture
def billing(servers):
    requests.post(f"{servers[1].url}/_sandbox/reset", timeout=10)
    return BillingClient(servers[1].url, TOKEN)


def zuora_requests(servers, path: str) -> list[dict]:
    state = requests.get(f"{servers[0].url}/_sandbox/state", timeout=10).json()
    return [r for r in state["requests"] if r["method"] == "GET" and r["path"] == path]


def billing_requests(servers, path: str) -> list[dict]:
    state = requests.get(f"{servers[1].url}/_sandbox/state", timeout=10).json()
    return [r for r in state["requests"] if r["method"] == "GET" and r["path"] == path]


def make_zuora_accounts(zuora: ZuoraClient, n: int) -> list[str]:
    return [zuora.create_account({"name": f"Account {i}", "currency": "USD", "billCycleDay": 1, "autoPay": False,
                                  "billToContact": {"firstName": "Ada", "lastName": f"L{i}", "country": "US"}},
                                 idempotency_key=f"list-test-{i}").id for i in range(n)]


def test_zuora_accounts_stream_every_page_of_99(zuora, servers):
    created = make_zuora_accounts(zuora, 120)
    stream = zuora.list_accounts()
    first = next(stream)
    assert len(zuora_requests(servers, "/object-query/accounts")) == 1  # lazily: one page so far
    rest = list(stream)
    rows = [first, *rest]
    assert sorted(r.id for r in rows) == sorted(created)  # each once, none missing
    assert rows == sorted(rows, key=lambda r: (r.updated, r.id))  # stable order for paging
    pages = zuora_requests(servers, "/object-query/accounts")
    assert len(pages) == 2
    assert all("pageSize=99" in p["query"] for p in pages)


def test_zuora_accounts_updated_since_filters_with_gt(zuora, servers):
    make_zuora_accounts(zuora, 3)
    assert list(zuora.list_accounts(updated_since=datetime.now(timezone.utc) + timedelta(hours=1))) == []
    assert len(list(zuora.list_accounts(updated_since=datetime.now(timezone.utc) - timedelta(hours=1)))) == 3
    assert "updatedDate.GT" in requests.utils.unquote(zuora_requests(servers, "/object-query/accounts")[-1]["query"])
    naive = datetime(2024, 1, 1)  # noqa: DTZ001 - the naive time the client must refuse
    with pytest.raises(ValueError, match="timezone-aware"):
        list(zuora.list_accounts(updated_since=naive))


def test_billing_accounts_stream_by_next_token(billing, servers):
    for i in range(60):
        sandbox_billing_account(servers[1].url, f"acc-{i:03d}")
    stream = billing.list_accounts()
    assert next(stream)["id"] == "acc-000"
    assert len(billing_requests(servers, "/accounts")) == 1
    assert [a["id"] for a in stream] == [f"acc-{i:03d}" for i in range(1, 60)]
    assert len(billing_requests(servers, "/accounts")) == 2


def test_billing_invoices_filter_by_status_and_time(billing, servers):
    sandbox_billing_account(servers[1].url, "acc-1")
    for day, finalize in ((1, True), (2, False), (3, True)):
        body = {"accountId": "acc-1", "id": f"inv-{day}", "startDate": "2024-07-01T00:00:00Z",
                "endDate": f"2024-08-0{day}T00:00:00Z", "finalize": finalize,
                "fixed": [{"description": "Fee", "amount": Decimal("1.10")}]}
        resp = requests.post(f"{servers[1].url}/_sandbox/invoices", data=dumps_json(body),
                             headers={"Content-Type": "application/json"}, timeout=10)
        assert resp.status_code == 201, resp.text
    due = [i["id"] for i in billing.list_invoices(status="DUE")]
    assert due == ["inv-1", "inv-3"]
    since = [i["id"] for i in billing.list_invoices(start=datetime(2024, 8, 2, tzinfo=timezone.utc),
                                                    end=datetime(2024, 8, 3, tzinfo=timezone.utc))]
    assert since == ["inv-2"]
    with pytest.raises(InvalidData):
        list(billing.list_invoices(status="due; drop"))


def test_a_cursor_that_repeats_is_refused_not_followed_forever():
    with requests_mock.Mocker() as m:
        m.get("https://billing.test/accounts", json={"data": [{"id": "a"}], "nextToken": "same"})
        client = BillingClient("https://billing.test", "t", sleep=lambda s: None)
        with pytest.raises(MalformedResponse):
            list(client.list_accounts())
        assert len(m.request_history) == 2
        m.get("https://billing.test/invoices", json={"data": [{"no": "id"}]})
        with pytest.raises(MalformedResponse):
            list(client.list_invoices())


# -- page limits: every list read to its end at the vendor's page size, and no larger ---------------------

def zuora_invoice(zuora: ZuoraClient, account_id: str, n_items: int, key: str) -> str:
    items = [{"amount": Decimal(f"{i}.01"), "serviceStartDate": "2024-08-01", "chargeName": f"Line {i:03d}"}
             for i in range(n_items)]
    return zuora.create_invoice({"accountId": account_id, "invoiceDate": "2024-08-31", "invoiceItems": items},
                                idempotency_key=key).id


def query_of(request: dict) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in requests.utils.unquote(request["query"]).split("&") if pair)


def test_zuora_invoice_items_are_read_40_a_page_to_the_last(zuora, servers):
    [account] = make_zuora_accounts(zuora, 1)
    invoice_id = zuora_invoice(zuora, account, 85, "items-85")
    items = zuora.get_invoice_items(invoice_id)
    assert [i.charge_name for i in items] == [f"Line {i:03d}" for i in range(85)]  # each once, in order
    assert sum(i.charge_amount for i in items) == sum(Decimal(f"{i}.01") for i in range(85))
    pages = [query_of(r) for r in zuora_requests(servers, f"/v1/invoices/{invoice_id}/items")]
    assert pages == [{"page": "1", "pageSize": "40"}, {"page": "2", "pageSize": "40"},
                     {"page": "3", "pageSize": "40"}]
    exactly_40 = zuora_invoice(zuora, account, 40, "items-40")
    assert len(zuora.get_invoice_items(exactly_40)) == 40  # a full last page and no nextPage: one call
    assert len(zuora_requests(servers, f"/v1/invoices/{exactly_40}/items")) == 1


def test_zuora_object_query_invoices_and_usages_are_read_99_a_page(zuora, servers):
    [account] = make_zuora_accounts(zuora, 1)
    for n in range(100):
        zuora.create_usage({"AccountId": account, "Quantity": n, "StartDateTime": "2024-08-01T00:00:00Z",
                            "UOM": "Each", "Description": f"usage {n}"}, idempotency_key=f"usage-{n}")
    usages = zuora.find_usages(account, created_since=datetime.now(timezone.utc) - timedelta(hours=1))
    assert sorted(u.quantity for u in usages) == list(range(100))
    for n in range(100):
        zuora_invoice(zuora, account, 1, f"one-item-{n}")
    invoices = list(zuora.list_invoices(filters=[("accountId", "EQ", account)]))
    assert len({i.id for i in invoices}) == len(invoices) == 100
    for path in ("/object-query/usages", "/object-query/invoices"):
        pages = [query_of(r) for r in zuora_requests(servers, path)]
        assert len(pages) == 2 and all(p["pageSize"] == "99" for p in pages), (path, pages)
        assert "cursor" not in pages[0] and pages[1]["cursor"]


def test_billing_invoices_and_settings_are_read_50_a_page_to_the_last(billing, servers):
    sandbox_billing_account(servers[1].url, "acc-1", webhook=False)
    for n in range(51):
        body = {"accountId": "acc-1", "id": f"inv-{n:02d}", "startDate": "2024-07-01T00:00:00Z",
                "endDate": "2024-08-01T00:00:00Z", "fixed": [{"description": "Fee", "amount": Decimal("1.00")}]}
        resp = requests.post(f"{servers[1].url}/_sandbox/invoices?webhook=false", data=dumps_json(body),
                             headers={"Content-Type": "application/json"}, timeout=10)
        assert resp.status_code == 201, resp.text
    assert [i["id"] for i in billing.list_invoices()] == [f"inv-{n:02d}" for n in range(51)]
    for n in range(51):
        billing.create_setting({"id": f"s-{n:02d}", "entityType": "ACCOUNT", "entityId": "acc-1", "namespace": "x",
                                "name": f"n{n:02d}", "value": str(n), "dataType": "STRING"})
    assert [s["id"] for s in billing.list_settings("ACCOUNT", "acc-1", "x")] == [f"s-{n:02d}" for n in range(51)]
    for path in ("/invoices", "/settings"):
        pages = [r["query"] for r in billing_requests(servers, path)]
        assert len(pages) == 2 and all(p["pageSize"] == "50" for p in pages), (path, pages)


def test_the_zuora_sandbox_refuses_a_page_larger_than_zuora_gives(zuora, servers, monkeypatch):
    [account] = make_zuora_accounts(zuora, 1)
    invoice_id = zuora_invoice(zuora, account, 2, "refused-pages")
    token = requests.post(f"{servers[0].url}/oauth/token", timeout=10, data={
        "client_id": ZUORA_ID, "client_secret": ZUORA_SECRET, "grant_type": "client_credentials"}).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    items = f"{servers[0].url}/v1/invoices/{invoice_id}/items"
    for query in ("pageSize=41", "pageSize=200", "pageSize=0", "pageSize=forty", "page=0&pageSize=40"):
        resp = requests.get(f"{items}?{query}", headers=auth, timeout=10)
        body = resp.json()
        assert (resp.status_code, body["success"], [r["code"] for r in body["reasons"]]) == (
            400, False, [50000027]), query  # Zuora's CommonResponse, category 27: invalid query parameter
        assert "processId" in body and "invoiceItems" not in body
    assert requests.get(f"{items}?pageSize=40", headers=auth, timeout=10).json()["success"] is True
    default = requests.get(items, headers=auth, timeout=10).json()
    assert len(default["invoiceItems"]) == 2 and "nextPage" not in default
    one = requests.get(f"{items}?pageSize=1", headers=auth, timeout=10).json()
    assert [i["chargeName"] for i in one["invoiceItems"]] == ["Line 000"] and "page=2" in one["nextPage"]

    query = requests.get(f"{servers[0].url}/object-query/accounts?pageSize=100", headers=auth, timeout=10)
    assert query.status_code == 400 and set(query.json()) == {"code", "message"}  # CommonErrorResponse
    assert query.json()["code"] == 50000027 and "99" in query.json()["message"]

    # The client as it was (pageSize=200 on the items): a real tenant's refusal, caught by a test.
    monkeypatch.setattr(zuora_module, "INVOICE_ITEM_PAGE_SIZE", 200)
    with pytest.raises(ZuoraRejected, match="50000027"):
        zuora.get_invoice_items(invoice_id)


def test_the_billing_sandbox_refuses_a_page_larger_than_togai_documents(billing, servers):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    base = servers[1].url
    over = requests.get(f"{base}/invoices?pageSize=51", headers=auth, timeout=10)
    assert (over.status_code, over.json()) == (422, {"message": "pageSize must be an integer from 1 to 50"})
    assert requests.get(f"{base}/invoices?pageSize=0", headers=auth, timeout=10).status_code == 400
    assert requests.get(f"{base}/invoices?pageSize=50", headers=auth, timeout=10).status_code == 200
    for path in ("/accounts", "/customers", "/settings"):
        resp = requests.get(f"{base}{path}?pageSize=51", headers=auth, timeout=10)
        assert (resp.status_code, resp.json()) == (400, {"message": "pageSize must be an integer from 1 to 50"})


@pytest.mark.both_engines
def test_the_totals_report_reads_a_zuora_invoice_of_more_items_than_one_page(stack):
    stack.linked_account("acc-1")
    lines = [{"description": f"Line {n}", "amount": Decimal(f"{n}.25")} for n in range(1, 46)]
    invoice = stack.invoice(id="inv-45", fixed=lines)
    stack.finalized(invoice["id"])
    stack.worker.drain()
    [zuora_invoice_row] = stack.zuora_state()["invoices"]

    report = totals_report(stack.services.db, stack.services.zuora, stack.services.billing,
                           parse_period(PERIOD["invoiceDate"][:7]))
    [row] = report.rows
    assert row.matches and row.billing_total == row.zuora_total == sum(Decimal(f"{n}.25") for n in range(1, 46))
    item_pages = stack.zuora_requests("GET", f"/v1/invoices/{zuora_invoice_row['id']}/items")
    assert [r["query"] for r in item_pages] == ["page=1&pageSize=40", "page=2&pageSize=40"]  # 45 items
