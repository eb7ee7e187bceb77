"""Initial schema: every table of DESIGN section 5, plus backfill; seeds default_pool.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Written out by hand rather than from `models.py`, so that this revision stays what it was when later
revisions change the models. A test checks that head equals the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 250
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
Utc = sa.DateTime(timezone=True)
UNIQUE_DATE_RUNS = sa.text("run_type IN ('scheduled', 'backfill')")


def _id(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(ID), nullable=False)


def _pk() -> sa.Column[int]:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


def upgrade() -> None:
    _create_dag_tables()
    _create_run_tables()
    _create_task_tables()
    _create_other_tables()
    pool = sa.table(
        "pool",
        sa.column("name", sa.String),
        sa.column("slots", sa.Integer),
        sa.column("description", sa.Text),
    )
    op.bulk_insert(pool, [{"name": "default_pool", "slots": 128, "description": "Default pool"}])


def _create_dag_tables() -> None:
    op.create_table(
        "dag",
        sa.Column("dag_id", sa.String(ID), nullable=False),
        sa.Column("fileloc", sa.Text(), nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("schedule_description", sa.String(1000)),
        sa.Column("tags", Json, nullable=False),
        sa.Column("max_active_runs", sa.Integer()),
        sa.Column("max_active_tasks", sa.Integer()),
        sa.Column("next_dagrun", Utc),
        sa.Column("next_dagrun_data_interval_start", Utc),
        sa.Column("next_dagrun_data_interval_end", Utc),
        sa.Column("next_dagrun_create_after", Utc),
        sa.Column("last_parsed", Utc),
        sa.PrimaryKeyConstraint("dag_id", name="pk_dag"),
    )
    op.create_index("ix_dag_next_dagrun_create_after", "dag", ["next_dagrun_create_after"])
    op.create_table(
        "dag_file",
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("file_hash", sa.String(128), nullable=False),
        sa.Column("mtime", sa.Float(), nullable=False),
        sa.Column("serialized", Json),
        sa.Column("import_error", sa.Text()),
        sa.Column("last_parsed", Utc, nullable=False),
        sa.Column("parse_duration", sa.Float()),
        sa.PrimaryKeyConstraint("path", name="pk_dag_file"),
    )


def _create_run_tables() -> None:
    op.create_table(
        "backfill",
        _pk(),
        _id("dag_id"),
        sa.Column("from_date", Utc, nullable=False),
        sa.Column("to_date", Utc, nullable=False),
        sa.Column("reprocess_behavior", sa.String(20), nullable=False),
        sa.Column("max_active_runs", sa.Integer()),
        sa.Column("run_backwards", sa.Boolean(), nullable=False),
        sa.Column("conf", Json, nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(512)),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("completed_at", Utc),
        sa.Column("state", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_backfill"),
    )
    op.create_index("ix_backfill_dag_id", "backfill", ["dag_id"])
    op.create_table(
        "dag_run",
        _pk(),
        _id("dag_id"),
        _id("run_id"),
        sa.Column("run_type", sa.String(20), nullable=False),
        sa.Column("logical_date", Utc, nullable=False),
        sa.Column("data_interval_start", Utc),
        sa.Column("data_interval_end", Utc),
        sa.Column("run_after", Utc, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("conf", Json, nullable=False),
        sa.Column("created_by", sa.String(512)),
        sa.Column("queued_at", Utc),
        sa.Column("start_date", Utc),
        sa.Column("end_date", Utc),
        sa.Column("last_scheduling_decision", Utc),
        sa.Column("backfill_id", BigId),
        sa.Column("owner", sa.String(ID)),
        sa.Column("updated_at", Utc),
        sa.PrimaryKeyConstraint("id", name="pk_dag_run"),
        sa.UniqueConstraint("dag_id", "run_id", name="uq_dag_run_dag_id_run_id"),
        sa.ForeignKeyConstraint(
            ["backfill_id"], ["backfill.id"], name="fk_dag_run_backfill_id_backfill", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_dag_run_backfill_id", "dag_run", ["backfill_id"])
    op.create_index("ix_dag_run_dag_id_state", "dag_run", ["dag_id", "state"])
    op.create_index("ix_dag_run_state", "dag_run", ["state"])
    op.create_index("ix_dag_run_dag_id_logical_date", "dag_run", ["dag_id", "logical_date"])
    op.create_index(
        "ux_dag_run_dag_id_logical_date",
        "dag_run",
        ["dag_id", "logical_date"],
        unique=True,
        sqlite_where=UNIQUE_DATE_RUNS,
        postgresql_where=UNIQUE_DATE_RUNS,
    )


def _create_task_tables() -> None:
    op.create_table(
        "task_instance",
        _pk(),
        _id("dag_id"),
        _id("run_id"),
        _id("task_id"),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("max_tries", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(1000)),
        sa.Column("queue", sa.String(256), nullable=False),
        sa.Column("pool", sa.String(256), nullable=False),
        sa.Column("pool_slots", sa.Integer(), nullable=False),
        sa.Column("priority_weight", sa.Integer(), nullable=False),
        sa.Column("queued_at", Utc),
        sa.Column("start_date", Utc),
        sa.Column("end_date", Utc),
        sa.Column("next_try_at", Utc),
        sa.Column("hostname", sa.String(1000)),
        sa.Column("pid", sa.Integer()),
        sa.Column("executor_id", sa.String(ID)),
        sa.Column("queued_by_job_id", BigId),
        sa.Column("last_heartbeat", Utc),
        sa.Column("updated_at", Utc),
        sa.Column("note", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_task_instance"),
        sa.UniqueConstraint(
            "dag_id",
            "run_id",
            "task_id",
            "map_index",
            name="uq_task_instance_dag_id_run_id_task_id_map_index",
        ),
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id"],
            ["dag_run.dag_id", "dag_run.run_id"],
            name="fk_task_instance_dag_id_run_id_dag_run",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_task_instance_state", "task_instance", ["state"])
    op.create_table(
        "task_try",
        _pk(),
        sa.Column("ti_id", BigId, nullable=False),
        _id("dag_id"),
        _id("run_id"),
        _id("task_id"),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("queued_at", Utc),
        sa.Column("start_date", Utc),
        sa.Column("end_date", Utc),
        sa.Column("hostname", sa.String(1000)),
        sa.Column("pid", sa.Integer()),
        sa.Column("executor_id", sa.String(ID)),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("log_path", sa.String(2048)),
        sa.PrimaryKeyConstraint("id", name="pk_task_try"),
        sa.UniqueConstraint("ti_id", "try_number", name="uq_task_try_ti_id_try_number"),
        sa.ForeignKeyConstraint(
            ["ti_id"], ["task_instance.id"], name="fk_task_try_ti_id_task_instance", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_task_try_dag_id_run_id_task_id_map_index",
        "task_try",
        ["dag_id", "run_id", "task_id", "map_index"],
    )
    op.create_table(
        "xcom",
        _pk(),
        sa.Column("ti_id", BigId, nullable=False),
        _id("dag_id"),
        _id("run_id"),
        _id("task_id"),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("value", Json),
        sa.Column("created_at", Utc, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_xcom"),
        sa.UniqueConstraint(
            "dag_id",
            "run_id",
            "task_id",
            "map_index",
            "key",
            name="uq_xcom_dag_id_run_id_task_id_map_index_key",
        ),
        sa.ForeignKeyConstraint(
            ["ti_id"], ["task_instance.id"], name="fk_xcom_ti_id_task_instance", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_xcom_ti_id", "xcom", ["ti_id"])


def _create_other_tables() -> None:
    op.create_table(
        "pool",
        _pk(),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_pool"),
        sa.UniqueConstraint("name", name="uq_pool_name"),
    )
    op.create_table(
        "audit_log",
        _pk(),
        sa.Column("ts", Utc, nullable=False),
        sa.Column("actor", sa.String(1000), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("dag_id", sa.String(ID)),
        sa.Column("run_id", sa.String(ID)),
        sa.Column("task_id", sa.String(ID)),
        sa.Column("map_index", sa.Integer()),
        sa.Column("try_number", sa.Integer()),
        sa.Column("old_state", sa.String(20)),
        sa.Column("new_state", sa.String(20)),
        sa.Column("reason", sa.Text()),
        sa.Column("detail", Json),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_ts", "audit_log", ["ts"])
    op.create_index("ix_audit_log_dag_id_ts", "audit_log", ["dag_id", "ts"])
    op.create_table(
        "scheduler_job",
        _pk(),
        sa.Column("job_type", sa.String(20), nullable=False),
        sa.Column("host", sa.String(1000), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", Utc, nullable=False),
        sa.Column("latest_heartbeat", Utc, nullable=False),
        sa.Column("ended_at", Utc),
        sa.Column("state", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_job"),
    )
    op.create_index("ix_scheduler_job_state_job_type", "scheduler_job", ["state", "job_type"])


def downgrade() -> None:
    for table in (
        "scheduler_job",
        "audit_log",
        "pool",
        "xcom",
        "task_try",
        "task_instance",
        "dag_run",
        "backfill",
        "dag_file",
        "dag",
    ):
        op.drop_table(table)
