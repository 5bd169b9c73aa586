"""The two engines' migrated schemas are the same (issue 25, "Store honesty"): a fresh SQLite store and
a fresh PostgreSQL schema, each migrated with the project's one Alembic history, have the same tables, the
same columns (nullability, and type by family: a time is ``timestamptz`` on PostgreSQL and ISO-8601 UTC
TEXT on SQLite, which has no time type — ``same_type`` below), the same primary keys,
unique constraints and unique indexes (by column set and predicate, partial ones included), the same
foreign keys and the same plain indexes (by columns and predicate).

Names of unique keys are not compared (PostgreSQL names a ``UNIQUE`` constraint ``<table>_<col>_key``,
SQLite ``sqlite_autoindex_<table>_<n>``); what they forbid is. A difference that must stay is in
``ALLOWED`` below, with its reason; every other one fails, naming the table, column or index.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

import pytest
from sqlalchemy import inspect

from integration.store.db import Database
from integration.store.types import TIME_COLUMNS
from tests.engines import store_sql
from tests.legacy_stores import make_old_store, old_files

pytestmark = pytest.mark.both_engines  # the ``database_url`` fixture hands out either engine

# -- differences that stay, each with its reason ---------------------------------------------------

ALLOWED_NULLABILITY: dict[tuple[str, str], str] = {
    # SQLite assigns seq in an AFTER INSERT trigger (migration sqlite/0004: MAX + 1, one writer at a
    # time), so the row exists for a moment without it and the column cannot be NOT NULL; PostgreSQL's
    # identity column is filled on insert. Unique on both (events_seq / events_seq_key).
    ("events", "seq"): "sqlite fills it in a trigger after the insert",
    # SQLite's legacy rule: a PRIMARY KEY column that is not INTEGER and not declared NOT NULL admits
    # NULL. Making them NOT NULL needs a rebuild of each table (SQLite has no ALTER COLUMN; events is
    # referenced by attempts ON DELETE CASCADE), left for the one migration history of issue 25. The
    # service never writes a NULL key: every insert names it.
    **dict.fromkeys((
        ("events", "id"), ("meter_settings", "meter_id"), ("scheduled_runs", "slot"),
        ("alert_digests", "slot"), ("reconcile_state", "name"), ("service_keys", "name"),
        ("console_sessions", "id_hash"), ("sign_in_attempts", "bucket"),
        ("webhook_deliveries", "delivery_key"), ("unpushed_voids", "billing_id"),
    ), "sqlite: a TEXT PRIMARY KEY without NOT NULL"),
}


def same_type(column: str, sqlite: str, postgres: str) -> bool:
    """The declared rule for times: a column the store reads and writes as a time (its name is in
    ``integration.store.types.TIME_COLUMNS``, where the store's one time type is declared) is
    ``timestamptz`` on PostgreSQL and TEXT on SQLite; every other column has one family on both."""
    if postgres == "time" or column in TIME_COLUMNS:
        return column in TIME_COLUMNS and (sqlite, postgres) == ("text", "time")
    return sqlite == postgres


# -- normalized schemas ----------------------------------------------------------------------------

FAMILIES = (("INT", "integer"), ("CHAR", "text"), ("TEXT", "text"), ("CLOB", "text"), ("BOOL", "boolean"),
            ("REAL", "real"), ("FLOA", "real"), ("DOUB", "real"), ("NUMERIC", "real"), ("DECIMAL", "real"),
            ("TIMESTAMP", "time"), ("DATE", "time"), ("BLOB", "binary"), ("BYTEA", "binary"), ("JSON", "json"))


def family(type_name: str) -> str:
    """A column type by family (SQLite's affinity rules, applied to both engines' type names)."""
    upper = type_name.upper()
    return next((fam for marker, fam in FAMILIES if marker in upper), f"other:{upper}")


def predicate(sql: str | None) -> str | None:
    """A partial index's WHERE, normalized: lower case (but its literals), single spaces, no casts, no
    outer parentheses."""
    if not sql:
        return None
    # Lower case and single spaces outside quoted literals; casts (PostgreSQL's ``::text``) dropped.
    parts = re.split(r"('(?:[^']|'')*')", sql.strip())
    sql = "".join(part if part.startswith("'") else re.sub(r"\s+", " ", re.sub(r"::[a-z ]+", "", part.lower()))
                  for part in parts)
    while sql.startswith("(") and sql.endswith(")") and _balanced(sql[1:-1]):
        sql = sql[1:-1].strip()
    return re.sub(r"\(\s*", "(", re.sub(r"\s*\)", ")", sql))


def _balanced(sql: str) -> bool:
    depth = 0
    for char in sql:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


@dataclass(frozen=True)
class Column:
    family: str
    nullable: bool


@dataclass(frozen=True)
class Index:
    """An index or unique key, by what it covers; ``name`` is for messages only."""
    table: str
    columns: tuple[str, ...]
    where: str | None
    unique: bool
    name: str = field(compare=False)

    @property
    def key(self) -> tuple:
        # A unique key forbids the same thing whatever its column order; a plain index is kept by order.
        columns = tuple(sorted(self.columns)) if self.unique else self.columns
        return (self.table, columns, self.where, self.unique)

    def __str__(self) -> str:
        where = f" WHERE {self.where}" if self.where else ""
        return f"{'unique ' if self.unique else ''}{self.table}({', '.join(self.columns)}){where} [{self.name}]"


@dataclass
class Schema:
    engine: str
    columns: dict[str, dict[str, Column]] = field(default_factory=dict)
    indexes: list[Index] = field(default_factory=list)
    foreign_keys: set[tuple] = field(default_factory=set)

    def index_keys(self, *, unique: bool) -> dict[tuple, Index]:
        return {index.key: index for index in self.indexes if index.unique == unique}


def schema_of(db: Database) -> Schema:
    schema = Schema(db.dialect)
    with db.read() as tx:
        inspector = inspect(tx._conn)
        for table in sorted(inspector.get_table_names()):
            pk = inspector.get_pk_constraint(table)["constrained_columns"]
            columns = {}
            for column in inspector.get_columns(table):
                type_name = str(column["type"])
                # SQLite: an INTEGER PRIMARY KEY is the rowid, never NULL (PRAGMA says notnull=0).
                rowid = db.dialect == "sqlite" and pk == [column["name"]] and type_name.upper() == "INTEGER"
                columns[column["name"]] = Column(family(type_name), bool(column["nullable"]) and not rowid)
            schema.columns[table] = columns
            if pk:
                schema.indexes.append(Index(table, tuple(pk), None, True, "PRIMARY KEY"))
            if db.dialect == "postgresql":  # SQLite's reflection leaves ON DELETE out: its PRAGMA, below
                for fk in inspector.get_foreign_keys(table):
                    ondelete = (fk.get("options") or {}).get("ondelete") or "no action"
                    schema.foreign_keys.add((table, tuple(fk["constrained_columns"]), fk["referred_table"],
                                             tuple(fk["referred_columns"]), ondelete.lower()))
    raw = store_sql(db)
    if db.dialect == "sqlite":
        schema.indexes += _sqlite_indexes(raw, list(schema.columns))
        schema.foreign_keys = _sqlite_foreign_keys(raw, list(schema.columns))
    else:
        schema.indexes += _postgres_indexes(raw)
    return schema


def _sqlite_foreign_keys(raw, tables: list[str]) -> set[tuple]:
    keys: dict[tuple[str, int], list] = {}
    for table in tables:
        for row in raw.execute(f'PRAGMA foreign_key_list("{table}")').fetchall():
            key = keys.setdefault((table, row["id"]), [table, [], row["table"], [], row["on_delete"].lower()])
            key[1].append(row["from"])
            key[3].append(row["to"])
    return {(t, tuple(cols), ref, tuple(ref_cols), ondelete) for t, cols, ref, ref_cols, ondelete in keys.values()}


def _sqlite_indexes(raw, tables: list[str]) -> list[Index]:
    found = []
    for table in tables:
        for row in raw.execute(f'PRAGMA index_list("{table}")').fetchall():
            name, unique, origin = row["name"], bool(row["unique"]), row["origin"]
            if origin == "pk":
                continue  # the primary key, read above
            columns = tuple(r["name"] for r in raw.execute(f'PRAGMA index_info("{name}")').fetchall())
            where = None
            if row["partial"]:
                sql = raw.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                                  [name]).fetchone()[0]
                where = re.split(r"\bWHERE\b", sql, maxsplit=1, flags=re.IGNORECASE)[1]
            found.append(Index(table, columns, predicate(where), unique, name))
    return found


POSTGRES_INDEXES = """
SELECT t.relname AS table_name, i.relname AS index_name, x.indisunique, x.indisprimary,
       pg_get_expr(x.indpred, x.indrelid) AS predicate,
       ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n) AS columns
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema()
ORDER BY t.relname, i.relname
"""


def _postgres_indexes(raw) -> list[Index]:
    return [Index(row["table_name"], tuple(row["columns"]), predicate(row["predicate"]), bool(row["indisunique"]),
                  row["index_name"])
            for row in raw.execute(POSTGRES_INDEXES).fetchall() if not row["indisprimary"]]


# -- the comparison ----------------------------------------------------------------------------------


def differences(sqlite: Schema, postgres: Schema) -> list[str]:
    """Every difference between the two schemas not in ``ALLOWED_NULLABILITY``, one line each."""
    found = []
    for table in sorted(set(sqlite.columns) ^ set(postgres.columns)):
        found.append(f"table {table}: only on {'sqlite' if table in sqlite.columns else 'postgresql'}")
    for table in sorted(set(sqlite.columns) & set(postgres.columns)):
        lite, pg = sqlite.columns[table], postgres.columns[table]
        for column in sorted(set(lite) ^ set(pg)):
            found.append(f"column {table}.{column}: only on {'sqlite' if column in lite else 'postgresql'}")
        for column in sorted(set(lite) & set(pg)):
            a, b = lite[column], pg[column]
            if not same_type(column, a.family, b.family):
                found.append(f"column {table}.{column}: type {a.family} on sqlite, {b.family} on postgresql")
            if a.nullable != b.nullable and (table, column) not in ALLOWED_NULLABILITY:
                found.append(f"column {table}.{column}: {'NULL' if a.nullable else 'NOT NULL'} on sqlite, "
                             f"{'NULL' if b.nullable else 'NOT NULL'} on postgresql")
    for unique in (True, False):
        lite_keys, pg_keys = sqlite.index_keys(unique=unique), postgres.index_keys(unique=unique)
        for key in sorted(set(lite_keys) - set(pg_keys), key=repr):
            found.append(f"index {lite_keys[key]}: only on sqlite")
        for key in sorted(set(pg_keys) - set(lite_keys), key=repr):
            found.append(f"index {pg_keys[key]}: only on postgresql")
    for fk in sorted(sqlite.foreign_keys ^ postgres.foreign_keys):
        found.append(f"foreign key {fk[0]}({', '.join(fk[1])}) -> {fk[2]}({', '.join(fk[3])}) ON DELETE {fk[4]}:"
                     f" only on {'sqlite' if fk in sqlite.foreign_keys else 'postgresql'}")
    return found


@pytest.fixture
def schemas(tmp_path, database_url) -> tuple[Schema, Schema]:
    """Both engines' schemas, each from a fresh store migrated with the bundled migrations (the tests
    that use it run as their ``postgresql`` case, whose ``database_url`` is a schema of its own)."""
    stores = [Database(f"sqlite:///{tmp_path}/schema.db"), Database(database_url)]
    try:
        for store in stores:
            store.migrate()
        return schema_of(stores[0]), schema_of(stores[1])
    finally:
        for store in stores:
            store.close()


@pytest.mark.postgresql_only
def test_both_engines_migrate_to_the_same_schema(engine, schemas):
    sqlite, postgres = schemas
    assert {"events", "attempts", "id_mappings", "alembic_version"} <= set(sqlite.columns)  # read at all
    found = differences(sqlite, postgres)
    assert not found, "the migrated schemas differ:\n  " + "\n  ".join(found)
    stale = [f"{table}.{column}" for table, column in ALLOWED_NULLABILITY
             if sqlite.columns[table][column].nullable == postgres.columns[table][column].nullable]
    assert not stale, f"allowed differences that are gone (take them out of ALLOWED_NULLABILITY): {stale}"


@pytest.mark.postgresql_only
def test_the_comparison_reads_partial_unique_indexes_and_primary_keys(engine, schemas):
    """What the comparison is made of: a partial unique index, a unique constraint and a composite key
    are read on both engines, with their predicates normalized alike."""
    for schema in schemas:
        unique = {index.key for index in schema.indexes if index.unique}
        assert ("events", ("object_key",), "status = 'running'", True) in unique, schema.engine
        assert ("events", ("object_key", "type"), "coalescing = 1", True) in unique, schema.engine
        assert ("id_mappings", ("billing_id", "type"), None, True) in unique, schema.engine
        assert ("reconcile_baseline", ("kind", "object_id"), None, True) in unique, schema.engine
        time = "text" if schema.engine == "sqlite" else "time"
        assert schema.columns["events"]["next_attempt_at"] == Column(time, False), schema.engine


def test_a_difference_names_what_differs():
    lite = Schema("sqlite", {"events": {"object_key": Column("text", False), "extra": Column("integer", True)}},
                  [Index("events", ("object_key",), "status = 'running'", True, "events_one_running")])
    pg = Schema("postgresql", {"events": {"object_key": Column("integer", True)}, "other": {}})
    assert differences(lite, pg) == [
        "table other: only on postgresql",
        "column events.extra: only on sqlite",
        "column events.object_key: type text on sqlite, integer on postgresql",
        "column events.object_key: NOT NULL on sqlite, NULL on postgresql",
        "index unique events(object_key) WHERE status = 'running' [events_one_running]: only on sqlite",
    ]


@pytest.mark.parametrize(("raw", "normalized"), [
    ("(status = 'running'::text)", "status = 'running'"),
    (" status = 'running'\n", "status = 'running'"),
    ("(waiting_for IS NOT NULL)", "waiting_for is not null"),
    ("((a = 1) AND (b = 2))", "(a = 1) and (b = 2)"),
    ("(a = 1) AND (b = 2)", "(a = 1) and (b = 2)"),
    ("(status = 'Running  Late'::text)", "status = 'Running  Late'"),
])
def test_predicates_are_normalized_alike(raw, normalized):
    assert predicate(raw) == normalized


# -- events_one_running on SQLite (migration sqlite/0012) -------------------------------------------


def _event(raw, event_id: str, object_key: str, status: str, lease: str | None) -> None:
    with raw.conn as conn:
        conn.execute(
            "INSERT INTO events (id, source, type, object_type, object_id, object_key, dedupe_key, status,"
            " next_attempt_at, lease_owner, lease_expires_at, created_at, updated_at, series_key)"
            " VALUES (?, 'zuora', 'account.callout', 'account', ?, ?, ?, ?, '2026-01-01T00:00:00.000000Z',"
            " ?, ?, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', 'k')",
            [event_id, object_key, object_key, f"d-{event_id}", status, "w" if lease else None, lease])


def test_sqlite_refuses_two_running_events_of_one_object(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/one.db")
    db.migrate()
    raw = store_sql(db)
    _event(raw, "e1", "zuora-account:A1", "running", "2026-01-01T00:05:00.000000Z")
    _event(raw, "e2", "zuora-account:A1", "pending", None)
    with pytest.raises(sqlite3.IntegrityError) as caught:
        raw.execute("UPDATE events SET status = 'running' WHERE id = 'e2'")
    assert caught.value.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE"
    assert "events.object_key" in str(caught.value)  # SQLite names the column, not the index
    _event(raw, "e3", "zuora-account:B1", "running", "2026-01-01T00:05:00.000000Z")  # another object: fine
    db.close()


def test_the_migration_hands_back_all_but_one_running_event_of_an_object(tmp_path):
    """A store made before sqlite/0012 (by the old runner) that somehow holds two running events of one
    object still migrates: the one whose lease ends last keeps running, the other goes back to the queue."""
    db = Database(f"sqlite:///{tmp_path}/old.db")
    assert "0012_events_one_running.sql" in old_files("sqlite")
    make_old_store(db, upto="0011_reconcile_baseline.sql")
    raw = store_sql(db)
    _event(raw, "e1", "zuora-account:A1", "running", "2026-01-01T00:05:00.000000Z")
    _event(raw, "e2", "zuora-account:A1", "running", "2026-01-01T00:09:00.000000Z")
    _event(raw, "e3", "zuora-account:B1", "running", "2026-01-01T00:05:00.000000Z")
    assert "0012_events_one_running.sql" in db.migrate()
    rows = {r["id"]: (r["status"], r["lease_owner"], r["lease_expires_at"])
            for r in raw.execute("SELECT id, status, lease_owner, lease_expires_at FROM events").fetchall()}
    assert rows == {"e1": ("pending", None, None), "e2": ("running", "w", "2026-01-01T00:09:00.000000Z"),
                    "e3": ("running", "w", "2026-01-01T00:05:00.000000Z")}
    db.close()
