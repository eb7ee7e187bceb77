"""Add a circuit breaker to `pool`: its threshold, cool-down, state, failure count and when it opened.

Revision ID: 0007_pool_breakers
Revises: 0006_compensation
Create Date: 2026-12-10

A pool stands for a downstream service; after `breaker_failures` consecutive failed tries in it the breaker
opens and new tries are held for `breaker_cooldown_s`, then one probe runs (half open) and its outcome
closes or reopens it (`persistence.breakers`). NULL `breaker_failures` means no breaker, so existing pools
behave as before; every new column is additive with a server default.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_pool_breakers"
down_revision: str | None = "0006_compensation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("pool", sa.Column("breaker_failures", sa.Integer()))
    op.add_column("pool", sa.Column("breaker_cooldown_s", sa.Float(), nullable=False, server_default=sa.text("300")))
    op.add_column("pool", sa.Column("breaker_state", sa.String(20), nullable=False, server_default="closed"))
    op.add_column("pool", sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.add_column("pool", sa.Column("opened_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    for name in ("opened_at", "consecutive_failures", "breaker_state", "breaker_cooldown_s", "breaker_failures"):
        op.drop_column("pool", name)
