"""``integration mappings list|export`` (CONTRACT §1): the ID-mapping table from a shell, filtered
as ``GET /admin/mappings`` is; ``export`` writes every mapping as CSV to stdout."""
from __future__ import annotations

import sys

import click

from integration.actions import lookups
from integration.actions.limits import ID_MAX
from integration.cli.operator_common import (
    echo_json,
    echo_table,
    guard_store,
    services_or_exit,
)
from integration.domain.identifiers import identifier_problem
from integration.store import mappings as store
from integration.store.mapping_export import write_csv

TYPES = click.Choice(store.TYPES)


def _identifier(ctx, param, value: str | None) -> str | None:
    if value is not None and (not value or len(value) > ID_MAX or identifier_problem(value)):
        raise click.BadParameter(f"not an ID (1–{ID_MAX} printable characters, no spaces)")
    return value


@click.group("mappings")
def mappings() -> None:
    """List or export the ID mappings between Zuora and the billing platform."""


@mappings.command("list")
@click.option("--type", "type_", type=TYPES, help="account, invoice or usage")
@click.option("--zuora-id", callback=_identifier, help="a Zuora ID or number")
@click.option("--billing-id", callback=_identifier, help="a billing ID")
@click.option("--json", "as_json", is_flag=True, help='{"data": [...]} as GET /admin/mappings gives it')
@guard_store
def list_mappings(type_: str | None, zuora_id: str | None, billing_id: str | None, as_json: bool) -> None:
    """Every mapping (in creation order) matching the filters."""
    items = lookups.all_mappings(services_or_exit().db, type=type_, zuora_id=zuora_id, billing_id=billing_id)
    if as_json:
        echo_json({"data": [m.as_json() for m in items], "next": None})
        return
    shown = echo_table(["type", "zuora_id", "zuora_number", "billing_id", "origin", "updated_at"],
                       [(m.type, m.zuora_id, m.zuora_number, m.billing_id, m.origin, m.as_json()["updated_at"])
                        for m in items])
    click.echo(f"{shown} mapping(s)")


@mappings.command("export")
@click.option("--type", "type_", type=TYPES, help="account, invoice or usage")
@guard_store
def export(type_: str | None) -> None:
    """Every mapping as CSV on stdout (a header line first); the count goes to stderr."""
    count = write_csv(services_or_exit().db, sys.stdout, type_)
    click.echo(f"exported {count} mapping(s)", err=True)
