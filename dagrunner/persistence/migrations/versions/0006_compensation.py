"""Saga compensation: where an undo task's instance stands in its run's rollback, and runs that need a person.

Revision ID: 0006_compensation
Revises: 0004_sensor_waiting
Create Date: 2026-12-05

`task_instance.compensation_order` (nullable: only undo tasks' instances have one) orders a failed run's
compensations, the step that finished last first; `task_instance.compensation_reported` marks that its
`compensation.finished` audit row was written (a fenced update claims it, so exactly one row). `dag_run.
needs_attention` (and its reason) flags a run whose compensation failed after its retries. All additive
with server defaults, so existing rows read as "not a compensation" and "needs nothing".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_compensation"
down_revision: str | None = "0004_sensor_waiting"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task_instance", sa.Column("compensation_order", sa.Integer()))
    op.add_column(
        "task_instance",
        sa.Column("compensation_reported", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("dag_run", sa.Column("needs_attention", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("dag_run", sa.Column("needs_attention_reason", sa.Text()))


def downgrade() -> None:
    op.drop_column("dag_run", "needs_attention_reason")
    op.drop_column("dag_run", "needs_attention")
    op.drop_column("task_instance", "compensation_reported")
    op.drop_column("task_instance", "compensation_order")
