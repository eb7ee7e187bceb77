"""Add `task_instance.reschedule_count` and `task_instance.waiting_since`: how long an instance has been
waiting without a slot (a `reschedule` sensor between pokes, a deferred human approval).

Revision ID: 0004_sensor_waiting
Revises: 0003
Create Date: 2026-12-10

A sensor in `reschedule` mode ends its try after each poke that says "not yet" and is queued again
`poke_interval` later; its timeout counts from the first poke, across those tries, so the first poke's
time has to outlive the try. `reschedule_count` is Airflow's `task_reschedule_count` (in the context);
both go back to 0 / NULL when the instance is cleared. Additive, with server defaults, so rows written
before read as "never waited".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_sensor_waiting"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Utc = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "task_instance", sa.Column("reschedule_count", sa.Integer(), nullable=False, server_default=sa.text("0"))
    )
    op.add_column("task_instance", sa.Column("waiting_since", Utc))


def downgrade() -> None:
    op.drop_column("task_instance", "waiting_since")
    op.drop_column("task_instance", "reschedule_count")
