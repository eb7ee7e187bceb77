"""Add `connection` and `variable`: Airflow's connections and variables, secrets encrypted with Fernet (#15).

Revision ID: 0015_connections_variables
Revises: 0014_users
Create Date: 2027-02-01

A connection's password and extra and a variable's value are Fernet tokens (`persistence.fernet`). Additive.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_connections_variables"
down_revision: str | None = "0014_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 250
Utc = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "connection",
        sa.Column("conn_id", sa.String(ID), nullable=False),
        sa.Column("conn_type", sa.String(500), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("host", sa.Text()),
        sa.Column("schema", sa.Text()),
        sa.Column("login", sa.Text()),
        sa.Column("password", sa.Text()),
        sa.Column("port", sa.Integer()),
        sa.Column("extra", sa.Text()),
        sa.Column("updated_at", Utc, nullable=False),
        sa.PrimaryKeyConstraint("conn_id", name="pk_connection"),
    )
    op.create_table(
        "variable",
        sa.Column("key", sa.String(ID), nullable=False),
        sa.Column("val", sa.Text(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("updated_at", Utc, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_variable"),
    )


def downgrade() -> None:
    op.drop_table("variable")
    op.drop_table("connection")
