"""Both engines under test: SQLite in a temporary folder, PostgreSQL in a database of this run's own.

Each pytest process (each xdist worker too) creates one database, ``itest_<pid>_<random>``, from
the server's ``postgres`` database, and drops it at the end of the session; every test gets an
empty schema of its own in it (``search_path`` set through the URL), so tests never see each
other's rows and child processes started with the URL see the same schema. The server is
``$TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``). Without it the
PostgreSQL runs are skipped with the reason; under ``CI=true`` they fail instead.

``store_sql(db)`` is the tests' raw window on a store, on either engine: sqlite-utils for SQLite,
and for PostgreSQL a small look-alike (``execute(sql, params)`` with ``?`` placeholders, rows
readable by position and by name, and ``conn`` as a committing context). A ``timestamptz`` value reads
as SQLite's stored text of it, so a test compares times the same way on both engines (and writes them as
that text, which PostgreSQL reads as a ``timestamptz``).
"""
from __future__ import annotations

import itertools
import os
import secrets
import sqlite3
from datetime import datetime
from urllib.parse import quote

import psycopg
import pytest

from integration.store.engine import libpq_url
from integration.store.types import to_db_time

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_schemas = itertools.count(1)


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used for tests, or None when it can."""
    try:
        with psycopg.connect(libpq_url(ADMIN_URL), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {ADMIN_URL.split('@')[-1]}: {str(exc).strip().splitlines()[0]}"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip a PostgreSQL run, except under CI=true, where a missing PostgreSQL is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true needs PostgreSQL: {reason}", pytrace=False)
    pytest.skip(reason)


class RunDatabase:
    """This process's database: created on first use, dropped (with its connections) at the end."""

    def __init__(self) -> None:
        self.name = f"itest_{os.getpid()}_{secrets.token_hex(3)}"
        self.created = False
        self.problem: str | None = None

    def _admin(self, sql: str) -> None:
        with psycopg.connect(libpq_url(ADMIN_URL), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def url(self) -> str:
        if not self.created and self.problem is None:
            self.problem = postgres_problem()
            if self.problem is None:
                self._admin(f'CREATE DATABASE "{self.name}"')
                self.created = True
        if self.problem is not None:
            skip_or_fail(self.problem)
        base, _, _ = ADMIN_URL.rpartition("/")
        return f"{base}/{self.name}"

    def new_schema_url(self) -> str:
        """An empty schema of its own, and the URL that makes it the connection's search_path."""
        url = self.url()
        schema = f"t{next(_schemas)}"
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        return f"{url}?options={quote(f'-csearch_path={schema}')}"

    def drop(self) -> None:
        if self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False


class _Row(tuple):
    """A row readable by position and by column name, like sqlite3.Row (``dict(row)`` works)."""

    def __new__(cls, values, names):
        row = super().__new__(cls, values)
        row._names = names
        return row

    def keys(self):
        return list(self._names)

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)


def _row_factory(cursor):
    names = [c.name for c in cursor.description or []]
    return lambda values: _Row([to_db_time(v) if isinstance(v, datetime) else v for v in values], names)


def _translate(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _Conn:
    """One PostgreSQL connection that commits when its ``with`` block ends, sqlite3-style."""

    def __init__(self, url: str):
        self._conn = psycopg.connect(libpq_url(url), row_factory=_row_factory)

    def execute(self, sql: str, params=()):
        return self._conn.execute(_translate(sql), tuple(params))

    def executemany(self, sql: str, params) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(_translate(sql), [tuple(p) for p in params])

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        with self._conn:  # psycopg: commit on success, roll back on error, then close
            pass


class PostgresUtils:
    """The part of sqlite-utils' Database the tests use, on PostgreSQL."""

    def __init__(self, url: str):
        self.url = url

    def execute(self, sql: str, params=()):
        with _Conn(self.url) as conn:
            cursor = conn.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
        return _Result(rows)

    @property
    def conn(self) -> _Conn:
        return _Conn(self.url)


class _Result:
    def __init__(self, rows):
        self._rows = rows

    def fetchall(self):
        return list(self._rows)

    def fetchone(self):
        return self._rows[0] if self._rows else None


def unique_violation(exc: BaseException) -> bool:
    """Whether a raw-SQL write broke a unique index, read from the drivers' codes, not their messages:
    SQLite's extended result code, PostgreSQL's SQLSTATE 23505."""
    if isinstance(exc, sqlite3.IntegrityError):
        return exc.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE"
    return isinstance(exc, psycopg.errors.UniqueViolation)


def store_sql(db):
    """Raw SQL on the store behind ``db`` (a ``Database``), whichever engine it is."""
    return db.utils() if db.dialect == "sqlite" else PostgresUtils(db.url)


if __name__ == "__main__":  # .ci/run: one clear line, and a failure, when PostgreSQL is not there
    import sys

    problem = postgres_problem()
    sys.exit(f"error: {problem} (set TEST_POSTGRES_URL)" if problem else 0)
