"""Add `scheduler_job.queues`: the Celery queues a `dagrunner worker` job consumes (#13 part E).

Revision ID: 0013_workers
Revises: 0012_outbox
Create Date: 2027-01-10

A `worker` job row (job_type "worker") says which queues it serves, for `dagrunner jobs list`. Additive
and nullable: other job types leave it empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_workers"
down_revision: str | None = "0012_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scheduler_job") as batch:
        batch.add_column(sa.Column("queues", sa.String(1000)))


def downgrade() -> None:
    with op.batch_alter_table("scheduler_job") as batch:
        batch.drop_column("queues")
