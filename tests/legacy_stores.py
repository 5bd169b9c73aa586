"""Stores as the old hand-numbered runner left them (before the one Alembic history): its frozen SQL files
applied, up to a given one, in one transaction under the migration lock, as that runner did."""
from __future__ import annotations

from integration.store import legacy_migrations as legacy
from integration.store.db import Database
from integration.store.migrate import migrations_folder
from integration.store.queries import migrations as q

THEN = "2025-06-01T00:00:00.000000Z"
"""When the old runner "applied" the files: the store's creation time reconciliation reads."""


def old_files(dialect: str) -> list[str]:
    return [name for name, _ in legacy.files(migrations_folder(), dialect)]


def make_old_store(db: Database, upto: str | None = None) -> list[str]:
    """Apply the old runner's files to ``db`` (all of them, or up to the one named); their names."""
    with db.transaction() as tx:
        if db.dialect in q.MIGRATION_LOCK:
            tx.run(q.MIGRATION_LOCK[db.dialect])
        return legacy.apply(tx._conn, migrations_folder(), THEN, upto=upto)
