"""Engines: the one place a store URL becomes a SQLAlchemy engine (``ENGINE_BUILDERS``, one per
dialect: SQLite and PostgreSQL).

PostgreSQL (``postgresql://`` or ``postgres://``) goes through psycopg 3 (SQLAlchemy's
``postgresql+psycopg`` dialect) with a small pool per process and ``pool_pre_ping``: a connection
the server dropped (a restart, a failover, ``pg_terminate_backend``) is noticed when it is checked
out and replaced, so the service recovers by itself once the server is back.

SQLite, following SQLAlchemy's documented pysqlite recipe: the driver's own transaction handling is
switched off (``isolation_level = None`` on connect) and the ``begin`` event emits the BEGIN itself —
``BEGIN IMMEDIATE`` for a write transaction (a deferred one that reads and then writes can fail at
once with ``SQLITE_BUSY`` regardless of the busy timeout; an immediate one waits its turn), a plain
deferred ``BEGIN`` for reads, so a read never takes the write lock. Every connection gets WAL,
``busy_timeout``, ``synchronous = FULL`` (a callout we answered 200 survives a power loss, not just
a process crash) and foreign keys. The file is created 0600 before SQLite first opens it.
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

WRITE = {"integration_begin": "BEGIN IMMEDIATE"}
"""Execution options of a write connection (see ``_sqlite_engine``'s ``begin`` hook)."""


def dialect_of(url: str) -> str:
    """The backend name of a store URL (``sqlite`` or ``postgresql``); ValueError when unsupported."""
    try:
        name = make_url(_canonical(url)).get_backend_name()
    except Exception as exc:
        raise ValueError(f"not a database URL: {type(exc).__name__}") from exc
    if name not in ENGINE_BUILDERS:
        raise ValueError("only sqlite:/// and postgresql:// URLs are supported")
    return name


def _canonical(url: str) -> str:
    """``postgres://`` (Heroku's and many platforms' spelling) as ``postgresql://``."""
    return "postgresql://" + url[len("postgres://"):] if url.startswith("postgres://") else url


def display_url(url: str) -> str:
    """The URL as it may be shown and logged: any password replaced by ``***``."""
    try:
        return make_url(_canonical(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparsable: show nothing of it
        return "(unparsable URL)"


def libpq_url(url: str) -> str:
    """The URL as libpq (and so psycopg) reads it: no SQLAlchemy driver suffix, password kept."""
    return make_url(_canonical(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def build_engine(url: str, *, busy_timeout: float) -> Engine:
    """A new engine (with its own connection pool) for ``url``."""
    return ENGINE_BUILDERS[dialect_of(url)](url, busy_timeout)


def sqlite_path(url: str) -> str:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise ValueError("only sqlite:/// URLs naming a file are supported")
    return path


def _sqlite_engine(url: str, busy_timeout: float) -> Engine:
    path = sqlite_path(url)
    # check_same_thread off: a pooled connection is used by one thread at a time, but not always
    # the thread that opened it. Unlimited overflow: like one connection per thread before.
    engine = create_engine(f"sqlite:///{path}", pool_size=8, max_overflow=-1, pool_pre_ping=False,
                           connect_args={"timeout": busy_timeout, "check_same_thread": False})

    @event.listens_for(engine, "do_connect")
    def create_owner_only(dialect, conn_rec, cargs, cparams) -> None:
        _create_owner_only(path)

    @event.listens_for(engine, "connect")
    def configure(dbapi_connection: sqlite3.Connection, connection_record) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _ensure_wal(dbapi_connection, busy_timeout)
        dbapi_connection.execute("PRAGMA synchronous = FULL")
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    @event.listens_for(engine, "begin")
    def begin(conn) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("integration_begin", "BEGIN"))

    return engine


def _create_owner_only(path: str) -> None:
    """Create the database file readable and writable by its owner only (0600) before SQLite opens
    it: the store holds account data and the IDs of both systems. SQLite gives the ``-wal`` and
    ``-shm`` files the database file's permissions, so they are 0600 too. An existing file keeps
    the mode its operator gave it."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # unreachable or read-only: the connect that follows reports it as a store error
    os.close(fd)


def _ensure_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch the file to WAL (persistent, so once per file). The switch needs an exclusive lock and
    SQLite may refuse it at once, without waiting, while another process holds one; so retry until
    the busy timeout has passed."""
    deadline = time.monotonic() + busy_timeout
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


def _postgresql_engine(url: str, busy_timeout: float) -> Engine:
    """psycopg 3, a pool per process (``Database`` rebuilds it after a fork), pre-ping so a dropped
    connection is replaced instead of failing a request; ``busy_timeout`` bounds connecting and
    waiting for a pooled connection, and ``lock_timeout`` bounds waiting for a row lock."""
    parsed = make_url(_canonical(url)).set(drivername="postgresql+psycopg")
    timeout = max(int(busy_timeout), 1)
    extra_options = f" {parsed.query['options']}" if "options" in parsed.query else ""
    return create_engine(parsed, pool_size=5, max_overflow=10, pool_timeout=busy_timeout, pool_pre_ping=True,
                         pool_recycle=1800,
                         connect_args={"connect_timeout": timeout,
                                       "options": f"-c lock_timeout={int(busy_timeout * 1000)}" + extra_options})


ENGINE_BUILDERS: dict[str, Callable[[str, float], Engine]] = {"sqlite": _sqlite_engine,
                                                               "postgresql": _postgresql_engine}
