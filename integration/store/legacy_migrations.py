"""The hand-numbered SQL migrations that came before the one Alembic history, frozen: they only bring a
store made by the old runner (``schema_migrations`` holds the names it applied) to their end, SQLite's
0012 or PostgreSQL's 0008, which is exactly what the Alembic baseline (``0001_baseline``) builds; the
store is then stamped at that baseline and carries on with Alembic (``integration.store.migrate``).

The files live in ``migrations/legacy/<engine>/`` and are never edited again, nor added to.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

TABLE = "schema_migrations"
"""The old runner's own bookkeeping: one row per applied file (name, applied_at)."""

CREATE = text(f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
APPLIED = text(f"SELECT name FROM {TABLE}")  # noqa: S608 - a constant table name
MARK_APPLIED = text(f"INSERT INTO {TABLE} (name, applied_at) VALUES (:name, :applied_at)")  # noqa: S608


def files(folder: Path, dialect: str) -> list[tuple[str, str]]:
    """(name, SQL) of every old migration of ``dialect``, in name order."""
    return [(path.name, path.read_text(encoding="utf-8"))
            for path in sorted((folder / "legacy" / dialect).glob("*.sql"))]


def is_legacy(conn: Connection) -> bool:
    """Whether the store was made by the old runner and not yet handed to Alembic."""
    tables = inspect(conn)
    return tables.has_table(TABLE) and not tables.has_table("alembic_version")


def pending(conn: Connection, folder: Path) -> list[str]:
    """Names of the old migrations a store of the old runner has not applied yet."""
    applied = {row[0] for row in conn.execute(APPLIED)}
    return [name for name, _ in files(folder, conn.dialect.name) if name not in applied]


def apply(conn: Connection, folder: Path, applied_at: str, *, upto: str | None = None) -> list[str]:
    """Inside the caller's transaction (which holds the migration lock): apply the old migrations not
    applied yet (all of them, or those named up to ``upto``: tests build old stores with it), as the old
    runner did, statement by statement; their names."""
    conn.execute(CREATE)
    done = []
    todo = set(pending(conn, folder))
    for name, sql in files(folder, conn.dialect.name):
        if upto is not None and name > upto:
            break
        if name not in todo:
            continue
        for statement in split_statements(sql):
            conn.exec_driver_sql(statement)
        conn.execute(MARK_APPLIED, {"name": name, "applied_at": applied_at})
        done.append(name)
    return done


def split_statements(sql: str) -> list[str]:
    """Split a migration into complete statements (triggers with inner ``;`` stay whole). SQLite's
    notion of a complete statement serves PostgreSQL's migrations too: they use no dollar quoting."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(line.strip().startswith("--") or not line.strip() for line in current.splitlines()):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {current.strip()[:80]}")
    return statements
