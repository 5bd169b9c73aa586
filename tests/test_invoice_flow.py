"""Flow 3 against both sandboxes over real HTTP: a finalized billing invoice → one Zuora standalone
invoice, exact to the cent, exactly once; usage-synced meters left off it and queued as usage."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
import requests

from integration.clients.bodies import dumps_json
from integration.config import Secret
from integration.domain.errors import INVALID_DATA, MISSING_MAPPING
from integration.flows import build_handlers
from integration.flows.invoices import Line, invoice_items, truncate
from integration.services import Services
from integration.store import mappings, meters
from integration.worker.loop import Worker
from integration.zuora.client import ZuoraClient
from integration_sandbox.billing import create_billing_sandbox
from integration_sandbox.server import ServerThread
from integration_sandbox.zuora import create_zuora_sandbox
from tests.conftest import make_config
from tests.engines import store_sql
from tests.stack_helpers import sandbox_billing_account

ZUORA_ID, ZUORA_SECRET = "zuora-flow-client", "zuora-flow-secret-31f9"
pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

BILLING_TOKEN = "billing-flow-token-8d2c"
PERIOD = {"startDate": "2024-07-01T00:00:00Z", "endDate": "2024-08-01T00:00:00Z",
          "invoiceDate": "2024-08-01T00:00:00Z", "dueDate": "2024-08-31T00:00:00Z"}


def loads(text: str):
    return json.loads(text, parse_float=Decimal)


class Sandboxes:
    """Both sandboxes on localhost, shared by a module's tests (reset before each) to keep it fast."""

    def __init__(self):
        self.zuora_app = create_zuora_sandbox(client_id=ZUORA_ID, client_secret=ZUORA_SECRET)
        self.billing_app = create_billing_sandbox(api_token=BILLING_TOKEN)
        self.zuora_server = ServerThread(self.zuora_app).start()
        self.billing_server = ServerThread(self.billing_app).start()

    def close(self) -> None:
        self.zuora_server.stop()
        self.billing_server.stop()
        self.billing_app.extensions["billing_sandbox"].close()
        self.zuora_app.extensions["zuora_sandbox"].close()


class Stack:
    """Fresh sandbox state, the service's store and a worker with the real handlers."""

    def __init__(self, sandboxes: Sandboxes, tmp_path, database_url: str | None = None):
        self.zuora_app, self.billing_app = sandboxes.zuora_app, sandboxes.billing_app
        self.zuora_server, self.billing_server = sandboxes.zuora_server, sandboxes.billing_server
        for server in (self.zuora_server, self.billing_server):
            assert requests.post(f"{server.url}/_sandbox/reset", timeout=10).status_code == 200
        config = make_config(tmp_path, database_url=database_url or f"sqlite:///{tmp_path}/integration.db",
                             zuora_base_url=self.zuora_server.url, zuora_client_id=ZUORA_ID,
                             zuora_client_secret=Secret(ZUORA_SECRET), billing_base_url=self.billing_server.url,
                             billing_api_token=Secret(BILLING_TOKEN))
        self.services = Services.from_config(config)
        self.services.db.migrate()
        # Same client as production, but polling a usage import needs no real waiting here.
        self.services.__dict__["zuora"] = ZuoraClient(self.zuora_server.url, ZUORA_ID, ZUORA_SECRET,
                                                      sleep=lambda seconds: None)
        self.handlers = build_handlers(self.services)
        self.worker = Worker(self.services.inbox, self.handlers, poll_interval=0.01)
        self._webhook = 0

    def close(self) -> None:
        self.services.db.close()

    # -- sandboxes -------------------------------------------------------------------------------

    def zuora_state(self) -> dict:
        return loads(requests.get(f"{self.zuora_server.url}/_sandbox/state", timeout=10).text)

    def zuora_requests(self, method: str, path: str) -> list[dict]:
        return [r for r in self.zuora_state()["requests"] if r["method"] == method and r["path"] == path]

    def billing_account(self, account_id: str = "acc-1", currency: str = "USD") -> None:
        sandbox_billing_account(self.billing_server.url, account_id, currency=currency)

    def zuora_account(self, billing_id: str = "acc-1", currency: str = "USD") -> dict:
        """A Zuora account linked to the billing account (as flow 1 or 2 would have left it)."""
        created = self.services.zuora.create_account(
            {"name": "Grace Hopper Inc", "currency": currency, "billCycleDay": 1, "autoPay": False,
             "billToContact": {"firstName": "Grace", "lastName": "Hopper", "country": "United States"}},
            idempotency_key=f"test-account:{billing_id}")
        with self.services.db.transaction() as conn:
            mappings.link("account", zuora_id=created.id, zuora_number=created.number,
                          billing_id=billing_id, origin="linked", inbox=self.services.inbox)(conn)
        return {"accountId": created.id, "accountNumber": created.number}  # Zuora's names, as the tests read them

    def linked_account(self, account_id: str = "acc-1", currency: str = "USD") -> dict:
        self.billing_account(account_id, currency)
        return self.zuora_account(account_id, currency)

    def invoice(self, **spec) -> dict:
        body = {"accountId": "acc-1", **PERIOD, **spec}
        resp = requests.post(f"{self.billing_server.url}/_sandbox/invoices", data=dumps_json(body),
                             headers={"Content-Type": "application/json"}, timeout=10)
        assert resp.status_code == 201, resp.text
        return loads(resp.text)

    # -- the service ----------------------------------------------------------------------------

    def finalized(self, invoice_id: str) -> str:
        """What the webhook stores for one ``invoice.finalized`` delivery."""
        self._webhook += 1
        return self.services.inbox.record(
            source="billing", type="invoice.finalized", object_type="invoice", object_id=invoice_id,
            object_key=f"billing-invoice:{invoice_id}", dedupe_key=f"billing:msg_{self._webhook}",
            payload={"webhook_id": f"msg_{self._webhook}"}).event_id

    def event(self, event_id: str):
        return self.services.inbox.get(event_id)

    def events(self, type: str) -> list[dict]:
        return [dict(r) for r in store_sql(self.services.db).execute(
            "SELECT * FROM events WHERE type = ? ORDER BY created_at", (type,)).fetchall()]

    def mappings(self, type: str) -> list[dict]:
        return [dict(r) for r in store_sql(self.services.db).execute(
            "SELECT * FROM id_mappings WHERE type = ? ORDER BY id", (type,)).fetchall()]

    def meter(self, meter_id: str, mode: str, *, uom: str = "Each", sub: str = "A-S00000001",
              charge: str = "C-00000001") -> None:
        meters.put_meter(self.services.db, meter_id, zuora_subscription_number=sub, zuora_charge_number=charge,
                         uom=uom, mode=mode)


def only_invoice(stack) -> dict:
    invoices = stack.zuora_state()["invoices"]
    assert len(invoices) == 1, invoices
    return invoices[0]


# -- the happy path ---------------------------------------------------------------------------------------

def test_fixed_and_usage_lines_become_one_exact_invoice_and_queued_usage(stack):
    account = stack.linked_account()
    stack.meter("m-api", "quantity", uom="API Call")
    stack.meter("m-storage", "revenue", uom="USD")
    invoice = stack.invoice(
        fixed=[{"description": "Platform fee", "amount": Decimal("99.99")},
               {"description": "Seats", "quantity": 3, "valuePerQuantity": Decimal("10.10")}],
        usage=[{"meterId": "m-api", "name": "API calls", "quantity": 1200, "valuePerQuantity": Decimal("0.002")},
               {"meterId": "m-storage", "name": "Storage", "quantity": Decimal("12.5"),
                "valuePerQuantity": Decimal("0.1")},
               {"meterId": "m-sms", "name": "SMS", "quantity": 7, "valuePerQuantity": Decimal("0.05")}])
    assert invoice["totalAmount"] == Decimal("99.99") + Decimal("30.30") + Decimal("2.4") + Decimal("1.25") + \
        Decimal("0.35")
    event_id = stack.finalized(invoice["id"])

    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    zinv = only_invoice(stack)
    assert zinv["accountId"] == account["accountId"]
    assert (zinv["invoiceDate"], zinv["dueDate"], zinv["status"]) == ("2024-08-01", "2024-08-31", "Posted")
    items = zinv["invoiceItems"]
    # The unmapped meter (SMS) stays on the invoice; the two usage-synced meters do not.
    assert [(i["chargeName"], i["amount"]) for i in items] == [
        ("Platform fee", Decimal("99.99")), ("Seats", Decimal("30.30")), ("SMS", Decimal("0.35"))]
    assert {(i["serviceStartDate"], i["serviceEndDate"]) for i in items} == {("2024-07-01", "2024-07-31")}
    expected = invoice["totalAmount"] - Decimal("2.4") - Decimal("1.25")
    assert sum(i["amount"] for i in items) == zinv["amount"] == expected == Decimal("130.64")
    # One Idempotency-Key: the billing invoice ID and the event's attempt series; the invoice names its
    # billing twin in ZUORA_INVOICE_LINK_FIELD.
    posts = stack.zuora_requests("POST", "/v1/invoices")
    assert [p["idempotency_key"] for p in posts] == [f"billing-invoice:{invoice['id']}:"
                                                      f"{stack.event(event_id).series_key}"]
    assert zinv["BillingInvoiceId__c"] == invoice["id"]
    [row] = stack.mappings("invoice")
    assert (row["zuora_id"], row["zuora_number"], row["billing_id"], row["origin"]) == (
        zinv["id"], zinv["invoiceNumber"], invoice["id"], "billing")
    # The usage follow-up ran in the same drain: one record per synced meter.
    [usage_event] = stack.events("invoice.usage")
    assert (usage_event["status"], usage_event["object_type"], usage_event["object_id"], usage_event["object_key"],
            usage_event["dedupe_key"]) == ("done", "usage", invoice["id"], f"billing-invoice-usage:{invoice['id']}",
                                           f"invoice-usage:{invoice['id']}")
    usage = {u["UOM"]: u for u in stack.zuora_state()["usage"]}
    assert set(usage) == {"API Call", "USD"}
    assert usage["API Call"]["Quantity"] == Decimal("1200")
    assert usage["USD"]["Quantity"] == Decimal("1.25")


def test_decimal_sums_are_exact_and_sub_cent_lines_are_allocated_to_the_cent(stack):
    stack.linked_account()
    invoice = stack.invoice(fixed=[
        {"description": "Tenth", "amount": Decimal("0.1")},
        {"description": "Fifth", "amount": Decimal("0.2")},
        {"description": "Third A", "quantity": 1, "valuePerQuantity": Decimal("0.333333333333")},
        {"description": "Third B", "quantity": 1, "valuePerQuantity": Decimal("0.333333333333")},
        {"description": "Third C", "quantity": 1, "valuePerQuantity": Decimal("0.333333333334")},
        {"description": "Three thirds", "quantity": 3, "valuePerQuantity": Decimal("0.33")}])
    assert invoice["totalAmount"] == Decimal("2.29")
    stack.finalized(invoice["id"])
    stack.worker.drain()

    items = only_invoice(stack)["invoiceItems"]
    amounts = [i["amount"] for i in items]
    # 0.1 + 0.2 is 0.3, never 0.30000000000000004; the thirds add up to exactly 1.00, not 0.99.
    assert amounts[:2] == [Decimal("0.1"), Decimal("0.2")] and sum(amounts[:2]) == Decimal("0.3")
    assert amounts[2:5] == [Decimal("0.33"), Decimal("0.33"), Decimal("0.34")]
    assert amounts[5] == Decimal("0.99")
    assert sum(amounts) == Decimal("2.29") == invoice["totalAmount"]
    assert items[2]["description"] == "1 × 0.333333333333; exact amount 0.333333333333"
    assert items[5]["description"] == "3 × 0.33"


def test_usage_only_invoice_creates_no_zuora_invoice(stack):
    stack.linked_account()
    stack.meter("m-api", "quantity")
    invoice = stack.invoice(usage=[{"meterId": "m-api", "name": "API", "quantity": 10,
                                    "valuePerQuantity": Decimal("0.5")}])
    event_id = stack.finalized(invoice["id"])
    stack.worker.drain()
    assert stack.event(event_id).status == "done"
    assert stack.zuora_state()["invoices"] == []
    assert stack.zuora_requests("POST", "/v1/invoices") == []
    assert stack.mappings("invoice") == []
    assert [u["Quantity"] for u in stack.zuora_state()["usage"]] == [Decimal("10")]


def test_a_draft_is_not_pushed(stack):
    stack.linked_account()
    invoice = stack.invoice(finalize=False, fixed=[{"description": "Fee", "amount": 5}])
    event_id = stack.finalized(invoice["id"])
    stack.worker.drain()
    event = stack.event(event_id)
    assert event.status == "done"
    assert stack.zuora_state()["invoices"] == [] and stack.mappings("invoice") == []
    assert stack.events("invoice.usage") == []


# -- exactly once -------------------------------------------------------------------------------------

def test_five_deliveries_make_one_invoice(stack):
    stack.linked_account()
    stack.meter("m-api", "quantity")
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": Decimal("12.34")}],
                            usage=[{"meterId": "m-api", "name": "API", "quantity": 3,
                                    "valuePerQuantity": Decimal("1")}])
    ids = []
    for _ in range(5):  # one after another, so each is its own run (pending repeats would coalesce)
        ids.append(stack.finalized(invoice["id"]))
        stack.worker.drain()
    assert len(set(ids)) == 5 and all(stack.event(i).status == "done" for i in ids)
    assert all(stack.event(i).attempts == 1 for i in ids)
    assert only_invoice(stack)["amount"] == Decimal("12.34")
    assert len(stack.zuora_requests("POST", "/v1/invoices")) == 1  # later runs see the mapping
    assert len(stack.mappings("invoice")) == 1
    assert len(stack.events("invoice.usage")) == 1
    assert len(stack.zuora_state()["usage"]) == 1


def test_crash_after_the_post_does_not_make_a_second_invoice(stack):
    stack.linked_account()
    stack.meter("m-api", "revenue")
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": Decimal("7.77")}],
                            usage=[{"meterId": "m-api", "name": "API", "quantity": 3,
                                    "valuePerQuantity": Decimal("0.5")}])
    event_id = stack.finalized(invoice["id"])
    # The flow pushes, then the process dies before the outcome is committed.
    lost = stack.handlers["invoice.finalized"](stack.event(event_id))
    assert lost.writes and stack.mappings("invoice") == []
    stack.worker.drain()

    zinv = only_invoice(stack)
    # The rerun looked the invoice up by its link field and linked it instead of posting again.
    assert len(stack.zuora_requests("POST", "/v1/invoices")) == 1
    assert len(stack.zuora_requests("GET", "/object-query/invoices")) == 2
    [row] = stack.mappings("invoice")
    assert row["zuora_id"] == zinv["id"]
    assert [u["Quantity"] for u in stack.zuora_state()["usage"]] == [Decimal("1.5")]


# -- waiting for the account ---------------------------------------------------------------------------

def test_unlinked_account_waits_then_completes_when_the_account_is_linked(stack):
    stack.billing_account("acc-1")
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": Decimal("42.00")}])
    event_id = stack.finalized(invoice["id"])
    stack.worker.drain()
    event = stack.event(event_id)
    assert (event.status, event.error_code, event.waiting_for) == ("failed", MISSING_MAPPING,
                                                                   "billing-account:acc-1")
    assert stack.zuora_state()["invoices"] == []

    # The billing account.created flow links the account (creating its Zuora twin): no operator action.
    stack.services.inbox.record(source="billing", type="account.created", object_type="account",
                                object_id="acc-1", object_key="billing-account:acc-1", dedupe_key="billing:acc")
    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    [account] = stack.mappings("account")
    zinv = only_invoice(stack)
    assert zinv["accountId"] == account["zuora_id"] and zinv["amount"] == Decimal("42.00")


# -- invalid data ---------------------------------------------------------------------------------------

def test_currency_mismatch_is_invalid_data_and_posts_nothing(stack):
    stack.billing_account("acc-1", currency="EUR")
    stack.zuora_account("acc-1", currency="USD")
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": 5}])
    event_id = stack.finalized(invoice["id"])
    stack.worker.drain()
    event = stack.event(event_id)
    assert (event.status, event.error_code) == ("failed", INVALID_DATA)
    assert event.last_error.startswith("invoiceDetails.account.invoiceCurrency: the billing invoice is in EUR")
    assert stack.zuora_requests("POST", "/v1/invoices") == []


def test_an_invoice_that_does_not_add_up_is_invalid_data(stack):
    stack.linked_account()
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": Decimal("10.00")}])
    sandbox = stack.billing_app.extensions["billing_sandbox"]
    with sandbox._lock:  # a tampered total: the sandbox itself always adds up
        sandbox._invoices[invoice["id"]] = {**sandbox._invoices[invoice["id"]], "totalAmount": Decimal("10.01")}
    event_id = stack.finalized(invoice["id"])
    stack.worker.drain()
    event = stack.event(event_id)
    assert (event.status, event.error_code) == ("failed", INVALID_DATA)
    assert event.last_error == ("totalAmount: the invoice's 1 rate-card lines sum to 10.00, not to its "
                                "totalAmount 10.01")
    assert stack.zuora_requests("POST", "/v1/invoices") == []


def test_long_charge_names_are_cut_on_a_word_boundary_and_kept_whole_in_the_description(stack):
    stack.linked_account()
    name = "Enterprise analytics platform " * 8  # 240 characters
    invoice = stack.invoice(fixed=[{"description": name.strip(), "amount": 1}])
    stack.finalized(invoice["id"])
    stack.worker.drain()
    [item] = only_invoice(stack)["invoiceItems"]
    assert len(item["chargeName"]) <= 130 and item["chargeName"].endswith("platform…")
    assert item["description"].startswith(name.strip())


def test_more_than_a_thousand_invoice_lines_is_invalid_data(stack):
    lines = [{"type": "FIXED_FEE_RATE_CARD_AMOUNT", "description": f"L{i}", "value": Decimal(1)}
             for i in range(1001)]
    invoice = {"id": "inv-big", "ownerId": "acc-1", "status": "DUE", "finalizingStatus": "FINALIZED",
               "revenueInfo": {"type": "TOTAL_AMOUNT", "value": Decimal(1001), "lineItems": lines},
               "totalAmount": Decimal(1001), **PERIOD, "endDateInclusive": "2024-07-31T23:59:59.999Z"}
    stack.linked_account()
    sandbox = stack.billing_app.extensions["billing_sandbox"]
    with sandbox._lock:  # the sandbox caps its own invoices at 50 lines
        sandbox._invoices["inv-big"] = invoice
    event_id = stack.finalized("inv-big")
    stack.worker.drain()
    event = stack.event(event_id)
    assert (event.status, event.error_code) == ("failed", INVALID_DATA)
    assert event.last_error.startswith("revenueInfo: 1001 invoice lines")
    assert stack.zuora_requests("POST", "/v1/invoices") == []


# -- pure helpers ------------------------------------------------------------------------------------

def test_truncate():
    assert truncate("short", 130) == "short"
    cut = truncate("word " * 40, 130)
    assert len(cut) <= 130 and cut.endswith("word…")
    assert truncate("x" * 200, 130) == "x" * 129 + "…"


def test_items_in_a_zero_decimal_currency_are_whole_units():
    lines = [Line("p", "FIXED_FEE_RATE_CARD_AMOUNT", f"L{i}", Decimal("100.5"), None, None, None, None)
             for i in range(2)]
    items = invoice_items(lines, currency="JPY", start=date(2024, 7, 1), end=date(2024, 7, 31))
    assert [i["amount"] for i in items] == [Decimal("101"), Decimal("100")]


def test_a_replay_keeps_the_first_split_whatever_the_settings_say_now(stack):
    """Settings that change after the push must not move a line to the other side on a replay."""
    stack.linked_account()
    stack.meter("m-usage", "quantity")
    invoice = stack.invoice(fixed=[{"description": "Fee", "amount": 10}], usage=[
        {"meterId": "m-usage", "name": "Synced", "quantity": 2, "valuePerQuantity": Decimal("1")},
        {"meterId": "m-fixed", "name": "On the invoice", "quantity": 1, "valuePerQuantity": Decimal("3")}])
    stack.finalized(invoice["id"])
    stack.worker.drain()
    # Now the settings flip: m-fixed gets settings, m-usage loses them; the invoice event is replayed.
    stack.meter("m-fixed", "quantity")
    with store_sql(stack.services.db).conn as conn:
        conn.execute("DELETE FROM meter_settings WHERE meter_id = 'm-usage'")
    replay = stack.finalized(invoice["id"])
    stack.worker.drain()

    assert stack.event(replay).status == "done"
    assert [i["chargeName"] for i in only_invoice(stack)["invoiceItems"]] == ["Fee", "On the invoice"]
    assert len(stack.zuora_requests("POST", "/v1/invoices")) == 1
    assert len(stack.events("invoice.usage")) == 1
    assert [u["Quantity"] for u in stack.zuora_state()["usage"]] == [Decimal("2")]


def test_a_replay_of_a_usage_only_invoice_never_invoices_a_meter_that_lost_its_settings(stack):
    stack.linked_account()
    stack.meter("m-usage", "revenue")
    invoice = stack.invoice(usage=[{"meterId": "m-usage", "name": "U", "quantity": 2,
                                    "valuePerQuantity": Decimal("1")}])
    stack.finalized(invoice["id"])
    stack.worker.drain()
    with store_sql(stack.services.db).conn as conn:
        conn.execute("DELETE FROM meter_settings")
    stack.finalized(invoice["id"])
    stack.worker.drain()
    assert stack.zuora_state()["invoices"] == []
    assert len(stack.zuora_state()["usage"]) == 1


def test_allocation_keeps_exact_amounts_and_sums_to_the_rounded_total():
    from integration.domain import money
    assert money.allocate([Decimal("0.1"), Decimal("0.2")], 2) == [Decimal("0.1"), Decimal("0.2")]
    parts = money.allocate([Decimal("-0.335"), Decimal("-0.335"), Decimal("5.00")], 2)
    assert parts == [Decimal("-0.33"), Decimal("-0.34"), Decimal("5.00")] and sum(parts) == Decimal("4.33")
    # 28 significant digits would round this sum silently; the exact context does not.
    big = [Decimal("999999999999999.999999999999"), Decimal("0.000000000001")]
    assert money.exact_sum(big) == Decimal("1000000000000000")
    assert not money.in_bounds(Decimal("1E+15")) and not money.in_bounds(Decimal("1E-31"))
    assert money.to_decimal(0.1) is None and money.to_decimal("NaN") is None and money.to_decimal(True) is None


def test_service_end_falls_back_to_the_day_before_an_exclusive_end():
    """Togai's get-invoice example carries ``endDate`` (exclusive) and no ``endDateInclusive``."""
    from integration.billing.togai.readers import service_end
    from integration.domain.errors import InvalidData

    assert service_end({"endDate": "2024-08-01T00:00:00Z"}) == date(2024, 7, 31)
    assert service_end({"endDate": "2024-08-01T00:00:00.001Z"}) == date(2024, 8, 1)
    assert service_end({"endDate": "2024-08-01T00:00:00Z",
                        "endDateInclusive": "2024-08-01T10:00:00Z"}) == date(2024, 8, 1)
    with pytest.raises(InvalidData, match="endDateInclusive"):
        service_end({})
