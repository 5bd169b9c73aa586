"""Flows 4 and 5 against both sandboxes over real HTTP: usage-synced meters → Zuora usage records by
file import, in quantity and revenue mode, exactly once, in a handful of calls however many lines."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from integration.domain.errors import INVALID_DATA, ZUORA_REJECTED, ZuoraRejected
from integration.domain.times import utcnow
from integration.flows.usage import UsageFlow
from integration.store import mappings
from integration.store.types import to_db_time
from integration_sandbox.billing.invoices import revenue_info, usage_info, usage_leaf
from tests.engines import store_sql
from tests.test_invoice_flow import only_invoice

SUB, CHARGE = "A-S00000042", "C-00000077"


pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)


def usage_records(stack) -> list[dict]:
    return stack.zuora_state()["usage"]


def usage_rows(stack) -> list[dict]:
    return stack.mappings("usage")


def put_invoice(stack, invoice: dict) -> None:
    """Store an invoice the sandbox's own API cannot build (it caps invoices at 50 lines)."""
    sandbox = stack.billing_app.extensions["billing_sandbox"]
    with sandbox._lock:
        sandbox._invoices[invoice["id"]] = invoice


def big_invoice(invoice_id: str, usage: list[dict]) -> dict:
    """A finalized invoice in Togai's shape, built with the sandbox's own builders."""
    leaves = [usage_leaf(spec, i) for i, spec in enumerate(usage)]
    revenue, total = revenue_info(leaves)
    start = datetime(2024, 7, 1, tzinfo=timezone.utc)
    end = datetime(2024, 8, 1, tzinfo=timezone.utc)
    return {"id": invoice_id, "customerId": "cust-acc-1", "ownerId": "acc-1", "usageInfo": usage_info(usage),
            "revenueInfo": revenue, "status": "DUE", "finalizingStatus": "FINALIZED", "startDate": start,
            "endDate": end, "endDateInclusive": end - timedelta(milliseconds=1), "invoiceDate": end,
            "dueDate": end + timedelta(days=30), "totalAmount": total}


# -- quantity and revenue mode ------------------------------------------------------------------------

def test_quantity_and_revenue_mode_records(stack):
    account = stack.linked_account()
    stack.meter("m-calls", "quantity", uom="Call", sub=SUB, charge=CHARGE)
    stack.meter("m-gb", "revenue", uom="Dollar", sub="A-S00000043", charge="C-00000078")
    invoice = stack.invoice(usage=[
        {"meterId": "m-calls", "name": "API calls", "quantity": 7, "units": "calls",
         "valuePerQuantity": Decimal("0.333333333333")},
        {"meterId": "m-gb", "name": "Storage", "quantity": 3, "valuePerQuantity": Decimal("0.333333333333")}])
    stack.finalized(invoice["id"])
    stack.worker.drain()

    [usage_event] = stack.events("invoice.usage")
    assert usage_event["status"] == "done", usage_event["last_error"]
    records = {r["ChargeNumber"]: r for r in usage_records(stack)}
    calls, gb = records[CHARGE], records["C-00000078"]
    # Quantity mode: the meter's usage, its UOM, the per-unit amount in the description, exactly.
    assert (calls["Quantity"], calls["UOM"], calls["SubscriptionNumber"], calls["AccountNumber"],
            calls["StartDateTime"], calls["EndDateTime"]) == (
        Decimal("7"), "Call", SUB, account["accountNumber"], "2024-07-01T00:00:00", "2024-07-31T00:00:00")
    assert calls["Description"] == (f"Per-unit amount 0.333333333333 per calls; API calls; meter m-calls; "
                                    f"billing invoice {invoice['id']}")
    # Revenue mode: the revenue (3 × 0.333333333333, not rounded, not 0.999999999999001) at 1 per unit.
    assert (gb["Quantity"], gb["UOM"], gb["SubscriptionNumber"]) == (Decimal("0.999999999999"), "Dollar",
                                                                    "A-S00000043")
    assert gb["Description"].startswith("Revenue 0.999999999999 at per-unit amount 1; Storage; meter m-gb")
    # One import, one mapping row per line, keyed by invoice and meter.
    [imp] = stack.zuora_state()["imports"]
    assert imp["status"] == "Completed" and imp["recordCount"] == 2
    rows = {r["billing_id"]: r for r in usage_rows(stack)}
    assert set(rows) == {f"{invoice['id']}:m-calls", f"{invoice['id']}:m-gb"}
    assert {r["zuora_id"] for r in rows.values()} == {f"{imp['id']}:2", f"{imp['id']}:3"}
    assert {(r["billing_parent_id"], r["origin"]) for r in rows.values()} == {(invoice["id"], "billing")}
    [upload] = stack.zuora_requests("POST", "/v1/usage")
    assert upload["idempotency_key"].startswith(f"usage:{invoice['id']}:")


def test_quantity_mode_without_usage_info_entry_is_invalid_data(stack):
    stack.linked_account()
    stack.meter("m-calls", "quantity")
    invoice = big_invoice("inv-no-usage", [{"meterId": "m-calls", "name": "API", "quantity": Decimal(2),
                                            "valuePerQuantity": Decimal(1)}])
    invoice["usageInfo"] = []
    put_invoice(stack, invoice)
    stack.finalized("inv-no-usage")
    stack.worker.drain()
    [event] = stack.events("invoice.usage")
    assert (event["status"], event["error_code"]) == ("failed", INVALID_DATA)
    assert event["last_error"].startswith("usageInfo: no USAGE_METER_USAGE entry for meter m-calls")
    assert usage_records(stack) == [] and usage_rows(stack) == []


# -- exactly once ---------------------------------------------------------------------------------------

def test_crash_after_the_upload_does_not_import_twice(stack):
    stack.linked_account()
    stack.meter("m-calls", "quantity")
    invoice = stack.invoice(usage=[{"meterId": "m-calls", "name": "API", "quantity": 5,
                                    "valuePerQuantity": Decimal("0.1")}])
    stack.finalized(invoice["id"])
    stack.worker.run_once()  # the invoice flow: queues the usage event
    [event] = stack.events("invoice.usage")
    lost = stack.handlers["invoice.usage"](stack.event(event["id"]))  # imported, then the process dies
    assert lost.writes and usage_rows(stack) == [] and len(usage_records(stack)) == 1
    stack.worker.drain()

    assert stack.event(event["id"]).status == "done"
    assert len(usage_records(stack)) == 1
    assert len(stack.zuora_state()["imports"]) == 1
    # The rerun read the account's usage back, found the line by its description, and linked it.
    assert len(stack.zuora_requests("POST", "/v1/usage")) == 1
    [row] = usage_rows(stack)
    assert row["zuora_id"] == usage_records(stack)[0]["Id"]


def test_mapped_usage_is_never_pushed_again(stack):
    stack.linked_account()
    stack.meter("m-calls", "revenue")
    invoice = stack.invoice(usage=[{"meterId": "m-calls", "name": "API", "quantity": 5,
                                    "valuePerQuantity": Decimal("0.1")}])
    stack.finalized(invoice["id"])
    stack.worker.drain()
    [event] = stack.events("invoice.usage")
    outcome = stack.handlers["invoice.usage"](stack.event(event["id"]))  # a replayed run
    assert outcome.writes == [] and "nothing to push (1 line(s) already imported)" in outcome.summary
    assert len(stack.zuora_requests("POST", "/v1/usage")) == 1 and len(usage_records(stack)) == 1


def test_settings_added_after_the_invoice_was_pushed_do_not_bill_twice(stack):
    """The meter was on the Zuora invoice; settings that appear later must not also send it as usage."""
    stack.linked_account()
    stack.meter("m-synced", "quantity")
    invoice = stack.invoice(usage=[
        {"meterId": "m-synced", "name": "Synced", "quantity": 1, "valuePerQuantity": Decimal("2")},
        {"meterId": "m-late", "name": "Late", "quantity": 1, "valuePerQuantity": Decimal("3")}])
    stack.finalized(invoice["id"])
    stack.worker.run_once()  # invoice flow only
    stack.meter("m-late", "quantity")
    stack.worker.drain()
    assert [i["chargeName"] for i in only_invoice(stack)["invoiceItems"]] == ["Late"]
    assert [r["Quantity"] for r in usage_records(stack)] == [Decimal("1")]
    assert [r["billing_id"] for r in usage_rows(stack)] == [f"{invoice['id']}:m-synced"]


# -- scale ---------------------------------------------------------------------------------------------

def test_five_thousand_usage_lines_take_a_handful_of_calls(stack):
    stack.linked_account()
    n = 5000
    now = to_db_time(utcnow())
    with store_sql(stack.services.db).conn as conn:
        conn.executemany(
            "INSERT INTO meter_settings VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(f"m{i:05d}", SUB, f"C-{i:08d}", "Each", "quantity" if i % 2 else "revenue", now, now)
             for i in range(n)])
    put_invoice(stack, big_invoice("inv-5k", [
        {"meterId": f"m{i:05d}", "name": f"Meter {i}", "quantity": Decimal(i), "valuePerQuantity": Decimal("0.01")}
        for i in range(n)]))
    stack.finalized("inv-5k")
    before = len(stack.zuora_state()["requests"])
    stack.worker.drain()

    [event] = stack.events("invoice.usage")
    assert event["status"] == "done", event["last_error"]
    records = usage_records(stack)
    assert len(records) == n and len(usage_rows(stack)) == n
    by_charge = {r["ChargeNumber"]: r["Quantity"] for r in records}
    assert by_charge["C-00000007"] == Decimal("7")        # quantity mode
    assert by_charge["C-00000008"] == Decimal("0.08")     # revenue mode: 8 × 0.01
    calls = [(r["method"], r["path"]) for r in stack.zuora_state()["requests"][before:]]
    # One read-back of the account's usage, one upload and a few status polls (the token was fetched before).
    assert len(calls) <= 5, calls
    assert calls[:2] == [("GET", "/object-query/usages"), ("POST", "/v1/usage")]
    assert calls.count(("POST", "/v1/usage")) == 1
    assert {path for _, path in calls[2:]} == {f"/v1/usage/{stack.zuora_state()['imports'][0]['id']}/status"}
    assert stack.zuora_state()["invoices"] == []


def test_files_over_the_size_limit_are_split_and_resume_without_duplicates(stack, monkeypatch):
    stack.linked_account()
    for meter in ("m-a", "m-b", "m-c"):
        stack.meter(meter, "revenue")
    invoice = stack.invoice(usage=[{"meterId": m, "name": m, "quantity": 1, "valuePerQuantity": Decimal("1.5")}
                                   for m in ("m-a", "m-b", "m-c")])
    stack.finalized(invoice["id"])
    stack.worker.run_once()
    [event] = stack.events("invoice.usage")
    flow = UsageFlow(stack.services, max_file_bytes=400)  # room for the headings and one row per file

    # The second file is refused: the first stays recorded, nothing of the others is.
    zuora = stack.services.zuora
    real_upload, uploads = zuora.upload_usage, []

    def refuse_second(content, **kwargs):
        uploads.append(kwargs["idempotency_key"])
        if len(uploads) == 2:
            raise ZuoraRejected("Injected refusal of the second file", remote_code="53300020")
        return real_upload(content, **kwargs)

    monkeypatch.setattr(zuora, "upload_usage", refuse_second)
    with pytest.raises(ZuoraRejected):
        flow.handle(stack.event(event["id"]))
    assert [r["billing_id"] for r in usage_rows(stack)] == [f"{invoice['id']}:m-a"]
    assert len(usage_records(stack)) == 1

    # The retry pushes only what is missing, in the same files, and the last file's rows come with
    # the outcome: dropping that outcome (a crash) and running again still imports each line once.
    monkeypatch.setattr(zuora, "upload_usage", real_upload)
    lost = flow.handle(stack.event(event["id"]))
    assert len(lost.writes) == 1 and len(usage_rows(stack)) == 2
    outcome = flow.handle(stack.event(event["id"]))
    with stack.services.db.transaction() as conn:
        for write in outcome.writes:
            write(conn)
    assert sorted(r["billing_id"].split(":")[-1] for r in usage_rows(stack)) == ["m-a", "m-b", "m-c"]
    assert sorted(r["ChargeNumber"] for r in usage_records(stack)) == ["C-00000001"] * 3
    assert len(usage_records(stack)) == 3 and len(stack.zuora_state()["imports"]) == 3


# -- rejection -----------------------------------------------------------------------------------------

def test_a_failed_import_is_zuora_rejected_with_its_reason_and_records_nothing(stack):
    stack.billing_account("acc-1")
    with stack.services.db.transaction() as conn:  # linked to an account number Zuora does not know
        mappings.link("account", zuora_id="2c9f0000deadbeef", zuora_number="A-NOPE", billing_id="acc-1",
                      origin="linked")(conn)
    stack.meter("m-a", "quantity")
    stack.meter("m-b", "revenue")
    invoice = stack.invoice(usage=[{"meterId": m, "name": m, "quantity": 2, "valuePerQuantity": Decimal("1")}
                                   for m in ("m-a", "m-b")])
    stack.finalized(invoice["id"])
    stack.worker.drain()

    [event] = stack.events("invoice.usage")
    assert (event["status"], event["error_code"]) == ("failed", ZUORA_REJECTED)
    assert event["last_error"] == "Line 2: The account number A-NOPE is invalid."
    [imp] = stack.zuora_state()["imports"]
    assert imp["status"] == "Failed"
    assert usage_records(stack) == [] and usage_rows(stack) == []


def test_a_meter_that_loses_its_settings_after_the_split_is_still_pushed_as_usage(stack):
    """It was left off the Zuora invoice; dropping it now would lose its revenue."""
    stack.linked_account()
    stack.meter("m-calls", "quantity", uom="Call", sub=SUB, charge=CHARGE)
    invoice = stack.invoice(usage=[{"meterId": "m-calls", "name": "API", "quantity": 4,
                                    "valuePerQuantity": Decimal("0.25")}])
    stack.finalized(invoice["id"])
    stack.worker.run_once()  # the invoice flow decides the split
    with store_sql(stack.services.db).conn as conn:
        conn.execute("DELETE FROM meter_settings")
    stack.worker.drain()
    [record] = usage_records(stack)
    assert (record["Quantity"], record["UOM"], record["SubscriptionNumber"], record["ChargeNumber"]) == (
        Decimal("4"), "Call", SUB, CHARGE)
    assert stack.zuora_state()["invoices"] == []


def test_a_retry_after_a_fix_uploads_the_corrected_file_instead_of_replaying_the_failure(stack):
    """Zuora replays a key's answer for 24 h, failures included: a corrected file must get a new key."""
    account = stack.linked_account()
    with store_sql(stack.services.db).conn as conn:  # a wrong account number in the link
        conn.execute("UPDATE id_mappings SET zuora_number = 'A-WRONG' WHERE type = 'account'")
    stack.meter("m-calls", "quantity", uom="Call")
    invoice = stack.invoice(usage=[{"meterId": "m-calls", "name": "API", "quantity": 4,
                                    "valuePerQuantity": Decimal("0.25")}])
    stack.finalized(invoice["id"])
    stack.worker.drain()
    [event] = stack.events("invoice.usage")
    assert (event["status"], event["error_code"]) == ("failed", ZUORA_REJECTED)

    with store_sql(stack.services.db).conn as conn:  # the operator fixes the link and retries the failure
        conn.execute("UPDATE id_mappings SET zuora_number = ? WHERE type = 'account'", (account["accountNumber"],))
        conn.execute("UPDATE events SET status = 'pending', next_attempt_at = ? WHERE id = ?",
                     (to_db_time(utcnow()), event["id"]))
    stack.worker.drain()

    assert stack.event(event["id"]).status == "done"
    keys = [u["idempotency_key"] for u in stack.zuora_requests("POST", "/v1/usage")]
    assert len(keys) == 2 and keys[0] != keys[1]
    assert [i["status"] for i in stack.zuora_state()["imports"]] == ["Failed", "Completed"]
    [record] = usage_records(stack)
    assert record["AccountNumber"] == account["accountNumber"]
    assert len(usage_rows(stack)) == 1
