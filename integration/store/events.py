"""What the inbox hands out: events, attempts and the result of recording one; and the attempt
series that every retry outside the inbox's own backoff starts.

Attempt series (CONTRACT §6): an event's tries belong to a series with a random ``series_key``, from
which its Zuora ``Idempotency-Key``s are made (``Event.idempotency_key``). A new series gets a new
random key, made here in Python for each event, so the statement that starts it is the same on
every engine.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from integration.store.queries import inbox as q
from integration.store.tx import Tx


@dataclass(frozen=True)
class Event:
    id: str
    source: str
    type: str
    object_type: str
    object_id: str
    object_key: str
    payload: dict
    status: str
    attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    error_code: str | None
    last_error: str | None
    waiting_for: str | None
    first_failed_at: datetime | None
    last_failed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    series: int = 1
    series_key: str = ""

    def idempotency_key(self, *parts: str) -> str:
        """The Zuora ``Idempotency-Key`` of this event's current attempt series for one write."""
        return idempotency_key(*parts, self.series_key)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Event:
        """From a stored ``events`` row (columns the dataclass does not carry are left out)."""
        data = {name: row[name] for name in _FIELDS}
        data["payload"] = json.loads(data["payload"])
        return cls(**data)


_FIELDS = tuple(f.name for f in fields(Event))


@dataclass(frozen=True)
class Recorded:
    """What ``record`` did: ``created`` False means a duplicate or a coalesced repeat."""

    event_id: str
    created: bool
    coalesced: bool = False


@dataclass(frozen=True)
class Attempt:
    """One try of an event, as ``GET /admin/events/<id>`` shows it in ``history``."""

    series: int
    attempt: int
    worker_id: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None       # None while it runs; done | rescheduled | failed | lost
    code: str | None
    message: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Attempt:
        return cls(**row)


class LeaseLost(Exception):
    """The event is no longer this worker's (its lease expired and someone else took it)."""


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def new_series_key() -> str:
    """A fresh random token for one attempt series (never derived from the object: two events of one
    object, or two series of one event, must never share a Zuora Idempotency-Key)."""
    return secrets.token_hex(8)


IDEMPOTENCY_KEY_MAX = 255


def idempotency_key(*parts: str) -> str:
    """``part:part:…`` as a Zuora ``Idempotency-Key``; an object ID that would make the key too long or
    not printable ASCII is replaced by its SHA-256 digest (the series token keeps the key unique)."""
    key = ":".join(parts)
    if len(key) <= IDEMPOTENCY_KEY_MAX and all(" " < ch <= "~" for ch in key):
        return key
    return ":".join(p if len(p) <= 40 and all(" " < ch <= "~" for ch in p)
                    else hashlib.sha256(p.encode("utf-8", "surrogatepass")).hexdigest()[:32] for p in parts)


def start_new_series(tx: Tx, event_ids: Iterable[str], now: datetime) -> int:
    """Inside the caller's transaction: put these *failed* events back in the queue, due ``now``, each
    in a NEW attempt series (next series number, fresh random key, full attempt budget). Returns how
    many. Every retry that is not the inbox's own backoff goes through here: an operator's, the
    scheduled one, a MISSING_MAPPING release, and reconciliation. An event no longer failed when
    the update reaches it is left alone (the update re-checks, so this is safe on any engine).

    ``error_code``, ``last_error`` and the failure times stay as history until the event succeeds.
    """
    started = tx.run_many(q.NEW_SERIES, [{"id": event_id, "now": now, "series_key": new_series_key()}
                                      for event_id in dict.fromkeys(event_ids)])
    if started:
        tx.announce()
    return started
