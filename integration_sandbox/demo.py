"""``integration demo``: every flow once, on the embedded default, with a verdict.

Starts both sandboxes and the service on free localhost ports (SQLite in a temporary folder), drives
each flow with sample data the way the real systems would — a Zuora user creating an account, a
billing user creating one, a finalized invoice with fixed and usage lines — then checks each flow's
end state in the sandboxes' own records and in the mapping table, and prints what it found.
"""
from __future__ import annotations

import logging
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import requests

from integration.logs import configure_logging
from integration_sandbox.local_stack import CALLOUT_USERNAME, LocalStack

SUBSCRIPTION = "A-S00000001"
METERS = {
    # meter id: (mode, charge number, uom)
    "api-calls": ("quantity", "C-00000001", "Each"),
    "storage-gb": ("revenue", "C-00000002", "USD"),
}
INVOICE_ID = "inv-demo-0001"
# JSON numbers, as the billing platform sends them: each literal below serializes to exactly the
# digits written here (Python's shortest round-trip repr), and the sandbox reads them as Decimal.
FIXED_LINES = [
    {"description": "Platform fee", "amount": 99.90},
    {"description": "Onboarding credit top-up", "amount": 0.10},
    {"description": "Premium support (per ticket)", "quantity": 2, "valuePerQuantity": 0.10},
]
USAGE_LINES = [
    {"meterId": "api-calls", "name": "API calls", "quantity": 1500, "units": "calls", "valuePerQuantity": 0.002},
    {"meterId": "storage-gb", "name": "Storage GB-month", "quantity": 42.5, "units": "GB", "valuePerQuantity": 0.25},
    # A meter without settings: its line stays on the standalone invoice.
    {"meterId": "sms", "name": "SMS sent", "quantity": 10, "units": "messages", "valuePerQuantity": 0.05},
]
EXPECTED_INVOICE_TOTAL = Decimal("99.90") + Decimal("0.10") + Decimal("0.20") + Decimal("0.50")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def run_demo(out: TextIO, *, keep_running: bool = False, workdir: str | None = None) -> int:
    """Run the demo, print its report to ``out``; 0 when every flow reached its end state."""
    folder = Path(workdir or tempfile.mkdtemp(prefix="integration-demo-"))
    log_path = folder / "service.log"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "a", encoding="utf-8") as log_file, LocalStack(folder) as stack:
        configure_logging(stack.config.secrets(), stream=log_file)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        out.write("integration demo: both sandboxes and the service on localhost\n"
                  f"  Zuora sandbox    {stack.zuora_url}\n  billing sandbox  {stack.billing_url}\n"
                  f"  service          {stack.service_url}\n  store and logs   {folder}\n\n")
        checks = drive(stack)
        width = max(len(c.name) for c in checks) + 3
        for check in checks:
            out.write(f"{check.name} {'.' * (width - len(check.name))} {'ok' if check.ok else 'FAILED'}  "
                      f"{check.detail}\n")
        out.write("\n" + mapping_table(stack) + "\n\n" + failure_list(stack) + "\n\n")
        ok = all(c.ok for c in checks)
        out.write(("all flows OK" if ok else
                   f"{sum(not c.ok for c in checks)} flow(s) did not reach their end state; see {log_path}")
                  + f" ({time.monotonic() - started:.1f}s)\n")
        if keep_running:
            out.write(credentials(stack) + "\nPress Ctrl+C to stop.\n")
            out.flush()
            wait_for_signal()
    return 0 if ok else 1


# -- driving the flows ------------------------------------------------------------------------------

def drive(stack: LocalStack) -> list[Check]:
    checks: list[Check] = []
    admin, zuora = stack.admin(), stack.zuora_api()

    # Flow 1: a Zuora user creates an account; Zuora's callout makes it a billing customer.
    created = zuora.post(f"{stack.zuora_url}/v1/accounts", timeout=10, json={
        "name": "Ada Lovelace Ltd", "currency": "USD", "billCycleDay": 1, "autoPay": False,
        "billToContact": {"firstName": "Ada", "lastName": "Lovelace", "workEmail": "ada@example.com",
                          "address1": "12 St James's Square", "city": "London", "zipCode": "SW1Y 4LB",
                          "country": "United Kingdom"}}).json()
    # Flow 2: a billing user creates a customer and account; the service creates its Zuora twin.
    requests.post(f"{stack.billing_url}/_sandbox/accounts", timeout=10, json={
        "customer": {"id": "cust-demo", "name": "Grace Hopper Systems", "primaryEmail": "grace@example.com",
                     "address": {"line1": "1 Navy Way", "city": "Arlington", "state": "VA",
                                 "postalCode": "22202", "country": "US"}},
        "account": {"id": "acc-demo", "name": "Grace Hopper Systems", "invoiceCurrency": "USD"}}).raise_for_status()
    for meter_id, (mode, charge, uom) in METERS.items():
        admin.put(f"{stack.service_url}/admin/meters/{meter_id}", timeout=10, json={
            "zuora_subscription_number": SUBSCRIPTION, "zuora_charge_number": charge, "uom": uom,
            "mode": mode}).raise_for_status()
    stack.wait_idle(45)
    checks.append(check_flow1(stack, created))
    checks.append(check_flow2(stack))

    # Flows 3–5: a finalized invoice with fixed lines and usage on two synced meters and one that is not.
    requests.post(f"{stack.billing_url}/_sandbox/invoices", timeout=10, json={
        "id": INVOICE_ID, "accountId": "acc-demo", "startDate": "2026-10-01T00:00:00Z",
        "endDate": "2026-11-01T00:00:00Z", "status": "DUE", "fixed": FIXED_LINES,
        "usage": USAGE_LINES}).raise_for_status()
    stack.wait_idle(45)
    checks += check_invoice_and_usage(stack)
    failures = admin.get(f"{stack.service_url}/admin/failures", timeout=10).json().get("data", [])
    checks.append(Check("failure list is empty", not failures,
                        "nothing failed" if not failures else f"{len(failures)} failure(s)"))
    return checks


def _guard(name: str, body: Callable[[], Check]) -> Check:
    try:
        return body()
    except Exception as exc:  # noqa: BLE001 - a demo check reports, never crashes
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def check_flow1(stack: LocalStack, created: dict) -> Check:
    name = "1. Zuora callout -> billing customer"

    def body() -> Check:
        zuora_id = created["accountId"]
        customers = [c for c in stack.billing_state()["customers"] if c["id"] == zuora_id]
        rows = _rows(stack, "account", zuora_id=zuora_id)
        zuora_account = next(a for a in stack.zuora_state()["accounts"] if a["basicInfo"]["id"] == zuora_id)
        ok = (len(customers) == 1 and len(rows) == 1 and rows[0]["origin"] == "zuora"
              and zuora_account["basicInfo"].get(stack.config.zuora_link_field) == zuora_id)
        return Check(name, ok, f"Zuora {created['accountNumber']} -> billing customer and account {zuora_id[:12]}…"
                               f" ({customers[0]['address'].get('country') if customers else '?'})")
    return _guard(name, body)


def check_flow2(stack: LocalStack) -> Check:
    name = "2. billing account -> Zuora account"

    def body() -> Check:
        twins = [a for a in stack.zuora_state()["accounts"]
                 if a["basicInfo"].get(stack.config.zuora_link_field) == "acc-demo"]
        rows = _rows(stack, "account", billing_id="acc-demo")
        echo = [c for c in stack.zuora_state()["callouts"] if twins and c["account_id"] == twins[0]["basicInfo"]["id"]]
        echo_ok = bool(echo) and echo[-1]["outcome"] == "delivered"
        ok = len(twins) == 1 and len(rows) == 1 and rows[0]["origin"] == "billing" and echo_ok
        number = twins[0]["basicInfo"]["accountNumber"] if twins else "?"
        return Check(name, ok, f"billing acc-demo -> Zuora {number}; Zuora's echo callout "
                               + ("linked, created nothing" if echo_ok else "did not arrive"))
    return _guard(name, body)


def check_invoice_and_usage(stack: LocalStack) -> list[Check]:
    state = stack.zuora_state()

    def invoice() -> Check:
        invoices = state["invoices"]
        rows = _rows(stack, "invoice", billing_id=INVOICE_ID)
        total = sum((Decimal(str(i["amount"])) for i in invoices[0]["invoiceItems"]), Decimal(0)) if invoices else None
        ok = len(invoices) == 1 and len(rows) == 1 and total == EXPECTED_INVOICE_TOTAL
        number = invoices[0].get("invoiceNumber", "?") if invoices else "none"
        return Check("3. finalized invoice -> Zuora invoice", ok,
                     f"{INVOICE_ID} -> {number}, items sum to {total} (expected {EXPECTED_INVOICE_TOTAL})")

    def usage(meter_id: str, expected: Decimal) -> Callable[[], Check]:
        mode, charge, uom = METERS[meter_id]

        def body() -> Check:
            records = [u for u in state["usage"] if _field(u, "ChargeNumber", "CHARGE_ID", "chargeNumber") == charge]
            quantities = [Decimal(str(_field(u, "Quantity", "QTY", "quantity"))) for u in records]
            ok = (len(records) == 1 and quantities == [expected]
                  and _field(records[0], "UOM", "uom") == uom
                  and _field(records[0], "SubscriptionNumber", "SUBSCRIPTION_ID", "subscriptionNumber") == SUBSCRIPTION)
            label = "4. usage, quantity mode" if mode == "quantity" else "5. usage, revenue mode"
            return Check(label, ok, f"{meter_id}: {quantities[0] if quantities else 'nothing'} {uom} on "
                                    f"{SUBSCRIPTION}/{charge} (expected {expected})")
        return body

    return [_guard("3. finalized invoice -> Zuora invoice", invoice),
            _guard("4. usage, quantity mode", usage("api-calls", Decimal("1500"))),
            _guard("5. usage, revenue mode", usage("storage-gb", Decimal("10.625")))]


def _field(record: dict, *names: str):
    for name in names:
        if record.get(name) is not None:
            return record[name]
    return None


def _rows(stack: LocalStack, type: str, **where) -> list[dict]:
    clause = " AND ".join(f"{k} = ?" for k in where)
    # S608: the column names are this module's own keyword arguments; every value is a bound parameter.
    return [dict(r) for r in stack.services.db.utils().execute(
        f"SELECT * FROM id_mappings WHERE type = ? AND {clause}", (type, *where.values())).fetchall()]  # noqa: S608


# -- printing -------------------------------------------------------------------------------------------

def mapping_table(stack: LocalStack) -> str:
    rows = stack.admin().get(f"{stack.service_url}/admin/mappings?limit=500", timeout=10).json()["data"]
    header = ("type", "zuora_id", "zuora_number", "billing_id", "origin")
    cells = [header] + [tuple(_short(str(r.get(k) or "")) for k in header) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [f"ID mappings ({len(rows)})"] + ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                                             for row in cells]
    return "\n".join(lines)


def failure_list(stack: LocalStack) -> str:
    failures = stack.admin().get(f"{stack.service_url}/admin/failures", timeout=10).json().get("data", [])
    if not failures:
        return "Failures: none"
    return "\n".join([f"Failures ({len(failures)})"] + [
        f"  {f['object_type']} {f['object_id']}: {f['code']} {f['message']}" for f in failures])


def _short(text: str, limit: int = 36) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def credentials(stack: LocalStack) -> str:
    return "\n".join([
        "\nEverything stays up:",
        f"  service          {stack.service_url}   (admin: Authorization: Bearer {stack.admin_token})",
        f"  Zuora callouts   {stack.service_url}/webhooks/zuora  (Basic {CALLOUT_USERNAME} / {stack.callout_password})",
        f"  Zuora sandbox    {stack.zuora_url}   (client {stack.zuora_sandbox.client_id} / "
        f"{stack.zuora_sandbox.client_secret})",
        f"  billing sandbox  {stack.billing_url}   (Bearer {stack.billing_sandbox.api_token}; "
        f"webhook secret {stack.billing_sandbox.webhook_secret})",
    ])


def wait_for_signal() -> None:
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    while not done.wait(0.5):
        pass
