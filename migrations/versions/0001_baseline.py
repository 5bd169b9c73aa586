"""Baseline: the whole schema as the hand-numbered SQL migrations left it (SQLite 0001-0012, PostgreSQL
0001-0008), written once for both engines.

A store made by the old runner is brought to those files' end and stamped at this revision instead of
running it (integration/store/legacy_migrations.py), so this revision must build exactly what they built,
engine by engine: where the engines differ it says so below. Frozen: a change to the schema is a new
revision, never an edit here.

Revision ID: 0001_baseline
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

# Times were the same fixed-width UTC text on both engines, compared byte-wise on PostgreSQL
# (COLLATE "C"); 0002_timestamptz makes them timestamptz there.
TIME = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
# Row IDs: SQLite's INTEGER PRIMARY KEY AUTOINCREMENT, PostgreSQL's BIGINT identity.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, TIME, nullable=nullable)


def text(name: str, nullable: bool = False, **kwargs) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=nullable, **kwargs)


def key(name: str) -> sa.Column:
    """A TEXT primary key. The SQL files declared it inline without NOT NULL, which SQLite (unlike
    PostgreSQL) takes at its word; the same here, so a migrated old store and a new one are alike."""
    return sa.Column(name, sa.Text(), primary_key=True, nullable=True)


def row_id() -> sa.Column:
    return sa.Column("id", ROW_ID, sa.Identity(always=False), primary_key=True)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # events.seq: insertion order, the failure list's cursor. PostgreSQL: an identity column, unique.
    # SQLite: filled by a trigger after the insert (one writer at a time, so MAX + 1 is never taken
    # twice), so it cannot be NOT NULL; unique by the index events_seq.
    seq = (sa.Column("seq", sa.Integer(), nullable=True) if sqlite else
           sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False, unique=True))
    op.create_table(
        "events",
        key("id"), seq,
        text("source"), text("type"), text("object_type"), text("object_id"), text("object_key"),
        text("dedupe_key", unique=True),
        text("payload", server_default=sa.text("'{}'")),
        text("status", server_default=sa.text("'pending'")),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        time("next_attempt_at"), text("lease_owner", True), time("lease_expires_at", True),
        text("error_code", True), text("last_error", True), text("waiting_for", True),
        time("first_failed_at", True), time("last_failed_at", True), time("created_at"), time("updated_at"),
        sa.Column("series", sa.Integer(), nullable=False, server_default=sa.text("1")),
        text("series_key", True),
        sa.Column("coalescing", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed', 'deleted')"),
    )
    op.create_index("events_pending_due", "events", ["status", "next_attempt_at", "created_at"])
    op.create_index("events_lease", "events", ["status", "lease_expires_at"])
    op.create_index("events_object", "events", ["object_key", "status"])
    op.create_index("events_failed", "events", ["status", "error_code", "last_failed_at"])
    op.create_index("events_waiting", "events", ["waiting_for"], sqlite_where=sa.text("waiting_for IS NOT NULL"),
                    postgresql_where=sa.text("waiting_for IS NOT NULL"))
    op.create_index("events_status_seq", "events", ["status", "seq"])
    # At most one coalescing (not yet claimed) event per object and type, and one running event per object.
    op.create_index("events_one_coalescing", "events", ["object_key", "type"], unique=True,
                    sqlite_where=sa.text("coalescing = 1"), postgresql_where=sa.text("coalescing = 1"))
    op.create_index("events_one_running", "events", ["object_key"], unique=True,
                    sqlite_where=sa.text("status = 'running'"), postgresql_where=sa.text("status = 'running'"))
    if sqlite:
        op.create_index("events_seq", "events", ["seq"], unique=True)
        op.execute("CREATE TRIGGER events_assign_seq AFTER INSERT ON events WHEN NEW.seq IS NULL\n"
                   "BEGIN\n"
                   "    UPDATE events SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM events) WHERE id = NEW.id;\n"
                   "END")

    op.create_table(
        "attempts",
        row_id(),
        sa.Column("event_id", sa.Text(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("series", sa.Integer(), nullable=False), sa.Column("attempt", sa.Integer(), nullable=False),
        text("worker_id"), time("started_at"), time("ended_at", True),
        text("outcome", True), text("code", True), text("message", True),
        sa.CheckConstraint("outcome IN ('done', 'rescheduled', 'failed', 'lost')"),
        sqlite_autoincrement=True,
    )
    op.create_index("attempts_event", "attempts", ["event_id", "id"])

    op.create_table(
        "id_mappings",
        row_id(),
        text("type"), text("zuora_id"), text("zuora_number", True), text("billing_id"),
        text("billing_customer_id", True), text("billing_parent_id", True), text("origin"),
        time("created_at"), time("updated_at"),
        time("reversed_at", True), text("reversal", True), text("credit_memo_id", True),
        sa.CheckConstraint("type IN ('account', 'invoice', 'usage')"),
        sa.CheckConstraint("origin IN ('zuora', 'billing', 'linked')"),
        sa.CheckConstraint("reversal IN ('cancelled', 'reversed')"),
        sa.UniqueConstraint("type", "zuora_id"),
        sa.UniqueConstraint("type", "billing_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("id_mappings_parent", "id_mappings", ["billing_parent_id"])

    op.create_table(
        "meter_settings",
        key("meter_id"), text("zuora_subscription_number"), text("zuora_charge_number"), text("uom"), text("mode"),
        time("created_at"), time("updated_at"),
        sa.CheckConstraint("mode IN ('quantity', 'revenue')"),
    )
    op.create_table("scheduled_runs", key("slot"), text("worker_id"), time("started_at"),
                    sa.Column("retried", sa.Integer(), nullable=True))
    op.create_table(
        "alert_digests",
        key("slot"), text("worker_id"), time("claimed_at"), time("through"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default=sa.text("0")),
        time("delivered_at", True), text("error", True),
    )
    op.create_index("alert_digests_delivered", "alert_digests", ["delivered_at", "through"])
    op.create_table("reconcile_state", key("name"), time("watermark"), time("updated_at"))
    op.create_table("service_keys", key("name"), text("value"), time("created_at"))
    op.create_table("console_sessions", key("id_hash"), text("token_fingerprint"), time("created_at"),
                    time("last_seen_at"), time("expires_at"))
    op.create_index("console_sessions_expires", "console_sessions", ["expires_at"])
    op.create_table("sign_in_attempts", key("bucket"), time("window_start"),
                    sa.Column("attempts", sa.Integer(), nullable=False))
    op.create_index("sign_in_attempts_window", "sign_in_attempts", ["window_start"])
    op.create_table("webhook_deliveries", key("delivery_key"), text("event_id"), time("received_at"),
                    time("forget_after"))
    op.create_index("webhook_deliveries_forget", "webhook_deliveries", ["forget_after"])
    op.create_table("unpushed_voids", key("billing_id"), text("event_id", True), time("voided_at"))
    op.create_table(
        "reconcile_baseline",
        sa.Column("kind", sa.Text(), primary_key=True, nullable=False),
        sa.Column("object_id", sa.Text(), primary_key=True, nullable=False),
        time("recorded_at"),
    )


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore a backup instead")
