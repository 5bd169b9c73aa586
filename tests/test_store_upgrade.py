"""A store made by the old hand-numbered runner upgrades in place (issue 25): at any of its files (SQLite
0001-0012, PostgreSQL 0001-0008), ``integration migrate`` (or the service's start, which calls the same
``Database.migrate``) finishes the old files, stamps the Alembic baseline and applies the revisions after
it; the rows survive, the store's creation time survives, and the schema is the one a new store gets,
down to defaults, checks and triggers.
"""
from __future__ import annotations

import subprocess
from datetime import datetime, timezone

import pytest
from sqlalchemy import inspect

from integration.store import mappings, reconcile
from integration.store.db import Database
from integration.store.inbox import Inbox
from integration.store.migrate import revisions
from tests.engines import store_sql
from tests.legacy_stores import make_old_store, old_files
from tests.test_engine_schemas import schema_of

# Each test names its engines itself (the ``engine`` fixture is parametrized here, not by ``both_engines``).
OLD_HEADS = [("sqlite", name) for name in old_files("sqlite")] + \
            [("postgresql", name) for name in old_files("postgresql")]
STAMP = "2026-01-01T00:00:00.000000Z"


def _old_rows(db: Database) -> None:
    """Rows every old schema can hold: an event and a mapping, with only the columns of each 0001."""
    with store_sql(db).conn as conn:
        conn.execute("INSERT INTO events (id, source, type, object_type, object_id, object_key, dedupe_key, payload,"
                     " next_attempt_at, created_at, updated_at) VALUES ('evt_old', 'zuora', 'account.callout',"
                     " 'account', 'A1', 'zuora-account:A1', 'zuora:n1', '{\"AccountId\": \"A1\"}', ?, ?, ?)",
                     [STAMP, STAMP, STAMP])
        conn.execute("INSERT INTO id_mappings (type, zuora_id, billing_id, origin, created_at, updated_at)"
                     " VALUES ('account', 'Z1', 'B1', 'zuora', ?, ?)", [STAMP, STAMP])


def details(db: Database) -> dict:
    """What ``schema_of`` leaves out, on one engine: defaults, checks and (SQLite) triggers."""
    with db.read() as tx:
        inspector = inspect(tx._conn)
        tables = sorted(inspector.get_table_names())
        found = {
            "defaults": {(t, c["name"]): c.get("default") for t in tables for c in inspector.get_columns(t)},
            "checks": {t: sorted(" ".join(c["sqltext"].split()) for c in inspector.get_check_constraints(t))
                       for t in tables},
        }
    if db.dialect == "sqlite":
        found["triggers"] = [" ".join(row[0].split()) for row in store_sql(db).execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").fetchall()]
    return found


def _same_schema(old: Database, fresh: Database) -> None:
    a, b = schema_of(old), schema_of(fresh)
    assert a.columns == b.columns
    assert sorted(i.key for i in a.indexes) == sorted(i.key for i in b.indexes)
    assert {i.name for i in a.indexes} == {i.name for i in b.indexes} or old.dialect == "postgresql"
    assert a.foreign_keys == b.foreign_keys
    assert details(old) == details(fresh)


@pytest.mark.parametrize(("engine", "upto"), OLD_HEADS, indirect=["engine"],
                         ids=[f"{engine}-{name[:4]}" for engine, name in OLD_HEADS])
def test_an_old_store_at_any_of_its_files_upgrades_in_place(engine, upto, database_url, tmp_path, request):
    old = Database(database_url)
    fresh_url = (request.getfixturevalue("_fresh_url") if engine == "postgresql"
                 else f"sqlite:///{tmp_path}/fresh.db")
    fresh = Database(fresh_url)
    try:
        assert make_old_store(old, upto=upto)[-1] == upto
        _old_rows(old)
        rest = [name for name in old_files(engine) if name > upto]
        assert old.pending_migrations() == rest + list(revisions()[1:])
        assert old.migrate() == rest + list(revisions()[1:])
        assert old.migrate() == [] and old.pending_migrations() == []
        fresh.migrate()
        _same_schema(old, fresh)

        event = Inbox(old).get("evt_old")
        assert event is not None and event.payload == {"AccountId": "A1"} and event.status == "pending"
        assert event.series == 1
        assert event.created_at == datetime(2026, 1, 1, tzinfo=timezone.utc)
        assert store_sql(old).execute("SELECT seq FROM events").fetchall()[0][0] == 1
        mapping = mappings.find(old, "account", billing_id="B1")
        assert mapping is not None and mapping.zuora_id == "Z1"
        assert reconcile.watermark(old) == datetime(2025, 6, 1, tzinfo=timezone.utc)  # the old store's birth
    finally:
        old.close()
        fresh.close()


@pytest.fixture
def _fresh_url() -> str:
    """A second empty PostgreSQL schema, for the new store the upgraded one is compared with."""
    from tests.conftest import _RUN_DATABASE
    return _RUN_DATABASE.new_schema_url()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"], indirect=True)
def test_integration_migrate_upgrades_an_old_store_at_its_last_file(engine, database_url, subprocess_env,
                                                                   integration_cmd):
    """The command itself (what the Procfile's release step and the service's start run): one line
    naming what it applied, the old store's last file being already there."""
    old = Database(database_url)
    try:
        make_old_store(old)
        _old_rows(old)
        result = subprocess.run([*integration_cmd, "migrate"], env=subprocess_env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        applied = list(revisions()[1:])
        assert result.stdout == f"applied {len(applied)} migration(s): {', '.join(applied)}\n"
        assert Inbox(old).get("evt_old") is not None and old.pending_migrations() == []
        assert "schema_migrations" not in inspect_tables(old)
    finally:
        old.close()


def inspect_tables(db: Database) -> list[str]:
    with db.read() as tx:
        return inspect(tx._conn).get_table_names()
