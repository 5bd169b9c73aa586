"""``integration reconcile [--since ISO-8601]`` (CONTRACT §1, §9): one reconciliation pass now.

Without ``--since`` it starts from the stored watermark (less the overlap) and, having completed, moves
the watermark forward as the worker's scheduled pass would. With ``--since`` it reads from that moment
and leaves the watermark alone (an operator looking further back must not make the worker skip ahead).
The first pass on a store, by hand or by the worker, queues nothing whatever ``--since`` says: it records
what the tenants hold as existing before the service (``integration backfill``'s to onboard; CONTRACT §12).
"""
from __future__ import annotations

from datetime import datetime, timezone

import click

from integration.cli.operator_common import fail, guard_store, printable, services_or_exit
from integration.domain.errors import SyncError
from integration.worker.reconcile import run_pass


def _since(ctx, param, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("not an ISO-8601 time such as 2025-01-31T00:00:00Z") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone (Z or +00:00): times here are UTC")
    return moment.astimezone(timezone.utc)


@click.command("reconcile")
@click.option("--since", callback=_since, metavar="ISO-8601",
              help="read changes since this time instead of the stored watermark")
@guard_store
def reconcile(since: datetime | None) -> None:
    """Run one reconciliation pass now; print what it found and queued."""
    services = services_or_exit()
    try:
        result = run_pass(services, since=since, advance=since is None)
    except SyncError as exc:
        fail(f"reconciliation stopped, nothing lost (the watermark did not move): {type(exc).__name__}: "
             f"{printable(str(exc))}")
    for kind, ids in result.queued.items():
        for object_id in ids:
            click.echo(f"queued {kind.replace('_', ' ')} {printable(object_id)}")
    click.echo(result.summary())
