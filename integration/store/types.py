"""The store's one time type, and the ``text()`` every named query is built with.

Times are aware UTC ``datetime``s everywhere outside the store. Inside it they are ``timestamptz`` on
PostgreSQL and, on SQLite (which has no time type), fixed-width ISO-8601 UTC text
(``2024-05-01T12:00:00.000000Z``: string order is time order, so ``<``, ``MIN`` and ``ORDER BY`` stay
correct). ``UtcTime`` is the one place a time crosses that line, both ways; ``text`` declares it on every
bind parameter and result column that holds a time, by name (``TIME_PARAMS``, ``TIME_COLUMNS``), so no
caller converts anything. A naive time is refused, never guessed.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Dialect, Text, TypeDecorator, bindparam
from sqlalchemy import text as sa_text
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect
from sqlalchemy.types import TypeEngine

STORED_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""SQLite's stored text of a time."""


def to_db_time(moment: datetime) -> str:
    """SQLite's stored text of an aware time (also what raw SQL in tests and tools writes); ValueError
    on a naive one (never guess a zone)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: times in this service are timezone-aware UTC")
    return moment.astimezone(timezone.utc).strftime(STORED_FORMAT)


def from_db_time(text: str) -> datetime:
    """The aware time of SQLite's stored text."""
    return datetime.strptime(text, STORED_FORMAT).replace(tzinfo=timezone.utc)


class UtcTime(TypeDecorator[datetime]):
    """An aware UTC time: ``timestamptz`` on PostgreSQL, ``STORED_FORMAT`` text on SQLite."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"a time is an aware datetime, not {type(value).__name__}")
        text = to_db_time(value)  # ValueError on a naive time, on either engine
        return value.astimezone(timezone.utc) if dialect.name == "postgresql" else text

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):  # PostgreSQL: in the session's time zone
            return value.astimezone(timezone.utc)
        return from_db_time(value)


TIME = UtcTime()

TIME_COLUMNS = frozenset({
    # events, attempts
    "next_attempt_at", "lease_expires_at", "first_failed_at", "last_failed_at", "created_at", "updated_at",
    "started_at", "ended_at",
    # id_mappings, alert_digests, reconcile_state, console_sessions, sign_in_attempts, webhook_deliveries,
    # unpushed_voids, reconcile_baseline
    "reversed_at", "claimed_at", "through", "delivered_at", "watermark", "last_seen_at", "expires_at",
    "window_start", "received_at", "forget_after", "voided_at", "recorded_at",
    # the queries' own names for a computed time (MIN/MAX of a time column)
    "t", "at", "due",
})
"""Every result column that holds a time: the time columns of the schema (every one of them is in
``tests/test_engine_schemas.py``'s check) and the aliases the queries give computed times."""

TIME_PARAMS = frozenset({
    "now", "since", "through", "due", "lease_until", "expires_at", "soon", "expired", "window_start",
    "watermark", "taken_at", "started_at", "delivered_at", "forget_after",
})
"""Every bind parameter that carries a time (``:now`` and friends)."""

_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")  # SQLAlchemy's own reading of ``:name`` in text()
_RETURNS_ROWS = re.compile(r"\b(SELECT|RETURNING)\b")


def text(sql: str) -> TextClause | TextualSelect:
    """SQLAlchemy's ``text()``, with ``UtcTime`` declared on its time parameters and, when it returns
    rows, on its time columns (a declared column the result lacks is ignored)."""
    clause = sa_text(sql)
    times = sorted({name for name in _BIND.findall(sql) if name in TIME_PARAMS})
    if times:
        clause = clause.bindparams(*(bindparam(name, type_=TIME) for name in times))
    if _RETURNS_ROWS.search(sql):
        return clause.columns(**dict.fromkeys(sorted(TIME_COLUMNS), TIME))
    return clause
