"""Time as the service keeps it: timezone-aware UTC everywhere, and one stored text form.

The stored form is fixed-width ISO-8601 UTC with microseconds (``2024-05-01T12:00:00.000000Z``), so
string order is time order in SQL comparisons on any engine; ``iso`` is how the APIs show a time.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import overload

STORED_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_db_time(moment: datetime) -> str:
    """The stored text of an aware time; ValueError on a naive one (never guess a zone)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: times in this service are timezone-aware UTC")
    return moment.astimezone(timezone.utc).strftime(STORED_FORMAT)


@overload
def from_db_time(text: str) -> datetime: ...
@overload
def from_db_time(text: None) -> None: ...
def from_db_time(text: str | None) -> datetime | None:
    """The aware time of a stored text (None stays None: a column that may be empty)."""
    if text is None:
        return None
    return datetime.strptime(text, STORED_FORMAT).replace(tzinfo=timezone.utc)


@overload
def iso_moment(moment: datetime) -> str: ...
@overload
def iso_moment(moment: None) -> None: ...
def iso_moment(moment: datetime | None) -> str | None:
    """An aware time as the API shows it: ISO-8601 with a ``Z``."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment else None


@overload
def iso(text: str) -> str: ...
@overload
def iso(text: None) -> None: ...
def iso(text: str | None) -> str | None:
    """A stored time as the API shows it: ISO-8601 with a ``Z``, sub-second precision kept exact."""
    return iso_moment(from_db_time(text))
