"""Defaults for users and groups, and the audit log.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the model's types (a migration must not change when the models do).
_USER = sa.String(128)
_TARGET = sa.String(2049)


def upgrade() -> None:
    """Add the defaults columns (null: none set) and the audit_events table."""
    op.add_column("users", sa.Column("defaults", sa.JSON(), nullable=True))
    op.add_column("groups", sa.Column("defaults", sa.JSON(), nullable=True))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", _USER, nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", _TARGET, nullable=True),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("remote", sa.String(64), nullable=True),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor"])


def downgrade() -> None:
    """Drop the audit log and the defaults (back to the first schema)."""
    op.drop_table("audit_events")
    # SQLite drops a column by copying the table: batch mode does that on every database.
    for table in ("groups", "users"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("defaults")
