"""Migrations: one Alembic history for both engines, in the repository's top-level ``migrations/``
(``versions/`` holds the revisions, each written once for SQLite and PostgreSQL), run in-process on the
connection of one transaction that holds the store's migration lock.

Why in-process and on our own connection rather than ``alembic upgrade``: several hosts may start at once
(CONTRACT §1, §10), so the whole run is one transaction that first takes the lock — SQLite's write lock
(``BEGIN IMMEDIATE``), PostgreSQL's ``pg_advisory_xact_lock`` — and a second runner waits, then finds
everything applied; and a store made by the old hand-numbered runner is finished by its frozen files and
stamped at the baseline in that same transaction (``integration.store.legacy_migrations``).
``migrations/env.py`` only hands that connection to Alembic.
"""
from __future__ import annotations

import functools
import logging
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from integration.store import legacy_migrations as legacy

BASELINE = "0001_baseline"
"""The revision that builds what the old SQL files built: where an old store is stamped."""

# Alembic says "Running upgrade …" at INFO; the service reports what it applied itself.
logging.getLogger("alembic").setLevel(logging.WARNING)


def migrations_folder() -> Path:
    """The migrations: the repository's top-level ``migrations/``, wherever it lives now.

    In the repository (and so in an editable install) it sits beside the ``integration`` package,
    next to ``pyproject.toml``; a built wheel carries the same files as ``integration/migrations/``
    (pyproject.toml maps one onto the other). The repository's folder wins where there is one, so
    a stray ``integration/migrations/`` in a checkout can't shadow it (tests/test_packaging.py
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


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_folder()))
    config.attributes["connection"] = conn
    return config


@functools.cache
def revisions() -> tuple[str, ...]:
    """Every revision, oldest first (the history is one line: no branches, one head)."""
    script = ScriptDirectory.from_config(_config())
    return tuple(reversed([rev.revision for rev in script.walk_revisions()]))


def pending(conn: Connection) -> list[str]:
    """What ``upgrade`` would apply: an old store's remaining SQL files, then the revisions after its
    current one (after the baseline, for an old store)."""
    if legacy.is_legacy(conn):
        return legacy.pending(conn, migrations_folder()) + _after(BASELINE)
    return _after(MigrationContext.configure(conn).get_current_revision())


def _after(current: str | None) -> list[str]:
    every = list(revisions())
    return every[every.index(current) + 1:] if current is not None else every


def upgrade(conn: Connection) -> list[str]:
    """Inside the caller's transaction, which holds the migration lock: bring the store to the head
    revision; the names applied (an old store's remaining SQL files first)."""
    done = []
    if legacy.is_legacy(conn):
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # the old runner's own text
        done += legacy.apply(conn, migrations_folder(), now)
        command.stamp(_config(conn), BASELINE)
    todo = pending(conn)
    if todo:
        command.upgrade(_config(conn), "head")
    return done + todo
