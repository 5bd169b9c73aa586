"""The totals report (CONTRACT §9) against both sandboxes over real HTTP: invoices pushed by the real
flows, then read back from Zuora and compared with billing, by ``integration report`` and by
``GET /admin/reports/totals``."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
import requests
from click.testing import CliRunner

from integration import create_app
from integration.cli import main
from integration.cli import report as report_command
from integration.domain.periods import parse_period
from integration.flows.totals import totals_report
from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PERIOD = "2024-08"  # tests.test_invoice_flow.PERIOD dates its invoices 2024-08-01


@pytest.fixture
def run_report(stack, monkeypatch):
    """``integration report`` in-process, on the stack's services (store and the sandboxes' clients)."""
    monkeypatch.setattr(report_command, "services_or_exit", lambda: stack.services)

    def run(*args: str):
        return CliRunner().invoke(main, ["report", *args])
    return run


@pytest.fixture
def admin(stack):
    return create_app(services=stack.services).test_client()


def pushed_invoice(stack, account_id: str = "acc-1", **spec) -> dict:
    invoice = stack.invoice(accountId=account_id, **spec)
    stack.finalized(invoice["id"])
    stack.worker.drain()
    return invoice


def two_accounts_with_invoices(stack) -> tuple[dict, dict]:
    stack.linked_account("acc-1", "USD")
    stack.linked_account("acc-2", "EUR")
    usd = pushed_invoice(stack, "acc-1", fixed=[{"description": "Platform fee", "amount": Decimal("99.99")},
                                                 {"description": "Seats", "quantity": 3,
                                                  "valuePerQuantity": Decimal("10.10")}])
    eur = pushed_invoice(stack, "acc-2", fixed=[{"description": "Support", "amount": Decimal("250.00")}])
    return usd, eur


def test_a_matching_period_lists_every_account_and_exits_0(stack, run_report, admin):
    two_accounts_with_invoices(stack)
    stack.linked_account("acc-3", "USD")  # linked, nothing invoiced this month: listed at zero

    result = run_report("--period", PERIOD)
    assert result.exit_code == 0, result.output
    assert "3 account row(s), 0 differ" in result.output

    body = admin.get(f"/admin/reports/totals?period={PERIOD}", headers=AUTH)
    assert body.status_code == 200
    report = body.get_json()
    assert report["mismatches"] == 0
    rows = {r["billing_account"]: r for r in report["data"]}
    assert set(rows) == {"acc-1", "acc-2", "acc-3"}
    assert (rows["acc-1"]["billing_total"], rows["acc-1"]["zuora_total"], rows["acc-1"]["difference"]) == (
        "130.29", "130.29", "0.00")
    assert (rows["acc-3"]["invoice_count"], rows["acc-3"]["billing_total"], rows["acc-3"]["matches"]) == (0, "0", True)
    assert all(r["matches"] and r["invoices"] == [] for r in report["data"])


def test_two_currencies_are_kept_apart(stack, admin):
    two_accounts_with_invoices(stack)
    report = admin.get(f"/admin/reports/totals?period={PERIOD}", headers=AUTH).get_json()
    assert {r["billing_account"]: r["currency"] for r in report["data"]} == {"acc-1": "USD", "acc-2": "EUR"}
    assert report["currencies"] == [
        {"currency": "EUR", "accounts": 1, "mismatches": 0, "billing_total": "250.00", "zuora_total": "250.00",
         "difference": "0.00"},
        {"currency": "USD", "accounts": 1, "mismatches": 0, "billing_total": "130.29", "zuora_total": "130.29",
         "difference": "0.00"}]


def test_an_item_changed_in_zuora_is_named_to_the_cent_first_and_exits_1(stack, run_report, admin):
    usd, _ = two_accounts_with_invoices(stack)
    [zuora_invoice] = [i for i in stack.zuora_state()["invoices"] if i["currency"] == "USD"]
    items = stack.services.zuora.get_invoice_items(zuora_invoice["id"])
    item = next(i for i in items if i.charge_amount == Decimal("99.99"))
    changed = requests.post(f"{stack.zuora_server.url}/_sandbox/invoice-items/{item.id}",
                            json={"amount": "99.98"}, timeout=10)
    assert changed.status_code == 200, changed.text

    report = admin.get(f"/admin/reports/totals?period={PERIOD}", headers=AUTH).get_json()
    assert report["mismatches"] == 1
    first, second = report["data"]
    assert (first["billing_account"], first["matches"], first["billing_total"], first["zuora_total"],
            first["difference"]) == ("acc-1", False, "130.29", "130.28", "-0.01")
    assert [(i["billing_invoice_id"], i["zuora_invoice_id"], i["difference"]) for i in first["invoices"]] == [
        (usd["id"], zuora_invoice["id"], "-0.01")]
    assert (second["billing_account"], second["matches"]) == ("acc-2", True)

    table = run_report("--period", PERIOD)
    assert table.exit_code == 1, table.output
    lines = table.output.splitlines()
    assert lines[1].split()[1:6] == ["acc-1", "USD", "130.29", "130.28", "-0.01"]  # mismatches first
    assert f"{usd['id']}(-0.01)" in lines[1]
    assert "1 differ" in lines[-1]

    as_csv = run_report("--period", PERIOD, "--csv")
    assert as_csv.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert (rows[0]["billing_account"], rows[0]["difference"]) == ("acc-1", "-0.01")  # a number, not quoted


def test_usage_synced_meters_count_at_their_per_unit_amount(stack, admin):
    stack.linked_account()
    stack.meter("m-api", "quantity", uom="API Call")
    stack.meter("m-storage", "revenue", uom="USD")
    pushed_invoice(stack, fixed=[{"description": "Platform fee", "amount": Decimal("99.99")}],
                   usage=[{"meterId": "m-api", "name": "API calls", "quantity": 1200,
                           "valuePerQuantity": Decimal("0.002")},
                          {"meterId": "m-storage", "name": "Storage", "quantity": Decimal("12.5"),
                           "valuePerQuantity": Decimal("0.40")}])
    [usage_event] = stack.events("invoice.usage")
    assert usage_event["status"] == "done", usage_event["last_error"]
    # Zuora's invoice holds only the fixed line; the meters' 2.40 and 5.00 are usage records.
    [zuora_invoice] = stack.zuora_state()["invoices"]
    assert zuora_invoice["amount"] == Decimal("99.99")

    report = admin.get(f"/admin/reports/totals?period={PERIOD}", headers=AUTH).get_json()
    [row] = report["data"]
    assert (row["billing_total"], row["zuora_total"], row["matches"]) == ("107.390", "107.390", True)
    assert (row["invoice_count"], row["invoices"]) == (1, [])

    # A usage record Zuora lost is a difference of exactly that meter's amount (1200 × 0.002).
    services = stack.services
    stack.zuora_app.extensions["zuora_sandbox"].usage[:] = [
        u for u in stack.zuora_app.extensions["zuora_sandbox"].usage if u["UOM"] != "API Call"]
    result = totals_report(services.db, services.zuora, services.billing, parse_period(PERIOD))
    [row_after] = result.rows
    assert (row_after.matches, row_after.difference) == (False, Decimal("-2.400"))


@pytest.mark.parametrize("period", ["2024-13", "2024-8", "24-08", "2024-08-01", "", "１９９９-01", "0999-01"])
def test_a_bad_period_is_a_400_and_exit_2_naming_the_field(stack, run_report, admin, period):
    response = admin.get("/admin/reports/totals", query_string={"period": period}, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_query" and "period" in response.get_json()["detail"]
    result = run_report("--period", period)
    assert result.exit_code == 2 and "--period" in result.output


def test_the_route_needs_the_token_and_the_period(admin):
    assert admin.get(f"/admin/reports/totals?period={PERIOD}").status_code == 401
    missing = admin.get("/admin/reports/totals", headers=AUTH)
    assert missing.status_code == 400 and "period" in missing.get_json()["detail"]
