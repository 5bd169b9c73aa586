"""``integration report --period YYYY-MM [--csv]`` (CONTRACT §1, §9): billing vs Zuora totals per
linked account for one month (integration.flows.totals), mismatches first.

Exit 0 when every account matches, 1 when any differs (so a cron job alerts), 2 for a bad period
(click names the option). A remote error stops the report with one line and exit 1: a report that
could not look is not a report that found everything matching.
"""
from __future__ import annotations

import csv
import sys

import click

from integration.cli.operator_common import EXIT_NOT_DONE, echo_table, fail, guard_store, printable, services_or_exit
from integration.domain.errors import SyncError
from integration.domain.periods import Period, parse_period
from integration.domain.spreadsheet import spreadsheet_cell
from integration.flows.totals import TotalsReport, totals_report

COLUMNS = ("zuora_account", "billing_account", "currency", "billing_total", "zuora_total", "difference",
           "differing_invoices")
AMOUNTS = {3, 4, 5}
"""Amount columns stay numbers (a leading minus is a negative difference, not a formula: they are
Decimals this code formatted); every other cell is quoted like the mappings export."""


def _period(ctx, param, value: str) -> Period:
    try:
        return parse_period(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _rows(report: TotalsReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for row in report.rows:
        item = row.as_json()
        differing = " ".join(f"{i['billing_invoice_id']}({i['difference']})" for i in item["invoices"])
        rows.append((item["zuora_account"], item["billing_account"], item["currency"] or "",
                     item["billing_total"], item["zuora_total"], item["difference"], differing))
    return rows


@click.command("report")
@click.option("--period", required=True, callback=_period, metavar="YYYY-MM",
              help="the month whose finalized billing invoices are compared (UTC)")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout (one row per account and currency)")
@guard_store
def report(period: Period, as_csv: bool) -> None:
    """Totals per linked account, billing vs Zuora, for one month; exit 1 if any account differs."""
    services = services_or_exit()
    try:
        result = totals_report(services.db, services.zuora, services.billing, period)
    except SyncError as exc:
        fail(f"the report stopped: {type(exc).__name__}: {printable(str(exc))}")
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([spreadsheet_cell(cell) if n not in AMOUNTS else cell for n, cell in enumerate(row)]
                         for row in _rows(result))
    else:
        echo_table(COLUMNS, _rows(result), max_width=200)
    for row in result.rows:
        for note in (n for i in row.differing for n in i.notes):
            click.echo(f"{row.zuora_account}: {printable(note)}", err=as_csv)
        for warning in row.warnings:
            click.echo(f"warning: {row.zuora_account}: {printable(warning)}", err=as_csv)
    totals = "; ".join(f"{c['currency'] or 'no currency'} billing {c['billing_total']} zuora {c['zuora_total']} "
                       f"difference {c['difference']}" for c in result.currencies())
    click.echo(f"{period}: {len(result.rows)} account row(s), {result.mismatches} differ"
               + (f"; {totals}" if totals else ""), err=as_csv)
    if result.mismatches:
        sys.exit(EXIT_NOT_DONE)
