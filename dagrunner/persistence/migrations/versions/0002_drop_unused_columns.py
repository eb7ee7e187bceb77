"""Drop columns nothing reads or writes: the DAG's next-run cache, a run's last scheduling decision, and
the task instance's and try's executor id and note. Add `task_try.interrupted`: a try its executor's
shutdown killed, which a resumed backfill runs again (it used to be recognised by its error text).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

The scheduler keeps each DAG's next due run in memory (`scheduling.due_runs`), and no executor stores an
id of its own yet; a column that looks used but is never set misleads every reader of the schema. An
executor that needs an id of its own (Celery) adds its column in its own revision.

Plain `ALTER TABLE ... DROP COLUMN` on both databases (SQLite has it since 3.35): no batch copy of
`task_instance`, which other tables reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 250
Utc = sa.DateTime(timezone=True)

_DROPPED: list[tuple[str, str, sa.types.TypeEngine[Any]]] = [
    ("dag", "next_dagrun", Utc),
    ("dag", "next_dagrun_data_interval_start", Utc),
    ("dag", "next_dagrun_data_interval_end", Utc),
    ("dag", "next_dagrun_create_after", Utc),
    ("dag_run", "last_scheduling_decision", Utc),
    ("task_instance", "executor_id", sa.String(ID)),
    ("task_instance", "note", sa.Text()),
    ("task_try", "executor_id", sa.String(ID)),
]


def upgrade() -> None:
    op.drop_index("ix_dag_next_dagrun_create_after", table_name="dag")
    for table, name, _ in _DROPPED:
        op.drop_column(table, name)
    op.add_column("task_try", sa.Column("interrupted", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("task_try", "interrupted")
    for table, name, type_ in _DROPPED:
        op.add_column(table, sa.Column(name, type_))
    op.create_index("ix_dag_next_dagrun_create_after", "dag", ["next_dagrun_create_after"])
