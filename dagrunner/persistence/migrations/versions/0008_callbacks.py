"""Add `callback_request`: DAG-level callbacks to run for finished runs (issue #11 item 6).

Revision ID: 0008_callbacks
Revises: 0007_pool_breakers
Create Date: 2026-12-10

A run that finishes writes a request row in the same transaction when its DAG has an
`on_success_callback` / `on_failure_callback`; the scheduler runs it in a process of its own after the
commit and marks it done. Pending requests (`done_at IS NULL`) are few, found through a partial index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_callbacks"
down_revision: str | None = "0007_pool_breakers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 250
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = sa.DateTime(timezone=True)
PENDING = sa.text("done_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "callback_request",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dag_id", sa.String(ID), nullable=False),
        sa.Column("run_id", sa.String(ID), nullable=False),
        sa.Column("fileloc", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("job_id", BigId),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("done_at", Utc),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_callback_request"),
    )
    op.create_index(
        "ix_callback_request_pending",
        "callback_request",
        ["job_id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_callback_request_pending", table_name="callback_request")
    op.drop_table("callback_request")
