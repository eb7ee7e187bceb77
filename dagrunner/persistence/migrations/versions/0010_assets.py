"""Add assets: `asset`, `asset_alias`, `asset_event`, `asset_dag_queue`, `dag_run_asset_event` (#12 part A).

Revision ID: 0010_assets
Revises: 0009_hitl
Create Date: 2026-12-20

An asset is registered when a DAG file naming it is synced. Every update of an asset is an `asset_event`
row (from a task's outlet, a broker message, the CLI); a message id is kept in `dedupe_key`, unique, so a
redelivered message records nothing new. `asset_dag_queue` holds, per DAG scheduled on assets, the newest
event of each asset it has not yet consumed (Airflow's AssetDagRunQueue); `dag_run_asset_event` links an
asset-triggered run to the events that triggered it. Additive: nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_assets"
down_revision: str | None = "0009_hitl"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 250
NAME = 1500
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = sa.DateTime(timezone=True)
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "asset",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("uri", sa.String(NAME), nullable=False),
        sa.Column("group", sa.String(NAME), nullable=False),
        sa.Column("extra", Json, nullable=False),
        sa.Column("fileloc", sa.Text()),
        sa.Column("consumers", Json, nullable=False),
        sa.Column("producers", Json, nullable=False),
        sa.Column("readers", Json, nullable=False),
        sa.Column("watchers", Json, nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", Utc),
        sa.PrimaryKeyConstraint("id", name="pk_asset"),
        sa.UniqueConstraint("name", name="uq_asset_name"),
        sa.UniqueConstraint("uri", name="uq_asset_uri"),
    )
    op.create_table(
        "asset_alias",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("consumers", Json, nullable=False),
        sa.Column("producers", Json, nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", Utc),
        sa.PrimaryKeyConstraint("id", name="pk_asset_alias"),
        sa.UniqueConstraint("name", name="uq_asset_alias_name"),
    )
    op.create_table(
        "asset_event",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("asset_id", BigId, nullable=False),
        sa.Column("alias", sa.String(NAME)),
        sa.Column("extra", Json, nullable=False),
        sa.Column("source", Json, nullable=False),
        sa.Column("source_dag_id", sa.String(ID)),
        sa.Column("source_run_id", sa.String(ID)),
        sa.Column("source_task_id", sa.String(ID)),
        sa.Column("source_map_index", sa.Integer(), nullable=False, server_default=sa.text("-1")),
        sa.Column("dedupe_key", sa.String(1000)),
        sa.Column("timestamp", Utc, nullable=False),
        sa.Column("created_by", sa.String(1000)),
        sa.PrimaryKeyConstraint("id", name="pk_asset_event"),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], name="fk_asset_event_asset_id_asset", ondelete="CASCADE"),
        sa.UniqueConstraint("dedupe_key", name="uq_asset_event_dedupe_key"),
    )
    op.create_index("ix_asset_event_asset_id_id", "asset_event", ["asset_id", "id"])
    op.create_table(
        "asset_dag_queue",
        sa.Column("asset_id", BigId, nullable=False),
        sa.Column("dag_id", sa.String(ID), nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        sa.Column("created_at", Utc, nullable=False),
        sa.PrimaryKeyConstraint("asset_id", "dag_id", name="pk_asset_dag_queue"),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["asset.id"], name="fk_asset_dag_queue_asset_id_asset", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["asset_event.id"], name="fk_asset_dag_queue_event_id_asset_event", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "dag_run_asset_event",
        sa.Column("run_pk", BigId, nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        sa.PrimaryKeyConstraint("run_pk", "event_id", name="pk_dag_run_asset_event"),
        sa.ForeignKeyConstraint(
            ["run_pk"], ["dag_run.id"], name="fk_dag_run_asset_event_run_pk_dag_run", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["asset_event.id"], name="fk_dag_run_asset_event_event_id_asset_event", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_dag_run_asset_event_event_id", "dag_run_asset_event", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_dag_run_asset_event_event_id", table_name="dag_run_asset_event")
    op.drop_table("dag_run_asset_event")
    op.drop_table("asset_dag_queue")
    op.drop_index("ix_asset_event_asset_id_id", table_name="asset_event")
    op.drop_table("asset_event")
    op.drop_table("asset_alias")
    op.drop_table("asset")
