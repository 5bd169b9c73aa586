"""The store's handle on one open transaction (or read), handed to the store's own functions and
to the worker's ``Outcome.writes``: it runs the store's named queries and gives back plain dicts,
so no driver or SQLAlchemy type leaves the store.

Every driver error becomes ``StoreUnavailable`` (locked past the busy timeout, read-only, disk full,
a vanished or corrupt file, a dropped server connection), except an integrity or programming error,
which is a bug in the store and must not pass for "try again later".
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect

from integration.store.types import TIME_PARAMS

Query = TextClause | TextualSelect
"""A named query (``integration.store.queries``): text SQL, its time parameters and columns typed."""

IntegrityError = sa_exc.IntegrityError
"""A unique key or check refused a write (the store's own code catches it where a conflict is expected)."""


class StoreUnavailable(Exception):
    """The store could not read or commit (locked past the busy timeout, read-only, disk full, gone)."""


@contextmanager
def store_errors() -> Iterator[None]:
    """Driver trouble as ``StoreUnavailable``; integrity and programming errors stay what they are."""
    try:
        yield
    except (sa_exc.IntegrityError, sa_exc.ProgrammingError):
        raise
    except sa_exc.DBAPIError as exc:
        raise StoreUnavailable(str(exc.orig)) from exc
    except sa_exc.TimeoutError as exc:  # no pooled connection came free in time
        raise StoreUnavailable(str(exc)) from exc
    except OSError as exc:  # the folder of the file is gone or not writable
        raise StoreUnavailable(str(exc)) from exc


def _checked(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters, once it is sure every time among them is bound as the store's time type: an
    undeclared one would be written in SQLAlchemy's own text form, which does not sort with ours."""
    for name, value in params.items():
        if isinstance(value, datetime) and name not in TIME_PARAMS:
            raise TypeError(f"time parameter :{name} is not declared in integration.store.types.TIME_PARAMS")
    return params


class Tx:
    """One connection inside one transaction (or one read). Only the store builds these."""

    __slots__ = ("_conn", "dialect")

    def __init__(self, conn: Connection):
        self._conn = conn
        self.dialect: str = conn.dialect.name

    def rows(self, query: Query, **params: Any) -> list[dict[str, Any]]:
        with store_errors():
            return [dict(row) for row in self._conn.execute(query, _checked(params)).mappings()]

    def one(self, query: Query, **params: Any) -> dict[str, Any] | None:
        with store_errors():
            row = self._conn.execute(query, _checked(params)).mappings().first()
        return dict(row) if row is not None else None

    def scalar(self, query: Query, **params: Any) -> Any:
        with store_errors():
            return self._conn.execute(query, _checked(params)).scalar()

    def run(self, query: Query, **params: Any) -> int:
        """Execute a write; the number of rows it changed."""
        with store_errors():
            return self._conn.execute(query, _checked(params)).rowcount

    def run_many(self, query: Query, params: Sequence[dict[str, Any]]) -> int:
        """Execute one write per parameter set (nothing when empty); the rows changed in all."""
        if not params:
            return 0
        with store_errors():
            return self._conn.execute(query, [_checked(p) for p in params]).rowcount

    def announce(self) -> None:
        """Tell idle workers that work is due, delivered when this transaction commits: a
        ``NOTIFY`` on PostgreSQL; nothing on SQLite, whose workers read ``PRAGMA data_version``."""
        from integration.store.queries.inbox import NOTIFY

        if self.dialect in NOTIFY:
            self.run(NOTIFY[self.dialect])

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an integrity error inside it rolls back only its own statements,
        so the caller can skip one row (a claim that meets the one-running-per-object index)."""
        with store_errors():
            nested = self._conn.begin_nested()
        try:
            yield
        except BaseException:
            with store_errors():
                nested.rollback()
            raise
        with store_errors():
            nested.commit()
