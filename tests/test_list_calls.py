"""The clients' list calls against both sandboxes over real HTTP: Zuora Object Query (pageSize 99,
cursor/nextPage, updatedDate filter) and Togai GET /accounts and GET /invoices (nextToken, status and
time filters), streamed page by page; and hostile paging (a cursor that repeats) refused."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
import requests_mock

from integration.clients.billing import BillingClient
from integration.clients.bodies import dumps_json
from integration.clients.zuora import ZuoraClient
from integration.domain.errors import InvalidData, MalformedResponse
from integration_sandbox.billing import create_billing_sandbox
from integration_sandbox.server import ServerThread
from integration_sandbox.zuora import create_zuora_sandbox
from tests.stack_helpers import sandbox_billing_account

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
                                 idempotency_key=f"list-test-{i}")["accountId"] for i in range(n)]


def test_zuora_accounts_stream_every_page_of_99(zuora, servers):
    created = make_zuora_accounts(zuora, 120)
    stream = zuora.list_accounts()
    first = next(stream)
    assert len(zuora_requests(servers, "/object-query/accounts")) == 1  # lazily: one page so far
    rest = list(stream)
    rows = [first, *rest]
    assert sorted(r["id"] for r in rows) == sorted(created)  # each once, none missing
    assert rows == sorted(rows, key=lambda r: (r["updatedDate"], r["id"]))  # stable order for paging
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
