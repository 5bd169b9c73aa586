"""Voids (CONTRACT §12) against both sandboxes over real HTTP, on both engines: a billing invoice voided after
it reached Zuora cancels a Draft twin or reverses a Posted one (credit memo recorded on the mapping row), once,
however often the void comes; Zuora's refusal is ZUORA_REJECTED with Zuora's reason; a void before the push is
recorded and the invoice is never pushed; an ``invoice.updated`` whose invoice is not void does nothing."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from integration.domain.errors import ZUORA_REJECTED
from integration.flows import build_handlers
from integration.flows.backfill_apply import plan_invoices
from integration.store import failures, mappings, voids
from integration.worker.loop import Worker
from integration.worker.reconcile import run_pass

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

FEE = [{"description": "Platform fee", "amount": Decimal("49.99")}]


def twins_as(stack, status: str) -> None:
    """The service with ``ZUORA_INVOICE_STATUS=status``: the Zuora twins it pushes are Draft or Posted."""
    stack.services.config = replace(stack.services.config, zuora_invoice_status=status)
    stack.handlers = build_handlers(stack.services)
    stack.worker = Worker(stack.services.inbox, stack.handlers, poll_interval=0.01)


def void_in_billing(stack, invoice_id: str) -> None:
    """The platform voids the invoice (its own webhook is left out: the tests deliver events themselves)."""
    resp = requests.post(f"{stack.billing_server.url}/_sandbox/invoices/{invoice_id}/void?webhook=false",
                         json={}, timeout=10)
    assert resp.status_code == 200, resp.text


def delivered(stack, event_type: str, invoice_id: str) -> str:
    """One delivery of a billing event, as the webhook stores it (a new webhook-id each time)."""
    stack._webhook += 1
    return stack.services.inbox.record(
        source="billing", type=event_type, object_type="invoice", object_id=invoice_id,
        object_key=f"billing-invoice:{invoice_id}", dedupe_key=f"billing:msg_void_{stack._webhook}",
        payload={"webhook_id": f"msg_void_{stack._webhook}"}).event_id


def pushed(stack, **spec) -> tuple[dict, dict]:
    """A billing invoice pushed to Zuora by the invoice flow: (billing invoice, its Zuora twin)."""
    invoice = stack.invoice(fixed=FEE, **spec)
    stack.finalized(invoice["id"])
    stack.worker.drain()
    [twin] = stack.zuora_state()["invoices"]
    return invoice, twin


def puts(stack, zuora_id: str, action: str) -> list[dict]:
    return stack.zuora_requests("PUT", f"/v1/invoices/{zuora_id}/{action}")


def invoice_mapping(stack, invoice_id: str) -> mappings.Mapping:
    found = mappings.find(stack.services.db, "invoice", billing_id=invoice_id)
    assert found is not None
    return found


def test_void_after_push_cancels_a_draft_twin(stack):
    twins_as(stack, "Draft")
    stack.linked_account()
    invoice, twin = pushed(stack)
    assert twin["status"] == "Draft"

    void_in_billing(stack, invoice["id"])
    event_id = delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    [after] = stack.zuora_state()["invoices"]
    assert after["status"] == "Canceled"
    assert len(puts(stack, twin["id"], "cancel")) == 1 and puts(stack, twin["id"], "reverse") == []
    row = invoice_mapping(stack, invoice["id"])
    assert (row.reversal, row.credit_memo_id) == ("cancelled", None) and row.reversed_at is not None
    assert stack.zuora_state()["credit_memos"] == []


def test_void_after_push_reverses_a_posted_twin_and_records_its_credit_memo(stack):
    stack.linked_account()
    invoice, twin = pushed(stack)
    assert twin["status"] == "Posted"

    void_in_billing(stack, invoice["id"])
    event_id = delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    [memo] = stack.zuora_state()["credit_memos"]
    assert (memo["invoiceId"], memo["totalAmount"], memo["reasonCode"]) == (twin["id"], Decimal("49.99"),
                                                                           "Invoice reversal")
    # The invoice is dated 2024-08-01, long past: the memo is dated the day of the reversal.
    assert memo["memoDate"] == datetime.now(timezone.utc).date().isoformat()
    [after] = stack.zuora_state()["invoices"]
    assert (after["status"], after["balance"], after["reversed"]) == ("Posted", Decimal("0"), True)
    row = invoice_mapping(stack, invoice["id"])
    assert (row.reversal, row.credit_memo_id) == ("reversed", memo["id"]) and row.reversed_at is not None
    assert puts(stack, twin["id"], "cancel") == []


def test_a_future_dated_invoice_is_reversed_with_a_memo_dated_on_its_invoice_date(stack):
    stack.linked_account()
    invoice, twin = pushed(stack, invoiceDate="2099-01-31T00:00:00Z", dueDate="2099-03-02T00:00:00Z")
    assert twin["invoiceDate"] == "2099-01-31"
    void_in_billing(stack, invoice["id"])
    delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()
    [memo] = stack.zuora_state()["credit_memos"]
    assert memo["memoDate"] == "2099-01-31"  # Zuora refuses a memo dated before its invoice


def test_a_replayed_void_reverses_nothing_twice(stack):
    stack.linked_account()
    invoice, twin = pushed(stack)
    void_in_billing(stack, invoice["id"])
    first = delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()
    recorded = invoice_mapping(stack, invoice["id"])

    again = [delivered(stack, "invoice.voided", invoice["id"]), delivered(stack, "invoice.updated", invoice["id"])]
    stack.worker.drain()
    again.append(stack.finalized(invoice["id"]))  # a late invoice.finalized is the same void, seen again
    stack.worker.drain()

    assert [stack.event(e).status for e in [first, *again]] == ["done"] * 4
    assert len(puts(stack, twin["id"], "reverse")) == 1
    assert len(stack.zuora_state()["credit_memos"]) == 1
    assert invoice_mapping(stack, invoice["id"]) == recorded  # reversed_at, credit memo: the first record
    assert len(stack.zuora_requests("POST", "/v1/invoices")) == 1


def test_a_reversal_whose_answer_was_lost_is_recorded_once(stack):
    """PUT carries no Idempotency-Key: the client's repeat of a reversal that took effect is refused
    (a credit memo is applied now), and the flow, reading the twin again, records the reversal it finds."""
    stack.linked_account()
    invoice, twin = pushed(stack)
    lose = requests.post(f"{stack.zuora_server.url}/_sandbox/lose-next", timeout=10,
                         json={"path": f"/v1/invoices/{twin['id']}/reverse", "mode": "error", "status": 503})
    assert lose.status_code == 200, lose.text
    void_in_billing(stack, invoice["id"])
    event_id = delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    assert [r["status"] for r in puts(stack, twin["id"], "reverse")] == [503, 200]  # the repeat: success false
    [memo] = stack.zuora_state()["credit_memos"]
    assert invoice_mapping(stack, invoice["id"]).credit_memo_id == memo["id"]


def test_zuoras_refusal_is_zuora_rejected_with_its_reason_on_the_failure_list(stack):
    stack.linked_account()
    invoice, twin = pushed(stack)
    paid = requests.post(f"{stack.zuora_server.url}/_sandbox/invoices/{twin['id']}/payments", json={}, timeout=10)
    assert paid.status_code == 200, paid.text
    void_in_billing(stack, invoice["id"])
    event_id = delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()

    event = stack.event(event_id)
    assert (event.status, event.error_code) == ("failed", ZUORA_REJECTED)
    [failure] = failures.page(stack.services.db, code=ZUORA_REJECTED)[0]
    assert (failure.id, failure.object_type, failure.object_id) == (event_id, "invoice", invoice["id"])
    # Zuora's code and reason, and which invoice it refused to undo
    assert failure.message.startswith(f"59210030: Zuora refused to undo invoice {twin['invoiceNumber']} of voided "
                                      f"billing invoice {invoice['id']}: Payments and credit memos are applied to "
                                      f"invoice {twin['invoiceNumber']}; it cannot be reversed. (processId ")
    assert invoice_mapping(stack, invoice["id"]).reversed_at is None
    assert stack.zuora_state()["credit_memos"] == []
    assert event.attempts == 1  # a refusal is not retried automatically


def test_a_void_before_the_push_is_recorded_and_never_pushed_later(stack):
    stack.linked_account()
    invoice = stack.invoice(fixed=FEE)
    void_in_billing(stack, invoice["id"])
    voided = delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()
    assert stack.event(voided).status == "done"
    found = voids.unpushed_void(stack.services.db, invoice["id"])
    assert found is not None and found.event_id == voided

    def billing_reads() -> int:
        log = requests.get(f"{stack.billing_server.url}/_sandbox/state", timeout=10).json()["requests"]
        return sum(1 for r in log if r["path"] == f"/invoices/{invoice['id']}")

    before = billing_reads()
    late = stack.finalized(invoice["id"])  # the platform's invoice.finalized, delivered after the void
    stack.worker.drain()
    assert stack.event(late).status == "done"
    assert billing_reads() == before  # refused on the store's record alone, without even fetching it
    assert stack.zuora_state()["invoices"] == [] and stack.zuora_requests("POST", "/v1/invoices") == []
    assert stack.mappings("invoice") == []


def test_an_invoice_finalized_that_finds_the_invoice_void_records_the_void(stack):
    """The void's own webhook never came: the push that finds the invoice VOID records it instead."""
    stack.linked_account()
    invoice = stack.invoice(fixed=FEE)
    void_in_billing(stack, invoice["id"])
    event_id = stack.finalized(invoice["id"])
    stack.worker.drain()
    assert stack.event(event_id).status == "done"
    assert voids.unpushed_void(stack.services.db, invoice["id"]) is not None
    assert stack.zuora_state()["invoices"] == []


def test_an_invoice_updated_whose_invoice_is_not_void_is_a_no_op(stack):
    stack.linked_account()
    invoice, _ = pushed(stack)
    event_id = delivered(stack, "invoice.updated", invoice["id"])
    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    assert [r for r in stack.zuora_state()["requests"] if r["method"] == "PUT"] == []
    assert stack.zuora_state()["invoices"][0]["status"] == "Posted"
    assert invoice_mapping(stack, invoice["id"]).reversed_at is None
    assert voids.unpushed_void(stack.services.db, invoice["id"]) is None

    void_in_billing(stack, invoice["id"])  # the same event type once the invoice is void: a void
    delivered(stack, "invoice.updated", invoice["id"])
    stack.worker.drain()
    assert invoice_mapping(stack, invoice["id"]).reversal == "reversed"


def test_usage_already_sent_stays_and_is_listed_as_a_warning(stack):
    stack.linked_account()
    stack.meter("m-api", "quantity", uom="API Call")
    invoice = stack.invoice(fixed=FEE, usage=[{"meterId": "m-api", "name": "API calls", "quantity": 1200,
                                               "valuePerQuantity": Decimal("0.002")}])
    stack.finalized(invoice["id"])
    stack.worker.drain()
    [usage] = stack.zuora_state()["usage"]
    [sent] = stack.mappings("usage")

    void_in_billing(stack, invoice["id"])
    event_id = delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()

    assert stack.event(event_id).status == "done"
    assert stack.zuora_state()["usage"] == [usage]  # left in place
    [attempt] = stack.services.inbox.history(event_id)
    assert attempt.outcome == "done"
    assert attempt.message == (f"warning: 1 usage record(s) already sent to Zuora for this invoice are left in "
                               f"place (Zuora has no safe automatic undo for billed usage): {sent['zuora_id']}")


def test_a_twin_whose_mapping_was_lost_is_found_by_its_link_field_and_reversed(stack):
    account = stack.linked_account()
    invoice = stack.invoice(fixed=FEE)
    created = stack.services.zuora.create_invoice(  # an earlier push whose answer (and mapping) was lost
        {"accountId": account["accountId"], "invoiceDate": "2024-08-01", "status": "Posted",
         "BillingInvoiceId__c": invoice["id"],
         "invoiceItems": [{"amount": Decimal("49.99"), "serviceStartDate": "2024-07-01", "chargeName": "Fee"}]},
        idempotency_key="lost-push")
    void_in_billing(stack, invoice["id"])
    delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()

    row = invoice_mapping(stack, invoice["id"])
    assert (row.zuora_id, row.reversal) == (created.id, "reversed")
    assert voids.unpushed_void(stack.services.db, invoice["id"]) is None


def test_usage_not_yet_sent_when_the_void_comes_is_never_sent(stack):
    stack.linked_account()
    stack.meter("m-api", "quantity", uom="API Call")
    invoice = stack.invoice(fixed=FEE, usage=[{"meterId": "m-api", "name": "API calls", "quantity": 1200,
                                               "valuePerQuantity": Decimal("0.002")}])
    stack.finalized(invoice["id"])
    assert stack.worker.run_once()  # the push only; its usage follow-up waits in the inbox
    [usage_event] = stack.events("invoice.usage")
    assert usage_event["status"] == "pending"

    void_in_billing(stack, invoice["id"])
    delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()

    assert stack.event(usage_event["id"]).status == "done"
    assert stack.zuora_state()["usage"] == [] and stack.mappings("usage") == []
    assert invoice_mapping(stack, invoice["id"]).reversal == "reversed"


def test_backfill_never_plans_a_voided_invoice(stack):
    stack.linked_account()
    voided = stack.invoice(fixed=FEE)
    void_in_billing(stack, voided["id"])
    recorded = stack.invoice(fixed=FEE)  # voided before the push, as the store recorded it
    with stack.services.db.transaction() as tx:
        voids.record_unpushed(recorded["id"], "evt-earlier")(tx)
    other = stack.invoice(fixed=FEE)
    s = stack.services
    planned = list(plan_invoices(s.db, s.billing, s.zuora, s.config.zuora_invoice_link_field,
                                 datetime(2024, 1, 1, tzinfo=timezone.utc)))
    assert [item.invoice_id for item in planned] == [other["id"]]


# -- reconciliation (CONTRACT §9, §12) ---------------------------------------------------------------------

def test_reconciliation_finds_a_mapped_invoice_that_became_void(stack):
    """The void's webhook never came: one pass queues it, the void flow reverses the twin; the next pass,
    and an unmapped void invoice, queue nothing."""
    run_pass(stack.services)  # the service's first pass takes the (empty) baseline, as the worker does at start
    stack.linked_account()
    invoice, twin = pushed(stack)
    never_pushed = stack.invoice(fixed=FEE, finalize=False)
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    void_in_billing(stack, invoice["id"])
    void_in_billing(stack, never_pushed["id"])

    result = run_pass(stack.services, since=since, advance=False)
    assert result.queued["billing_invoice_void"] == [invoice["id"]]
    assert result.queued["billing_invoice"] == []  # a void invoice is never queued to be pushed
    [event] = stack.events("invoice.voided")
    assert (event["source"], event["object_key"]) == ("reconcile", f"billing-invoice:{invoice['id']}")
    stack.worker.drain()

    row = invoice_mapping(stack, invoice["id"])
    assert row.reversal == "reversed" and row.credit_memo_id == stack.zuora_state()["credit_memos"][0]["id"]
    again = run_pass(stack.services, since=since, advance=False)
    assert again.found["billing_invoice_void"] == 2 and again.queued["billing_invoice_void"] == []
    assert len(puts(stack, twin["id"], "reverse")) == 1


def test_reconciliation_leaves_a_refused_void_to_the_failure_list(stack):
    run_pass(stack.services)  # the first pass: the baseline
    stack.linked_account()
    invoice, twin = pushed(stack)
    requests.post(f"{stack.zuora_server.url}/_sandbox/invoices/{twin['id']}/payments", json={}, timeout=10)
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    void_in_billing(stack, invoice["id"])
    run_pass(stack.services, since=since, advance=False)
    stack.worker.drain()
    [event] = stack.events("invoice.voided")
    assert event["error_code"] == ZUORA_REJECTED

    assert run_pass(stack.services, since=since, advance=False).queued["billing_invoice_void"] == []
    assert len(stack.events("invoice.voided")) == 1


def test_a_usage_only_invoice_voided_keeps_its_usage_with_a_warning(stack):
    """No Zuora invoice (every line travels as usage): the void is recorded as one that never reached Zuora
    as an invoice, and the usage that did is named."""
    stack.linked_account()
    stack.meter("m-api", "quantity", uom="API Call")
    invoice = stack.invoice(usage=[{"meterId": "m-api", "name": "API calls", "quantity": 10,
                                    "valuePerQuantity": Decimal("0.5")}])
    stack.finalized(invoice["id"])
    stack.worker.drain()
    assert stack.zuora_state()["invoices"] == [] and len(stack.zuora_state()["usage"]) == 1

    void_in_billing(stack, invoice["id"])
    event_id = delivered(stack, "invoice.voided", invoice["id"])
    stack.worker.drain()
    assert voids.unpushed_void(stack.services.db, invoice["id"]) is not None
    [attempt] = stack.services.inbox.history(event_id)
    assert attempt.message.startswith("warning: 1 usage record(s) already sent to Zuora for this invoice")
