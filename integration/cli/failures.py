"""``integration failures list|retry|delete`` (CONTRACT §1): the failure list from a shell, with
the admin API's selectors and results (``GET /admin/failures``, ``POST /admin/failures/retry``,
``DELETE /admin/failures``)."""
from __future__ import annotations

import click

from integration.actions import failures as actions
from integration.actions import lookups
from integration.actions.limits import EVENT_ID_MAX, SELECTOR_MAX_IDS
from integration.cli.operator_common import (
    EXIT_NOT_DONE,
    echo_json,
    echo_table,
    guard_store,
    services_or_exit,
)
from integration.domain.errors import FAILURE_CODES
from integration.domain.identifiers import identifier_problem
from integration.store import failures as store

OBJECT_TYPES = click.Choice(store.OBJECT_TYPES)


@click.group("failures")
def failures() -> None:
    """List, retry or delete sync failures."""


@failures.command("list")
@click.option("--object-type", type=OBJECT_TYPES, help="account, invoice or usage")
@click.option("--code", type=click.Choice(FAILURE_CODES), help="a failure code (CONTRACT §5)")
@click.option("--json", "as_json", is_flag=True, help='{"data": [...]} as GET /admin/failures gives it')
@guard_store
def list_failures(object_type: str | None, code: str | None, as_json: bool) -> None:
    """Every failure (oldest first), optionally of one object type and code."""
    items = lookups.all_failures(services_or_exit().db, object_type=object_type, code=code)
    if as_json:
        echo_json({"data": [f.as_json() for f in items], "next": None})
        return
    shown = echo_table(["id", "object_type", "object_id", "code", "attempts", "last_failed_at", "message"],
                       [(f.id, f.object_type, f.object_id, f.code, f.attempts, f.as_json()["last_failed_at"],
                         f.message) for f in items])
    click.echo(f"{shown} failure(s)")


def _selector(ids: tuple[str, ...], object_type: str | None, all_: bool) -> store.Selector:
    given = sum([bool(ids), object_type is not None, all_])
    if given != 1:
        raise click.UsageError("give exactly one of --id (repeatable), --object-type or --all")
    if ids:
        for event_id in ids:
            if not event_id or len(event_id) > EVENT_ID_MAX or identifier_problem(event_id):
                raise click.BadParameter(f"{event_id!r} is not an event ID", param_hint="--id")
        if len(ids) > SELECTOR_MAX_IDS:
            raise click.BadParameter(f"at most {SELECTOR_MAX_IDS} IDs", param_hint="--id")
    try:
        return store.Selector(ids=tuple(ids) if ids else None, object_type=object_type, all=all_)
    except ValueError as exc:  # the selector's own rules
        raise click.UsageError(str(exc)) from None


def _act(verb: str, ids, object_type, all_, as_json: bool) -> None:
    selector = _selector(ids, object_type, all_)
    acted = (actions.retry if verb == "retried" else actions.delete)(services_or_exit().db, selector, via="cli")
    missing = acted.not_found or []
    if as_json:
        echo_json(acted.as_json(verb))
    else:
        click.echo(f"{verb} {acted.count} failure(s)" + (f"; not found: {', '.join(missing)}" if missing else ""))
    if missing:
        raise SystemExit(EXIT_NOT_DONE)


def _selector_options(command):
    for option in reversed([
        click.option("--id", "ids", multiple=True, help="an event ID (repeatable)"),
        click.option("--object-type", type=OBJECT_TYPES, help="every failure of this object type"),
        click.option("--all", "all_", is_flag=True, help="every failure"),
        click.option("--json", "as_json", is_flag=True, help="the admin API's JSON result"),
    ]):
        command = option(command)
    return command


@failures.command("retry")
@_selector_options
@guard_store
def retry(ids: tuple[str, ...], object_type: str | None, all_: bool, as_json: bool) -> None:
    """Put failures back in the queue now (an invoice's failed usage with it). Exit 1 if an --id was not found."""
    _act("retried", ids, object_type, all_, as_json)


@failures.command("delete")
@_selector_options
@guard_store
def delete(ids: tuple[str, ...], object_type: str | None, all_: bool, as_json: bool) -> None:
    """Mark failures deleted (kept for audit, never retried). Exit 1 if an --id was not found."""
    _act("deleted", ids, object_type, all_, as_json)
