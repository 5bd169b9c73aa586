"""``integration link --zuora-account Z --billing-account B`` (CONTRACT §1), as ``POST /admin/links``.

The link is decided at once when the mapping table already links either account elsewhere, else
queued as an ``account.link`` event and written by a worker (``integration worker`` or the one
``integration serve`` runs), which sets the Zuora link field and the billing settings and records the
mapping with origin ``linked`` (integration.actions.links). Unlike the web's doors, the command waits for
it: exit 0 linked, 1 refused (one line saying why), 3 still queued when ``--wait`` ran out (no worker
running?).
"""
from __future__ import annotations

import click

from integration.actions import links as actions
from integration.actions.limits import ACCOUNT_ID_MAX, LINK_WAIT_MAX, LINK_WAIT_SECONDS
from integration.cli.operator_common import (
    EXIT_QUEUED,
    fail,
    guard_store,
    services_or_exit,
)
from integration.domain.identifiers import identifier_problem


def _identifier(ctx, param, value: str) -> str:
    if not value or len(value) > ACCOUNT_ID_MAX or identifier_problem(value):
        raise click.BadParameter(f"not an account ID (1–{ACCOUNT_ID_MAX} printable characters, no spaces)")
    return value


@click.command("link")
@click.option("--zuora-account", required=True, callback=_identifier, help="Zuora account ID or number")
@click.option("--billing-account", required=True, callback=_identifier, help="billing account ID")
@click.option("--wait", default=LINK_WAIT_SECONDS, show_default=True, type=click.FloatRange(0, LINK_WAIT_MAX),
              help="seconds to wait for a worker to write the link")
@guard_store
def link(zuora_account: str, billing_account: str, wait: float) -> None:
    """Link two accounts that already exist, on both sides. Refused if either is linked elsewhere."""
    inbox = services_or_exit().inbox
    result = actions.wait(inbox, actions.request(inbox, zuora_account, billing_account, via="cli"), timeout=wait)
    if result.status == "refused":
        fail(f"not linked: {result.message}")
    if result.status == "queued":
        fail(f"queued as {result.event_id}, but no worker finished it within {wait:g} s"
             " (is `integration worker` running?)", EXIT_QUEUED)
    click.echo(f"{result.message} (event {result.event_id})")
