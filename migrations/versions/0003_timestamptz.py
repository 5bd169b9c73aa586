"""Times are ``timestamptz`` on PostgreSQL, converted in place from the fixed-width UTC text they were
(``USING col::timestamptz``: every stored value carries its ``Z``). SQLite has no time type: its times
stay that text, whose string order is time order. The store reads and writes both through one column
type (integration/store/types.py), so no query changes.

Revision ID: 0003_timestamptz
Revises: 0002_store_created
"""
from __future__ import annotations

from alembic import op

revision = "0003_timestamptz"
down_revision = "0002_store_created"
branch_labels = None
depends_on = None

TIME_COLUMNS = {
    "events": ("next_attempt_at", "lease_expires_at", "first_failed_at", "last_failed_at", "created_at",
               "updated_at"),
    "attempts": ("started_at", "ended_at"),
    "id_mappings": ("created_at", "updated_at", "reversed_at"),
    "meter_settings": ("created_at", "updated_at"),
    "scheduled_runs": ("started_at",),
    "alert_digests": ("claimed_at", "through", "delivered_at"),
    "reconcile_state": ("watermark", "updated_at"),
    "service_keys": ("created_at",),
    "console_sessions": ("created_at", "last_seen_at", "expires_at"),
    "sign_in_attempts": ("window_start",),
    "webhook_deliveries": ("received_at", "forget_after"),
    "unpushed_voids": ("voided_at",),
    "reconcile_baseline": ("recorded_at",),
    "store_created": ("created_at",),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in TIME_COLUMNS.items():  # one ALTER per table: each table is rewritten once
        changes = ", ".join(f"ALTER COLUMN {c} TYPE timestamptz USING {c}::timestamptz" for c in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def downgrade() -> None:
    raise NotImplementedError("not undone: restore a backup instead")
