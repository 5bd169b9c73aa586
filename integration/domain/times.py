"""Time as the service keeps it: timezone-aware UTC everywhere; ``iso_moment`` is how the APIs show a time.

How the store keeps a time (``timestamptz`` on PostgreSQL, fixed-width UTC text on SQLite) is the store's
business alone: ``integration.store.types.UtcTime``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import overload


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_moment(value: object, *, naive_is_utc: bool) -> datetime | None:
    """A remote API's ISO-8601 time (``Z`` or an offset) as aware UTC; None when absent or unreadable. A
    time without a zone is UTC where the API documents its times so (``naive_is_utc``: Zuora's), else
    unreadable, since guessing its zone could move it by hours."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc) if naive_is_utc else None
    return moment.astimezone(timezone.utc)


@overload
def iso_moment(moment: datetime) -> str: ...
@overload
def iso_moment(moment: None) -> None: ...
def iso_moment(moment: datetime | None) -> str | None:
    """An aware time as the API shows it: ISO-8601 with a ``Z``, sub-second precision kept exact."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment else None
