"""``integration backfill`` (CONTRACT §1, §9): onboard a tenant pair that already has data.

Reads both tenants into a scratch index (``integration.flows.backfill``), writes the plan to it as it
classifies (so ``--apply`` knows its total for the ETA, and the CSV report is written row by row),
prints the counts per action, and with ``--apply`` queues what is left through the inbox
(``integration.flows.backfill_apply``). Dry run by default.
"""
from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime, timezone
from typing import IO

import click

from integration.billing.model import BillingAccount
from integration.cli.operator_common import fail, guard_store, printable, services_or_exit
from integration.cli.progress import Progress
from integration.domain.errors import SyncError
from integration.domain.spreadsheet import spreadsheet_cell as cell  # the --report file's cells
from integration.flows.backfill import ACTIONS, SIDES, PlanItem, Planner, index_billing, index_zuora
from integration.flows.backfill_apply import plan_invoices, queue, wants_queue
from integration.services import Services
from integration.store.backfill_index import ScratchIndex

REPORT_COLUMNS = ("action", "zuora_account_id", "zuora_account_number", "billing_account_id", "invoice_id", "reason")


def _date(ctx, param, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise click.BadParameter("not a date such as 2025-01-31 (YYYY-MM-DD)") from None


@click.command("backfill")
@click.option("--from", "side", type=click.Choice(SIDES), default="both", show_default=True,
              help="plan the accounts of this side (both tenants are read either way)")
@click.option("--match-email", is_flag=True, help="propose unlinked accounts with the same bill-to email as candidates")
@click.option("--invoices-since", callback=_date, metavar="YYYY-MM-DD",
              help="also plan finalized billing invoices since this date whose Zuora twin is missing")
@click.option("--report", "report", type=click.File("w", encoding="utf-8"), metavar="FILE.csv",
              help="write one CSV row per object: its action and the reason")
@click.option("--apply", "apply_", is_flag=True, help="queue the plan through the inbox (default: dry run)")
@click.option("--accept-candidates", is_flag=True, help="with --apply, also link the --match-email candidates")
@guard_store
def backfill(side: str, match_email: bool, invoices_since: datetime | None, report: IO[str] | None,
             apply_: bool, accept_candidates: bool) -> None:
    """Plan (and with --apply, queue) the onboarding of existing accounts and invoices."""
    if accept_candidates and not apply_:
        fail("--accept-candidates only means something with --apply", 2)
    services = services_or_exit()
    try:
        with ScratchIndex() as index:
            counts, queued, known = _run(services, index, side, match_email, invoices_since, report,
                                         apply_, accept_candidates)
    except SyncError as exc:
        fail(f"backfill stopped: {type(exc).__name__}: {printable(str(exc))}; nothing was lost, run it again")
    for action in ACTIONS:
        if counts.get(action):
            click.echo(f"{action:<18} {counts[action]}")
    total = sum(counts.values())
    tail = (f"queued {queued}, already queued {known}" if apply_
            else "dry run, nothing written (--apply carries it out)")
    click.echo(f"backfill: {total} objects planned ({', '.join(f'{a} {counts[a]}' for a in ACTIONS if counts[a])});"
               f" {tail}")


def _read(services: Services, index: ScratchIndex, match_email: bool) -> None:
    config = services.config
    progress = Progress("reading Zuora accounts")
    index_zuora(index, services.zuora.list_accounts(expand=("billTo",) if match_email else ()),
                config.zuora_link_field, progress.tick)
    progress.finish()

    def email_of(row: BillingAccount) -> str | None:
        if not match_email:
            return None
        if row.primary_email or not row.customer_id:
            return row.primary_email
        customer = services.billing.get_customer(row.customer_id)
        return customer.primary_email if customer else None

    progress = Progress("reading billing accounts")
    index_billing(index, services.billing.list_accounts(), email_of, progress.tick)
    progress.finish()


def _run(services: Services, index: ScratchIndex, side: str, match_email: bool, since: datetime | None,
         report: IO[str] | None, apply_: bool, accept_candidates: bool) -> tuple[Counter, int, int]:
    _read(services, index, match_email)
    writer = csv.writer(report) if report is not None else None
    if writer is not None:
        writer.writerow(REPORT_COLUMNS)
    counts: Counter = Counter(dict.fromkeys(ACTIONS, 0))
    progress = Progress("planning")
    items = Planner(services.db, index, match_email=match_email).plan(side)
    for item in _chain(items, services, since):
        counts[item.action] += 1
        if writer is not None:
            writer.writerow([cell(v) for v in (item.action, item.zuora_id, item.zuora_number, item.billing_id,
                                                item.invoice_id, item.reason)])
        if apply_ and wants_queue(item, accept_candidates):
            index.add_plan((item.action, item.reason, item.zuora_id, item.zuora_number, item.billing_id,
                            item.invoice_id))
        progress.tick()
    progress.finish()
    queued = known = 0
    if apply_:
        total = index.plan_count()
        progress = Progress("queueing", total)
        for row in index.plan_rows():
            if queue(services.inbox, PlanItem(*row), accept_candidates=accept_candidates):
                queued += 1
            else:
                known += 1
            progress.tick()
        progress.finish()
    return counts, queued, known


def _chain(items, services: Services, since: datetime | None):
    yield from items
    if since is not None:
        yield from plan_invoices(services.db, services.billing, services.zuora,
                                 services.config.zuora_invoice_link_field, since)
