"""The SQLite store: one connection per thread and process, WAL, and the migration runner.

Connections are opened lazily in the thread that uses them, so nothing crosses a gunicorn fork
(SQLite forbids carrying a connection over ``fork()``). Every write goes through ``transaction()``,
which starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes can fail
at once with ``SQLITE_BUSY`` regardless of the busy timeout, an immediate one waits its turn.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Iterator

import sqlite_utils

from integration.config import database_path


def migrations_folder() -> Path:
    """The folder of SQL migrations: the repository's top-level ``migrations/``, wherever it lives now.

    In the repository (and so in an editable install) it sits beside the ``integration`` package,
    next to ``pyproject.toml``; a built wheel carries the same files as ``integration/migrations/``
    (pyproject.toml maps one onto the other). The repository's folder wins where there is one, so
    a stray ``integration/migrations/*.sql`` in a checkout can't shadow it (tests/test_packaging.py
    fails on one); the ``pyproject.toml`` condition keeps another distribution's
    ``site-packages/migrations`` from ever being taken for ours.
    """
    package = Path(str(resources.files("integration")))
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "migrations").is_dir():
        return checkout / "migrations"
    installed = package / "migrations"
    if installed.is_dir():
        return installed
    raise FileNotFoundError(f"no migrations folder at {checkout / 'migrations'} or {installed}")


def bundled_migrations() -> list[tuple[str, str]]:
    """(name, SQL) of every ``*.sql`` file in the migrations folder, in name order."""
    folder = migrations_folder()
    return [(path.name, path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.sql"))]


class StoreUnavailable(Exception):
    """The store could not commit (locked past the busy timeout, read-only, disk full)."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_db_time(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC text, so string order is time order in SQL comparisons."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: times in this service are timezone-aware UTC")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def iso(text: str | None) -> str | None:
    """A stored time as the API shows it: ISO-8601 with a ``Z``, second precision kept exact."""
    moment = from_db_time(text)
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class Database:
    """Hands each thread of each process its own configured connection to one SQLite file."""

    def __init__(self, url: str, *, busy_timeout: float = 5.0):
        path = database_path(url)
        if path is None:
            raise ValueError("only sqlite:/// URLs are supported")
        self.url = url
        self.path = path
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = self._open()
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _open(self) -> sqlite3.Connection:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._create_owner_only()
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=True)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        self._ensure_wal(conn)
        # FULL: a callout we answered 200 survives a power loss, not just a process crash.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _create_owner_only(self) -> None:
        """Create the database file readable and writable by its owner only (0600) before SQLite
        opens it: the store holds account data and the IDs of both systems. SQLite gives the
        ``-wal`` and ``-shm`` files the database file's permissions, so they are 0600 too. An
        existing file keeps the mode its operator gave it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        except OSError:
            return  # unreachable or read-only: sqlite3.connect reports it as a store error
        os.close(fd)

    def _ensure_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL (persistent, so once per file). The switch needs an exclusive
        lock and SQLite may refuse it at once, without waiting, while another process holds one;
        so retry until the busy timeout has passed."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                    return
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def utils(self) -> sqlite_utils.Database:
        """sqlite-utils over this thread's connection, for introspection and simple reads."""
        return sqlite_utils.Database(self.connection())

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``); StoreUnavailable when it cannot start or commit."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreUnavailable(str(exc)) from exc

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, params).fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- migrations ---------------------------------------------------------------------------

    def migrations(self) -> list[tuple[str, str]]:
        """(name, SQL) of every bundled migration, in order."""
        return bundled_migrations()

    def migrate(self) -> list[str]:
        """Apply pending migrations; return their names. Safe to run twice or from two processes.

        The whole run holds the write lock (``BEGIN IMMEDIATE``), so a second process waits, then
        finds everything applied. Each migration's statements run one by one inside that
        transaction (``executescript`` would commit early).
        """
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            applied = {row["name"] for row in conn.execute("SELECT name FROM schema_migrations")}
            done = []
            for name, sql in self.migrations():
                if name in applied:
                    continue
                for statement in split_statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                             (name, to_db_time(utcnow())))
                done.append(name)
            return done

    def pending_migrations(self) -> list[str]:
        """Names of bundled migrations not applied yet (empty when the store is ready)."""
        tables = set(self.utils().table_names())
        applied = set()
        if "schema_migrations" in tables:
            applied = {row["name"] for row in self.query("SELECT name FROM schema_migrations")}
        return [name for name, _ in self.migrations() if name not in applied]


def split_statements(sql: str) -> list[str]:
    """Split a migration into complete statements (triggers with inner ``;`` stay whole)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(l.strip().startswith("--") or not l.strip() for l in current.splitlines()):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {current.strip()[:80]}")
    return statements
