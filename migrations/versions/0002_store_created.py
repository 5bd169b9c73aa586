"""When the store was made, in a table of its own: reconciliation's first watermark (CONTRACT §9). The old
runner's ``schema_migrations`` told it (its first ``applied_at``); a store that had it keeps that moment,
and the table goes, Alembic's ``alembic_version`` now says what is applied.

Revision ID: 0002_store_created
Revises: 0001_baseline
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0002_store_created"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

TIME = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")  # as in 0001_baseline


def upgrade() -> None:
    table = op.create_table("store_created", sa.Column("created_at", TIME, nullable=False))
    if sa.inspect(op.get_bind()).has_table("schema_migrations"):
        op.execute("INSERT INTO store_created (created_at) SELECT MIN(applied_at) FROM schema_migrations")
        op.drop_table("schema_migrations")
    else:
        op.bulk_insert(table, [{"created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}])


def downgrade() -> None:
    raise NotImplementedError("not undone: restore a backup instead")
