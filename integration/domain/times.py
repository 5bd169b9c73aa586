"""Time as the service keeps it: timezone-aware UTC everywhere; ``iso_moment`` is how the APIs show a time.

How the store keeps a time (``timestamptz`` on PostgreSQL, fixed-width UTC text on SQLite) is the store's
business alone: ``integration.store.types.UtcTime``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import overload


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@overload
def iso_moment(moment: datetime) -> str: ...
@overload
def iso_moment(moment: None) -> None: ...
def iso_moment(moment: datetime | None) -> str | None:
    """An aware time as the API shows it: ISO-8601 with a ``Z``, sub-second precision kept exact."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment else None
