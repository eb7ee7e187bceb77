"""Add `dead_letter`: broker messages an asset watcher could not use, kept to replay (#12 item 2).

Revision ID: 0011_dead_letters
Revises: 0010_assets (re-chained after merging i12-assets; the brief had 0009_hitl)
Create Date: 2026-12-20

One row per message that was not JSON, too large, rejected by the watcher's validation, for an unknown
asset, or kept failing: raw bytes, headers, reason, attempt count. Written in the transaction after which
the message is acked. Additive.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_dead_letters"
down_revision: str | None = "0010_assets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 250
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = sa.DateTime(timezone=True)
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "dead_letter",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("watcher", sa.String(ID), nullable=False),
        sa.Column("asset", sa.String(1500), nullable=False),
        sa.Column("broker", sa.Text(), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("message_id", sa.String(1000)),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", Json, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("updated_at", Utc, nullable=False),
        sa.Column("resolved_by", sa.String(1000)),
        sa.Column("asset_event_id", BigId),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letter"),
    )
    op.create_index("ix_dead_letter_status_id", "dead_letter", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_dead_letter_status_id", table_name="dead_letter")
    op.drop_table("dead_letter")
