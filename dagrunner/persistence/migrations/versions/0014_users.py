"""Add `web_user`, `api_token` and `web_session`: who may use the api-server and the web UI (#14).

Revision ID: 0014_users
Revises: 0013_workers
Create Date: 2027-01-20

Users with a role (viewer, operator, admin) and an Argon2id password hash; bearer tokens and browser
sessions stored as SHA-256 digests only. Additive.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_users"
down_revision: str | None = "0013_workers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 250
Utc = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_user",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(ID), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("last_login", Utc),
        sa.PrimaryKeyConstraint("id", name="pk_web_user"),
        sa.UniqueConstraint("username", name="uq_web_user_username"),
    )
    for table, extra in (
        ("api_token", [sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True)]),
        ("web_session", [sa.Column("id_hash", sa.String(64), nullable=False)]),
    ):
        key = "id" if table == "api_token" else "id_hash"
        columns = [
            *extra,
            sa.Column("user_id", sa.Integer(), nullable=False),
            *(
                [
                    sa.Column("name", sa.String(ID), nullable=False),
                    sa.Column("token_hash", sa.String(64), nullable=False),
                    sa.Column("created_at", Utc, nullable=False),
                    sa.Column("last_used", Utc),
                ]
                if table == "api_token"
                else [
                    sa.Column("csrf_token", sa.String(64), nullable=False),
                    sa.Column("created_at", Utc, nullable=False),
                    sa.Column("expires_at", Utc, nullable=False),
                ]
            ),
        ]
        constraints: list[sa.Constraint] = [
            sa.PrimaryKeyConstraint(key, name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["user_id"], ["web_user.id"], name=f"fk_{table}_user_id_web_user", ondelete="CASCADE"
            ),
        ]
        if table == "api_token":
            constraints.append(sa.UniqueConstraint("token_hash", name="uq_api_token_token_hash"))
        op.create_table(table, *columns, *constraints)
        op.create_index(f"ix_{table}_user_id", table, ["user_id"])


def downgrade() -> None:
    for table in ("web_session", "api_token"):
        op.drop_index(f"ix_{table}_user_id", table_name=table)
        op.drop_table(table)
    op.drop_table("web_user")
