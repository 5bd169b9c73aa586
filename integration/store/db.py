"""The store: one engine (and so one connection pool) per process, transactions, migrations.

The engine is built lazily, from ``DATABASE_URL``, in the process that uses it, and built again
after a fork (gunicorn forks its workers; a pooled connection must never cross a ``fork()``), by
``engine.dispose(close=False)`` as SQLAlchemy documents for a child process. Every write goes through
``transaction()`` (on SQLite ``BEGIN IMMEDIATE``), every read through ``read()``; both hand out a
``Tx``, never a driver connection.

Migrations are one Alembic history for both engines, in the top-level ``migrations/``
(``integration.store.migrate``).
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils
from sqlalchemy import Engine

from integration.store import engine as engines
from integration.store import migrate as migrations
from integration.store.migrate import migrations_folder
from integration.store.queries import migrations as q
from integration.store.tx import StoreUnavailable, Tx, store_errors

__all__ = ["Database", "StoreUnavailable", "Tx", "migrations_folder"]


class Database:
    """One store, reached through one engine per process."""

    def __init__(self, url: str, *, busy_timeout: float = 5.0):
        self.dialect = engines.dialect_of(url)
        self.url = url
        self.path = engines.sqlite_path(url) if self.dialect == "sqlite" else None
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._pid: int | None = None
        self._marker = threading.local()

    @property
    def busy_timeout(self) -> float:
        return self._busy_timeout

    @busy_timeout.setter
    def busy_timeout(self, seconds: float) -> None:
        """A new timeout takes effect on new connections: the pool is emptied."""
        self._busy_timeout = seconds
        self.close()

    def _engine_here(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = engines.build_engine(self.url, busy_timeout=self._busy_timeout)
            elif self._pid != os.getpid():
                # A forked child: forget the parent's pooled connections without closing them.
                self._engine.dispose(close=False)
                self._marker = threading.local()
            self._pid = os.getpid()
            return self._engine

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction; StoreUnavailable when it cannot start or commit. Commits on success,
        rolls back on any exception."""
        with store_errors(), self._engine_here().execution_options(**engines.WRITE).connect() as conn, conn.begin():
            yield Tx(conn)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read: one consistent snapshot, never the write lock."""
        with store_errors(), self._engine_here().connect() as conn, conn.begin():
            yield Tx(conn)

    def changes_marker(self) -> int | None:
        """A number that changes when another connection commits to the store (the worker's cheap
        wake-up check between polls); None when it cannot be read. SQLite: ``PRAGMA data_version``
        on a connection this thread keeps for the purpose (the value is per connection).
        PostgreSQL: how many notifications a dedicated ``LISTEN`` connection has received (new
        work is announced with ``NOTIFY`` in the transaction that records it), read without a
        query: the check is a look at the socket, so idle workers never poll the events table."""
        if self.dialect == "postgresql":
            return self._notifications()
        try:
            conn = getattr(self._marker, "conn", None)
            if conn is None or self._marker.pid != os.getpid():
                conn = self._marker.conn = self._engine_here().raw_connection()
                self._marker.pid = os.getpid()
            cursor = conn.cursor()
            try:
                cursor.execute(q.CHANGES_MARKER[self.dialect])
                row = cursor.fetchone()
                return row[0] if row else None
            finally:
                cursor.close()
        except Exception:  # noqa: BLE001 - a busy or vanished store: the caller polls again
            return None

    def _notifications(self) -> int | None:
        from integration.store.listen import (
            Listener,  # psycopg is imported only for PostgreSQL
        )

        listener = getattr(self._marker, "listener", None)
        if listener is None or self._marker.pid != os.getpid():
            listener = self._marker.listener = Listener(engines.libpq_url(self.url), q.CHANNEL)
            self._marker.pid = os.getpid()
        return listener.count()

    def utils(self) -> sqlite_utils.Database:
        """sqlite-utils over a fresh autocommit connection to the SQLite file: introspection and
        inspection (tests, the shell), never the service's own reads and writes."""
        if self.path is None:
            raise ValueError("sqlite-utils works on SQLite stores only")
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return sqlite_utils.Database(conn)

    def close(self) -> None:
        """Close every pooled connection of this process (the engine is built again on next use)."""
        with self._lock:
            engine, self._engine = self._engine, None
            marker = getattr(self._marker, "conn", None) or getattr(self._marker, "listener", None)
            self._marker = threading.local()
        if marker is not None:
            with contextlib.suppress(Exception):  # closing a broken marker connection: nothing left to do
                marker.close()
        if engine is not None:
            engine.dispose(close=self._pid == os.getpid())

    # -- migrations ---------------------------------------------------------------------------

    def migrations(self) -> list[str]:
        """Every migration the package ships (Alembic revisions, the same for both engines), in order."""
        return list(migrations.revisions())

    def migrate(self) -> list[str]:
        """Apply pending migrations; return their names. Safe to run twice, or from several
        processes or hosts at once.

        The whole run is one transaction that first takes the store's migration lock: on SQLite the
        write lock (``BEGIN IMMEDIATE``), on PostgreSQL a transaction-scoped advisory lock
        (``pg_advisory_xact_lock``, released by the commit). A second runner waits, then finds
        everything applied. PostgreSQL's DDL is transactional, and so is SQLite's here (the driver's
        own transaction handling is off), so a failed migration leaves nothing half done.
        """
        with self.transaction() as tx:
            if self.dialect in q.MIGRATION_LOCK:
                tx.run(q.MIGRATION_LOCK[self.dialect])
            return migrations.upgrade(tx._conn)

    def pending_migrations(self) -> list[str]:
        """Names of migrations not applied yet (empty when the store is ready)."""
        with self.read() as tx, store_errors():
            return migrations.pending(tx._conn)
