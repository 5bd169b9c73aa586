"""The migration lock, and the dialect-specific change marker."""
from sqlalchemy import text

# Per dialect, unavoidably: how a connection learns that another one committed. SQLite's counter
# moves on every commit by another connection; PostgreSQL will use LISTEN/NOTIFY instead.
CHANGES_MARKER = {"sqlite": "PRAGMA data_version"}
CHANNEL = "integration_events"
"""PostgreSQL: the LISTEN/NOTIFY channel on which new work is announced (``inbox.NOTIFY``)."""

# Per dialect: the lock that makes concurrent ``migrate`` runs wait for each other (SQLite's write
# transaction already does). The key is arbitrary but fixed: "integration migrate" for every host.
MIGRATION_LOCK = {"postgresql": text("SELECT pg_advisory_xact_lock(4207150613)")}
