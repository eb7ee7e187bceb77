"""Add `outbox` and `outbox_sink`: published run, task and asset events (#12 item 3).

Revision ID: 0012_outbox
Revises: 0011_dead_letters
Create Date: 2026-12-20

`persistence.audit` writes one `outbox` row per published event in the transaction of its audit row; the
relay (`scheduling.outbox_relay`) delivers rows to the configured sinks in id order and deletes the rows
every sink has. `outbox_sink` holds each sink's progress, lease and last error. Additive.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_outbox"
down_revision: str | None = "0011_dead_letters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 250
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = sa.DateTime(timezone=True)
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(1000), nullable=False),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("dag_id", sa.String(ID)),
        sa.Column("run_id", sa.String(ID)),
        sa.Column("data", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "outbox_sink",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("delivered_through", BigId, nullable=False, server_default=sa.text("0")),
        sa.Column("delivered_count", BigId, nullable=False, server_default=sa.text("0")),
        sa.Column("last_delivered_at", Utc),
        sa.Column("owner", sa.String(1000)),
        sa.Column("lease_until", Utc),
        sa.Column("failing_since", Utc),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_error_at", Utc),
        sa.Column("next_retry_at", Utc),
        sa.PrimaryKeyConstraint("name", name="pk_outbox_sink"),
    )


def downgrade() -> None:
    op.drop_table("outbox_sink")
    op.drop_table("outbox")
