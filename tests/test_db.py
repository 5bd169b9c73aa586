import subprocess

from integration.store.db import Database
from integration.store.legacy_migrations import split_statements
from integration.store.migrate import revisions

# Every migration the package ships (Alembic revisions, one history for both engines), oldest first
# (tests/test_packaging.py checks that this is every revision of migrations/versions/); the first ones
# are asserted by name, so a reordering shows.
SQLITE_MIGRATIONS = list(revisions())
assert SQLITE_MIGRATIONS[:2] == ["0001_baseline", "0002_store_created"]


def test_migrate_is_idempotent(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/a.db")
    assert db.migrate() == SQLITE_MIGRATIONS
    assert db.migrate() == []
    assert db.pending_migrations() == []
    tables = set(db.utils().table_names())
    assert {"events", "id_mappings", "meter_settings", "alembic_version", "attempts"} <= tables
    assert db.utils().execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"


def test_two_concurrent_migrate_processes_both_succeed(tmp_path, subprocess_env, integration_cmd):
    procs = [subprocess.Popen([*integration_cmd, "migrate"], env=subprocess_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = sorted(out for out, _ in outputs)
    assert said == ["applied 0 migration(s)\n",
                    f"applied {len(SQLITE_MIGRATIONS)} migration(s): {', '.join(SQLITE_MIGRATIONS)}\n"]
    db = Database(subprocess_env["DATABASE_URL"])
    assert [r["version_num"] for r in db.utils().execute("SELECT version_num FROM alembic_version").fetchall()] == \
        SQLITE_MIGRATIONS[-1:]


def test_id_mappings_are_unique_on_each_side(tmp_path):
    import sqlite3

    import pytest
    db = Database(f"sqlite:///{tmp_path}/a.db")
    db.migrate()
    insert = ("INSERT INTO id_mappings (type, zuora_id, billing_id, origin, created_at, updated_at)"
              " VALUES (?, ?, ?, 'zuora', 'x', 'x')")
    with db.utils().conn as conn:
        conn.execute(insert, ("account", "Z1", "B1"))
        conn.execute(insert, ("invoice", "Z1", "B1"))  # another type may reuse the IDs
    for pair in (("account", "Z1", "B2"), ("account", "Z2", "B1")):
        with pytest.raises(sqlite3.IntegrityError), db.utils().conn as conn:
            conn.execute(insert, pair)


def test_split_statements_keeps_triggers_whole():
    sql = ("CREATE TABLE a (x);\n-- comment\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n"
           "  UPDATE a SET x = 1;\n  UPDATE a SET x = 2;\nEND;\n")
    statements = split_statements(sql)
    assert len(statements) == 2 and statements[1].endswith("END;")


def test_store_files_are_readable_by_the_owner_only(tmp_path):
    import os
    import stat
    db = Database(f"sqlite:///{tmp_path}/store/a.db")
    db.migrate()
    files = {name: stat.S_IMODE(os.stat(tmp_path / "store" / name).st_mode)
             for name in ("a.db", "a.db-wal", "a.db-shm")}
    assert files == {"a.db": 0o600, "a.db-wal": 0o600, "a.db-shm": 0o600}
    assert stat.S_IMODE(os.stat(tmp_path / "store").st_mode) == 0o700
