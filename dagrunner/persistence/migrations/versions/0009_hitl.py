"""Add `hitl_request` and `task_instance.next_method` / `next_kwargs`: human approval without a slot (#11 item 3).

Revision ID: 0009_hitl
Revises: 0008_callbacks
Create Date: 2026-12-10

A human-in-the-loop task's first try writes one `hitl_request` row (what a person is asked, by when) and
ends; the instance waits `deferred` with no process. The answer (or the timeout's defaults) is written on
the request and handed to the resume try through `next_kwargs`, with `next_method` naming what that try
does (Airflow's deferral columns). Unanswered requests (`responded_at IS NULL`) are few, found through a
partial index. Additive, so rows written before read as "never deferred".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_hitl"
down_revision: str | None = "0008_callbacks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 250
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = sa.DateTime(timezone=True)
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
OPEN = sa.text("responded_at IS NULL")


def upgrade() -> None:
    op.add_column("task_instance", sa.Column("next_method", sa.String(64)))
    op.add_column("task_instance", sa.Column("next_kwargs", Json))
    op.create_table(
        "hitl_request",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ti_id", BigId, nullable=False),
        sa.Column("dag_id", sa.String(ID), nullable=False),
        sa.Column("run_id", sa.String(ID), nullable=False),
        sa.Column("task_id", sa.String(ID), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=False, server_default=sa.text("-1")),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text()),
        sa.Column("options", Json, nullable=False),
        sa.Column("defaults", Json),
        sa.Column("multiple", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("params", Json, nullable=False),
        sa.Column("assigned_users", Json, nullable=False),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("timeout_at", Utc),
        sa.Column("escalate_at", Utc),
        sa.Column("escalated_at", Utc),
        sa.Column("response", Json),
        sa.Column("responded_by", sa.String(1000)),
        sa.Column("responded_at", Utc),
        sa.Column("comment", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_hitl_request"),
        sa.ForeignKeyConstraint(
            ["ti_id"], ["task_instance.id"], name="fk_hitl_request_ti_id_task_instance", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("ti_id", name="uq_hitl_request_ti_id"),
    )
    op.create_index("ix_hitl_request_open", "hitl_request", ["timeout_at"], sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index("ix_hitl_request_open", table_name="hitl_request")
    op.drop_table("hitl_request")
    op.drop_column("task_instance", "next_kwargs")
    op.drop_column("task_instance", "next_method")
