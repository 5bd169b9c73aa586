"""``integration events show ID`` (CONTRACT §1): one event with its attempts, as ``GET /admin/events/<id>``."""
from __future__ import annotations

import click

from integration.actions.documents import event_as_json
from integration.actions.lookups import find_event
from integration.cli.operator_common import (
    echo_json,
    echo_table,
    fail,
    guard_store,
    printable,
    services_or_exit,
)
from integration.domain.identifiers import printable_problem


@click.group("events")
def events() -> None:
    """Look at inbox events."""


def _event_id(ctx, param, value: str) -> str:
    """A usage error (exit 2) for an ID no event has and the store may not take: a lone surrogate
    (an argument's undecodable bytes) cannot be encoded at all, and PostgreSQL refuses a NUL."""
    if (problem := printable_problem(value)) is not None:
        raise click.BadParameter(f"not an event ID: it {problem}")
    return value


@events.command("show")
@click.argument("event_id", callback=_event_id)
@click.option("--json", "as_json", is_flag=True, help="the admin API's JSON")
@guard_store
def show(event_id: str, as_json: bool) -> None:
    """One event: its fields and every attempt (series, start, end, outcome, code, remote message)."""
    inbox = services_or_exit().inbox
    event = find_event(inbox, event_id)
    if event is None:
        fail(f"no event {printable(event_id)}")
    document = event_as_json(event, inbox.history(event.id))
    if as_json:
        echo_json(document)
        return
    for name in ("id", "status", "source", "type", "object_type", "object_id", "code", "last_error", "attempts",
                 "series", "waiting_for", "next_attempt_at", "first_failed_at", "last_failed_at", "created_at",
                 "updated_at"):
        if document.get(name) is not None:
            click.echo(f"{name + ':':<17} {printable(document[name])}")
    click.echo("")
    echo_table(["series", "attempt", "started_at", "ended_at", "outcome", "code", "message"],
               [(a["series"], a["attempt"], a["started_at"], a["ended_at"], a["outcome"] or "running", a["code"],
                 a["message"]) for a in document["history"]], max_width=100)
