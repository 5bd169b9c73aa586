"""Driving the whole system in one process (``integration_sandbox.local_stack.LocalStack``) for the sync
and API-call benchmarks: sample objects made the way users make them, a reliable "everything is
settled" wait, and windows cut out of the sandboxes' request logs.

WHY markers: the sandboxes keep only their newest requests (Zuora 10,000, billing 1,000), and
their ``/_sandbox/state`` log has no sequence number. A request to a unique, non-existent path
before and after a measured step brackets exactly that step's calls; if the opening marker has
scrolled out of the log, the window is refused rather than silently short.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import _common  # noqa: F401  (puts the repository on sys.path)
import requests
from sqlalchemy import text as sql_text

from integration.logs import configure_logging
from integration_sandbox.local_stack import CALLOUT_USERNAME, LocalStack

LITERAL_SEGMENTS = {"v1", "accounts", "customers", "settings", "invoices", "usage", "object", "status", "oauth",
                    "token", "object-query", "items", "query", "import", "imports", "files"}

SUBSCRIPTION = "A-S00000001"
METERS = {  # meter id: (mode, charge number, uom) — as in ``integration demo``
    "api-calls": ("quantity", "C-00000001", "Each"),
    "storage-gb": ("revenue", "C-00000002", "USD"),
}


def start_stack(folder: Path, *, workers: int, log_name: str = "service.log",
                database_url: str | None = None) -> tuple[LocalStack, object]:
    """A started LocalStack whose logs go to a file in ``folder`` (not the terminal); its store is
    ``database_url`` when given (e.g. a PostgreSQL database), else a SQLite file in ``folder``."""
    overrides = {"database_url": database_url} if database_url else None
    stack = LocalStack(folder, workers=workers, config_overrides=overrides).start()
    log_file = open(folder / log_name, "a", encoding="utf-8")  # noqa: SIM115 - the caller closes it with the stack
    configure_logging(stack.config.secrets(), stream=log_file)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return stack, log_file


def stop_stack(stack: LocalStack, log_file) -> None:
    """Stop the stack, then close its log file with logging pointed away from it (a later stack in
    the same run must not log into a closed file)."""
    stack.stop()
    configure_logging(stack.config.secrets(), stream=open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as logging does
    log_file.close()


def template(path: str) -> str:
    """``/v1/accounts/8a8…`` → ``/v1/accounts/{id}``: per-endpoint counts without per-object noise."""
    return "/".join(seg if seg in LITERAL_SEGMENTS or not seg else "{id}" for seg in path.split("/"))


# -- request-log windows -----------------------------------------------------------------------------

class Logs:
    """Markers in both sandboxes' request logs, and the calls between two markers."""

    def __init__(self, stack: LocalStack):
        self.stack = stack
        self.zuora = stack.zuora_api()  # fetches its token now, outside any window
        self.billing = stack.billing_api()

    def mark(self) -> str:
        marker = f"bench-marker-{uuid.uuid4().hex}"
        self.zuora.get(f"{self.stack.zuora_url}/v1/accounts/{marker}", timeout=10)
        self.billing.get(f"{self.stack.billing_url}/accounts/{marker}", timeout=10)
        return marker

    def window(self, start: str, end: str, *, billing: bool = True) -> Window:
        """The calls between two markers (``billing=False``: Zuora's only, the billing log left unread)."""
        return Window(zuora=_between(self.stack.zuora_state()["requests"], start, end, "Zuora"),
                      billing=_between(self.stack.billing_state()["requests"], start, end, "billing")
                      if billing else [])


def _between(entries: list[dict], start: str, end: str, name: str) -> list[dict]:
    positions = {marker: next((i for i, e in enumerate(entries) if e["path"].endswith(marker)), None)
                 for marker in (start, end)}
    if positions[start] is None:
        raise RuntimeError(f"the {name} sandbox's request log dropped the opening marker "
                           f"(it keeps only its newest requests): measure fewer objects at a time")
    if positions[end] is None:
        raise RuntimeError(f"closing marker missing from the {name} request log")
    return entries[positions[start] + 1:positions[end]]


@dataclass
class Window:
    zuora: list[dict]
    billing: list[dict]

    @staticmethod
    def breakdown(entries: list[dict]) -> Counter:
        return Counter((e["method"], template(e["path"]), e["status"]) for e in entries)

    @staticmethod
    def count(entries: list[dict], *, include_429: bool = False) -> int:
        return sum(1 for e in entries if include_429 or e["status"] != 429)

    @staticmethod
    def tokens(entries: list[dict]) -> int:
        return sum(1 for e in entries if e["path"] == "/oauth/token")

    @staticmethod
    def refused(entries: list[dict]) -> int:
        return sum(1 for e in entries if e["status"] == 429)


# -- making objects the way users do -----------------------------------------------------------------

def set_zuora_callouts(stack: LocalStack, on: bool) -> None:
    url = f"{stack.service_url}/webhooks/zuora" if on else None
    requests.post(f"{stack.zuora_url}/_sandbox/config", json={"callout_url": url}, timeout=10).raise_for_status()


def create_zuora_accounts(stack: LocalStack, session: requests.Session, count: int, tag: str) -> list[str]:
    """Accounts made through the Zuora API, as a Zuora user would (send no callouts: turn them off first)."""
    ids = []
    for n in range(count):
        resp = session.post(f"{stack.zuora_url}/v1/accounts", timeout=10, json={
            "name": f"Bench Customer {tag} {n:05d}", "currency": "USD", "billCycleDay": 1, "autoPay": False,
            "billToContact": {"firstName": "Ada", "lastName": f"Bench{n}", "workEmail": f"ada.{tag}.{n}@example.com",
                              "address1": "12 St James's Square", "city": "London", "zipCode": "SW1Y 4LB",
                              "country": "United Kingdom"}})
        body = resp.json()
        if not body.get("success"):
            raise RuntimeError(f"the Zuora sandbox refused a sample account: {body}")
        ids.append(body["accountId"])
    return ids


def send_callouts(stack: LocalStack, account_ids: list[str]) -> None:
    """Zuora's callout for each account, delivered by the sandbox the way Zuora delivers it
    (first without credentials, Basic after the 401 challenge)."""
    with requests.Session() as session:
        for account_id in account_ids:
            session.post(f"{stack.zuora_url}/_sandbox/callouts", json={"AccountId": account_id},
                         timeout=10).raise_for_status()


def create_billing_accounts(stack: LocalStack, count: int, tag: str) -> list[str]:
    """Customers with one account each on the billing sandbox (each emits ``account.created``)."""
    ids = []
    with requests.Session() as session:
        for n in range(count):
            account_id = f"acc-{tag}-{n:05d}"
            resp = session.post(f"{stack.billing_url}/_sandbox/accounts", timeout=10, json={
                "customer": {"id": f"cust-{tag}-{n:05d}", "name": f"Grace Hopper {tag} {n}",
                             "primaryEmail": f"grace.{tag}.{n}@example.com",
                             "address": {"line1": "1 Navy Way", "city": "Arlington", "state": "VA",
                                         "postalCode": "22202", "country": "US"}},
                "account": {"id": account_id, "name": f"Grace Hopper {tag} {n}", "invoiceCurrency": "USD"}})
            resp.raise_for_status()
            ids.append(account_id)
    return ids


def configure_meters(stack: LocalStack) -> None:
    admin = stack.admin()
    for meter_id, (mode, charge, uom) in METERS.items():
        admin.put(f"{stack.service_url}/admin/meters/{meter_id}", timeout=10, json={
            "zuora_subscription_number": SUBSCRIPTION, "zuora_charge_number": charge, "uom": uom,
            "mode": mode}).raise_for_status()


def create_invoices(stack: LocalStack, account_ids: list[str], tag: str) -> list[str]:
    """One finalized invoice per account: three fixed lines, usage on both synced meters and on
    one meter without settings (that line stays on the Zuora invoice) — the demo's invoice."""
    ids = []
    with requests.Session() as session:
        for n, account_id in enumerate(account_ids):
            invoice_id = f"inv-{tag}-{n:05d}"
            session.post(f"{stack.billing_url}/_sandbox/invoices", timeout=10, json={
                "id": invoice_id, "accountId": account_id, "startDate": "2026-10-01T00:00:00Z",
                "endDate": "2026-11-01T00:00:00Z", "status": "DUE",
                "fixed": [{"description": "Platform fee", "amount": 99.90},
                          {"description": "Onboarding credit top-up", "amount": 0.10},
                          {"description": "Premium support (per ticket)", "quantity": 2, "valuePerQuantity": 0.10}],
                "usage": [{"meterId": "api-calls", "name": "API calls", "quantity": 1500, "units": "calls",
                           "valuePerQuantity": 0.002},
                          {"meterId": "storage-gb", "name": "Storage GB-month", "quantity": 42.5, "units": "GB",
                           "valuePerQuantity": 0.25},
                          {"meterId": "sms", "name": "SMS sent", "quantity": 10, "units": "messages",
                           "valuePerQuantity": 0.05}]}).raise_for_status()
            ids.append(invoice_id)
    return ids


# -- waiting ----------------------------------------------------------------------------------------------

def settle(stack: LocalStack, timeout: float) -> None:
    """Until every callout and billing event is delivered and no event is pending or running at all.

    Stricter than ``LocalStack.wait_idle``, which treats an event rescheduled into the future as
    settled: a benchmark must not stop the clock while a backed-off retry is still owed.
    """
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not settled within {timeout:.0f}s: {stack.inbox_summary()}")
        delivered = (stack.zuora_sandbox.wait_for_callouts(timeout=0.5)
                     and stack.billing_sandbox.wait_for_deliveries(timeout=0.5))
        open_events = _scalar(stack, "SELECT COUNT(*) FROM events WHERE status IN ('pending', 'running')")
        quiet = quiet + 1 if delivered and not open_events else 0
        time.sleep(0.05)


def last_event_done_at(stack: LocalStack) -> float:
    """Epoch seconds of the latest event update (when the last piece of work finished)."""
    from integration.store.types import text  # the store's time type on ``at``: an aware datetime on either engine
    with stack.services.db.read() as tx:
        return tx.scalar(text("SELECT MAX(updated_at) AS at FROM events")).timestamp()


def failed_events(stack: LocalStack) -> list[dict]:
    with stack.services.db.read() as tx:
        return [dict(r) for r in tx.rows(sql_text(
            "SELECT type, object_id, error_code, last_error FROM events WHERE status = 'failed'"))]


def mapping_count(stack: LocalStack, type: str) -> int:
    return _scalar(stack, "SELECT COUNT(*) FROM id_mappings WHERE type = :type", type=type)


def _scalar(stack: LocalStack, sql: str, **params):
    """One value read through the service's own store (either engine)."""
    with stack.services.db.read() as tx:
        return tx.scalar(sql_text(sql), **params)


__all__ = ["CALLOUT_USERNAME", "LocalStack", "Logs", "Window", "configure_meters", "create_billing_accounts",
           "create_invoices", "create_zuora_accounts", "failed_events", "last_event_done_at", "mapping_count",
           "send_callouts", "set_zuora_callouts", "settle", "start_stack", "stop_stack", "template"]
