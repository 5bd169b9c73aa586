"""The migration runner's own bookkeeping, and the dialect-specific change marker."""
from sqlalchemy import text

CREATE_SCHEMA_MIGRATIONS = text(
    "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
APPLIED = text("SELECT name FROM schema_migrations")
MARK_APPLIED = text("INSERT INTO schema_migrations (name, applied_at) VALUES (:name, :applied_at)")

# Per dialect, unavoidably: how a connection learns that another one committed. SQLite's counter
# moves on every commit by another connection; PostgreSQL will use LISTEN/NOTIFY instead.
CHANGES_MARKER = {"sqlite": "PRAGMA data_version"}
CHANNEL = "integration_events"
"""PostgreSQL: the LISTEN/NOTIFY channel on which new work is announced (``inbox.NOTIFY``)."""

# Per dialect: the lock that makes concurrent ``migrate`` runs wait for each other (SQLite's write
# transaction already does). The key is arbitrary but fixed: "integration migrate" for every host.
MIGRATION_LOCK = {"postgresql": text("SELECT pg_advisory_xact_lock(4207150613)")}
