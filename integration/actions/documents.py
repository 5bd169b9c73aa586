"""One event as JSON, as ``GET /admin/events/<id>`` answers and ``integration events show --json``
prints it: a neutral home, so the commands never import the web."""
from __future__ import annotations

from typing import Any

from integration.domain.times import iso_moment
from integration.store.inbox import Attempt, Event


def attempt_as_json(attempt: Attempt) -> dict[str, Any]:
    """One entry of an event's ``history``."""
    return {"series": attempt.series, "attempt": attempt.attempt, "worker_id": attempt.worker_id,
            "started_at": iso_moment(attempt.started_at), "ended_at": iso_moment(attempt.ended_at),
            "outcome": attempt.outcome, "code": attempt.code, "message": attempt.message}


def event_as_json(event: Event, history: list[Attempt] | None = None) -> dict[str, Any]:
    """One event as ``GET /admin/events/<id>`` shows it, with its attempt history."""
    return {"series": event.series, "history": [attempt_as_json(a) for a in history or []],
            "id": event.id, "source": event.source, "type": event.type, "object_type": event.object_type,
            "object_id": event.object_id, "status": event.status, "attempts": event.attempts,
            "next_attempt_at": iso_moment(event.next_attempt_at) if event.status == "pending" else None,
            "code": event.error_code, "last_error": event.last_error, "waiting_for": event.waiting_for,
            "first_failed_at": iso_moment(event.first_failed_at), "last_failed_at": iso_moment(event.last_failed_at),
            "created_at": iso_moment(event.created_at), "updated_at": iso_moment(event.updated_at)}
